package zkensemble

import (
	"context"
	"errors"
	"net"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/go-zookeeper/zk"
)

// TestSurvivesLeaderCrash writes through a 3-member ensemble, kills its
// leader with SIGKILL, writes on through the remaining majority, and
// brings the member back with the data it missed.
func TestSurvivesLeaderCrash(t *testing.T) {
	e := ForTest(t, 3)
	ctx := context.Background()
	conn, _, err := zk.Connect(e.Addrs(), 4*time.Second, zk.WithLogInfo(false))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.Create("/x", []byte("1"), 0, zk.WorldACL(zk.PermAll)); err != nil {
		t.Fatal(err)
	}
	if data, _, err := conn.Get("/x"); err != nil || string(data) != "1" {
		t.Fatalf("get /x = %q, %v", data, err)
	}

	leader := findLeader(t, e)
	began := time.Now()
	if err := e.Kill(leader); err != nil {
		t.Fatal(err)
	}
	t.Logf("killed leader (member %d) in %v", leader+1, time.Since(began).Round(time.Millisecond))
	if pid := e.PID(leader); pid != 0 {
		t.Fatalf("PID after Kill = %d, want 0", pid)
	}
	// A request in flight when the leader dies fails, and the survivors
	// refuse requests until they have elected a new leader.
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if _, err = conn.Set("/x", []byte("2"), -1); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("write with the leader down: %v", err)
		}
	}
	t.Logf("first write after the kill succeeded after %v", time.Since(began).Round(time.Millisecond))
	newLeader := findLeader(t, e)
	t.Logf("member %d leads after %v", newLeader+1, time.Since(began).Round(time.Millisecond))

	began = time.Now()
	if err := e.Restart(ctx, leader); err != nil {
		t.Fatal(err)
	}
	t.Logf("member %d serving again after %v", leader+1, time.Since(began).Round(time.Millisecond))
	// Ask the restarted member alone, so that the read shows it caught up.
	only, _, err := zk.Connect([]string{e.Addrs()[leader]}, 4*time.Second, zk.WithLogInfo(false))
	if err != nil {
		t.Fatal(err)
	}
	defer only.Close()
	if data, _, err := only.Get("/x"); err != nil || string(data) != "2" {
		t.Fatalf("restarted member: get /x = %q, %v", data, err)
	}

	// Stop is the polite counterpart: SIGTERM, as an operator would.
	follower := (newLeader + 1) % 3
	began = time.Now()
	if err := e.Stop(follower); err != nil {
		t.Fatal(err)
	}
	t.Logf("stopped a follower with SIGTERM in %v", time.Since(began).Round(time.Millisecond))

	var pids []int
	for i := range 3 {
		if pid := e.PID(i); pid != 0 {
			pids = append(pids, pid)
		}
	}
	began = time.Now()
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	t.Logf("closed in %v", time.Since(began).Round(time.Millisecond))
	for _, pid := range pids {
		if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
			t.Errorf("pid %d still there after Close: %v", pid, err)
		}
	}
}

// findLeader waits for a member to report itself leader: after a crash
// the survivors take a moment to elect one.
func findLeader(t *testing.T, e *Ensemble) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for {
		for i := range e.Addrs() {
			if mode, err := e.Mode(ctx, i); err == nil && mode == "leader" {
				return i
			}
		}
		select {
		case <-ctx.Done():
			t.Fatal("no leader")
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// TestPortTaken shows that a member that cannot bind its port fails
// Start at once with its log, instead of leaving the caller waiting.
func TestPortTaken(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	port := l.Addr().(*net.TCPAddr).Port
	began := time.Now()
	e, err := Start(context.Background(), Options{Dir: t.TempDir(), Members: 1, BasePort: port})
	if err == nil {
		e.Close()
		t.Fatal("Start succeeded on a taken port")
	}
	t.Logf("failed after %v", time.Since(began).Round(time.Millisecond))
	if !errors.Is(err, errPortTaken) || !strings.Contains(err.Error(), "BindException") {
		t.Fatalf("error does not say the port was taken, with the log:\n%v", err)
	}
}

// TestNotInstalled checks the message a machine without ZooKeeper gets:
// the one command to run.
func TestNotInstalled(t *testing.T) {
	const want = "install Debian's zookeeper package (`apt-get install zookeeper`)"
	for _, tc := range []struct {
		name string
		java *string
		jar  *string
	}{
		{"no java", &javaCommand, nil},
		{"no jar", nil, &zooKeeperJar},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, v := range []*string{tc.java, tc.jar} {
				if v != nil {
					old := *v
					*v = "/nonexistent/" + tc.name
					defer func() { *v = old }()
				}
			}
			_, err := Start(context.Background(), Options{Dir: t.TempDir()})
			if !errors.Is(err, ErrNotInstalled) || !strings.HasSuffix(err.Error(), want) {
				t.Fatalf("err = %v, want one ending %q", err, want)
			}
			t.Log(err)
		})
	}
}
