package chaos

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/go-stomp/stomp/v3/frame"
)

// The focused tests each inject one fault, deterministically, and assert
// what the cluster must do about it.

// confirmTimeout is the cluster's default cluster.confirmTimeout: the
// longest a send may wait for a quorum before it fails.
const confirmTimeout = 30 * time.Second

// failoverBound is how soon after a cut or a pause another node must be
// master and confirming.
const failoverBound = 4 * zkSessionTimeout

// firstConfirm is when the first confirmation from a node other than
// not came after t.
func (w *workload) firstConfirm(not *node, after time.Time) (time.Time, string, bool) {
	for _, e := range w.rec.snapshot() {
		if e.Kind == Confirm && e.Node != not.name && e.At.After(after) {
			return e.At, e.Node, true
		}
	}
	return time.Time{}, "", false
}

// checkHistory checks a focused test's history: it fails t on anything
// lost, invented, read dirty or confirmed late, and logs the table.
func checkHistory(t *testing.T, h History, faults ...Fault) Report {
	t.Helper()
	h.Faults = faults
	rep := Check(h, Limits{Grace: 5 * time.Second})
	t.Logf("\n%s", rep.Markdown())
	tot := rep.Total()
	if tot.Lost+tot.Invented+tot.Dirty+tot.Late > 0 {
		t.Errorf("lost %d, invented %d, dirty reads %d, late confirmations %d (problems above)", tot.Lost, tot.Invented, tot.Dirty, tot.Late)
	}
	if rep.Incomplete != "" {
		t.Errorf("the history is incomplete: %s", rep.Incomplete)
	}
	return rep
}

// pollUntil calls cond every 50 ms until it holds or deadline passes, and
// says when it held.
func pollUntil(deadline time.Time, cond func() bool) (time.Time, bool) {
	for {
		if cond() {
			return time.Now(), true
		}
		if time.Now().After(deadline) {
			return time.Time{}, false
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func since(t0, t time.Time) string { return t.Sub(t0).Round(time.Millisecond).String() }

// TestMasterCutFromSlaves: the master loses its two slaves but not
// ZooKeeper. It can confirm nothing, so it must give way: a slave leads
// and confirms within four session timeouts, the old master closes its
// client ports, every send it had not confirmed is answered (an error or
// a closed connection) within cluster.confirmTimeout, and after healing
// it rejoins as a caught-up slave; nothing confirmed is lost.
func TestMasterCutFromSlaves(t *testing.T) {
	c := newCluster(t)
	m, err := c.waitStable(c.recovery)
	if err != nil {
		t.Fatal(err)
	}
	w := startLoad(t, c, load{stompProducers: 1, pipelined: true, window: 50, pipelineRate: 200,
		stompDest: "/queue/chaos.cut", timeout: confirmTimeout + 5*time.Second, pace: 20 * time.Millisecond})
	time.Sleep(2 * time.Second)
	var slaves []*host
	for _, o := range c.others(m) {
		slaves = append(slaves, o.host)
	}
	cutAt := w.rec.now()
	must(t, c.lab.drop(m.host, slaves...))
	fault := Fault{Kind: "slave-cut", Target: m.name, Start: cutAt}
	deadline := cutAt.Add(failoverBound)
	var promoted, portsClosed, confirmed time.Time
	var next, confirmer string
	pollUntil(deadline, func() bool {
		if promoted.IsZero() {
			if n := masterAmong(c.others(m)); n != nil {
				promoted, next = time.Now(), n.name
			}
		}
		if portsClosed.IsZero() && !accepts(m.stomp()) {
			portsClosed = time.Now()
		}
		if confirmed.IsZero() {
			confirmed, confirmer, _ = w.firstConfirm(m, cutAt)
		}
		return !promoted.IsZero() && !portsClosed.IsZero() && !confirmed.IsZero()
	})
	switch {
	case promoted.IsZero():
		t.Errorf("no other node was master within %v of cutting master %s from its slaves: %s", failoverBound, m.name, c.describe())
	case confirmed.IsZero():
		t.Errorf("%s became master %s after the cut but confirmed nothing within %v", next, since(cutAt, promoted), failoverBound)
	default:
		t.Logf("%s master %s after the cut; first confirmation from %s %s after", next, since(cutAt, promoted), confirmer, since(cutAt, confirmed))
	}
	if portsClosed.IsZero() {
		t.Errorf("the old master %s still accepts STOMP connections %v after it was cut from its slaves", m.name, failoverBound)
	} else {
		t.Logf("the old master closed its STOMP port %s after the cut", since(cutAt, portsClosed))
	}
	time.Sleep(time.Until(cutAt.Add(15 * time.Second)))
	must(t, c.lab.drop(m.host))
	fault.End = w.rec.now()
	master, err := c.waitStable(c.recovery)
	fault.Recovered = w.rec.now()
	switch {
	case err != nil:
		t.Errorf("after healing: %v", err)
	case master == m:
		t.Errorf("after healing, the old master %s leads again: it never gave way", m.name)
	default:
		t.Logf("after healing, %s is a caught-up slave of %s", m.name, master.name)
	}
	h := w.finish()
	checkNoHang(t, h, m, cutAt)
	checkHistory(t, h, fault)
}

// checkNoHang fails t for every send to n after t0 that waited longer
// than cluster.confirmTimeout (and a second) for its answer.
func checkNoHang(t *testing.T, h History, n *node, t0 time.Time) {
	t.Helper()
	type key struct {
		id      string
		attempt int
	}
	sent := map[key]time.Time{}
	hung := 0
	for _, e := range h.Events {
		k := key{e.ID, e.Attempt}
		switch {
		case e.Node != n.name || e.At.Before(t0):
		case e.Kind == Send:
			sent[k] = e.At
		case e.Kind == Confirm || e.Kind == Fail || e.Kind == Unknown:
			if s, ok := sent[k]; ok && (e.Hung || e.At.Sub(s) > confirmTimeout+time.Second) {
				if hung++; hung <= 5 {
					t.Errorf("%s#%d sent to %s at %s was answered only after %v (%s %s)", e.ID, e.Attempt, n.name, stamp(s),
						e.At.Sub(s).Round(time.Millisecond), e.Kind, e.Err)
				}
			}
		}
	}
	if hung > 5 {
		t.Errorf("... %d sends in all waited longer than %v", hung, confirmTimeout)
	}
}

// frames reads c's frames into a channel, closed when the connection ends.
func frames(c *stompConn) <-chan *frame.Frame {
	ch := make(chan *frame.Frame, 16)
	go func() {
		defer close(ch)
		for {
			f, err := c.read(time.Time{})
			if err != nil {
				return
			}
			ch <- f
		}
	}()
	return ch
}

// next waits d for a frame of one of the commands (others skipped).
func nextFrame(ch <-chan *frame.Frame, d time.Duration, commands ...string) (*frame.Frame, bool) {
	timer := time.NewTimer(d)
	defer timer.Stop()
	for {
		select {
		case f, ok := <-ch:
			if !ok {
				return nil, false
			}
			for _, c := range commands {
				if f.Command == c {
					return f, true
				}
			}
		case <-timer.C:
			return nil, false
		}
	}
}

// noQuorumFor is how long TestNoDirtyReads keeps both slaves stopped. It
// stays below the master's quorum lease (a session timeout: a master no
// quorum has acknowledged for that long steps down), so that the send can
// still be confirmed once they run again; the code before read-committed
// delivery handed the message to the consumer within a millisecond.
const noQuorumFor = 1500 * time.Millisecond

// TestNoDirtyReads: with both slaves stopped nothing can be confirmed, so
// a consumer on the master must not get a persistent message before a
// quorum holds it (read-committed); once the slaves run again, the receipt
// comes and so does the message.
func TestNoDirtyReads(t *testing.T) {
	c := newCluster(t)
	m, err := c.waitStable(c.recovery)
	if err != nil {
		t.Fatal(err)
	}
	consumer, err := dialSTOMP(m.stomp())
	must(t, err)
	defer consumer.close()
	must(t, consumer.write(frame.New(frame.SUBSCRIBE, frame.Id, "1", frame.Destination, "/queue/chaos.dirty", frame.Ack, "auto", frame.Receipt, "sub")))
	deliveries := frames(consumer)
	if _, ok := nextFrame(deliveries, 5*time.Second, frame.RECEIPT); !ok {
		t.Fatal("SUBSCRIBE got no receipt")
	}
	producer, err := dialSTOMP(m.stomp())
	must(t, err)
	defer producer.close()
	answers := frames(producer)

	for _, s := range c.others(m) {
		s.pause()
	}
	body := Body("dirty-1", 1)
	sentAt := time.Now()
	must(t, producer.write(sendFrame("/queue/chaos.dirty", "dirty-1", 1, body)))
	// Neither a delivery nor an answer while no quorum can hold it.
	timer := time.After(noQuorumFor)
	var early []string
	for waiting := true; waiting; {
		select {
		case f, ok := <-deliveries:
			if ok && f.Command == frame.MESSAGE {
				early = append(early, "delivery")
				t.Errorf("the consumer got the message %v after it was sent, with both slaves stopped: a dirty read", time.Since(sentAt).Round(time.Millisecond))
			}
		case f, ok := <-answers:
			if ok && (f.Command == frame.RECEIPT || f.Command == frame.ERROR) {
				early = append(early, f.Command)
				t.Errorf("the send was answered %s %v after it was sent, with both slaves stopped (%s)", f.Command, time.Since(sentAt).Round(time.Millisecond), f.Header.Get(frame.Message))
			}
		case <-timer:
			waiting = false
		}
	}
	for _, s := range c.others(m) {
		s.resume()
	}
	resumedAt := time.Now()
	if !contains(early, frame.RECEIPT) {
		if f, ok := nextFrame(answers, 15*time.Second, frame.RECEIPT, frame.ERROR); !ok {
			t.Errorf("no receipt within 15s of the slaves running again")
		} else if f.Command == frame.ERROR {
			t.Errorf("the send failed after the slaves ran again: %s", f.Header.Get(frame.Message))
		} else {
			t.Logf("receipt %v after the slaves ran again", time.Since(resumedAt).Round(time.Millisecond))
		}
	}
	if !contains(early, "delivery") {
		if f, ok := nextFrame(deliveries, 15*time.Second, frame.MESSAGE); !ok {
			t.Errorf("the consumer got nothing within 15s of the slaves running again")
		} else if string(f.Body) != string(body) {
			t.Errorf("the consumer got %q", f.Body)
		} else {
			t.Logf("delivered %v after the slaves ran again", time.Since(resumedAt).Round(time.Millisecond))
		}
	}
}

func contains(s []string, v string) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

// TestPausedMasterConfirmsNothingAfterPromotion: twenty times, the master
// is stopped for 2.6 to 3.2 s, around the 2 s session timeout, while a
// pipelined producer keeps it busy. A receipt it sends after it wakes must
// not come after another node was promoted: its lease ended first.
func TestPausedMasterConfirmsNothingAfterPromotion(t *testing.T) {
	c := newCluster(t)
	if _, err := c.waitStable(c.recovery); err != nil {
		t.Fatal(err)
	}
	w := startLoad(t, c, load{pipelined: true, window: 50, pipelineRate: 2000, stompDest: "/queue/chaos.pause",
		timeout: 5 * time.Second})
	rng := rand.New(rand.NewPCG(3, 20))
	var faults []Fault
	for round := 1; round <= 20; round++ {
		m, err := c.waitStable(c.recovery)
		if err != nil {
			t.Errorf("round %d: %v", round, err)
			break
		}
		// The producer must be busy on this master.
		from := w.rec.now()
		if _, ok := pollUntil(time.Now().Add(10*time.Second), func() bool { return len(w.confirmsAfter(from)[m.name]) > 0 }); !ok {
			t.Errorf("round %d: the producer got nothing confirmed by %s within 10s", round, m.name)
		}
		d := 2600*time.Millisecond + time.Duration(rng.Int64N(int64(600*time.Millisecond)))
		f := Fault{Kind: "pause-long", Target: m.name, Start: w.rec.now()}
		m.pause()
		time.Sleep(d)
		m.resume()
		f.End = w.rec.now()
		faults = append(faults, f)
	}
	if _, err := c.waitStable(c.recovery); err != nil {
		t.Errorf("after the rounds: %v", err)
	}
	h := w.finish()
	checkHistory(t, h, faults...)
	rounds := map[int]int{}
	late := Late(h)
	for _, l := range late {
		for i, f := range faults {
			if !l.Event.At.Before(f.Start) && (i == len(faults)-1 || l.Event.At.Before(faults[i+1].Start)) {
				rounds[i+1]++
			}
		}
	}
	t.Logf("%d promotions in %d rounds; %d late confirmations, in rounds %v", len(h.Promotions), len(faults), len(late), rounds)
}

// TestMasterCutFromZooKeeper: the master's packets to and from every
// ZooKeeper member are dropped (no reset) for 20 s. It must stop serving
// within the session timeout and a second, without waiting for ZooKeeper
// to answer; another node must lead and confirm within four session
// timeouts; after healing, one master and two caught-up slaves, nothing
// confirmed lost.
func TestMasterCutFromZooKeeper(t *testing.T) {
	c := newCluster(t)
	m, err := c.waitStable(c.recovery)
	if err != nil {
		t.Fatal(err)
	}
	w := startLoad(t, c, load{stompProducers: 1, stompDest: "/queue/chaos.zkcut", timeout: 5 * time.Second, pace: 20 * time.Millisecond})
	time.Sleep(2 * time.Second)
	cutAt := w.rec.now()
	must(t, c.lab.drop(m.host, c.lab.zks...))
	fault := Fault{Kind: "zk-cut", Target: m.name, Start: cutAt}
	stepDown := zkSessionTimeout + time.Second
	var closed, demoted time.Time
	var role string
	pollUntil(cutAt.Add(stepDown), func() bool {
		if closed.IsZero() && !accepts(m.stomp()) {
			closed = time.Now()
		}
		if st, err := m.status(); err == nil {
			role = st.Role
			if demoted.IsZero() && st.Role != roleMaster {
				demoted = time.Now()
			}
		}
		return !closed.IsZero() && !demoted.IsZero()
	})
	if closed.IsZero() {
		t.Errorf("the master %s cut from ZooKeeper still accepts STOMP connections after %v", m.name, stepDown)
	}
	if demoted.IsZero() {
		t.Errorf("the master %s cut from ZooKeeper still reports role %q after %v", m.name, role, stepDown)
	}
	if !closed.IsZero() && !demoted.IsZero() {
		t.Logf("the old master closed its port %s and reported %s %s after the cut", since(cutAt, closed), role, since(cutAt, demoted))
	}
	var promoted time.Time
	var next string
	pollUntil(cutAt.Add(failoverBound), func() bool {
		if promoted.IsZero() {
			if n := masterAmong(c.others(m)); n != nil {
				promoted, next = time.Now(), n.name
			}
		}
		_, _, ok := w.firstConfirm(m, cutAt)
		return ok && !promoted.IsZero()
	})
	if at, by, ok := w.firstConfirm(m, cutAt); promoted.IsZero() || !ok || at.After(cutAt.Add(failoverBound)) {
		t.Errorf("no other node was master and confirming within %v of the cut: %s", failoverBound, c.describe())
	} else {
		t.Logf("%s master %s after the cut; first confirmation from %s %s after", next, since(cutAt, promoted), by, since(cutAt, at))
	}
	time.Sleep(time.Until(cutAt.Add(20 * time.Second)))
	must(t, c.lab.drop(m.host))
	fault.End = w.rec.now()
	if _, err := c.waitStable(c.recovery); err != nil {
		t.Errorf("after healing: %v", err)
	}
	fault.Recovered = w.rec.now()
	checkHistory(t, w.finish(), fault)
}

// TestDiskFullMaster: the master's disk fills up. It must step down within
// a few seconds and say it is unhealthy; another node leads and confirms;
// nobody gets a receipt for what was not stored; once there is room again
// the node rejoins as a caught-up slave by itself, without a restart, and
// the new master holds at least every confirmed message.
func TestDiskFullMaster(t *testing.T) {
	c := newCluster(t)
	m, err := c.waitStable(c.recovery)
	if err != nil {
		t.Fatal(err)
	}
	const queue = "chaos.disk"
	w := startLoad(t, c, load{stompProducers: 2, stompDest: "/queue/" + queue, timeout: 5 * time.Second, pace: 20 * time.Millisecond,
		consumeLater: true})
	time.Sleep(2 * time.Second)
	pid := m.pid()
	fullAt := w.rec.now()
	must(t, m.fill())
	fault := Fault{Kind: "disk-full", Target: m.name, Start: fullAt}
	const stepDown = 3 * zkSessionTimeout
	var demoted, confirmed, unhealthy time.Time
	var health string
	pollUntil(fullAt.Add(stepDown), func() bool {
		if st, err := m.status(); err == nil && demoted.IsZero() && st.Role != roleMaster {
			demoted = time.Now()
		}
		if confirmed.IsZero() {
			confirmed, _, _ = w.firstConfirm(m, fullAt)
		}
		if unhealthy.IsZero() {
			var ok bool
			if health, ok = reportsUnhealthy(m); ok {
				unhealthy = time.Now()
			}
		}
		return !demoted.IsZero() && !confirmed.IsZero() && !unhealthy.IsZero()
	})
	if demoted.IsZero() {
		t.Errorf("the master %s with a full disk did not step down within %v: %s", m.name, stepDown, c.describe())
	}
	if confirmed.IsZero() {
		t.Errorf("no other node confirmed a send within %v of the master's disk filling up", stepDown)
	}
	if unhealthy.IsZero() {
		t.Errorf("%s with a full disk does not report itself unhealthy in /api/broker or /api/cluster: %s", m.name, health)
	}
	t.Logf("after the disk filled: stepped down %s, another node confirmed %s, unhealthy reported %s (%s)",
		sinceOr(fullAt, demoted), sinceOr(fullAt, confirmed), sinceOr(fullAt, unhealthy), health)
	time.Sleep(time.Until(fullAt.Add(10 * time.Second)))
	must(t, m.unfill())
	fault.End = w.rec.now()
	if _, ok := pollUntil(time.Now().Add(c.recovery), func() bool {
		master, ok := c.stable()
		return ok && master != m
	}); !ok {
		t.Errorf("%s did not rejoin as a caught-up slave within %v of the disk having room: %s", m.name, c.recovery, c.describe())
	}
	fault.Recovered = w.rec.now()
	if m.pid() != pid {
		t.Errorf("%s was restarted or exited (pid %d, was %d): it must recover by itself", m.name, m.pid(), pid)
	}
	if _, err := c.waitStable(5 * time.Second); err != nil {
		// So that what was confirmed can still be counted and drained.
		notes, err := c.restore()
		t.Logf("restoring the cluster for the drain: %s (%v)", strings.Join(notes, "; "), err)
	}
	if errText := w.stopProducers(); errText != "" {
		t.Error(errText)
	}
	checkQueueSize(t, c, w, queue)
	checkHistory(t, w.finish(), fault)
}

func sinceOr(t0, t time.Time) string {
	if t.IsZero() {
		return "never"
	}
	return since(t0, t)
}

// reportsUnhealthy says whether n's /api/broker or /api/cluster says it
// is unhealthy ("healthy": false, or a "health" other than "ok"), and
// what they said.
func reportsUnhealthy(n *node) (string, bool) {
	var said []string
	for _, path := range []string{"/api/broker", "/api/cluster"} {
		v, err := n.getJSON(path)
		if err != nil {
			said = append(said, fmt.Sprintf("%s: %v", path, err))
			continue
		}
		if h, ok := v["healthy"].(bool); ok && !h {
			return path + ` says "healthy": false`, true
		}
		if h, ok := v["health"].(string); ok && h != "" && h != "ok" {
			return fmt.Sprintf("%s says \"health\": %q", path, h), true
		}
		said = append(said, fmt.Sprintf("%s: healthy=%v health=%v", path, v["healthy"], v["health"]))
	}
	return strings.Join(said, "; "), false
}

// checkQueueSize compares the queue's size on the master with what the
// producers were told: at least every confirmed message, at most every
// attempt.
func checkQueueSize(t *testing.T, c *cluster, w *workload, queue string) {
	t.Helper()
	master, err := c.waitStable(c.recovery)
	if err != nil {
		t.Error(err)
		return
	}
	confirmed, attempts := map[string]bool{}, 0
	for _, e := range w.rec.snapshot() {
		switch e.Kind {
		case Confirm:
			confirmed[e.ID] = true
		case Send:
			attempts++
		}
	}
	v, err := master.getJSON("/api/queues/" + queue)
	if err != nil {
		t.Error(err)
		return
	}
	size, _ := v["size"].(float64)
	t.Logf("%s on %s holds %v messages; %d confirmed, %d attempts", queue, master.name, size, len(confirmed), attempts)
	if int(size) < len(confirmed) || int(size) > attempts {
		t.Errorf("%s holds %v messages: fewer than the %d confirmed or more than the %d sent", queue, size, len(confirmed), attempts)
	}
}

// TestRogueReplicationPeer: a replication HELLO from outside the cluster,
// with a huge epoch, to the master and to a slave. Each must refuse it:
// roles and epochs unchanged, never "fenced by a master" rogue, and a log
// line naming the refused peer. A node started without
// HAMQ_CLUSTER_SECRET warns about it.
func TestRogueReplicationPeer(t *testing.T) {
	c := newCluster(t)
	m, err := c.waitStable(c.recovery)
	if err != nil {
		t.Fatal(err)
	}
	slave := c.others(m)[0]
	for _, n := range []*node{m, slave} {
		before, err := n.status()
		must(t, err)
		mark := n.logSize()
		answer, err := rogueHello(n.bind())
		t.Logf("%s (%s) answered the rogue HELLO %s (%v)", n.name, before.Role, answer, err)
		if strings.Contains(answer, "STATE") {
			t.Errorf("%s answered the rogue HELLO with its log state: it took the rogue as its master", n.name)
		}
		time.Sleep(time.Second)
		var f Fault
		if rogueObeyed(&f, n, before, mark) {
			t.Errorf("%s obeyed the rogue peer: %s", n.name, strings.Join(f.Notes, "; "))
		}
		// The peer is named by the id it claimed or by its address.
		named := false
		for _, l := range n.linesSince(mark) {
			if (strings.Contains(l, "rogue") || strings.Contains(l, c.lab.gateway+":")) && !strings.Contains(l, "fenced by a master") {
				named = true
				t.Logf("%s logged: %s", n.name, l)
			}
		}
		if !named {
			t.Errorf("%s logged no line naming the refused peer (\"rogue\" or %s)", n.name, c.lab.gateway)
		}
	}
	if master, err := c.waitStable(10 * time.Second); err != nil || master != m {
		t.Errorf("after the rogue HELLOs: master %v, %v (was %s)", master, err, m.name)
	}

	n := c.others(m)[1]
	n.kill()
	n.secret = ""
	mark := n.logSize()
	n.start()
	if _, ok := pollUntil(time.Now().Add(10*time.Second), func() bool {
		for _, l := range n.linesSince(mark) {
			if strings.Contains(l, "level=WARN") && strings.Contains(l, "cluster secret") {
				t.Logf("%s started without HAMQ_CLUSTER_SECRET: %s", n.name, l)
				return true
			}
		}
		return false
	}); !ok {
		t.Errorf("%s started without HAMQ_CLUSTER_SECRET logged no WARN about the cluster secret within 10s", n.name)
	}
}
