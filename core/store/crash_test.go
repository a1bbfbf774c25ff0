package store

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

const crashChildEnv = "HAMQ_STORE_CRASH_CHILD"

// TestCrashKeepsConfirmed runs a child process that writes from many
// goroutines and prints each commit as its Wait returns, kills it with
// SIGKILL mid-stream, and checks after reopening that every confirmed key
// is there and the log end covers every confirmed position.
func TestCrashKeepsConfirmed(t *testing.T) {
	if dir := os.Getenv(crashChildEnv); dir != "" {
		crashChild(dir)
		return
	}
	dir := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^TestCrashKeepsConfirmed$")
	cmd.Env = append(os.Environ(), crashChildEnv+"="+dir)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	killed := false
	defer func() {
		if !killed {
			cmd.Process.Kill()
			cmd.Wait()
		}
	}()
	const want = 3000
	confirmed := map[string]uint64{}
	var last uint64
	lines := make(chan string)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			lines <- sc.Text()
		}
	}()
	deadline := time.After(30 * time.Second)
	for len(confirmed) < want {
		select {
		case line, ok := <-lines:
			if !ok {
				t.Fatalf("child ended after %d confirmed commits", len(confirmed))
			}
			f := strings.Fields(line)
			if len(f) != 3 || f[0] != "confirmed" {
				continue
			}
			idx, err := strconv.ParseUint(f[2], 10, 64)
			if err != nil {
				t.Fatalf("child said %q", line)
			}
			confirmed[f[1]] = idx
			last = max(last, idx)
		case <-deadline:
			t.Fatalf("child confirmed only %d commits in 30s", len(confirmed))
		}
	}
	// Killed while its writers are still going: some commits are in
	// flight, unconfirmed, at this instant.
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	killed = true
	cmd.Wait()
	for range lines { // confirmed before the kill, read late: count them too
	}

	// The journal the child was writing ends in the zeros it synced
	// ahead (zeroAheadWriter), which the reopen below must read past.
	if n := journalZeroTail(t, dir); n < zeroAhead/2 {
		t.Fatalf("the journal ends in %d zero bytes after kill -9, want at least %d", n, zeroAhead/2)
	}
	s := open(t, dir, Options{})
	defer s.Close()
	got := state(t, s)
	for k, idx := range confirmed {
		if got[k] != "v" {
			t.Fatalf("key %s confirmed at record %d lost after kill -9 (%d keys survived)", k, idx, len(got))
		}
	}
	if end := s.End().Index; end < last {
		t.Fatalf("log end %d after kill -9, but record %d was confirmed", end, last)
	}
	if p := commit(t, s, put("after", "1")); p.Index != s.End().Index {
		t.Fatalf("first record after restart at %v, end %v", p, s.End())
	}
	t.Logf("%d commits confirmed up to record %d; %d keys and end %d after kill -9", len(confirmed), last, len(got), s.End().Index)
}

func crashChild(dir string) {
	s, err := Open(dir, Options{}, quiet)
	if err != nil {
		fmt.Fprintln(os.Stderr, "crash child:", err)
		os.Exit(1)
	}
	out := make(chan string, 1024)
	for w := range 16 {
		go func() {
			for i := 0; ; i++ {
				k := fmt.Sprintf("k%02d-%07d", w, i)
				c := s.Submit([]Op{put(k, "v")})
				if err := c.Wait(context.Background()); err != nil {
					fmt.Fprintln(os.Stderr, "crash child:", err)
					os.Exit(1)
				}
				out <- fmt.Sprintf("confirmed %s %d", k, c.Position().Index)
			}
		}()
	}
	w := bufio.NewWriter(os.Stdout)
	for line := range out {
		fmt.Fprintln(w, line)
		if len(out) == 0 {
			w.Flush()
		}
	}
}

// journalZeroTail returns how many zero bytes end the newest LevelDB
// journal in dir.
func journalZeroTail(t *testing.T, dir string) int {
	logs, err := filepath.Glob(filepath.Join(dir, "*.log"))
	if err != nil || len(logs) == 0 {
		t.Fatalf("no journal in %s: %v", dir, err)
	}
	slices.Sort(logs) // same-width numbers: the last is the newest
	b, err := os.ReadFile(logs[len(logs)-1])
	if err != nil {
		t.Fatal(err)
	}
	return len(b) - len(bytes.TrimRight(b, "\x00"))
}
