package store

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
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

// TestCrashKeepsConfirmed runs a child that writes and reports each
// confirmed commit, kills it with SIGKILL mid-stream and checks that every
// confirmed key is there after reopening.
func TestCrashKeepsConfirmed(t *testing.T) {
	if dir := os.Getenv("STORE_CRASH_CHILD"); dir != "" {
		crashChild(dir)
		return
	}
	dir := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^TestCrashKeepsConfirmed$")
	cmd.Env = append(os.Environ(), "STORE_CRASH_CHILD="+dir)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	confirmed := map[string]bool{}
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		if k, ok := strings.CutPrefix(sc.Text(), "confirmed "); ok {
			confirmed[k] = true
		}
		if len(confirmed) == 2000 {
			break
		}
	}
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	cmd.Wait()
	if len(confirmed) < 2000 {
		t.Fatalf("child confirmed only %d", len(confirmed))
	}
	s := open(t, dir, Options{})
	defer s.Close()
	got := state(t, s)
	for k := range confirmed {
		if got[k] != "v" {
			t.Fatalf("confirmed key %s lost after kill -9 (%d keys survived)", k, len(got))
		}
	}
	t.Logf("%d confirmed, %d present after kill -9", len(confirmed), len(got))
}

func crashChild(dir string) {
	s, err := Open(dir, Options{}, quiet)
	if err != nil {
		fmt.Println("error", err)
		os.Exit(1)
	}
	out := make(chan string, 1024)
	for w := range 16 {
		go func() {
			for i := 0; ; i++ {
				k := fmt.Sprintf("k%02d-%06d", w, i)
				if s.Submit([]Op{put(k, "v")}).Wait(context.Background()) == nil {
					out <- k
				}
			}
		}()
	}
	for k := range out {
		fmt.Println("confirmed", k)
	}
}

func TestReplicateApplyTruncate(t *testing.T) {
	master := open(t, t.TempDir(), Options{})
	defer master.Close()
	slave := open(t, t.TempDir(), Options{})
	defer slave.Close()
	if err := master.SetEpoch(3); err != nil {
		t.Fatal(err)
	}
	commit(t, master, put("a", "1"), put("b", "1"))
	commit(t, master, put("a", "2"), Op{Key: []byte("b"), Delete: true})
	ship := func(after uint64) {
		err := master.ReadFrom(after, func(r Record) error {
			r2, err := DecodeRecord(r.Encode())
			if err != nil {
				return err
			}
			return slave.Apply(r2)
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	ship(0)
	if fmt.Sprint(state(t, slave)) != "map[a:2]" || slave.End() != (Position{3, 2}) {
		t.Fatalf("slave %v at %v", state(t, slave), slave.End())
	}
	before := fmt.Sprint(state(t, slave))
	commit(t, master, put("c", "1"), put("a", "3"))
	commit(t, master, Op{Key: []byte("a"), Delete: true})
	ship(2)
	if fmt.Sprint(state(t, slave)) != "map[c:1]" {
		t.Fatalf("slave %v", state(t, slave))
	}
	if err := slave.Truncate(2); err != nil {
		t.Fatal(err)
	}
	if got := fmt.Sprint(state(t, slave)); got != before || slave.End() != (Position{3, 2}) {
		t.Fatalf("after truncate %s at %v, want %s", got, slave.End(), before)
	}
	if err := slave.Apply(Record{Epoch: 2, Index: 3}); err == nil {
		t.Fatal("applied a record of an older epoch")
	}
	if err := slave.Apply(Record{Epoch: 3, Index: 9}); err == nil {
		t.Fatal("applied a record out of sequence")
	}
	if err := slave.SetEpoch(1); err == nil {
		t.Fatal("lowered the epoch")
	}
}

func TestSnapshotRestoreAndTrim(t *testing.T) {
	master := open(t, t.TempDir(), Options{Retain: 5})
	defer master.Close()
	for i := range 20 {
		commit(t, master, put(fmt.Sprint("k", i%7), fmt.Sprint(i)))
	}
	if err := master.ReadFrom(0, func(Record) error { return nil }); !errors.Is(err, ErrTrimmed) {
		t.Fatalf("read from a trimmed start: %v", err)
	}
	n := 0
	if err := master.ReadFrom(15, func(Record) error { n++; return nil }); err != nil || n != 5 {
		t.Fatalf("tail: %d records, %v", n, err)
	}
	snap, err := master.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	var kv [][2][]byte
	if err := snap.Each(func(k, v []byte) error {
		kv = append(kv, [2][]byte{append([]byte(nil), k...), append([]byte(nil), v...)})
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	pos := snap.Position
	snap.Release()
	dir := t.TempDir()
	slave := open(t, dir, Options{})
	commit(t, slave, put("stale", "x"))
	i := 0
	err = slave.Restore(pos, func() ([]byte, []byte, bool, error) {
		if i == len(kv) {
			return nil, nil, false, nil
		}
		i++
		return kv[i-1][0], kv[i-1][1], true, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(state(t, slave)) != fmt.Sprint(state(t, master)) || slave.End() != master.End() {
		t.Fatalf("restored %v at %v, master %v at %v", state(t, slave), slave.End(), state(t, master), master.End())
	}
	slave.Close()
	slave = open(t, dir, Options{})
	defer slave.Close()
	if p := commit(t, slave, put("next", "1")); p.Index != pos.Index+1 {
		t.Fatalf("next record at %v after restore at %v", p, pos)
	}
}

type slowConfirmer struct{ seen chan uint64 }

func (c slowConfirmer) Confirm(ctx context.Context, r Record) error {
	c.seen <- r.Index
	time.Sleep(10 * time.Millisecond)
	if r.Index == 3 {
		return errors.New("no quorum")
	}
	return nil
}

func TestConfirmerGatesCommits(t *testing.T) {
	s := open(t, t.TempDir(), Options{})
	defer s.Close()
	cf := slowConfirmer{seen: make(chan uint64, 10)}
	s.SetConfirmer(cf)
	commit(t, s, put("a", "1"))
	commit(t, s, put("b", "1"))
	if err := s.Submit([]Op{put("c", "1")}).Wait(context.Background()); err == nil || err.Error() != "no quorum" {
		t.Fatalf("commit the confirmer refused: %v", err)
	}
	s.SetConfirmer(nil)
	commit(t, s, put("d", "1"))
	if got := []uint64{<-cf.seen, <-cf.seen, <-cf.seen}; fmt.Sprint(got) != "[1 2 3]" {
		t.Fatalf("confirmed %v", got)
	}
}

func TestClosedRefuses(t *testing.T) {
	s := open(t, t.TempDir(), Options{})
	s.Close()
	if err := s.Submit([]Op{put("a", "1")}).Wait(context.Background()); !errors.Is(err, ErrClosed) {
		t.Fatalf("submit after close: %v", err)
	}
}

func BenchmarkGroupCommit(b *testing.B) {
	for _, writers := range []int{1, 8, 64} {
		b.Run(fmt.Sprint("writers=", writers), func(b *testing.B) {
			s := open(b, b.TempDir(), Options{})
			defer s.Close()
			value := make([]byte, 1024)
			var wg sync.WaitGroup
			per := b.N/writers + 1
			b.ResetTimer()
			start := time.Now()
			for w := range writers {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for i := range per {
						s.Submit([]Op{{Key: fmt.Appendf(nil, "k%d-%d", w, i), Value: value}}).Wait(context.Background())
					}
				}()
			}
			wg.Wait()
			b.ReportMetric(float64(per*writers)/time.Since(start).Seconds(), "commits/s")
		})
	}
}
