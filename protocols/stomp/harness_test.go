package stomp

import (
	"bufio"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/go-stomp/stomp/v3"
	"github.com/hamq/hamq/core"
	"github.com/hamq/hamq/core/store"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

type testServer struct {
	addr string
	b    *core.Broker
}

// startServer runs a broker on a fresh store and a STOMP listener on a
// loopback port, all stopped at the end of the test.
func startServer(t testing.TB, cfg func(*core.Config), opts func(*Options)) *testServer {
	t.Helper()
	st, err := store.Open(t.TempDir(), store.Options{}, quiet)
	if err != nil {
		t.Fatal(err)
	}
	c := core.DefaultConfig()
	c.RedeliveryDelay = 5 * time.Millisecond
	c.ExpirySweep = 20 * time.Millisecond
	if cfg != nil {
		cfg(&c)
	}
	b, err := core.NewBroker(c, st, quiet)
	if err != nil {
		t.Fatal(err)
	}
	o := DefaultOptions()
	if opts != nil {
		opts(&o)
	}
	srv := NewServer(b, o, quiet)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	t.Cleanup(func() {
		if err := srv.Close(); err != nil {
			t.Error(err)
		}
		if err := <-served; err != ErrServerClosed {
			t.Errorf("Serve returned %v", err)
		}
		b.Close()
		st.Close()
	})
	return &testServer{addr: ln.Addr().String(), b: b}
}

func (s *testServer) dial(t *testing.T, opts ...func(*stomp.Conn) error) *stomp.Conn {
	t.Helper()
	c, err := stomp.Dial("tcp", s.addr, append(opts, stomp.ConnOpt.Logger(silent{}))...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Disconnect() })
	return c
}

func read(t *testing.T, sub *stomp.Subscription) *stomp.Message {
	t.Helper()
	select {
	case m := <-sub.C:
		if m.Err != nil {
			t.Fatalf("subscription error: %v", m.Err)
		}
		return m
	case <-time.After(5 * time.Second):
		t.Fatal("no message within 5s")
		return nil
	}
}

func nothing(t *testing.T, sub *stomp.Subscription, wait time.Duration) {
	t.Helper()
	select {
	case m := <-sub.C:
		t.Fatalf("unexpected message %q", m.Body)
	case <-time.After(wait):
	}
}

// raw is a hand-driven STOMP connection for bad input.
type raw struct {
	t  *testing.T
	nc net.Conn
	r  *bufio.Reader
}

func dialRaw(t *testing.T, addr string) *raw {
	t.Helper()
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	nc.SetDeadline(time.Now().Add(10 * time.Second))
	return &raw{t: t, nc: nc, r: bufio.NewReader(nc)}
}

func (r *raw) write(s string) {
	r.t.Helper()
	if _, err := io.WriteString(r.nc, s); err != nil {
		r.t.Fatal(err)
	}
}

// frame reads one frame's command, headers and body as text.
func (r *raw) frame() (string, map[string]string, string) {
	r.t.Helper()
	var cmd string
	for cmd == "" {
		l, err := r.r.ReadString('\n')
		if err != nil {
			r.t.Fatalf("reading a frame: %v", err)
		}
		cmd = strings.TrimRight(l, "\r\n")
	}
	h := map[string]string{}
	for {
		l, err := r.r.ReadString('\n')
		if err != nil {
			r.t.Fatal(err)
		}
		l = strings.TrimRight(l, "\r\n")
		if l == "" {
			break
		}
		k, v, _ := strings.Cut(l, ":")
		if _, ok := h[k]; !ok {
			h[k] = v
		}
	}
	body, err := r.r.ReadString(0)
	if err != nil {
		r.t.Fatal(err)
	}
	return cmd, h, strings.TrimSuffix(body, "\x00")
}

func (r *raw) connect(version string) {
	r.t.Helper()
	r.write(fmt.Sprintf("CONNECT\naccept-version:%s\nhost:localhost\n\n\x00", version))
	if cmd, h, body := r.frame(); cmd != "CONNECTED" {
		r.t.Fatalf("got %s %v %q", cmd, h, body)
	}
}

// closed reports whether the server closed the connection.
func (r *raw) closed() bool {
	r.nc.SetReadDeadline(time.Now().Add(3 * time.Second))
	_, err := r.r.ReadByte()
	return err != nil
}

// silent keeps go-stomp's client from logging every disconnect.
type silent struct{}

func (silent) Debugf(string, ...any)   {}
func (silent) Infof(string, ...any)    {}
func (silent) Warningf(string, ...any) {}
func (silent) Errorf(string, ...any)   {}
func (silent) Debug(string)            {}
func (silent) Info(string)             {}
func (silent) Warning(string)          {}
func (silent) Error(string)            {}

// subscribed waits until the broker's sessions hold n subscriptions in all:
// a SUBSCRIBE has no answer unless it asks for a receipt, and a topic keeps
// nothing for a subscriber that is not there yet.
func (s *testServer) subscribed(t *testing.T, n int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		total := 0
		for _, c := range s.b.Connections() {
			total += c.Subscriptions
		}
		if total >= n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d subscriptions after 5s", total, n)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
