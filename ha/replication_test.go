package ha

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"testing"
	"time"

	"github.com/hamq/hamq/core/store"
)

func TestDiverge(t *testing.T) {
	p := func(e, i uint64) store.Position { return store.Position{Epoch: e, Index: i} }
	st := func(end store.Position, bounds ...store.Position) logState { return logState{End: end, Bounds: bounds} }
	cases := []struct {
		name string
		a, b logState
		at   uint64
		ok   bool
	}{
		{"both empty", st(p(0, 0), p(0, 0)), st(p(0, 0), p(0, 0)), 0, true},
		{"one behind", st(p(1, 10), p(0, 0), p(1, 1)), st(p(1, 4), p(0, 0), p(1, 1)), 4, true},
		{"unconfirmed suffix of an old master", st(p(3, 12), p(0, 0), p(1, 1), p(3, 9)), st(p(2, 15), p(0, 0), p(1, 1), p(2, 9)), 8, true},
		{"new epoch over an old one", st(p(3, 20), p(0, 0), p(1, 1), p(3, 11)), st(p(2, 15), p(0, 0), p(1, 1), p(2, 9)), 8, true},
		{"same epochs, longer", st(p(2, 15), p(0, 0), p(2, 1)), st(p(2, 30), p(0, 0), p(2, 1)), 15, true},
		{"behind the other's base", st(p(1, 100), p(1, 50)), st(p(1, 20), p(0, 0), p(1, 1)), 0, false},
		{"at the other's base", st(p(1, 100), p(1, 50)), st(p(1, 50), p(0, 0), p(1, 1)), 50, true},
		{"nothing in common", st(p(2, 5), p(0, 0), p(2, 1)), st(p(1, 5), p(0, 0), p(1, 1)), 0, true},
		{"restored from a snapshot", st(p(4, 70), p(3, 60), p(4, 65)), st(p(3, 62), p(3, 60)), 62, true},
	}
	for _, tc := range cases {
		for _, swap := range []bool{false, true} {
			a, b := tc.a, tc.b
			if swap {
				a, b = b, a
			}
			at, ok := diverge(a, b)
			if at != tc.at || ok != tc.ok {
				t.Errorf("%s (swapped %v): diverge = %d, %v; want %d, %v", tc.name, swap, at, ok, tc.at, tc.ok)
			}
		}
	}
}

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// slave is a node serving replication on loopback, without ZooKeeper,
// whose log keeps 50 records.
func slave(t testing.TB, dir string) (*Node, string) {
	return slaveWith(t, dir, store.Options{RetainRecords: 50})
}

func slaveWith(t testing.TB, dir string, opts store.Options) (*Node, string) {
	t.Helper()
	n, err := NewNode(Config{Replicas: 3, Bind: "127.0.0.1:0", Sync: SyncQuorumMem}, dir, opts, nil, quiet())
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	n.verify = func(uint64, string) error { return nil } // no ZooKeeper here: every master is believed
	go n.follower.serve(ln)
	t.Cleanup(func() {
		ln.Close()
		n.follower.drop()
		n.st.Close()
	})
	return n, ln.Addr().String()
}

func put(st *store.Store, t *testing.T, k, v string) store.Position {
	t.Helper()
	c := st.Submit([]store.Op{{Key: []byte(k), Value: []byte(v)}})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := c.Wait(ctx); err != nil {
		t.Fatal(err)
	}
	return c.Position()
}

func dump(t *testing.T, st *store.Store) string {
	t.Helper()
	var out []string
	if err := st.Scan([]byte("k"), func(k, v []byte) error {
		out = append(out, string(k)+"="+string(v))
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return fmt.Sprint(out)
}

// lead makes st the master of epoch over the peers, as a won election does.
func lead(t testing.TB, st *store.Store, epoch uint64, peers map[string]string) *replicator {
	t.Helper()
	if err := st.SetEpoch(epoch); err != nil {
		t.Fatal(err)
	}
	rep := newReplicator(st, "master", nil, epoch, 2, 5*time.Second, time.Hour, quiet())
	rep.renew(time.Now())
	for id, addr := range peers {
		rep.setPeer(id, addr)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := rep.fence(ctx, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	st.SetConfirmer(rep)
	return rep
}

var errStop = errors.New("stop")

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !cond(); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

// TestReplicationCatchUpTruncateSnapshot drives the log through the cases
// a rejoining node meets: a slave fed from empty, an old master whose
// unconfirmed suffix is dropped, and a slave so far behind that the tail
// is gone and a snapshot is sent.
func TestReplicationCatchUpTruncateSnapshot(t *testing.T) {
	a, aAddr := slave(t, t.TempDir())
	b, bAddr := slave(t, t.TempDir())
	master, err := store.Open(t.TempDir(), store.Options{RetainRecords: 50}, quiet())
	if err != nil {
		t.Fatal(err)
	}
	defer master.Close()

	rep := lead(t, master, 1, map[string]string{"a": aAddr, "b": bAddr})
	for i := range 20 {
		put(master, t, fmt.Sprintf("k%02d", i), "e1")
	}
	waitFor(t, "both slaves at the master's end", func() bool { return a.st.End() == master.End() && b.st.End() == master.End() })
	if got, want := dump(t, a.st), dump(t, master); got != want {
		t.Fatalf("slave a holds %s, master %s", got, want)
	}

	// The master loses its slaves and writes on alone: nothing confirmed.
	rep.close("test")
	master.SetConfirmer(nil)
	for i := range 3 {
		put(master, t, fmt.Sprintf("k%02d", i), "unconfirmed")
	}

	// a becomes master of epoch 2 with b; the old master's suffix is not
	// in their logs.
	aStore := a.st
	rep2 := lead(t, aStore, 2, map[string]string{"b": bAddr})
	for i := range 5 {
		put(aStore, t, fmt.Sprintf("k%02d", 20+i), "e2")
	}
	// The old master rejoins as a slave of a: its suffix goes.
	old, oldAddr := slave(t, t.TempDir())
	old.st.Close()
	old.st = master
	rep2.setPeer("old", oldAddr)
	waitFor(t, "the old master caught up", func() bool { return master.End() == aStore.End() })
	if got, want := dump(t, master), dump(t, aStore); got != want {
		t.Fatalf("after rejoining, the old master holds\n%s\nthe new one\n%s", got, want)
	}

	// A node that took records 1-20 from the master of epoch 1 and then
	// a 21st that a never got (its master died): it received them as a
	// slave, so it holds no undo image to drop the 21st with, and gets a
	// snapshot instead.
	stray, strayAddr := slave(t, t.TempDir())
	stray.st.SetEpoch(1)
	err = aStore.ReadFrom(0, func(index uint64, enc []byte) error {
		if index > 20 {
			return errStop
		}
		return stray.st.Apply(enc, false)
	})
	if err != nil && !errors.Is(err, errStop) {
		t.Fatal(err)
	}
	if err := stray.st.Apply(store.Record{Epoch: 1, Index: 21, Ops: []store.Op{{Key: []byte("stray"), Value: []byte("x")}}}.Encode(), false); err != nil {
		t.Fatal(err)
	}
	rep2.setPeer("stray", strayAddr)
	waitFor(t, "the stray slave caught up", func() bool { return stray.st.End() == aStore.End() })
	if got, want := dump(t, stray.st), dump(t, aStore); got != want {
		t.Fatalf("the stray slave holds\n%s\nthe master\n%s", got, want)
	}
	if stray.st.Base().Index == 0 {
		t.Fatal("the stray slave was not sent a snapshot")
	}

	// b drops out; 100 records later the tail it needs is trimmed away.
	b.follower.drop()
	b.st.SetEpoch(99) // refuse the master from now on, as a node that went away
	for i := range 100 {
		put(aStore, t, fmt.Sprintf("k%03d", i), "late")
	}
	fresh, freshAddr := slave(t, t.TempDir())
	rep2.setPeer("fresh", freshAddr)
	waitFor(t, "a fresh slave restored from a snapshot", func() bool { return fresh.st.End() == aStore.End() })
	if got, want := dump(t, fresh.st), dump(t, aStore); got != want {
		t.Fatalf("fresh slave holds %s, master %s", got, want)
	}
	if fresh.st.Base().Index == 0 {
		t.Fatal("the fresh slave was fed records, not a snapshot")
	}
	rep2.close("test")
}

// TestRecentRecordsBoundedByBytes: the records kept encoded for slaves
// stay under recentBytes however large they are, newest kept.
func TestRecentRecordsBoundedByBytes(t *testing.T) {
	r := newReplicator(nil, "m", nil, 1, 2, time.Second, time.Second, quiet())
	big := make([]byte, 1<<20)
	for i := uint64(1); i <= 100; i++ {
		r.Written(i, store.Record{Epoch: 1, Index: i, Ops: []store.Op{{Key: []byte("k"), Value: big}}}.Encode())
	}
	total := 0
	for _, b := range r.recent {
		total += cap(b)
	}
	if total > recentBytes || total != r.recentLen || r.recent[100] == nil || r.recent[r.oldest] == nil {
		t.Fatalf("%d records, %d bytes (counted %d), oldest %d", len(r.recent), total, r.recentLen, r.oldest)
	}
}

// TestSendFromRecentOnly: a slave level with the newest recent record
// waits for the next one's Written; it is not fed from the log, which the
// committer may be writing that very record to.
func TestSendFromRecentOnly(t *testing.T) {
	r := newReplicator(nil, "m", nil, 1, 2, time.Second, time.Second, quiet()) // no store: any read of the log panics
	for i := uint64(1); i <= 3; i++ {
		r.Written(i, store.Record{Epoch: 1, Index: i}.Encode())
	}
	var out bytes.Buffer
	l := &link{bw: bufio.NewWriter(&out), br: bufio.NewReader(&out)}
	for _, after := range []uint64{0, 3} {
		last, err := r.sendFrom(l, after)
		if err != nil || last != 3 {
			t.Fatalf("from %d: sent up to %d, %v", after, last, err)
		}
	}
	l.flush()
	for i := uint64(1); i <= 3; i++ {
		typ, p, err := l.read()
		if err != nil || typ != msgRecord || !bytes.Equal(p, store.Record{Epoch: 1, Index: i}.Encode()) {
			t.Fatalf("message %d: type %d %x, %v", i, typ, p, err)
		}
	}
}

// TestConfirmOnlyUnderLease: a record a quorum holds is confirmed only
// while the master's lease holds, and says until when; once the lease
// ran out, it waits for a renewal (a ZooKeeper answer) or fails at its
// confirm timeout, counted from its submission.
func TestConfirmOnlyUnderLease(t *testing.T) {
	_, aAddr := slave(t, t.TempDir())
	master, err := store.Open(t.TempDir(), store.Options{}, quiet())
	if err != nil {
		t.Fatal(err)
	}
	defer master.Close()
	if err := master.SetEpoch(1); err != nil {
		t.Fatal(err)
	}
	const lease = 300 * time.Millisecond
	rep := newReplicator(master, "master", nil, 1, 2, 2*time.Second, lease, quiet())
	defer rep.close("test")
	rep.renew(time.Now())
	rep.setPeer("a", aAddr)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := rep.fence(ctx, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	master.SetConfirmer(rep)
	defer master.SetConfirmer(nil)

	c := master.Submit([]store.Op{{Key: []byte("k1"), Value: []byte("v")}})
	if err := c.Wait(ctx); err != nil || c.ValidUntil().IsZero() || time.Until(c.ValidUntil()) > lease {
		t.Fatalf("under the lease: %v, valid until %v", err, c.ValidUntil())
	}
	time.Sleep(lease)
	c = master.Submit([]store.Op{{Key: []byte("k2"), Value: []byte("v")}})
	select {
	case <-c.Done():
		t.Fatalf("confirmed after the lease ran out: %v", c.Wait(ctx))
	case <-time.After(200 * time.Millisecond):
	}
	renewed := time.Now()
	rep.renew(renewed)
	if err := c.Wait(ctx); err != nil || !c.ValidUntil().Equal(renewed.Add(lease)) {
		t.Fatalf("after a renewal: %v, valid until %v, want %v", err, c.ValidUntil(), renewed.Add(lease))
	}

	time.Sleep(lease)
	submitted := time.Now()
	c = master.Submit([]store.Op{{Key: []byte("k3"), Value: []byte("v")}})
	if err := c.Wait(ctx); !errors.Is(err, ErrNoQuorum) {
		t.Fatalf("without a renewal: %v", err)
	}
	if took := time.Since(submitted); took > 2500*time.Millisecond {
		t.Errorf("failed %v after its submission; the confirm timeout is 2s", took)
	}
	select {
	case <-rep.lostCh:
	default:
		t.Error("a record not confirmed in time did not make the master step down")
	}
}
