package store

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/syndtr/goleveldb/leveldb/storage"
)

// faultyStorage fails every write and sync while full is set, as a full
// disk does; with torn, a failing write first writes half of its bytes.
type faultyStorage struct {
	storage.Storage
	full atomic.Bool
	torn bool
}

func (f *faultyStorage) Create(fd storage.FileDesc) (storage.Writer, error) {
	w, err := f.Storage.Create(fd)
	if err != nil {
		return nil, err
	}
	return faultyWriter{w, f}, nil
}

type faultyWriter struct {
	storage.Writer
	f *faultyStorage
}

func (w faultyWriter) Write(p []byte) (int, error) {
	if !w.f.full.Load() {
		return w.Writer.Write(p)
	}
	if w.f.torn {
		n, _ := w.Writer.Write(p[:len(p)/2])
		return n, syscall.ENOSPC
	}
	return 0, syscall.ENOSPC
}

func (w faultyWriter) Sync() error {
	if w.f.full.Load() {
		return syscall.ENOSPC
	}
	return w.Writer.Sync()
}

func TestDiskFullFailsAndStops(t *testing.T) {
	for _, torn := range []bool{false, true} {
		t.Run(fmt.Sprint("torn=", torn), func(t *testing.T) { testDiskFull(t, torn) })
	}
}

func testDiskFull(t *testing.T, torn bool) {
	dir := t.TempDir()
	stor, err := storage.OpenFile(dir, false)
	if err != nil {
		t.Fatal(err)
	}
	fs := &faultyStorage{Storage: stor, torn: torn}
	s, err := openStorage(fs, Options{}, quiet)
	if err != nil {
		t.Fatal(err)
	}
	commit(t, s, put("a", "1"))
	fs.full.Store(true)
	var group []*Commit
	for _, k := range []string{"b", "c", "d"} {
		group = append(group, s.Submit([]Op{put(k, "1")}))
	}
	for _, c := range group {
		if err := c.Wait(context.Background()); !errors.Is(err, ErrFailed) || !errors.Is(err, syscall.ENOSPC) {
			t.Fatalf("commit on a full disk: %v", err)
		}
	}
	fs.full.Store(false)
	// The disk has room again, but LevelDB may be inconsistent: everything
	// is refused until the store is reopened.
	refused := []struct {
		name string
		do   func() error
	}{
		{"submit", func() error { return s.Submit([]Op{put("e", "1")}).Wait(context.Background()) }},
		{"apply", func() error { return s.Apply(Record{Index: s.End().Index + 1}.Encode(), true) }},
		{"set epoch", func() error { return s.SetEpoch(9) }},
		{"truncate", func() error { return s.Truncate(0) }},
	}
	for _, tc := range refused {
		if err := tc.do(); !errors.Is(err, ErrFailed) {
			t.Errorf("%s after a failed write: %v", tc.name, err)
		}
	}
	s.Close() // may report the failure again; the reopen below is what counts

	s = open(t, dir, Options{})
	defer s.Close()
	// The failed write reached nothing: state and log end are those of the
	// last confirmed record.
	if got := fmt.Sprint(state(t, s)); got != "map[a:1]" || s.End().Index != 1 {
		t.Fatalf("after a disk error and reopen: %s at %v", got, s.End())
	}
	if p := commit(t, s, put("e", "1")); p.Index != s.End().Index {
		t.Fatalf("write after reopen at %v, end %v", p, s.End())
	}
}

// syncCounter counts the syncs of every file the store writes, and runs
// onWrite, when set, as a write begins.
type syncCounter struct {
	storage.Storage
	syncs   atomic.Int64
	onWrite atomic.Pointer[func()]
}

func (s *syncCounter) Create(fd storage.FileDesc) (storage.Writer, error) {
	w, err := s.Storage.Create(fd)
	if err != nil {
		return nil, err
	}
	return countingWriter{w, s}, nil
}

type countingWriter struct {
	storage.Writer
	s *syncCounter
}

func (w countingWriter) Write(p []byte) (int, error) {
	if f := w.s.onWrite.Load(); f != nil {
		(*f)()
	}
	return w.Writer.Write(p)
}

func (w countingWriter) Sync() error {
	w.s.syncs.Add(1)
	return w.Writer.Sync()
}

// openCounted opens a store on a syncCounter, closed when t ends.
func openCounted(t *testing.T) (*Store, *syncCounter) {
	t.Helper()
	stor, err := storage.OpenFile(t.TempDir(), false)
	if err != nil {
		t.Fatal(err)
	}
	sc := &syncCounter{Storage: stor}
	s, err := openStorage(sc, Options{}, quiet)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s, sc
}

// TestLazyCommitsRideOnTheNextSync: acknowledgements nobody waits on
// cost no write or fsync of their own: each rides on the next commit that
// is not lazy, and those left alone are written together lazySync later.
func TestLazyCommitsRideOnTheNextSync(t *testing.T) {
	s, sc := openCounted(t)
	ctx := context.Background()
	before, end := sc.syncs.Load(), s.End().Index
	for i := range 100 {
		lazy := s.SubmitLazy([]Op{put(fmt.Sprint("ack", i), "v")})
		commit(t, s, put(fmt.Sprint("send", i), "v"))
		if err := lazy.Wait(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if syncs, records := sc.syncs.Load()-before, s.End().Index-end; syncs != 100 || records != 100 {
		t.Errorf("100 acknowledgements, each followed by a send: %d syncs, %d records; want 100 of each", syncs, records)
	}
	before, end = sc.syncs.Load(), s.End().Index
	var last *Commit
	start := time.Now()
	for i := range 200 {
		last = s.SubmitLazy([]Op{put(fmt.Sprint("alone", i), "v")})
	}
	if err := last.Wait(ctx); err != nil {
		t.Fatal(err)
	}
	took := time.Since(start)
	if syncs := sc.syncs.Load() - before; syncs > 3 || took < lazySync {
		t.Errorf("200 acknowledgements alone: %d syncs in %d records after %v; want them held for %v, then one or two",
			syncs, s.End().Index-end, took, lazySync)
	}
}

// TestStandaloneRecordsCarryNoUndo: without a Confirmer the store reads
// back nothing for undo images, so a Truncate over its records drops the
// log and keeps the state, as over a slave's.
func TestStandaloneRecordsCarryNoUndo(t *testing.T) {
	s := open(t, t.TempDir(), Options{})
	defer s.Close()
	commit(t, s, put("a", "1"))
	commit(t, s, put("a", "2"))
	if err := s.Truncate(1); !errors.Is(err, ErrNoUndo) {
		t.Fatalf("truncating a standalone store's records: %v", err)
	}
	if v, _, _ := s.Get([]byte("a")); string(v) != "2" || s.Base() != s.End() {
		t.Fatalf("after the truncate: a=%q, base %v, end %v", v, s.Base(), s.End())
	}
}
