package conns

import (
	"bufio"
	"io"
	"net"
	"sync"
	"testing"
	"time"
)

// tcpPair is a loopback TCP connection, whose write side can be closed.
func tcpPair(t *testing.T) (server, client net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	client, err = net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	if server, err = ln.Accept(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { server.Close(); client.Close() })
	client.SetDeadline(time.Now().Add(5 * time.Second))
	return server, client
}

func TestOutboxWritesInOrderAcksAndEnds(t *testing.T) {
	server, client := tcpPair(t)
	var mu sync.Mutex
	var acked []uint64
	o := NewOutbox(server, func(w *bufio.Writer, s string) error {
		_, err := w.WriteString(s)
		return err
	}, func(tag uint64) { mu.Lock(); acked = append(acked, tag); mu.Unlock() }, []byte("."))
	o.Send("a")
	o.SendAcked("b", 7)
	o.SendLast("c")
	o.Send("dropped: after the last")
	go o.Run()
	got, err := io.ReadAll(client)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != "abc" {
		t.Errorf("wrote %q, want abc", got)
	}
	<-o.Done()
	mu.Lock()
	defer mu.Unlock()
	if len(acked) != 1 || acked[0] != 7 {
		t.Errorf("acked %v, want [7]", acked)
	}
	if !o.Draining() {
		t.Error("not draining after the last item")
	}
}

// TestOutboxBeatsWhenIdle: beats go out once idle is set, also when the
// writer was already waiting with none (an AMQP connection sends its open
// before it learns the client's idle timeout, and stayed silent until the
// client gave up on it).
func TestOutboxBeatsWhenIdle(t *testing.T) {
	for _, late := range []bool{false, true} {
		server, client := tcpPair(t)
		o := NewOutbox(server, func(w *bufio.Writer, s string) error { _, err := w.WriteString(s); return err }, nil, []byte("."))
		if !late {
			o.SetIdle(10 * time.Millisecond)
		}
		go o.Run()
		o.Send("open")
		b := make([]byte, 4)
		if _, err := io.ReadFull(client, b); err != nil || string(b) != "open" {
			t.Fatalf("read %q, %v: want open", b, err)
		}
		if late {
			time.Sleep(20 * time.Millisecond) // the writer waits with no beat due
			o.SetIdle(10 * time.Millisecond)
		}
		b = b[:1]
		if _, err := io.ReadFull(client, b); err != nil || b[0] != '.' {
			t.Fatalf("idle set late %v: read %q, %v: want the beat", late, b, err)
		}
		o.End()
	}
}

// TestOutboxDropsStaleConfirmations: a confirmation whose validity ended
// before the writer got to it is never written; what was queued before it
// goes out (a CONNECTED frame, say, in the same batch), then the
// connection closes. One still valid goes out.
func TestOutboxDropsStaleConfirmations(t *testing.T) {
	for _, tc := range []struct {
		name  string
		until time.Time
		want  string
	}{
		{"valid", time.Now().Add(time.Minute), "ab"},
		{"no limit", time.Time{}, "ab"},
		{"stale", time.Now().Add(-time.Millisecond), "a"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			server, client := tcpPair(t)
			o := NewOutbox(server, func(w *bufio.Writer, s string) error {
				_, err := w.WriteString(s)
				return err
			}, nil, []byte("."))
			o.Send("a")
			o.SendUntil("b", tc.until)
			o.End()
			go o.Run()
			got, _ := io.ReadAll(client)
			if string(got) != tc.want {
				t.Errorf("wrote %q, want %q", got, tc.want)
			}
			<-o.Done()
		})
	}
}
