package chaos

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/go-stomp/stomp/v3/frame"

	"github.com/hamq/hamq/ha/ensemble"
)

// cluster is a test's ZooKeeper ensemble and three hamq nodes, each in a
// namespace of the test's lab.
type cluster struct {
	t     *testing.T
	lab   *lab
	zk    *ensemble.Ensemble
	nodes []*node

	// recovery bounds the wait for one master and two caught-up slaves
	// after a fault is healed.
	recovery time.Duration

	zkMu   sync.Mutex
	zkDown map[int]bool
}

const defaultRecovery = 20 * time.Second

func newCluster(t *testing.T) *cluster {
	t.Helper()
	return newClusterSized(t, dataSize)
}

// newClusterSized gives each node a tmpfs of size bytes.
func newClusterSized(t *testing.T, size int64) *cluster {
	t.Helper()
	l := newLab(t)
	var zkIPs []string
	for _, h := range l.zks {
		zkIPs = append(zkIPs, h.ip)
	}
	zk, err := ensemble.StartWith(context.Background(), filepath.Join(l.dir, "zk"), 3, ensemble.Options{
		Hosts: zkIPs,
		Wrap:  func(i int) []string { return []string{"ip", "netns", "exec", l.zks[i].ns} },
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(zk.Close)
	secret := make([]byte, 16)
	rand.Read(secret)
	c := &cluster{t: t, lab: l, zk: zk, recovery: defaultRecovery, zkDown: map[int]bool{}}
	for i, h := range l.nodes {
		dir := filepath.Join(l.dir, fmt.Sprintf("n%d", i+1))
		n := &node{t: t, name: fmt.Sprintf("n%d", i+1), host: h, dir: dir, data: filepath.Join(dir, "data"),
			log: filepath.Join(dir, "hamq.log"), zk: zk.Connect(), secret: hex.EncodeToString(secret)}
		l.mountTmpfs(n.data, size)
		c.nodes = append(c.nodes, n)
	}
	t.Cleanup(func() {
		for _, n := range c.nodes {
			n.resume()
		}
		if t.Failed() {
			c.dumpHung()
		}
		for _, n := range c.nodes {
			n.kill()
		}
		if t.Failed() {
			for _, n := range c.nodes {
				t.Logf("%s (%s) log ends:\n%s", n.name, n.host.ip, n.tail(40))
			}
		}
	})
	for _, n := range c.nodes {
		n.start()
	}
	return c
}

// dumpHung makes every running node whose admin API does not answer
// write its goroutines to its log (SIGQUIT): a node that hangs is a bug
// to see into.
func (c *cluster) dumpHung() {
	for _, n := range c.nodes {
		if !n.running() {
			continue
		}
		if _, err := n.status(); err == nil {
			continue
		}
		if time.Sleep(time.Second); !n.running() {
			continue
		}
		if _, err := n.status(); err == nil {
			continue
		}
		c.t.Logf("%s does not answer on its admin API: its goroutines are in %s", n.name, n.log)
		n.mu.Lock()
		if n.cmd != nil {
			n.cmd.Process.Signal(syscall.SIGQUIT)
		}
		n.mu.Unlock()
		select {
		case <-n.done:
		case <-time.After(3 * time.Second):
		}
	}
}

func (c *cluster) others(n *node) []*node {
	var out []*node
	for _, o := range c.nodes {
		if o != n {
			out = append(out, o)
		}
	}
	return out
}

// stompServes says whether addr answers a STOMP CONNECT with CONNECTED.
func stompServes(addr string) bool {
	conn, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return false
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(2 * time.Second))
	if _, err := conn.Write([]byte("CONNECT\naccept-version:1.2\nhost:chaos\n\n\x00")); err != nil {
		return false
	}
	buf := make([]byte, len("CONNECTED"))
	_, err = io.ReadFull(conn, buf)
	return err == nil && string(buf) == "CONNECTED"
}

// master is the one running node among nodes that says it is master and
// serves STOMP, or nil.
func masterAmong(nodes []*node) *node {
	var masters []*node
	for _, n := range nodes {
		if !n.running() {
			continue
		}
		if st, err := n.status(); err == nil && st.Role == roleMaster {
			masters = append(masters, n)
		}
	}
	if len(masters) == 1 && stompServes(masters[0].stomp()) {
		return masters[0]
	}
	return nil
}

// waitMaster waits until exactly one of nodes (all when none are given)
// is master and serves STOMP.
func (c *cluster) waitMaster(timeout time.Duration, among ...*node) (*node, error) {
	if among == nil {
		among = c.nodes
	}
	for deadline := time.Now().Add(timeout); ; time.Sleep(50 * time.Millisecond) {
		if m := masterAmong(among); m != nil {
			return m, nil
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("no single master serving within %v: %s", timeout, c.describe())
		}
	}
}

// stable says whether the cluster has one master serving and two slaves
// that follow it and have its log (as it was just before they were asked).
func (c *cluster) stable() (*node, bool) {
	m := masterAmong(c.nodes)
	if m == nil {
		return nil, false
	}
	ms, err := m.status()
	if err != nil || ms.Role != roleMaster {
		return nil, false
	}
	for _, o := range c.others(m) {
		st, err := o.status()
		if err != nil || st.Role != roleSlave || st.Master != ms.ID || st.End.less(ms.End) {
			return nil, false
		}
	}
	return m, true
}

// waitStable waits for one master that confirms a persistent send and
// two caught-up slaves.
func (c *cluster) waitStable(timeout time.Duration) (*node, error) {
	var probeErr error
	for deadline := time.Now().Add(timeout); ; time.Sleep(100 * time.Millisecond) {
		if m, ok := c.stable(); ok {
			if probeErr = probe(m); probeErr == nil {
				return m, nil
			}
		}
		if time.Now().After(deadline) {
			if probeErr != nil {
				return nil, fmt.Errorf("no master confirming sends within %v (last probe: %v): %s", timeout, probeErr, c.describe())
			}
			return nil, fmt.Errorf("no master with two caught-up slaves within %v: %s", timeout, c.describe())
		}
	}
}

// probe sends one persistent message to m and waits for its receipt: a
// master whose store fails says it is master all the same.
func probe(m *node) error {
	c, err := dialSTOMP(m.stomp())
	if err != nil {
		return err
	}
	defer c.close()
	f := frame.New(frame.SEND, frame.Destination, "/queue/chaos.probe", "persistent", "true", frame.Receipt, "probe")
	f.Body = []byte("probe")
	if err := c.write(f); err != nil {
		return err
	}
	for deadline := time.Now().Add(5 * time.Second); ; {
		f, err := c.read(deadline)
		switch {
		case err != nil:
			return err
		case f.Command == frame.RECEIPT:
			return nil
		case f.Command == frame.ERROR:
			return errors.New(f.Header.Get(frame.Message))
		}
	}
}

// describe is every node's status, for a failure message.
func (c *cluster) describe() string {
	var parts []string
	for _, n := range c.nodes {
		switch st, err := n.status(); {
		case !n.running():
			parts = append(parts, n.name+": not running")
		case err != nil:
			parts = append(parts, fmt.Sprintf("%s: %v", n.name, err))
		default:
			parts = append(parts, fmt.Sprintf("%s: %s epoch %d end %d/%d master %s", n.name, st.Role, st.Epoch, st.End.Epoch, st.End.Index, st.Master))
		}
	}
	return strings.Join(parts, "; ")
}

// killZK and restartZK end and bring back ZooKeeper member i.
func (c *cluster) killZK(i int) {
	c.zkMu.Lock()
	defer c.zkMu.Unlock()
	c.zk.Kill(i)
	c.zkDown[i] = true
}

func (c *cluster) restartZK(i int) error {
	c.zkMu.Lock()
	defer c.zkMu.Unlock()
	if !c.zkDown[i] {
		return nil
	}
	if err := c.zk.Restart(i); err != nil {
		return err
	}
	delete(c.zkDown, i)
	return c.zk.WaitReady(context.Background())
}

// healAll undoes every fault: processes resumed, packets let through, disks
// emptied, ZooKeeper members and nodes that are down started again. It
// returns what it had to do beyond the expected.
func (c *cluster) healAll() []string {
	var notes []string
	for _, n := range c.nodes {
		n.resume()
		if err := n.unfill(); err != nil {
			notes = append(notes, fmt.Sprintf("%s: %v", n.name, err))
		}
	}
	c.lab.healAll()
	for i := range 3 {
		if err := c.restartZK(i); err != nil {
			notes = append(notes, fmt.Sprintf("ZooKeeper member %d: %v", i+1, err))
		}
	}
	for _, n := range c.nodes {
		if !n.running() {
			notes = append(notes, n.name+" was not running: started again")
			if err := n.startErr(); err != nil {
				notes = append(notes, err.Error())
			}
		}
	}
	return notes
}

// restore brings a cluster that did not recover by itself back: every
// fault healed, then, if that is not enough, every node restarted. It
// says what it did.
func (c *cluster) restore() ([]string, error) {
	notes := c.healAll()
	if len(notes) > 0 {
		if _, err := c.waitStable(c.recovery); err == nil {
			return append(notes, "recovered once every fault was healed again"), nil
		}
	}
	for _, n := range c.nodes {
		n.kill()
	}
	for _, n := range c.nodes {
		if err := n.startErr(); err != nil {
			notes = append(notes, err.Error())
		}
	}
	_, err := c.waitStable(c.recovery)
	if err == nil {
		notes = append(notes, "recovered once every node was restarted")
	}
	return append(notes, "restarted every node"), err
}

// promotions are every node's promotions so far.
func (c *cluster) promotions() []Promotion {
	var out []Promotion
	for _, n := range c.nodes {
		out = append(out, n.promotions()...)
	}
	return out
}

// exits counts the nodes' exits the test did not cause.
func (c *cluster) exits() int {
	total := 0
	for _, n := range c.nodes {
		n.mu.Lock()
		total += n.exits
		n.mu.Unlock()
	}
	return total
}
