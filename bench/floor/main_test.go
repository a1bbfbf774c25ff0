package main

import (
	"bytes"
	"net"
	"os"
	"path/filepath"
	"testing"

	"github.com/go-stomp/stomp/v3"
)

// TestReceiptAfterTheBodyIsStored sends with go-stomp's client, as a
// producer would, and finds each body in the journal once its receipt
// came; a frame beyond what a producer sends is refused.
func TestReceiptAfterTheBodyIsStored(t *testing.T) {
	path := filepath.Join(t.TempDir(), "floor.journal")
	j, err := openJournal(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { j.close() })
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go serve(l, j)

	c, err := stomp.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	bodies := [][]byte{bytes.Repeat([]byte("a"), 1024), bytes.Repeat([]byte("b"), 100)}
	for _, b := range bodies {
		if err := c.Send("/queue/x", "", b, stomp.SendOpt.Receipt); err != nil {
			t.Fatal(err)
		}
	}
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if want := bytes.Join(bodies, nil); !bytes.Equal(got[:len(want)], want) {
		t.Fatalf("the journal starts with %q, want the bodies sent", got[:32])
	}
	if len(got) != journalSize {
		t.Fatalf("journal of %d bytes, want %d: writes must overwrite zeros", len(got), journalSize)
	}

	sub, err := c.Subscribe("/queue/x", stomp.AckAuto)
	if err != nil {
		t.Fatal(err)
	}
	if m := <-sub.C; m == nil || m.Err == nil {
		t.Fatalf("a SUBSCRIBE got %v, want an ERROR", m)
	}
}
