package store

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"runtime"
	"strconv"
	"sync"
	"testing"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

func open(t testing.TB, dir string, opts Options) *Store {
	t.Helper()
	s, err := Open(dir, opts, quiet)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// openMaster opens a store as a cluster master's, with a Confirmer that
// confirms at once: its records carry the undo images a Truncate needs.
func openMaster(t testing.TB, dir string, opts Options) *Store {
	t.Helper()
	s := open(t, dir, opts)
	s.SetConfirmer(&tapConfirmer{enc: map[uint64][]byte{}})
	return s
}

func put(k, v string) Op { return Op{Key: []byte(k), Value: []byte(v)} }

func commit(t testing.TB, s *Store, ops ...Op) Position {
	t.Helper()
	c := s.Submit(ops)
	if err := c.Wait(context.Background()); err != nil {
		t.Fatal(err)
	}
	return c.Position()
}

func state(t testing.TB, s *Store) map[string]string {
	t.Helper()
	m := map[string]string{}
	if err := s.Scan(nil, func(k, v []byte) error { m[string(k)] = string(v); return nil }); err != nil {
		t.Fatal(err)
	}
	return m
}

func TestCommitAndReopen(t *testing.T) {
	dir := t.TempDir()
	s := open(t, dir, Options{})
	p1 := commit(t, s, put("a", "1"), put("b", "2"))
	p2 := commit(t, s, Op{Key: []byte("a"), Delete: true})
	if p1.Index != 1 || p2.Index != 2 {
		t.Fatalf("positions %v %v", p1, p2)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = open(t, dir, Options{})
	defer s.Close()
	if got := state(t, s); fmt.Sprint(got) != "map[b:2]" {
		t.Fatalf("state %v", got)
	}
	if s.End().Index != 2 {
		t.Fatalf("end %v", s.End())
	}
	if c := s.Submit(nil); c.Wait(context.Background()) != nil || c.Position().Index != 3 {
		t.Fatalf("barrier commit at %v", c.Position())
	}
}

// Submissions made in order under a lock land in that order, even when many
// share one group commit.
func TestSubmitOrderLastWins(t *testing.T) {
	dir := t.TempDir()
	s := open(t, dir, Options{})
	var mu sync.Mutex
	n := 0
	var wg sync.WaitGroup
	var commits []*Commit
	var cmu sync.Mutex
	for range 32 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 50 {
				mu.Lock()
				n++
				c := s.Submit([]Op{put("counter", strconv.Itoa(n))})
				mu.Unlock()
				cmu.Lock()
				commits = append(commits, c)
				cmu.Unlock()
			}
		}()
	}
	wg.Wait()
	for _, c := range commits {
		if err := c.Wait(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	if s.End().Index >= uint64(n) {
		t.Errorf("no group commit happened: %d records for %d submissions", s.End().Index, n)
	}
	s.Close()
	s = open(t, dir, Options{})
	defer s.Close()
	if got := state(t, s)["counter"]; got != strconv.Itoa(n) {
		t.Fatalf("counter %s, want %d", got, n)
	}
}
func TestScanAndGet(t *testing.T) {
	s := open(t, t.TempDir(), Options{})
	defer s.Close()
	commit(t, s, put("q/a/1", "x"), put("q/a/2", "y"), put("q/b/1", "z"), put("t/a", "w"))
	var keys []string
	if err := s.Scan([]byte("q/a/"), func(k, v []byte) error { keys = append(keys, string(k)+"="+string(v)); return nil }); err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(keys) != "[q/a/1=x q/a/2=y]" {
		t.Fatalf("scan of q/a/: %v", keys)
	}
	if len(state(t, s)) != 4 {
		t.Fatalf("full scan shows the store's own keys: %v", state(t, s))
	}
	if err := s.Submit([]Op{put("\x00meta/end", "x")}).Wait(context.Background()); err == nil {
		t.Fatal("wrote a reserved key")
	}
	stop := errors.New("stop")
	if err := s.Scan(nil, func(k, v []byte) error { return stop }); err != stop {
		t.Fatalf("scan did not return fn's error: %v", err)
	}
	if v, ok, err := s.Get([]byte("t/a")); err != nil || !ok || string(v) != "w" {
		t.Fatalf("get t/a: %q %v %v", v, ok, err)
	}
	if _, ok, err := s.Get([]byte("nope")); err != nil || ok {
		t.Fatalf("get of a missing key: %v %v", ok, err)
	}
}

func TestCloseEndsGoroutinesAndRefuses(t *testing.T) {
	before := runtime.NumGoroutine()
	s := open(t, t.TempDir(), Options{})
	s.SetConfirmer(&gateConfirmer{seen: make(chan uint64, 10), release: make(chan struct{})})
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Submit([]Op{put("a", "1")}).Wait(context.Background()); !errors.Is(err, ErrClosed) {
		t.Fatalf("submit after close: %v", err)
	}
	if err := s.Close(); !errors.Is(err, ErrClosed) {
		t.Fatalf("second close: %v", err)
	}
	waitFor(t, func() bool { return runtime.NumGoroutine() <= before })
}

func TestRecordEncoding(t *testing.T) {
	good := Record{Epoch: 7, Index: 1 << 40, Ops: []Op{put("k", "v"), {Key: []byte("d"), Delete: true}, put("e", "")}}
	enc := good.Encode()
	got, err := decodeRecord(enc)
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(got) != fmt.Sprint(good) {
		t.Fatalf("round trip: %v, want %v", got, good)
	}
	tests := []struct {
		name string
		b    []byte
	}{
		{"empty", nil},
		{"truncated", enc[:len(enc)-1]},
		{"trailing byte", append(bytes.Clone(enc), 0)},
		{"bad op flag", bytes.Replace(bytes.Clone(enc), []byte{0, 1, 'k'}, []byte{2, 1, 'k'}, 1)},
		{"huge count", []byte{1, 1, 0xff, 0xff, 0x03}},
	}
	for _, tc := range tests {
		if _, err := decodeRecord(tc.b); !errors.Is(err, errCorrupt) {
			t.Errorf("%s: %v", tc.name, err)
		}
	}
}

// Groups respect their bound and keep submission order across records.
func TestGroupBoundAndOrder(t *testing.T) {
	s := open(t, t.TempDir(), Options{MaxGroupOps: 3})
	defer s.Close()
	var commits []*Commit
	for i := range 50 {
		commits = append(commits, s.Submit([]Op{put(fmt.Sprintf("k%02d", i), "v")}))
	}
	for _, c := range commits {
		if err := c.Wait(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	var keys []string
	err := s.ReadFrom(0, func(_ uint64, enc []byte) error {
		r, err := decodeRecord(enc)
		if err != nil {
			return err
		}
		if len(r.Ops) > 3 {
			return fmt.Errorf("record %d holds %d ops", r.Index, len(r.Ops))
		}
		for _, op := range r.Ops {
			keys = append(keys, string(op.Key))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for i, k := range keys {
		if k != fmt.Sprintf("k%02d", i) {
			t.Fatalf("op %d of the log is %s", i, k)
		}
	}
	if len(keys) != 50 {
		t.Fatalf("%d ops in the log, want 50", len(keys))
	}
}
