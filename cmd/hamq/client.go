package main

import (
	"bufio"
	"flag"
	"fmt"
	"io"
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

// dial connects to the first broker of the list that answers, trying the
// list again until timeout: in a cluster only the master accepts.
func dial(u string, timeout time.Duration) (*stomp.Conn, error) {
	addrs, err := brokerAddrs(u)
	if err != nil {
		return nil, err
	}
	deadline := time.Now().Add(timeout)
	for {
		var last error
		for _, a := range addrs {
			c, err := stomp.Dial("tcp", a, stomp.ConnOpt.Logger(quietLog{}), stomp.ConnOpt.HeartBeat(0, 0))
			if err == nil {
				return c, nil
			}
			last = fmt.Errorf("%s: %w", a, err)
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("no broker answered: %w", last)
		}
		time.Sleep(200 * time.Millisecond)
	}
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
	c, err := dial(*u, 10*time.Second)
	if err != nil {
		return err
	}
	defer c.Disconnect()
	opts := []func(*frame.Frame) error{stomp.SendOpt.Header("persistent", fmt.Sprint(*persistent))}
	if *persistent {
		opts = append(opts, stomp.SendOpt.Receipt)
	}
	for _, h := range hs {
		k, v, _ := strings.Cut(h, "=")
		opts = append(opts, stomp.SendOpt.Header(k, v))
	}
	for i := range *count {
		if err := c.Send(*dest, "", payload, opts...); err != nil {
			return fmt.Errorf("message %d: %w", i+1, err)
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
	c, err := dial(*u, 10*time.Second)
	if err != nil {
		return err
	}
	defer c.Disconnect()
	sub, err := c.Subscribe(*dest, stomp.AckClientIndividual)
	if err != nil {
		return err
	}
	out := bufio.NewWriter(os.Stdout)
	defer out.Flush()
	n := 0
	for *count == 0 || n < *count {
		select {
		case m := <-sub.C:
			if m.Err != nil {
				return m.Err
			}
			out.Write(m.Body)
			out.WriteByte('\n')
			if err := c.Ack(m); err != nil {
				return err
			}
			n++
		case <-time.After(*timeout):
			fmt.Fprintf(os.Stderr, "received %d message(s); none for %s\n", n, *timeout)
			return nil
		}
	}
	fmt.Fprintf(os.Stderr, "received %d message(s)\n", n)
	return nil
}
