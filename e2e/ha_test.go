package e2e

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/go-stomp/stomp/v3"

	"github.com/hamq/hamq/ha"
)

// These tests hold the cluster to what its README promises under faults
// that a kill -9 does not show: slow and interrupted catch-ups, a quorum
// that stops answering, registrations that linger, records too large to
// replicate, and nodes that cannot reach each other or ZooKeeper. The
// network faults (partitions, a rogue peer) are in e2e/chaos.

// withConfig makes every node of c read a configuration file holding
// yaml, before its own flags.
func (c *cluster) withConfig(t *testing.T, yaml string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "hamq.yaml")
	if err := os.WriteFile(path, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, n := range c.nodes {
		n.extra = append(n.extra, "--config", path)
	}
}

// startClusterWith starts a cluster whose nodes read the configuration
// yaml, and returns it with its master.
func startClusterWith(t *testing.T, yaml string) (*cluster, *node) {
	t.Helper()
	c := newCluster(t)
	c.withConfig(t, yaml)
	for _, n := range c.nodes {
		n.start()
	}
	master, err := c.waitMaster(30 * time.Second)
	if err != nil {
		t.Fatal(err)
	}
	return c, master
}

func (n *node) signal(t *testing.T, sig syscall.Signal) {
	t.Helper()
	if err := n.cmd.Process.Signal(sig); err != nil {
		t.Fatal(err)
	}
}

// sendMiB sends count persistent messages of size bytes to dest on n,
// each confirmed by a receipt.
func sendMiB(t *testing.T, n *node, dest string, count, size int) {
	t.Helper()
	conn, err := stomp.Dial("tcp", n.stomp)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Disconnect()
	body := bytes.Repeat([]byte("x"), size)
	for i := range count {
		if err := conn.Send(dest, "application/octet-stream", body, stomp.SendOpt.Receipt, stomp.SendOpt.Header("persistent", "true")); err != nil {
			t.Fatalf("send %d of %d: %v", i+1, count, err)
		}
	}
}

// TestClusterConfirmTimeoutRunsFromSubmission: with both slaves paused,
// six clients each send one persistent message 150 ms apart to a master
// whose confirmTimeout is 1 s. Each is answered (an ERROR, never a
// RECEIPT) within the timeout of its own submission: records waiting
// behind one another do not add their waits up (before, the k-th waited
// k seconds), and a master that cannot confirm steps down.
func TestClusterConfirmTimeoutRunsFromSubmission(t *testing.T) {
	c, master := startClusterWith(t, "cluster:\n  confirmTimeout: 1s\n")
	for _, s := range c.others(master) {
		s.signal(t, syscall.SIGSTOP)
		t.Cleanup(func() { s.cmd.Process.Signal(syscall.SIGCONT) })
	}
	const clients = 6
	type answer struct {
		sent, at time.Time
		what     string
	}
	answers := make([]answer, clients)
	var wg sync.WaitGroup
	for i := range clients {
		conn, err := net.Dial("tcp", master.stomp)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		conn.Write([]byte("CONNECT\naccept-version:1.2\nhost:x\n\n\x00"))
		br := bufio.NewReader(conn)
		if l, err := br.ReadString(0); err != nil || !strings.HasPrefix(l, "CONNECTED") {
			t.Fatalf("client %d: CONNECT answered %q, %v", i, l, err)
		}
		time.Sleep(150 * time.Millisecond)
		answers[i].sent = time.Now()
		fmt.Fprintf(conn, "SEND\ndestination:/queue/timeout\npersistent:true\nreceipt:r%d\n\nm%d\x00", i, i)
		wg.Add(1)
		go func() {
			defer wg.Done()
			conn.SetReadDeadline(time.Now().Add(20 * time.Second))
			frame, err := br.ReadString(0)
			answers[i].at = time.Now()
			answers[i].what = strings.SplitN(frame, "\n", 2)[0]
			if err != nil && frame == "" {
				answers[i].what = "closed: " + err.Error()
			}
		}()
	}
	wg.Wait()
	for i, a := range answers {
		took := a.at.Sub(a.sent)
		t.Logf("client %d: %s after %v", i, a.what, took.Round(time.Millisecond))
		if a.what == "RECEIPT" {
			t.Errorf("client %d: a send was confirmed with both slaves paused", i)
		}
		if took > 1700*time.Millisecond {
			t.Errorf("client %d: answered %v after its send; confirmTimeout is 1s", i, took.Round(time.Millisecond))
		}
	}
}

// TestClusterSlowSnapshotCatchesUp: a slave away while 90 MiB are sent
// comes back behind the master's log and needs a snapshot; it is paused
// nine tenths of every second while it restores, so the snapshot takes
// many times the 5 s a read may wait. Deadlines measure progress, not the
// whole transfer: it catches up (before, it gave up after 5 s and never
// followed or led again).
func TestClusterSlowSnapshotCatchesUp(t *testing.T) {
	c := startCluster(t)
	master, err := c.waitMaster(30 * time.Second)
	if err != nil {
		t.Fatal(err)
	}
	slow := c.others(master)[0]
	slow.kill()
	sendMiB(t, master, "/queue/snapshot", 90, 1<<20)
	slow.start()
	done := make(chan struct{})
	stretched := make(chan time.Duration, 1)
	go func() {
		began := time.Now()
		defer func() { stretched <- time.Since(began) }()
		for {
			select {
			case <-done:
				return
			case <-time.After(100 * time.Millisecond):
			}
			slow.cmd.Process.Signal(syscall.SIGSTOP)
			time.Sleep(900 * time.Millisecond)
			slow.cmd.Process.Signal(syscall.SIGCONT)
			if strings.Contains(slow.log.String(), "snapshot of") {
				return
			}
		}
	}()
	deadline := time.Now().Add(3 * time.Minute)
	for !strings.Contains(slow.log.String(), "restored a snapshot") && time.Now().Before(deadline) {
		time.Sleep(200 * time.Millisecond)
	}
	close(done)
	took := <-stretched
	slow.cmd.Process.Signal(syscall.SIGCONT)
	if !strings.Contains(slow.log.String(), "restored a snapshot") {
		t.Fatal("the paused slave never restored its snapshot")
	}
	t.Logf("the slave restored its snapshot in %v, paused 90%% of the time", took.Round(time.Second))
	if took < 6*time.Second {
		t.Errorf("the snapshot took %v: not longer than a read deadline, so this test proves nothing", took)
	}
	if !strings.Contains(slow.log.String(), "attaching: downloaded") {
		t.Error("no progress was logged during the snapshot")
	}
	waitCaughtUp(t, slow, master)
}

// TestClusterInterruptedRestoreResumes: a slave restoring a snapshot
// reports its progress in /api/cluster, /metrics and hamq cluster status;
// the master dies midway, and the new master restores it from scratch;
// then the slave itself is killed midway and restarted, and is restored
// again. No data directory is wiped by hand, nothing confirmed is lost.
func TestClusterInterruptedRestoreResumes(t *testing.T) {
	c := startCluster(t)
	master, err := c.waitMaster(30 * time.Second)
	if err != nil {
		t.Fatal(err)
	}
	others := c.others(master)
	restoring, third := others[0], others[1]
	restoring.kill()
	sendMiB(t, master, "/queue/restore", 90, 1<<20)

	// midway waits until the restoring node reports a snapshot under
	// way, and pauses the node sending it so that it stays midway.
	midway := func(sender *node) {
		t.Helper()
		deadline := time.Now().Add(60 * time.Second)
		for {
			st, err := restoring.status()
			if err == nil && st.CatchUp != nil && st.CatchUp.Phase == "snapshot" && st.CatchUp.DoneBytes > 0 {
				sender.signal(t, syscall.SIGSTOP)
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("no snapshot under way on the restoring node: %+v, %v", st, err)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	restoring.start()
	midway(master)
	st, err := restoring.status()
	if err != nil || st.CatchUp == nil || st.CatchUp.TotalBytes == 0 {
		t.Fatalf("the restoring node's status shows no snapshot progress: %+v, %v", st, err)
	}
	resp, err := http.Get("http://" + restoring.http + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	metrics, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(metrics), `hamq_catchup_bytes{kind="done",phase="snapshot"}`) {
		t.Error("/metrics shows no snapshot progress on the restoring node")
	}
	if out, _ := hamq(t, "cluster", "status", "--http", "http://"+third.http); !strings.Contains(out, "snapshot") {
		t.Errorf("hamq cluster status shows no snapshot under way:\n%s", out)
	}

	// The master dies mid-snapshot: the third node leads with the
	// restoring one, which must let itself be fenced and restored again.
	master.kill()
	next, err := waitMasterAmong([]*node{restoring, third}, 30*time.Second)
	if err != nil {
		t.Fatalf("after the master died mid-snapshot: %v\n%s", err, restoring.log)
	}
	if next != third {
		t.Fatal("the node whose restore was interrupted became master")
	}
	waitCaughtUp(t, restoring, third)

	// The restoring node itself dies mid-snapshot, and restarts.
	master.start()
	waitCaughtUp(t, master, third)
	restoring.kill()
	sendMiB(t, third, "/queue/restore", 70, 1<<20) // the log moves past what it holds again
	restoring.start()
	midway(third)
	restoring.kill()
	third.signal(t, syscall.SIGCONT)
	restoring.start()
	waitCaughtUp(t, restoring, third)
	if strings.Count(restoring.log.String(), "restored a snapshot") < 2 {
		t.Errorf("the restoring node restored fewer than two snapshots:\n%s", restoring.log)
	}
	if got := countMessages(t, third, "/queue/restore"); got != 160 {
		t.Errorf("received %d of 160 confirmed messages", got)
	}
}

// countMessages consumes dest on n until nothing comes for 3 s.
func countMessages(t *testing.T, n *node, dest string) int {
	t.Helper()
	conn, err := stomp.Dial("tcp", n.stomp)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Disconnect()
	sub, err := conn.Subscribe(dest, stomp.AckAuto)
	if err != nil {
		t.Fatal(err)
	}
	got := 0
	for {
		select {
		case m := <-sub.C:
			if m.Err != nil {
				t.Fatal(m.Err)
			}
			got++
		case <-time.After(3 * time.Second):
			return got
		}
	}
}

// TestClusterRestartedNodeCountsOnce: a slave killed and started again
// at once has two registrations until its old session expires; the
// cluster counts it once.
func TestClusterRestartedNodeCountsOnce(t *testing.T) {
	c := startCluster(t)
	master, err := c.waitMaster(30 * time.Second)
	if err != nil {
		t.Fatal(err)
	}
	s := c.others(master)[0]
	s.kill()
	s.start()
	for end := time.Now().Add(zkSessionTimeout + time.Second); time.Now().Before(end); time.Sleep(100 * time.Millisecond) {
		st, err := master.status()
		if err != nil {
			t.Fatal(err)
		}
		if len(st.Members) > 3 {
			t.Fatalf("three nodes listed as %d members: %+v", len(st.Members), st.Members)
		}
	}
	out, _ := hamq(t, "cluster", "status", "--http", "http://"+master.http)
	if rows := strings.Count(out, "\n127.0.0.1:"); rows != 3 {
		t.Errorf("hamq cluster status lists %d nodes:\n%s", rows, out)
	}
}

// TestClusterRefusesRecordsTooLargeToReplicate: a transaction of 270 MiB
// would be one record larger than a replication message may be, and
// every slave would stall on it at each reconnect. It is refused, at the
// SEND that makes it too large, with an error that says so, and the
// cluster goes on replicating.
func TestClusterRefusesRecordsTooLargeToReplicate(t *testing.T) {
	c := startCluster(t)
	master, err := c.waitMaster(30 * time.Second)
	if err != nil {
		t.Fatal(err)
	}
	conn, err := net.Dial("tcp", master.stomp)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	w := bufio.NewWriterSize(conn, 1<<20)
	fmt.Fprint(w, "CONNECT\naccept-version:1.2\nhost:x\n\n\x00BEGIN\ntransaction:t\n\n\x00")
	body := bytes.Repeat([]byte("y"), 90<<20)
	for range 3 {
		fmt.Fprintf(w, "SEND\ndestination:/queue/big\npersistent:true\ntransaction:t\ncontent-length:%d\n\n", len(body))
		w.Write(body)
		w.WriteByte(0)
	}
	fmt.Fprint(w, "COMMIT\ntransaction:t\nreceipt:c\n\n\x00")
	start := time.Now()
	w.Flush() // the broker may close the connection before all is sent
	conn.SetReadDeadline(time.Now().Add(20 * time.Second))
	br := bufio.NewReader(conn)
	var answer string
	for !strings.HasPrefix(answer, "ERROR") && !strings.HasPrefix(answer, "RECEIPT") {
		if answer, err = br.ReadString(0); err != nil {
			t.Fatalf("sending 270 MiB in a transaction: %v after %v", err, time.Since(start))
		}
	}
	if !strings.HasPrefix(answer, "ERROR") || !strings.Contains(answer, "too large") {
		t.Fatalf("sending 270 MiB in a transaction: %q after %v; want an ERROR saying it is too large", answer, time.Since(start))
	}
	err = fmt.Errorf("%s", strings.SplitN(answer, "\n\n", 2)[0])
	t.Logf("the transaction was refused after %v: %v", time.Since(start).Round(time.Millisecond), err)
	sendMiB(t, master, "/queue/small", 3, 1024)
	for _, s := range c.others(master) {
		waitCaughtUp(t, s, master)
	}
}

// TestClusterUnresolvableHostnames: nodes that publish host names no
// resolver knows cannot fence each other; each candidate says which
// member did not answer and why, at WARN, instead of only a count.
func TestClusterUnresolvableHostnames(t *testing.T) {
	c := newCluster(t)
	for i, n := range c.nodes {
		// An empty label makes the name invalid: it fails to resolve at
		// once, without asking any DNS server.
		n.extra = append(n.extra, "--hostname", fmt.Sprintf("node%d..invalid", i+1))
		n.start()
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		named := 0
		for _, n := range c.nodes {
			for _, l := range strings.Split(n.log.String(), "\n") {
				if strings.Contains(l, "level=WARN") && strings.Contains(l, "..invalid") && strings.Contains(l, "no such host") {
					named++
					break
				}
			}
		}
		if named > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no node named an unreachable member and its dial error at WARN:\n%s", c.nodes[0].log)
		}
		time.Sleep(200 * time.Millisecond)
	}
	if st, err := c.nodes[0].status(); err == nil && st.Role == ha.RoleMaster {
		t.Errorf("a master was elected by nodes that cannot reach each other: %+v", st)
	}
}

// TestZooKeeperUnreachable: a node whose ZooKeeper cannot be reached
// says so within its session timeout and a second, and hamq cluster
// status fails rather than print an empty table.
func TestZooKeeperUnreachable(t *testing.T) {
	n := newNode(t)
	n.cluster = true
	n.extra = []string{"--zk", freePort(t), "--bind", freePort(t), "--zk-session-timeout", "2s"}
	n.start()
	deadline := time.Now().Add(zkSessionTimeout + 2*time.Second)
	for !strings.Contains(n.log.String(), "no ZooKeeper session") {
		if time.Now().After(deadline) {
			t.Fatalf("nothing logged within %v about ZooKeeper being unreachable:\n%s", zkSessionTimeout+2*time.Second, n.log)
		}
		time.Sleep(100 * time.Millisecond)
	}
	out, code := hamq(t, "cluster", "status", "--http", "http://"+n.http)
	if code == 0 || !strings.Contains(out, "ZooKeeper session is disconnected") {
		t.Errorf("hamq cluster status without ZooKeeper: exit %d\n%s", code, out)
	}
}

// TestReplicasChecked: --replicas 0 is refused, an even count is taken
// with a warning that it tolerates no more failures than one node less.
func TestReplicasChecked(t *testing.T) {
	out, code := hamq(t, "start", "--data", t.TempDir(), "--zk", "127.0.0.1:1", "--replicas", "0")
	if code == 0 || !strings.Contains(out, "--replicas: 0") {
		t.Errorf("hamq start --replicas 0: exit %d\n%s", code, out)
	}
	n := newNode(t)
	n.cluster = true
	n.extra = []string{"--zk", freePort(t), "--bind", freePort(t), "--replicas", "2"}
	n.start()
	if !strings.Contains(n.log.String(), "replicas 2 is even") {
		t.Errorf("no warning for --replicas 2:\n%s", n.log)
	}
}
