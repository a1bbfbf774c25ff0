package stomp

import (
	"bufio"
	"context"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/hamq/hamq/core"
	"github.com/hamq/hamq/core/store"
)

// staleConfirmer confirms every record with a validity already over, as
// a cluster master paused between confirming and answering would find.
type staleConfirmer struct{}

func (staleConfirmer) Confirm(context.Context, store.Record, time.Time) (time.Time, error) {
	return time.Now().Add(-time.Millisecond), nil
}

// TestStaleConfirmationClosesInstead: a persistent SEND whose
// confirmation went stale gets no RECEIPT; the connection closes, and the
// client sends it again elsewhere. A non-persistent one, never stale, is
// answered.
func TestStaleConfirmationClosesInstead(t *testing.T) {
	st, err := store.Open(t.TempDir(), store.Options{}, quiet)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	st.SetConfirmer(staleConfirmer{})
	defer st.SetConfirmer(nil)
	b, err := core.NewBroker(core.DefaultConfig(), st, quiet)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	srv := NewServer(b, DefaultOptions(), quiet)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ln)
	defer srv.Close()

	for _, tc := range []struct {
		persistent string
		want       string
	}{{"false", "RECEIPT"}, {"true", ""}} {
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		c.SetDeadline(time.Now().Add(5 * time.Second))
		c.Write([]byte("CONNECT\naccept-version:1.2\nhost:x\n\n\x00SEND\ndestination:/queue/q\npersistent:" + tc.persistent + "\nreceipt:r\n\nm\x00"))
		br := bufio.NewReader(c)
		var frames []string
		for {
			f, err := br.ReadString(0)
			if err != nil {
				break
			}
			frames = append(frames, strings.SplitN(strings.TrimLeft(f, "\n"), "\n", 2)[0])
			if len(frames) == 2 {
				break
			}
		}
		c.Close()
		got := strings.Join(frames[1:], ",")
		if frames[0] != "CONNECTED" || got != tc.want {
			t.Errorf("persistent:%s: answered %v, want CONNECTED then %q", tc.persistent, frames, tc.want)
		}
	}
}
