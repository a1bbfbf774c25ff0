package chaos

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// hamqBin is the binary under test, built once by TestMain.
var hamqBin string

// lockName is the file the e2e and chaos packages hold while they run
// clusters: go test ./... runs packages in parallel, and two suites of
// real clusters on one small machine would each fail the other's timing.
const lockName = "hamq-e2e.lock"

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	// HAMQ_CHAOS_BIN runs a binary built elsewhere (another revision, say).
	if hamqBin = os.Getenv("HAMQ_CHAOS_BIN"); hamqBin == "" {
		dir, err := os.MkdirTemp("", "hamq-chaos-bin")
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		defer os.RemoveAll(dir)
		hamqBin = filepath.Join(dir, "hamq")
		build := exec.Command("go", "build", "-o", hamqBin, "../../cmd/hamq")
		build.Stdout, build.Stderr = os.Stderr, os.Stderr
		if err := build.Run(); err != nil {
			fmt.Fprintln(os.Stderr, "building hamq:", err)
			return 1
		}
	}
	// Built before the lock, while another package's clusters may run.
	unlock, err := lock(filepath.Join(os.TempDir(), lockName))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer unlock()
	return m.Run()
}

// lock takes the file lock, saying so when it has to wait.
func lock(path string) (func(), error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDONLY, 0o666)
	if err != nil {
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err == syscall.EWOULDBLOCK {
		fmt.Fprintf(os.Stderr, "chaos: waiting for %s (another package's cluster tests run)\n", path)
		start := time.Now()
		err = syscall.Flock(int(f.Fd()), syscall.LOCK_EX)
		fmt.Fprintf(os.Stderr, "chaos: waited %v for %s\n", time.Since(start).Round(time.Second), path)
	}
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	return func() { f.Close() }, nil
}
