package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

const pidFile = "hamq.pid"

// lockDataDir makes the data directory this process's: an exclusive lock
// (so two brokers never share a store) and a pid file for stop and status.
func lockDataDir(dir string) (func(), error) {
	f, err := os.OpenFile(filepath.Join(dir, "hamq.lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, fmt.Errorf("data directory: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		pid, _ := readPid(dir)
		return nil, fmt.Errorf("data directory %s is in use by another hamq (pid %d): use that broker, stop it (hamq stop --data %s), or give this one its own --data and ports", dir, pid, dir)
	}
	pidPath := filepath.Join(dir, pidFile)
	if err := os.WriteFile(pidPath, []byte(strconv.Itoa(os.Getpid())+"\n"), 0o644); err != nil {
		f.Close()
		return nil, fmt.Errorf("pid file: %w", err)
	}
	return func() {
		os.Remove(pidPath)
		f.Close()
	}, nil
}

func readPid(dir string) (int, error) {
	b, err := os.ReadFile(filepath.Join(dir, pidFile))
	if err != nil {
		return 0, err
	}
	return strconv.Atoi(strings.TrimSpace(string(b)))
}

// running finds the live broker of a data directory: the one holding its
// lock. The pid file alone could name a process long gone (kill -9) or a
// stranger that reused the pid.
func running(dir string) (int, bool) {
	f, err := os.Open(filepath.Join(dir, "hamq.lock"))
	if err != nil {
		return 0, false
	}
	defer f.Close()
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err == nil {
		syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
		return 0, false
	}
	pid, _ := readPid(dir)
	return pid, true
}

func cmdStatus(args []string) error {
	fs := flagSet("status", "[--data DIR]", "Tells whether the broker of a data directory runs: exit 0 when it does, 3 when not.")
	data := fs.String("data", "./data", "data directory")
	if err := fs.Parse(args); err != nil {
		return flagError(err)
	}
	if pid, ok := running(*data); ok {
		fmt.Printf("hamq is running (pid %d)\n", pid)
		return nil
	}
	fmt.Println("hamq is not running")
	return exitCode(3)
}

func cmdStop(args []string) error {
	fs := flagSet("stop", "[--data DIR] [--timeout D]", "Asks the broker of a data directory to stop (SIGTERM) and waits until it has.")
	data := fs.String("data", "./data", "data directory")
	timeout := fs.Duration("timeout", 30*time.Second, "how long to wait")
	if err := fs.Parse(args); err != nil {
		return flagError(err)
	}
	pid, ok := running(*data)
	if !ok {
		fmt.Println("hamq is not running")
		return nil
	}
	if err := syscall.Kill(pid, syscall.SIGTERM); err != nil {
		return fmt.Errorf("signal pid %d: %w", pid, err)
	}
	deadline := time.Now().Add(*timeout)
	for time.Now().Before(deadline) {
		if _, ok := running(*data); !ok {
			fmt.Printf("hamq stopped (pid %d)\n", pid)
			return nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("pid %d still running after %s", pid, *timeout)
}
