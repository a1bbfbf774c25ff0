package ensemble

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/go-zookeeper/zk"
)

// TestEnsembleSurvivesAMember starts three members, writes through the
// ensemble, kills one and reads on, then brings it back.
func TestEnsembleSurvivesAMember(t *testing.T) {
	start := time.Now()
	e, err := Start(context.Background(), t.TempDir(), 3)
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	t.Logf("3 members serving after %v", time.Since(start).Round(time.Millisecond))
	conn, _, err := zk.Connect(e.Addrs(), 4*time.Second, zk.WithLogInfo(false))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.Create("/x", []byte("1"), 0, zk.WorldACL(zk.PermAll)); err != nil {
		t.Fatal(err)
	}
	e.Kill(0)
	// A request in flight when its member dies fails; the client moves on
	// to another member and the next one succeeds.
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		_, err := conn.Set("/x", []byte("2"), -1)
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("write with one member down: %v", err)
		}
	}
	if err := e.Restart(0); err != nil {
		t.Fatal(err)
	}
	if err := e.WaitReady(context.Background()); err != nil {
		t.Fatal(err)
	}
	data, _, err := conn.Get("/x")
	if err != nil || string(data) != "2" {
		t.Fatalf("read %q, %v", data, err)
	}
}

// TestFreePortsNeverRepeat: ports picked before their servers bind them
// are not picked again (1000 picks among 12000 ports repeat one almost
// surely without that).
func TestFreePortsNeverRepeat(t *testing.T) {
	seen := map[int]bool{}
	for range 20 {
		ports, err := FreePorts(50)
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range ports {
			if seen[p] {
				t.Fatalf("port %d handed out twice", p)
			}
			seen[p] = true
		}
	}
}

// TestEnsembleOnHostsOfTheirOwn: members given addresses of their own
// (here three loopback addresses, as the chaos suite gives each a network
// namespace) serve ZooKeeper's default ports there, under the wrapper
// command, and a killed one comes back.
func TestEnsembleOnHostsOfTheirOwn(t *testing.T) {
	// 127.0.0.0/8 is all loopback on Linux: a block of this process's own
	// keeps concurrent runs apart.
	base := fmt.Sprintf("127.%d.%d.", 1+os.Getpid()>>8%250, os.Getpid()%256)
	hosts := []string{base + "1", base + "2", base + "3"}
	var wrapped []int
	e, err := StartWith(context.Background(), t.TempDir(), 3, Options{Hosts: hosts, Wrap: func(i int) []string {
		wrapped = append(wrapped, i)
		return []string{"env", fmt.Sprintf("ZK_MEMBER=%d", i+1)}
	}})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	want := base + "1:2181," + base + "2:2181," + base + "3:2181"
	if got := e.Connect(); got != want || len(wrapped) != 3 {
		t.Fatalf("Connect() = %q, want %q; wrapped %v", got, want, wrapped)
	}
	for i := range 3 {
		if mode, err := e.Mode(i); err != nil || (mode != "leader" && mode != "follower") {
			t.Fatalf("member %d: mode %q, %v", i+1, mode, err)
		}
	}
	conn, _, err := zk.Connect(e.Addrs(), 4*time.Second, zk.WithLogInfo(false))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.Create("/y", []byte("1"), 0, zk.WorldACL(zk.PermAll)); err != nil {
		t.Fatal(err)
	}
	e.Kill(1)
	if _, err := e.Mode(1); err == nil {
		t.Fatal("a killed member still answers")
	}
	if err := e.Restart(1); err != nil {
		t.Fatal(err)
	}
	if err := e.WaitReady(context.Background()); err != nil {
		t.Fatal(err)
	}
	if mode, err := e.Mode(1); err != nil || mode != "follower" && mode != "leader" {
		t.Fatalf("restarted member: mode %q, %v", mode, err)
	}
}
