package main

import (
	"bufio"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"strings"
	"time"

	"github.com/go-stomp/stomp/v3"
	"github.com/go-stomp/stomp/v3/frame"
)

// brokerAddrs reads a broker URL: tcp://host:port, host:port, or
// failover:(tcp://a:61613,tcp://b:61613) as ActiveMQ clients write it.
func brokerAddrs(u string) ([]string, error) {
	list := u
	if rest, ok := strings.CutPrefix(u, "failover:"); ok {
		rest = strings.TrimPrefix(rest, "(")
		if i := strings.Index(rest, ")"); i >= 0 {
			rest = rest[:i]
		}
		list = rest
	}
	var addrs []string
	for _, a := range strings.Split(list, ",") {
		a = strings.TrimSpace(a)
		a = strings.TrimPrefix(strings.TrimPrefix(a, "tcp://"), "stomp://")
		if i := strings.Index(a, "?"); i >= 0 {
			a = a[:i]
		}
		if a == "" || !strings.Contains(a, ":") {
			return nil, fmt.Errorf("broker URL %q: want tcp://host:port or failover:(tcp://a:port,tcp://b:port)", u)
		}
		addrs = append(addrs, a)
	}
	return addrs, nil
}

// connectAny connects to a broker of the list as ActiveMQ's failover
// transport does: in random order (unless the URL says randomize=false),
// round after round with a growing back-off, until one accepts or timeout
// passes. In a cluster only the master accepts.
func connectAny[T any](u string, timeout time.Duration, try func(addr string) (T, error)) (T, error) {
	var zero T
	addrs, err := brokerAddrs(u)
	if err != nil {
		return zero, err
	}
	if !strings.Contains(u, "randomize=false") {
		rand.Shuffle(len(addrs), func(i, j int) { addrs[i], addrs[j] = addrs[j], addrs[i] })
	}
	deadline := time.Now().Add(timeout)
	backoff := 50 * time.Millisecond
	for {
		var last error
		for _, a := range addrs {
			c, err := try(a)
			if err == nil {
				return c, nil
			}
			last = fmt.Errorf("%s: %w", a, err)
		}
		if time.Now().After(deadline) {
			return zero, fmt.Errorf("no broker answered: %w", last)
		}
		time.Sleep(backoff)
		backoff = min(2*backoff, 2*time.Second)
	}
}

// failoverTimeout is how long a command looks for a broker, at start and
// after a connection drops: longer than a cluster's failover.
const failoverTimeout = 60 * time.Second

// dial connects over STOMP to a broker of the list.
func dial(u string, timeout time.Duration) (*stomp.Conn, error) {
	return connectAny(u, timeout, func(a string) (*stomp.Conn, error) {
		return stomp.Dial("tcp", a, stomp.ConnOpt.Logger(quietLog{}), stomp.ConnOpt.HeartBeat(0, 0))
	})
}

// quietLog keeps go-stomp's client from logging over the command's output.
type quietLog struct{}

func (quietLog) Debugf(string, ...any)   {}
func (quietLog) Infof(string, ...any)    {}
func (quietLog) Warningf(string, ...any) {}
func (quietLog) Errorf(string, ...any)   {}
func (quietLog) Debug(string)            {}
func (quietLog) Info(string)             {}
func (quietLog) Warning(string)          {}
func (quietLog) Error(string)            {}

// headers is a repeatable --header key=value flag.
type headers []string

func (h *headers) String() string { return strings.Join(*h, ",") }
func (h *headers) Set(v string) error {
	if !strings.Contains(v, "=") {
		return fmt.Errorf("want key=value, got %q", v)
	}
	*h = append(*h, v)
	return nil
}

func urlFlag(fs *flag.FlagSet) *string {
	return fs.String("url", "tcp://127.0.0.1:61613", "broker: tcp://host:port or failover:(tcp://a:61613,tcp://b:61613)")
}

func cmdSend(args []string) error {
	fs := flagSet("send", "[flags]", "Sends messages over STOMP. The body is --body, or standard input when --body is absent.\nA persistent message is confirmed by a receipt, so hamq send returns only once it is durable.")
	u := urlFlag(fs)
	dest := fs.String("destination", "/queue/test", "STOMP destination")
	count := fs.Int("count", 1, "messages to send")
	persistent := fs.Bool("persistent", true, "persistent messages, each confirmed by a receipt")
	body := fs.String("body", "", "message body (default: standard input)")
	var hs headers
	fs.Var(&hs, "header", "header key=value (repeatable)")
	if err := fs.Parse(args); err != nil {
		return flagError(err)
	}
	payload := []byte(*body)
	if *body == "" {
		var err error
		if payload, err = io.ReadAll(os.Stdin); err != nil {
			return err
		}
	}
	c, err := dial(*u, failoverTimeout)
	if err != nil {
		return err
	}
	defer func() { c.Disconnect() }()
	opts := []func(*frame.Frame) error{stomp.SendOpt.Header("persistent", fmt.Sprint(*persistent))}
	if *persistent {
		opts = append(opts, stomp.SendOpt.Receipt)
	}
	for _, h := range hs {
		k, v, _ := strings.Cut(h, "=")
		opts = append(opts, stomp.SendOpt.Header(k, v))
	}
	for i := range *count {
		// A send whose receipt did not come is sent again on the next
		// broker of the list, as the failover transport does.
		for attempt := 1; ; attempt++ {
			err := c.Send(*dest, "", payload, opts...)
			if err == nil {
				break
			}
			if attempt == 10 {
				return fmt.Errorf("message %d: %w", i+1, err)
			}
			c.MustDisconnect()
			if c, err = dial(*u, failoverTimeout); err != nil {
				return fmt.Errorf("message %d: %w", i+1, err)
			}
		}
	}
	fmt.Fprintf(os.Stderr, "sent %d message(s) to %s\n", *count, *dest)
	return nil
}

func cmdReceive(args []string) error {
	fs := flagSet("receive", "[flags]", "Receives messages over STOMP and prints each body on a line of its own.")
	u := urlFlag(fs)
	dest := fs.String("destination", "/queue/test", "STOMP destination")
	count := fs.Int("count", 0, "stop after this many messages (0: until --timeout passes with none)")
	timeout := fs.Duration("timeout", 5*time.Second, "stop when no message came for this long")
	if err := fs.Parse(args); err != nil {
		return flagError(err)
	}
	var c *stomp.Conn
	var in chan *stomp.Message
	// connect (again, after a drop) and subscribe: what was not acked
	// comes again from the broker that takes over. go-stomp's one loop
	// both hands messages to the subscription's channel and writes ACKs:
	// were the channel full while this goroutine waits to ACK, neither
	// would move. So the channel is emptied into one that holds the whole
	// prefetch, and the loop never waits on it.
	connect := func() error {
		if c != nil {
			c.MustDisconnect()
		}
		var err error
		if c, err = dial(*u, failoverTimeout); err != nil {
			return err
		}
		sub, err := c.Subscribe(*dest, stomp.AckClientIndividual, stomp.SubscribeOpt.Header("activemq.prefetchSize", fmt.Sprint(receivePrefetch)))
		if err != nil {
			return err
		}
		in = make(chan *stomp.Message, receivePrefetch+1)
		go func(out chan<- *stomp.Message) {
			for m := range sub.C {
				out <- m
			}
			close(out)
		}(in)
		return nil
	}
	if err := connect(); err != nil {
		return err
	}
	defer func() { disconnectReceiver(c) }()
	out := bufio.NewWriter(os.Stdout)
	defer out.Flush()
	n := 0
	for *count == 0 || n < *count {
		select {
		case m := <-in:
			if m == nil || m.Err != nil {
				if err := connect(); err != nil {
					return err
				}
				continue
			}
			out.Write(m.Body)
			out.WriteByte('\n')
			n++
			if c.Ack(m) != nil {
				if err := connect(); err != nil {
					return err
				}
			}
		case <-time.After(*timeout):
			fmt.Fprintf(os.Stderr, "received %d message(s); none for %s\n", n, *timeout)
			return nil
		}
	}
	fmt.Fprintf(os.Stderr, "received %d message(s)\n", n)
	return nil
}

// disconnectReceiver ends a receiver's connection once its acks are sent,
// leaving a broker that does not answer the DISCONNECT after a few seconds.
func disconnectReceiver(c *stomp.Conn) {
	done := make(chan struct{})
	go func() {
		c.Disconnect()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		c.MustDisconnect()
	}
}

// receivePrefetch is how many unacknowledged messages hamq receive asks
// the broker for.
const receivePrefetch = 100
