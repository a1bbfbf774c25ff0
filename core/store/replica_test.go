package store

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// ship copies from's records after index after to to, through their wire
// form.
func ship(t *testing.T, from, to *Store, after uint64) {
	t.Helper()
	err := from.ReadFrom(after, func(_ uint64, enc []byte) error {
		return to.Apply(enc, true)
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestApplyReadFromRoundTrip(t *testing.T) {
	master := open(t, t.TempDir(), Options{})
	defer master.Close()
	slaveDir := t.TempDir()
	slave := open(t, slaveDir, Options{})
	if err := master.SetEpoch(3); err != nil {
		t.Fatal(err)
	}
	commit(t, master, put("a", "1"), put("b", "1"))
	commit(t, master, put("a", "2"), Op{Key: []byte("b"), Delete: true})
	ship(t, master, slave, 0)
	commit(t, master, put("c", "1"))
	ship(t, master, slave, 2)
	if got, want := fmt.Sprint(state(t, slave)), fmt.Sprint(state(t, master)); got != want || slave.End() != master.End() {
		t.Fatalf("slave %s at %v, master %s at %v", got, slave.End(), want, master.End())
	}
	slave.Close()
	slave = open(t, slaveDir, Options{})
	defer slave.Close()
	if slave.End() != (Position{3, 3}) {
		t.Fatalf("slave end after reopen %v", slave.End())
	}

	refused := []struct {
		name string
		do   func() error
	}{
		{"epoch going back", func() error { return slave.Apply(Record{Epoch: 2, Index: 4}.Encode(), true) }},
		{"gap", func() error { return slave.Apply(Record{Epoch: 3, Index: 9}.Encode(), true) }},
		{"replay", func() error { return slave.Apply(Record{Epoch: 3, Index: 3}.Encode(), true) }},
		{"lower epoch", func() error { return slave.SetEpoch(2) }},
	}
	for _, tc := range refused {
		if err := tc.do(); err == nil {
			t.Errorf("%s: accepted", tc.name)
		}
	}
	if err := slave.SetEpoch(5); err != nil {
		t.Fatal(err)
	}
	// Catching up from the master of epoch 5 brings records of older
	// epochs.
	if err := slave.Apply(Record{Epoch: 4, Index: 4, Ops: []Op{put("d", "1")}}.Encode(), false); err != nil {
		t.Fatal(err)
	}
	if err := slave.Apply(Record{Epoch: 5, Index: 5}.Encode(), true); err != nil {
		t.Fatal(err)
	}
	if got, _, err := slave.Epochs(); err != nil || fmt.Sprint(got) != "[{0 0} {3 1} {4 4} {5 5}]" {
		t.Fatalf("epochs %v, %v", got, err)
	}
	// A record of a newer epoch fences the store durably. Applied
	// records have no undo images: truncating them drops the log and
	// keeps the state, for a snapshot to replace.
	if err := slave.Apply(Record{Epoch: 6, Index: 6}.Encode(), true); err != nil {
		t.Fatal(err)
	}
	before := fmt.Sprint(state(t, slave))
	if err := slave.Truncate(0); !errors.Is(err, ErrNoUndo) {
		t.Fatalf("truncating applied records: %v", err)
	}
	slave.Close()
	slave = open(t, slaveDir, Options{})
	defer slave.Close()
	if slave.Epoch() != 6 || slave.End() != (Position{6, 6}) || slave.Base() != slave.End() || fmt.Sprint(state(t, slave)) != before {
		t.Fatalf("after truncating applied records and reopening: epoch %d, base %v, end %v, state %v", slave.Epoch(), slave.Base(), slave.End(), state(t, slave))
	}
}

// TestTruncateRestoresState writes random records, keeping the state after
// each, then truncates back step by step and compares.
func TestTruncateRestoresState(t *testing.T) {
	dir := t.TempDir()
	s := openMaster(t, dir, Options{})
	rng := rand.New(rand.NewPCG(1, 2))
	states := []string{fmt.Sprint(state(t, s))}
	for i := range 40 {
		var ops []Op
		for range 1 + rng.IntN(6) { // keys repeat within and across records
			k := fmt.Sprint("k", rng.IntN(8))
			if rng.IntN(3) == 0 {
				ops = append(ops, Op{Key: []byte(k), Delete: true})
			} else {
				ops = append(ops, put(k, fmt.Sprint(i, "-", rng.IntN(100))))
			}
		}
		commit(t, s, ops...)
		states = append(states, fmt.Sprint(state(t, s)))
	}
	if err := s.SetEpoch(2); err != nil {
		t.Fatal(err)
	}
	commit(t, s, put("k1", "epoch2"))
	states = append(states, fmt.Sprint(state(t, s)))

	for _, to := range []uint64{39, 30, 30, 12, 1, 0} {
		if err := s.Truncate(to); err != nil {
			t.Fatal(err)
		}
		if got := fmt.Sprint(state(t, s)); got != states[to] {
			t.Fatalf("after truncate to %d: %s, want %s", to, got, states[to])
		}
		if s.End().Index != to || (to > 0 && s.End().Epoch != 0) {
			t.Fatalf("end %v after truncate to %d", s.End(), to)
		}
		if to == 12 { // the truncation is durable
			s.Close()
			s = open(t, dir, Options{})
			if got := fmt.Sprint(state(t, s)); got != states[to] || s.End().Index != to {
				t.Fatalf("after reopen: %s at %v", got, s.End())
			}
		}
	}
	defer s.Close()
	// The epoch stays fenced; new records carry it after the truncated end.
	if p := commit(t, s, put("x", "1")); p != (Position{2, 1}) {
		t.Fatalf("record after truncation at %v", p)
	}
}

// TestUndoAcrossTruncations: a master's undo images come from what it
// last wrote to each key while it is remembered (recentOps), and from
// the database once forgotten or after a Truncate changed the state
// behind it; truncating back any number of records after writing on top
// of an earlier truncation restores the state each time.
func TestUndoAcrossTruncations(t *testing.T) {
	s := openMaster(t, t.TempDir(), Options{})
	defer s.Close()
	rng := rand.New(rand.NewPCG(3, 4))
	states := map[uint64]string{0: fmt.Sprint(state(t, s))}
	big := strings.Repeat("v", 16<<10) // 250 records of these outgrow a generation of recentOps
	for round := range 40 {
		start, n := s.End().Index, 1+rng.IntN(6)
		if round%10 == 9 {
			n = 250
		}
		for i := range n {
			var ops []Op
			for range 1 + rng.IntN(4) {
				k := fmt.Sprint("k", rng.IntN(6))
				if rng.IntN(4) == 0 {
					ops = append(ops, Op{Key: []byte(k), Delete: true})
				} else {
					ops = append(ops, put(k, fmt.Sprint(round, "-", i, "-", big[:rng.IntN(len(big))])))
				}
			}
			p := commit(t, s, ops...)
			states[p.Index] = fmt.Sprint(state(t, s))
		}
		// Back into this round, often to its start: the first touch of
		// each key after the last truncation is undone then.
		to := start + rng.Uint64N(uint64(n)/2+1)
		if err := s.Truncate(to); err != nil {
			t.Fatal(err)
		}
		if got := fmt.Sprint(state(t, s)); got != states[to] {
			t.Fatalf("round %d: after truncating to %d the state differs from what it was there", round, to)
		}
	}
}

// TestUndoAfterApply: a record applied from another master changes keys
// behind what the store last wrote itself, so its next undo image is
// read from the database, not from recentOps.
func TestUndoAfterApply(t *testing.T) {
	s := openMaster(t, t.TempDir(), Options{})
	defer s.Close()
	commit(t, s, put("k", "mine"))
	applied := Record{Epoch: 1, Index: s.End().Index + 1, Ops: []Op{put("k", "applied")}}
	if err := s.Apply(applied.Encode(), false); err != nil {
		t.Fatal(err)
	}
	before := s.End().Index
	commit(t, s, Op{Key: []byte("k"), Delete: true})
	if err := s.Truncate(before); err != nil {
		t.Fatal(err)
	}
	if v, _, _ := s.Get([]byte("k")); string(v) != "applied" {
		t.Fatalf("k is %q after undoing its delete, want %q", v, "applied")
	}
}

// Trimming keeps the log within its bounds and its size accounted for,
// across a truncation and a reopen: the records written before the
// reopen are read back to find the new base, the later ones not.
func TestTrimming(t *testing.T) {
	tests := []struct {
		name string
		opts Options
		size int
		kept uint64 // at most this many records remain
	}{
		{"by records", Options{RetainRecords: 5}, 10, 5},
		{"by bytes", Options{RetainBytes: 4 << 10}, 1 << 10, 4},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			s := openMaster(t, dir, tc.opts)
			keys := 0
			write := func(n, size int) {
				for range n {
					commit(t, s, Op{Key: fmt.Append(nil, "k", keys), Value: make([]byte, size)})
					keys++
				}
				checkTrimmed(t, s, tc.kept, keys)
			}
			write(30, tc.size)
			if err := s.Truncate(s.End().Index - 2); err != nil {
				t.Fatal(err)
			}
			keys -= 2
			write(10, tc.size+7) // records of another size than those dropped
			s.Close()
			s = openMaster(t, dir, tc.opts)
			defer s.Close()
			write(30, tc.size)
		})
	}
}

// checkTrimmed checks the log kept after records holding keys k0 to
// k<keys-1>: at most most records, readable from the base on, exactly
// as many bytes as the store counts, and marks for its newest records.
func checkTrimmed(t *testing.T, s *Store, most uint64, keys int) {
	t.Helper()
	base, end := s.Base().Index, s.End().Index
	if kept := end - base; kept > most || kept == 0 {
		t.Fatalf("%d records kept (base %d)", kept, base)
	}
	if err := s.ReadFrom(base-1, func(uint64, []byte) error { return nil }); !errors.Is(err, ErrTrimmed) {
		t.Fatalf("read from a trimmed record: %v", err)
	}
	if err := s.Truncate(base - 1); !errors.Is(err, ErrTrimmed) {
		t.Fatalf("truncate into the trimmed log: %v", err)
	}
	var got []uint64
	if err := s.ReadFrom(base, func(index uint64, _ []byte) error { got = append(got, index); return nil }); err != nil {
		t.Fatal(err)
	}
	if len(got) == 0 || got[0] != base+1 || got[len(got)-1] != end {
		t.Fatalf("read %v from base %d", got, base)
	}
	var size uint64
	for i := base + 1; i <= end; i++ {
		v, err := s.db.Get(logKey(i), nil)
		if err != nil {
			t.Fatal(err)
		}
		size += uint64(len(v))
	}
	if counted := s.end.bytes - s.base.bytes; counted != size {
		t.Fatalf("the log holds %d bytes, the store counts %d", size, counted)
	}
	for i, m := range s.marks {
		if want := end - uint64(len(s.marks)-1-i); m.Index != want || m.Index <= base {
			t.Fatalf("marks %v for the log %d to %d", s.marks, base+1, end)
		}
	}
	if len(state(t, s)) != keys {
		t.Fatalf("%d keys in the state, want %d", len(state(t, s)), keys)
	}
}

func TestSnapshotRestore(t *testing.T) {
	master := open(t, t.TempDir(), Options{RetainRecords: 5})
	defer master.Close()
	if err := master.SetEpoch(7); err != nil {
		t.Fatal(err)
	}
	for i := range 20 {
		commit(t, master, put(fmt.Sprint("k", i%7), fmt.Sprint(i)))
	}
	snap, err := master.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	commit(t, master, put("after-snapshot", "1")) // not in the snapshot
	var kv [][2][]byte
	if err := snap.Each(func(k, v []byte) error {
		kv = append(kv, [2][]byte{append([]byte(nil), k...), append([]byte(nil), v...)})
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	pos := snap.Position
	snap.Release()
	if len(kv) != 7 || pos != (Position{7, 20}) {
		t.Fatalf("snapshot of %d keys at %v", len(kv), pos)
	}

	dir := t.TempDir()
	slave := open(t, dir, Options{})
	commit(t, slave, put("stale", "x"), put("k1", "stale"))
	stream := func(fail error) func() ([]byte, []byte, bool, error) {
		i := 0
		return func() ([]byte, []byte, bool, error) {
			switch {
			case i == 3 && fail != nil:
				return nil, nil, false, fail
			case i == len(kv):
				return nil, nil, false, nil
			}
			i++
			return kv[i-1][0], kv[i-1][1], true, nil
		}
	}
	// A restore broken off leaves a store that refuses writes, across a
	// restart, until a restore completes.
	if err := slave.Restore(pos, stream(errors.New("connection reset"))); err == nil {
		t.Fatal("a broken snapshot stream restored")
	}
	slave.Close()
	slave = open(t, dir, Options{})
	if err := slave.Submit([]Op{put("x", "1")}).Wait(context.Background()); !errors.Is(err, ErrRestoreInterrupted) {
		t.Fatalf("write to a half-restored store: %v", err)
	}
	if err := slave.Restore(pos, stream(nil)); err != nil {
		t.Fatal(err)
	}
	ship(t, master, slave, pos.Index)
	if got, want := fmt.Sprint(state(t, slave)), fmt.Sprint(state(t, master)); got != want || slave.End() != master.End() {
		t.Fatalf("restored %s at %v, master %s at %v", got, slave.End(), want, master.End())
	}
	slave.Close()
	slave = open(t, dir, Options{})
	defer slave.Close()
	if slave.Base() != pos || slave.End() != master.End() {
		t.Fatalf("after reopen base %v end %v", slave.Base(), slave.End())
	}
	if err := slave.Truncate(pos.Index); !errors.Is(err, ErrNoUndo) || slave.Base() != master.End() {
		t.Fatalf("truncating shipped records: %v, base %v", err, slave.Base())
	}
}

// gateConfirmer holds each Confirm until released, returning refuse for
// record refuseAt.
type gateConfirmer struct {
	seen     chan uint64
	release  chan struct{}
	refuseAt uint64
}

func (c *gateConfirmer) Confirm(ctx context.Context, r Record, _ time.Time) (time.Time, error) {
	c.seen <- r.Index
	select {
	case <-c.release:
	case <-ctx.Done():
		return time.Time{}, ctx.Err()
	}
	if r.Index == c.refuseAt {
		return time.Time{}, errors.New("no quorum")
	}
	return time.Time{}, nil
}

func TestConfirmerGatesCommits(t *testing.T) {
	s := open(t, t.TempDir(), Options{})
	cf := &gateConfirmer{seen: make(chan uint64, 10), release: make(chan struct{}), refuseAt: 2}
	s.SetConfirmer(cf)
	c1 := s.Submit([]Op{put("a", "1")})
	if <-cf.seen != 1 {
		t.Fatal("confirmer saw the wrong record")
	}
	// While record 1 awaits its confirmation, the committer goes on.
	c2 := s.Submit([]Op{put("b", "1")})
	waitFor(t, func() bool { return s.End().Index == 2 })
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if err := c1.Wait(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("commit confirmed before its Confirm returned: %v", err)
	}
	cf.release <- struct{}{}
	if err := c1.Wait(context.Background()); err != nil {
		t.Fatal(err)
	}
	if <-cf.seen != 2 {
		t.Fatal("confirmer saw the wrong record")
	}
	cf.release <- struct{}{}
	if err := c2.Wait(context.Background()); err == nil || err.Error() != "no quorum" {
		t.Fatalf("commit the confirmer refused: %v", err)
	}
	// Close gives up on a Confirm that never returns.
	c3 := s.Submit([]Op{put("c", "1")})
	<-cf.seen
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := c3.Wait(context.Background()); !errors.Is(err, context.Canceled) {
		t.Fatalf("commit unconfirmed at close: %v", err)
	}
}

func TestSetConfirmerNil(t *testing.T) {
	s := open(t, t.TempDir(), Options{})
	defer s.Close()
	cf := &gateConfirmer{seen: make(chan uint64, 10), release: make(chan struct{})}
	close(cf.release)
	s.SetConfirmer(cf)
	commit(t, s, put("a", "1"))
	s.SetConfirmer(nil)
	commit(t, s, put("b", "1"))
	if len(cf.seen) != 1 {
		t.Fatalf("confirmer saw %d records, want 1", len(cf.seen))
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 5s")
		}
		time.Sleep(time.Millisecond)
	}
}

// TestEpochsMatchTheirEnd: on a master that has just begun a new epoch,
// the boundaries and the end Epochs returns describe the same log. Read
// apart, the end could hold the new epoch's first record while the
// boundaries miss it, and a rejoining old master holding a different
// record at that index would look as if it held the same one.
func TestEpochsMatchTheirEnd(t *testing.T) {
	s := open(t, t.TempDir(), Options{})
	defer s.Close()
	if err := s.SetEpoch(1); err != nil {
		t.Fatal(err)
	}
	for i := range 2000 {
		s.Submit([]Op{put(fmt.Sprint("k", i), "v")})
	}
	commit(t, s, put("last", "of epoch 1"))
	go func() {
		s.SetEpoch(2)
		for i := range 50 {
			s.Submit([]Op{put(fmt.Sprint("n", i), "v")})
		}
	}()
	for {
		bounds, end, err := s.Epochs()
		if err != nil {
			t.Fatal(err)
		}
		if last := bounds[len(bounds)-1]; last.Epoch != end.Epoch || last.Index > end.Index {
			t.Fatalf("boundaries %v do not describe the end %v", bounds, end)
		}
		if end.Epoch == 2 {
			return
		}
	}
}

// tapConfirmer confirms at once and keeps what its Tap is shown.
type tapConfirmer struct {
	mu  sync.Mutex
	enc map[uint64][]byte
}

func (c *tapConfirmer) Confirm(context.Context, Record, time.Time) (time.Time, error) {
	return time.Time{}, nil
}

func (c *tapConfirmer) Written(index uint64, enc []byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.enc[index] = enc
}

// The Tap is shown each record in its Encode form, bytes it may keep:
// later writes (undo images included) never change them.
func TestTapSeesEncodedRecords(t *testing.T) {
	s := open(t, t.TempDir(), Options{})
	defer s.Close()
	tap := &tapConfirmer{enc: map[uint64][]byte{}}
	s.SetConfirmer(tap)
	for i := range 20 {
		key := fmt.Sprint("k", i%3)
		commit(t, s, put(key, fmt.Sprint(i)))
		commit(t, s, Op{Key: []byte(key), Delete: true}, put("other", fmt.Sprint(i)))
	}
	err := s.ReadFrom(0, func(index uint64, enc []byte) error {
		tap.mu.Lock()
		defer tap.mu.Unlock()
		if !bytes.Equal(tap.enc[index], enc) {
			return fmt.Errorf("record %d: the Tap kept %x, the log holds %x", index, tap.enc[index], enc)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(tap.enc) != 40 {
		t.Fatalf("the Tap saw %d records, want 40", len(tap.enc))
	}
}

// nowConfirmer is a gateConfirmer that also confirms without waiting
// (ConfirmedNow) while ready is set.
type nowConfirmer struct {
	gateConfirmer
	ready atomic.Bool
	until time.Time
}

func (c *nowConfirmer) Confirmed(Record) (time.Time, bool) { return c.until, c.ready.Load() }

// A record its Confirmer confirms at once is answered by the writer,
// without a Confirm; one that must wait goes to Confirm, and records
// after it wait their turn even when confirmed already.
func TestConfirmedNowAnswersInOrder(t *testing.T) {
	s := open(t, t.TempDir(), Options{})
	defer s.Close()
	cf := &nowConfirmer{gateConfirmer: gateConfirmer{seen: make(chan uint64, 10), release: make(chan struct{})}, until: time.Now().Add(time.Hour)}
	s.SetConfirmer(cf)
	cf.ready.Store(true)
	c1 := s.Submit([]Op{put("a", "1")})
	if err := c1.Wait(context.Background()); err != nil {
		t.Fatal(err)
	}
	if !c1.ValidUntil().Equal(cf.until) {
		t.Fatalf("answered without the confirmation's end: %v", c1.ValidUntil())
	}
	cf.ready.Store(false)
	c2 := s.Submit([]Op{put("b", "1")})
	if i := <-cf.seen; i != 2 {
		t.Fatalf("Confirm saw record %d, want 2 (record 1 needed none)", i)
	}
	cf.ready.Store(true)
	c3 := s.Submit([]Op{put("c", "1")})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if err := c3.Wait(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("record 3 answered while record 2 waited: %v", err)
	}
	cf.release <- struct{}{}
	if i := <-cf.seen; i != 3 {
		t.Fatalf("Confirm saw record %d, want 3", i)
	}
	cf.release <- struct{}{}
	for _, c := range []*Commit{c2, c3} {
		if err := c.Wait(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
}

// memoryConfirmer confirms at once, on other nodes' memory when memory
// is set (MemoryQuorum).
type memoryConfirmer struct{ memory bool }

func (c *memoryConfirmer) Confirm(context.Context, Record, time.Time) (time.Time, error) {
	return time.Time{}, nil
}
func (c *memoryConfirmer) MemoryQuorum() bool { return c.memory }

// Under a MemoryQuorum Confirmer (quorum_mem) records are written without
// an fsync; under any other, each is synced.
func TestMemoryQuorumWritesWithoutSync(t *testing.T) {
	s, sc := openCounted(t)
	for _, memory := range []bool{true, false} {
		s.SetConfirmer(&memoryConfirmer{memory: memory})
		before := sc.syncs.Load()
		for i := range 50 {
			commit(t, s, put(fmt.Sprint("k", i), "v"))
		}
		want := int64(50)
		if memory {
			want = 0
		}
		if syncs := sc.syncs.Load() - before; syncs != want {
			t.Errorf("memory quorum %v: 50 commits made %d syncs, want %d", memory, syncs, want)
		}
	}
}

// A record written without an fsync for a memory quorum that is unset
// while it is written (a master stepping down) fails: nothing made it
// durable.
func TestMemoryQuorumGoneFailsUnsyncedRecord(t *testing.T) {
	s, sc := openCounted(t)
	s.SetConfirmer(&memoryConfirmer{memory: true})
	commit(t, s, put("a", "1"))
	var once sync.Once
	unset := func() { once.Do(func() { s.SetConfirmer(nil) }) }
	sc.onWrite.Store(&unset)
	c := s.Submit([]Op{put("b", "1")})
	if err := c.Wait(context.Background()); !errors.Is(err, ErrUnconfirmed) {
		t.Fatalf("record written for a quorum gone meanwhile: %v, want ErrUnconfirmed", err)
	}
	sc.onWrite.Store(nil)
	// Alone, the store syncs and confirms again.
	before := sc.syncs.Load()
	commit(t, s, put("c", "1"))
	if sc.syncs.Load() == before {
		t.Fatal("a record written with no Confirmer was not synced")
	}
}
