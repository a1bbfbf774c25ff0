package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/go-stomp/stomp/v3"
	"github.com/go-stomp/stomp/v3/frame"

	"github.com/hamq/hamq/core"
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

// isFailover reports whether a URL lists brokers to fail over between.
func isFailover(u string) bool { return strings.HasPrefix(u, "failover:") }

// connectAny connects to a broker of the list. A plain URL
// (tcp://host:port) is tried for plainPatience: nothing listening there
// is an error within seconds, while a broker started just before (hamq
// start & in a script) is found. A failover: URL is tried as ActiveMQ's failover
// transport does: in random order (unless the URL says randomize=false),
// round after round with a growing back-off, until one accepts or timeout
// passes; in a cluster only the master accepts. Either way a refusal (a
// wrong password) ends it at once, in the broker's words.
func connectAny[T any](u string, timeout time.Duration, try func(addr string) (T, error)) (T, error) {
	var zero T
	addrs, err := brokerAddrs(u)
	if err != nil {
		return zero, err
	}
	if !strings.Contains(u, "randomize=false") {
		rand.Shuffle(len(addrs), func(i, j int) { addrs[i], addrs[j] = addrs[j], addrs[i] })
	}
	if !isFailover(u) {
		timeout = min(timeout, plainPatience)
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
			if refused(err) {
				return zero, err
			}
			last = fmt.Errorf("%s: %w", a, err)
		}
		if time.Now().After(deadline) {
			if !isFailover(u) {
				return zero, fmt.Errorf("no broker at %s within %s: %w (a failover:(...) URL keeps trying)", u, timeout, last)
			}
			return zero, fmt.Errorf("no broker answered within %s: %w", timeout, last)
		}
		time.Sleep(backoff)
		backoff = min(2*backoff, 2*time.Second)
	}
}

// plainPatience is how long a plain URL is tried.
const plainPatience = 2 * time.Second

// failoverTimeout is how long a command looks for a broker, at start and
// after a connection drops: longer than a cluster's failover.
const failoverTimeout = 60 * time.Second

// dialTimeout bounds one TCP connection attempt.
const dialTimeout = 5 * time.Second

// dial connects over STOMP to a broker of the list, logging in with cr.
func dial(u string, cr creds, timeout time.Duration) (*stomp.Conn, error) {
	return connectAny(u, timeout, func(a string) (*stomp.Conn, error) {
		nc, err := net.DialTimeout("tcp", a, dialTimeout)
		if err != nil {
			return nil, err
		}
		// go-stomp's Disconnect holds the lock its reading goroutine needs
		// to see an ERROR or the end of the connection while it waits for
		// the DISCONNECT's receipt (30 s by default): after a broker's
		// ERROR that wait held hamq send for 30 s.
		opts := []func(*stomp.Conn) error{stomp.ConnOpt.Logger(quietLog{}), stomp.ConnOpt.HeartBeat(0, 0),
			stomp.ConnOpt.DisconnectReceiptTimeout(2 * time.Second)}
		if cr.user != "" {
			opts = append(opts, stomp.ConnOpt.Login(cr.user, cr.password))
		}
		nc.SetDeadline(time.Now().Add(30 * time.Second))
		c, err := stomp.Connect(nc, opts...)
		if err != nil {
			nc.Close()
			var se stomp.Error
			if errors.As(err, &se) && se.Frame != nil {
				return nil, stompRefusal(se.Frame)
			}
			return nil, err
		}
		nc.SetDeadline(time.Time{})
		return c, nil
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
	def := os.Getenv("HAMQ_URL")
	if def == "" {
		def = "tcp://127.0.0.1:61613"
	}
	return fs.String("url", def, "broker: tcp://host:port (tried for 2s) or failover:(tcp://a:61613,tcp://b:61613) (tried until one answers); $HAMQ_URL sets the default")
}

func cmdSend(args []string) error {
	fs := flagSet("send", "[flags]", "Sends messages over STOMP. The body is --body, or standard input when --body is absent.\nA persistent message is confirmed by a receipt, so hamq send returns only once it is durable.\nA message the broker answers with an error is not sent again: the error is reported\n(in a cluster without a quorum, after cluster.confirmTimeout). With a failover: URL, a\nmessage whose connection dropped before any answer is sent again to the next broker.")
	u := urlFlag(fs)
	cr := credFlags(fs)
	dest := fs.String("destination", "/queue/test", "STOMP destination")
	count := fs.Int("count", 1, "messages to send")
	persistent := fs.Bool("persistent", true, "persistent messages, each confirmed by a receipt")
	body := fs.String("body", "", "message body (default: standard input)")
	timeout := durationFlag(fs, "timeout", 2*time.Minute, "longest wait for a message's receipt (seconds, or a duration such as 90s)")
	var hs headers
	fs.Var(&hs, "header", "header key=value (repeatable)")
	if err := fs.Parse(args); err != nil {
		return flagError(err)
	}
	login := cr.fill()
	payload := []byte(*body)
	if *body == "" {
		var err error
		if payload, err = io.ReadAll(os.Stdin); err != nil {
			return err
		}
	}
	c, err := dial(*u, login, failoverTimeout)
	if err != nil {
		return err
	}
	defer func() { disconnect(c) }()
	opts := []func(*frame.Frame) error{stomp.SendOpt.Header("persistent", fmt.Sprint(*persistent))}
	if *persistent {
		opts = append(opts, stomp.SendOpt.Receipt)
	}
	named := false
	for _, h := range hs {
		k, v, _ := strings.Cut(h, "=")
		opts = append(opts, stomp.SendOpt.Header(k, v))
		named = named || k == core.PropDuplicateID || k == core.PropDedupID
	}
	// Each message is named for the broker's duplicate window, so that one
	// sent again after a failover is not enqueued twice when its first
	// send was stored but not confirmed.
	run := fmt.Sprintf("%012x", rand.Uint64()>>16)
	for i := range *count {
		msgOpts := opts
		if !named {
			msgOpts = append(slices.Clip(opts), stomp.SendOpt.Header(core.PropDuplicateID, fmt.Sprintf("hamq-send-%s-%d", run, i)))
		}
		for attempt := 1; ; attempt++ {
			err := sendOne(c, *dest, payload, *timeout, msgOpts)
			if err == nil {
				break
			}
			// An ERROR frame is the broker's answer: not confirmed, and
			// perhaps stored all the same, so sending again could make
			// two. Only a connection lost without an answer is sent
			// again, on the next broker of a failover list, as ActiveMQ's
			// failover transport does.
			if !errors.Is(err, errLost) || !isFailover(*u) || attempt == maxResends {
				return fmt.Errorf("message %d of %d to %s: %w", i+1, *count, *dest, err)
			}
			c.MustDisconnect()
			if c, err = dial(*u, login, failoverTimeout); err != nil {
				return fmt.Errorf("message %d of %d: %w", i+1, *count, err)
			}
		}
	}
	fmt.Fprintf(os.Stderr, "sent %d message(s) to %s\n", *count, *dest)
	return nil
}

// maxResends bounds the sends of one message over failovers.
const maxResends = 10

// errLost is a send whose connection went before any answer.
var errLost = errors.New("the connection was lost before the broker answered")

// sendOne sends a message and waits for its receipt (when it asks for
// one) at most timeout.
func sendOne(c *stomp.Conn, dest string, body []byte, timeout time.Duration, opts []func(*frame.Frame) error) error {
	done := make(chan error, 1)
	go func() { done <- c.Send(dest, "", body, opts...) }()
	select {
	case err := <-done:
		var se stomp.Error
		switch {
		case err == nil:
			return nil
		case errors.As(err, &se) && se.Frame != nil && se.Frame.Command == frame.ERROR:
			msg := se.Frame.Header.Get(frame.Message)
			if msg == "" {
				msg = strings.TrimSpace(string(se.Frame.Body))
			}
			return fmt.Errorf("the broker answered: %s", msg)
		}
		return fmt.Errorf("%w (%v)", errLost, err)
	case <-time.After(timeout):
		c.MustDisconnect()
		return fmt.Errorf("no receipt within %s: the message may or may not be stored (--timeout)", timeout)
	}
}

func cmdReceive(args []string) error {
	fs := flagSet("receive", "[flags]", "Receives messages over STOMP and prints each body on a line of its own, as it arrives.")
	u := urlFlag(fs)
	cr := credFlags(fs)
	dest := fs.String("destination", "/queue/test", "STOMP destination")
	count := fs.Int("count", 0, "stop after this many messages (0: until --timeout passes with none)")
	timeout := durationFlag(fs, "timeout", 5*time.Second, "stop when no message came for this long (seconds, or a duration such as 500ms or 1m)")
	if err := fs.Parse(args); err != nil {
		return flagError(err)
	}
	login := cr.fill()
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
		if c, err = dial(*u, login, failoverTimeout); err != nil {
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
	defer func() { disconnect(c) }()
	n := 0
	idle := time.NewTimer(*timeout)
	defer idle.Stop()
	for *count == 0 || n < *count {
		select {
		case m := <-in:
			if m == nil || m.Err != nil {
				// The broker's ERROR (a refused subscription) ends it;
				// a lost connection fails over, when the URL lists more.
				if m != nil && m.Err != nil && (refused(m.Err) || !isFailover(*u)) {
					return m.Err
				}
				if !isFailover(*u) {
					return fmt.Errorf("the connection to %s ended", *u)
				}
				if err := connect(); err != nil {
					return err
				}
				continue
			}
			// Each message is written as it comes, not held in a buffer
			// until the end: a pipe's reader sees it at once.
			os.Stdout.Write(append(m.Body, '\n'))
			n++
			if c.Ack(m) != nil && isFailover(*u) {
				if err := connect(); err != nil {
					return err
				}
			}
			idle.Reset(*timeout)
		case <-idle.C:
			fmt.Fprintf(os.Stderr, "received %d message(s); none for %s\n", n, *timeout)
			return nil
		}
	}
	fmt.Fprintf(os.Stderr, "received %d message(s)\n", n)
	return nil
}

// disconnect ends a connection once what was sent on it (a receiver's
// acks) is through, leaving a broker that does not answer the DISCONNECT
// after a few seconds.
func disconnect(c *stomp.Conn) {
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
