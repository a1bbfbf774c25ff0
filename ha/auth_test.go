package ha

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hamq/hamq/core/store"
)

// logBuffer collects a node's log for a test to read.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// TestAuthRefusesPeersWithoutTheSecret: a master with another secret, and
// a rogue speaking the protocol's old unauthenticated HELLO with a huge
// epoch, are both refused before they can fence the node; its epoch and
// log stay as they were, and the refusal is logged.
func TestAuthRefusesPeersWithoutTheSecret(t *testing.T) {
	var logs logBuffer
	n, err := NewNode(Config{Replicas: 3, Bind: "127.0.0.1:0", Sync: SyncQuorumMem, Secret: "right"}, t.TempDir(), store.Options{},
		nil, slog.New(slog.NewTextHandler(&logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	n.verify = func(uint64, string) error { return nil }
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go n.follower.serve(ln)
	defer func() {
		ln.Close()
		n.follower.drop()
		n.st.Close()
	}()
	if err := n.st.SetEpoch(3); err != nil {
		t.Fatal(err)
	}
	put(n.st, t, "k1", "v1")
	before := n.st.End()

	master, err := store.Open(t.TempDir(), store.Options{}, quiet())
	if err != nil {
		t.Fatal(err)
	}
	defer master.Close()
	rep := newReplicator(master, "wrong-secret", []byte("wrong"), 1<<40, 2, time.Second, time.Hour, quiet())
	rep.setPeer("n", ln.Addr().String())
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	err = rep.fence(ctx, 2*time.Second)
	cancel()
	rep.close("test")
	if err == nil {
		t.Fatal("a master with the wrong secret fenced a quorum")
	}

	conn, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	hello := binary.AppendUvarint(nil, 1<<40)
	hello = appendBytes(hello, []byte("rogue"))
	frame := binary.BigEndian.AppendUint32(nil, uint32(len(hello)+1))
	conn.Write(append(append(frame, msgHello), hello...))
	conn.SetReadDeadline(time.Now().Add(2 * time.Second))
	var got bytes.Buffer
	got.ReadFrom(conn)
	conn.Close()

	if e := n.st.Epoch(); e != 3 {
		t.Errorf("the node's epoch is %d after the refused peers, was 3", e)
	}
	if end := n.st.End(); end != before {
		t.Errorf("the node's log end moved from %v to %v", before, end)
	}
	if strings.Contains(logs.String(), "fenced by a master") {
		t.Errorf("the node was fenced:\n%s", logs.String())
	}
	if !strings.Contains(logs.String(), "refused a replication peer") {
		t.Errorf("the refusals were not logged:\n%s", logs.String())
	}
}

// TestLinkMessagesAreAuthenticated: once keyed, a message changed in
// transit, or one played again, fails its check.
func TestLinkMessagesAreAuthenticated(t *testing.T) {
	toNode, toMaster := sessionMACs([]byte("s"), nonce(), nonce())
	var wire bytes.Buffer
	w := &link{bw: bufio.NewWriter(&wire)}
	w.key(toNode, toMaster)
	w.write(msgRecord, []byte("record one"))
	w.write(msgRecord, []byte("record two"))
	w.flush()
	sent := bytes.Clone(wire.Bytes())

	tampered := bytes.Clone(sent)
	tampered[7] ^= 1 // inside the first payload
	r := &link{br: bufio.NewReader(bytes.NewReader(tampered))}
	r.key(toMaster, toNode)
	if _, _, err := r.read(); !errors.Is(err, errBadMAC) {
		t.Errorf("a changed message read as %v", err)
	}

	// The second message alone, first in a session: its sequence number
	// is not the first's.
	first := int(binary.BigEndian.Uint32(sent)) + 4
	r = &link{br: bufio.NewReader(bytes.NewReader(sent[first:]))}
	r.key(toMaster, toNode)
	if _, _, err := r.read(); !errors.Is(err, errBadMAC) {
		t.Errorf("a message out of its place read as %v", err)
	}

	r = &link{br: bufio.NewReader(bytes.NewReader(sent))}
	r.key(toMaster, toNode)
	for _, want := range []string{"record one", "record two"} {
		if typ, p, err := r.read(); err != nil || typ != msgRecord || string(p) != want {
			t.Errorf("read %d %q, %v; want %q", typ, p, err, want)
		}
	}
}

// TestLinkDirectionsAreIndependent: a master writes records on one
// goroutine while another reads the acks, as replicator.stream does, over
// a real connection; neither direction's MAC may disturb the other's.
func TestLinkDirectionsAreIndependent(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, _ := ln.Accept()
		accepted <- c
	}()
	mc, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer mc.Close()
	nc := <-accepted
	if nc == nil {
		t.Fatal("accept failed")
	}
	defer nc.Close()
	nm, nn := nonce(), nonce()
	master, node := newLink(mc, 4096, 4096), newLink(nc, 4096, 4096)
	master.key(sessionMACs([]byte("s"), nm, nn))
	toNode, toMaster := sessionMACs([]byte("s"), nm, nn)
	node.key(toMaster, toNode)

	const n = 20000
	record := bytes.Repeat([]byte("r"), 1024)
	send := func(l *link, typ byte, p []byte) error {
		if err := l.write(typ, p); err != nil {
			return err
		}
		return l.flush()
	}
	errs := make(chan error, 3)
	go func() { // the slave: an ack for each record
		for i := range n {
			if _, p, err := node.read(); err != nil || !bytes.Equal(p, record) {
				errs <- fmt.Errorf("node: record %d: %v", i, err)
				return
			}
			if err := send(node, msgAck, binary.AppendUvarint(nil, uint64(i))); err != nil {
				errs <- err
				return
			}
		}
		errs <- nil
	}()
	go func() {
		for range n {
			if err := send(master, msgRecord, record); err != nil {
				errs <- err
				return
			}
		}
		errs <- nil
	}()
	go func() {
		for i := range n {
			if _, _, err := master.read(); err != nil {
				errs <- fmt.Errorf("master: ack %d: %v", i, err)
				return
			}
		}
		errs <- nil
	}()
	for range 3 {
		if err := <-errs; err != nil {
			mc.Close()
			nc.Close()
			t.Fatal(err)
		}
	}
}
