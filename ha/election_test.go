package ha

import (
	"context"
	"fmt"
	"net"
	"reflect"
	"runtime"
	"sync"
	"testing"
	"time"
	"unsafe"

	"github.com/go-zookeeper/zk"

	"github.com/hamq/hamq/core/store"
	"github.com/hamq/hamq/ha/ensemble"
)

// noServices is a master that serves nothing: these tests look at the
// election, not at clients.
type noServices struct{}

func (noServices) Start(*store.Store) (func(string), error) { return func(string) {}, nil }

// watchCount is how many watch channels the ZooKeeper client holds: the
// library keeps each one until its watch fires, so a loop that arms a
// watch on every pass makes this grow for as long as nothing changes.
// The library has no accessor; the test reads its map under its lock.
func watchCount(c *zk.Conn) int {
	v := reflect.ValueOf(c).Elem()
	mu := (*sync.Mutex)(unsafe.Pointer(v.FieldByName("watchersLock").UnsafeAddr()))
	mu.Lock()
	defer mu.Unlock()
	m, n := v.FieldByName("watchers"), 0
	for _, k := range m.MapKeys() {
		n += m.MapIndex(k).Len()
	}
	return n
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ports, err := ensemble.FreePorts(1)
	if err != nil {
		t.Fatal(err)
	}
	return net.JoinHostPort("127.0.0.1", fmt.Sprint(ports[0]))
}

// TestElectionKeepsOneWatchPerPath runs three nodes on a real ensemble
// until one is master, then for six more seconds of nothing happening:
// no node's ZooKeeper client may hold more watches at the end than after
// the election, and the process no more goroutines. The election loop
// used to arm a watch on the master znode every second (and, on a node
// waiting for a quorum, leak a goroutine merging two watches).
func TestElectionKeepsOneWatchPerPath(t *testing.T) {
	zkEns, err := ensemble.Start(context.Background(), t.TempDir(), 1)
	if err != nil {
		t.Fatal(err)
	}
	defer zkEns.Close()
	ctx, cancel := context.WithCancel(context.Background())
	var nodes []*Node
	var wg sync.WaitGroup
	defer func() {
		cancel()
		wg.Wait()
	}()
	// Two registered for a cluster of five: no quorum, no master, the
	// path on which goroutines leaked; then a third makes a quorum.
	start := func() {
		n, err := NewNode(Config{BrokerName: "w", Replicas: 5, Bind: freeAddr(t), ZKAddress: zkEns.Connect(), ZKPath: "/hamq",
			ZKSessionTimeout: 2 * time.Second, Sync: SyncQuorumMem, ConfirmTimeout: 5 * time.Second}, t.TempDir(), store.Options{}, noServices{}, quiet())
		if err != nil {
			t.Fatal(err)
		}
		nodes = append(nodes, n)
		wg.Add(1)
		go func() {
			defer wg.Done()
			n.Run(ctx)
		}()
	}
	for range 2 {
		start()
	}
	waitFor(t, "two registered nodes", func() bool {
		for _, n := range nodes {
			if len(n.Status().Members) != 2 {
				return false
			}
		}
		return true
	})
	sample := func() (int, []int) {
		var w []int
		for _, n := range nodes {
			w = append(w, watchCount(n.zs.conn))
		}
		return runtime.NumGoroutine(), w
	}
	g0, w0 := sample()
	time.Sleep(6 * time.Second)
	g1, w1 := sample()
	t.Logf("waiting for a quorum: goroutines %d -> %d, watches per node %v -> %v", g0, g1, w0, w1)
	if g1 > g0+2 || !reflect.DeepEqual(w0, w1) {
		t.Errorf("while no master could be elected, goroutines went from %d to %d and watches from %v to %v", g0, g1, w0, w1)
	}

	start()
	waitFor(t, "a master", func() bool {
		for _, n := range nodes {
			if n.Status().Role == RoleMaster {
				return true
			}
		}
		return false
	})
	time.Sleep(2 * time.Second) // let the slaves' sessions and watches settle
	g0, w0 = sample()
	time.Sleep(6 * time.Second)
	g1, w1 = sample()
	t.Logf("with a master: goroutines %d -> %d, watches per node %v -> %v", g0, g1, w0, w1)
	if g1 > g0+2 || !reflect.DeepEqual(w0, w1) {
		t.Errorf("with a stable master, goroutines went from %d to %d and watches from %v to %v", g0, g1, w0, w1)
	}
	for i, w := range w1 {
		if w > 3 {
			t.Errorf("node %d holds %d watches; one on the master znode and one or two on the members are enough", i, w)
		}
	}
}
