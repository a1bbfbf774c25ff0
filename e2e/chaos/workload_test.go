package chaos

import (
	"bufio"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// load says which clients a test runs.
type load struct {
	stompProducers int // stop-and-wait STOMP producers
	pipelined      bool
	window         int // the pipelined producer's SENDs awaiting receipts
	pipelineRate   int // its SENDs per second; 0 as fast as receipts come
	mqtt, amqp     bool
	// witnesses add a witness subscription to each flow on a topic.
	witnesses bool
	// stompDest is where the STOMP producers send: a topic (durable live
	// subscriber, witness) or a queue (a plain consumer).
	stompDest string
	// timeout is how long a producer waits for an answer before it gives
	// the connection up; pace its pause after each confirmation.
	timeout, pace time.Duration
	// consumeLater starts the STOMP consumer only for the final drain, so
	// that a destination's size can be read first.
	consumeLater bool
	// dedup has the pipelined producer name its messages for the
	// broker's duplicate window.
	dedup bool
	// scheduled adds a stop-and-wait STOMP producer whose messages ask to
	// be delivered schedDelay later, to a queue of their own.
	scheduled bool
}

// chaosLoad is TestChaos's: every client, witnesses on every flow.
var chaosLoad = load{stompProducers: 2, pipelined: true, window: 50, pipelineRate: 100, mqtt: true, amqp: true,
	witnesses: true, stompDest: "/topic/chaos.stomp", timeout: 5 * time.Second, pace: 25 * time.Millisecond,
	dedup: true, scheduled: true}

// schedDelay is the scheduled flow's delay: longer than a failover, so
// that some of its messages fall due on a master that did not take them.
const schedDelay = 3 * time.Second

// Flows' names and destinations.
const (
	flowSTOMP  = "stomp"
	flowMQTT   = "mqtt"
	flowAMQP   = "amqp"
	flowSched  = "scheduled"
	schedQueue = "/queue/chaos.scheduled"
	mqttTopic  = "chaos/mqtt"
	amqpTarget = "topic://chaos.amqp"
)

// workload is a test's clients and their history.
type workload struct {
	t   *testing.T
	c   *cluster
	l   load
	rec *recorder
	// stop ends the producers; drain tells the consumers to end once
	// idle; halt ends everything at once.
	stop, drain, halt chan struct{}
	haltOnce          sync.Once
	producers         sync.WaitGroup
	consumers         sync.WaitGroup
	witnesses         []*consumer
	later             []*consumer
	stopOnce          sync.Once
	stopErr           string
	witnessed         map[string]bool
	stopAndWait       map[string]bool
}

func runID() string {
	b := make([]byte, 3)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// startLoad subscribes the consumers and witnesses, then starts everything.
func startLoad(t *testing.T, c *cluster, l load) *workload {
	t.Helper()
	w := &workload{t: t, c: c, l: l, rec: newRecorder(runID()), stop: make(chan struct{}), drain: make(chan struct{}),
		halt: make(chan struct{}), witnessed: map[string]bool{}, stopAndWait: map[string]bool{}}
	t.Cleanup(w.stopAll)
	const setup = 30 * time.Second
	stompEps, mqttEps, amqpEps := stompEndpoints(c), mqttEndpoints(c), amqpEndpoints(c)
	topic := strings.HasPrefix(l.stompDest, "/topic/")
	liveID, liveName := "", ""
	if topic {
		liveID, liveName = "chaos-stomp-live", "live"
		must(t, stompDurable(stompEps, l.stompDest, liveID, liveName, setup))
		if l.witnesses {
			must(t, stompDurable(stompEps, l.stompDest, "chaos-stomp-witness", "witness", setup))
			w.witnessed[flowSTOMP] = true
			w.witnesses = append(w.witnesses, w.consumer(flowSTOMP, "stomp-witness", Witness, stompEps,
				stompSession(w.rec, flowSTOMP, "stomp-witness", l.stompDest, "chaos-stomp-witness", "witness")))
		}
	}
	if l.stompProducers > 0 || l.pipelined {
		live := w.consumer(flowSTOMP, "stomp-live", Deliver, stompEps, stompSession(w.rec, flowSTOMP, "stomp-live", l.stompDest, liveID, liveName))
		if l.consumeLater {
			w.later = append(w.later, live)
		} else {
			w.startConsumer(live)
		}
	}
	if l.mqtt {
		must(t, mqttPersistent(mqttEps, "chaos-mqtt-live", mqttTopic, setup))
		w.startConsumer(w.consumer(flowMQTT, "mqtt-live", Deliver, mqttEps, mqttSession(w.rec, flowMQTT, "mqtt-live", "chaos-mqtt-live", mqttTopic)))
		if l.witnesses {
			must(t, mqttPersistent(mqttEps, "chaos-mqtt-witness", mqttTopic, setup))
			w.witnessed[flowMQTT] = true
			w.witnesses = append(w.witnesses, w.consumer(flowMQTT, "mqtt-witness", Witness, mqttEps,
				mqttSession(w.rec, flowMQTT, "mqtt-witness", "chaos-mqtt-witness", mqttTopic)))
		}
	}
	if l.amqp {
		must(t, amqpDurable(amqpEps, "chaos-amqp-live", "live", amqpTarget, setup))
		w.startConsumer(w.consumer(flowAMQP, "amqp-live", Deliver, amqpEps, amqpSession(w.rec, flowAMQP, "amqp-live", "chaos-amqp-live", "live", amqpTarget)))
		if l.witnesses {
			must(t, amqpDurable(amqpEps, "chaos-amqp-witness", "witness", amqpTarget, setup))
			w.witnessed[flowAMQP] = true
			w.witnesses = append(w.witnesses, w.consumer(flowAMQP, "amqp-witness", Witness, amqpEps,
				amqpSession(w.rec, flowAMQP, "amqp-witness", "chaos-amqp-witness", "witness", amqpTarget)))
		}
	}
	for i := range l.stompProducers {
		w.startProducer(&producer{rec: w.rec, flow: flowSTOMP, client: fmt.Sprintf("s%d", i+1), eps: stompEps,
			dial: stompDialer(l.stompDest, false), timeout: l.timeout, pace: l.pace})
	}
	if l.pipelined {
		p := &pipeliner{rec: w.rec, flow: flowSTOMP, client: "p1", dest: l.stompDest, eps: stompEps, window: l.window,
			rate: l.pipelineRate, timeout: l.timeout, dedup: l.dedup}
		w.producers.Add(1)
		go func() {
			defer w.producers.Done()
			p.run(w.stop)
		}()
	}
	if l.mqtt {
		w.startProducer(&producer{rec: w.rec, flow: flowMQTT, client: "m1", eps: mqttEps,
			dial: mqttDialer("chaos-m1", mqttTopic), timeout: l.timeout, pace: l.pace})
	}
	if l.amqp {
		w.startProducer(&producer{rec: w.rec, flow: flowAMQP, client: "a1", eps: amqpEps,
			dial: amqpDialer("a1", amqpTarget), timeout: l.timeout, pace: l.pace})
	}
	if l.scheduled {
		c := w.consumer(flowSched, "scheduled-live", Deliver, stompEps, stompSession(w.rec, flowSched, "scheduled-live", schedQueue, "", ""))
		// The last messages come schedDelay after the producers stop.
		c.idle, c.drainIdle = c.idle+schedDelay, c.drainIdle+schedDelay
		w.startConsumer(c)
		w.startProducer(&producer{rec: w.rec, flow: flowSched, client: "d1", eps: stompEps,
			dial: stompDialer(schedQueue, true, "AMQ_SCHEDULED_DELAY", fmt.Sprint(schedDelay.Milliseconds())), timeout: l.timeout, pace: l.pace})
	}
	return w
}

// scheduledWrong lists the scheduled flow's deliveries that came before
// their time (sooner than schedDelay after the message's first attempt)
// or a second time from the same node without the redelivered flag (a job
// delivered twice; a resend scheduled again cannot be, its producer names
// its messages for the duplicate window). unflagged counts the second
// copies from another node without the flag: a master cut off right after
// delivering keeps the consumer's acknowledgements and the lazily written
// delivered mark to itself, and the next master delivers those messages
// again without knowing they were delivered.
func scheduledWrong(h History) (wrong []string, unflagged int) {
	first := map[string]time.Time{}
	seen := map[string]string{} // id: the node that delivered it
	for _, e := range h.Events {
		if e.Flow != flowSched {
			continue
		}
		switch e.Kind {
		case Send:
			if _, ok := first[e.ID]; !ok {
				first[e.ID] = e.At
			}
		case Deliver:
			if at, ok := first[e.ID]; ok && e.At.Sub(at) < schedDelay {
				wrong = append(wrong, fmt.Sprintf("%s %v after its first send", e.ID, e.At.Sub(at).Round(time.Microsecond)))
			}
			switch node, ok := seen[e.ID]; {
			case ok && !e.Redelivered && node == e.Node:
				wrong = append(wrong, fmt.Sprintf("%s a second time from %s, not flagged redelivered", e.ID, node))
			case ok && !e.Redelivered:
				unflagged++
			}
			seen[e.ID] = e.Node
		}
	}
	return wrong, unflagged
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func (w *workload) consumer(flow, client string, kind Kind, eps []endpoint, s session) *consumer {
	return &consumer{rec: w.rec, flow: flow, client: client, kind: kind, eps: eps, session: s,
		idle: 5 * time.Second, drainIdle: 3 * time.Second}
}

func (w *workload) startConsumer(c *consumer) {
	w.consumers.Add(1)
	go func() {
		defer w.consumers.Done()
		c.run(w.drain, w.halt)
	}()
}

func (w *workload) startProducer(p *producer) {
	w.stopAndWait[p.client] = true
	w.producers.Add(1)
	go func() {
		defer w.producers.Done()
		p.run(w.stop)
	}()
}

func (w *workload) stopAll() {
	w.haltOnce.Do(func() {
		w.stopOnce.Do(func() { close(w.stop) })
		close(w.halt)
	})
	w.producers.Wait()
	w.consumers.Wait()
}

// waitGroup waits for wg at most d.
func waitGroup(wg *sync.WaitGroup, d time.Duration) bool {
	done := make(chan struct{})
	go func() {
		wg.Wait()
		close(done)
	}()
	select {
	case <-done:
		return true
	case <-time.After(d):
		return false
	}
}

// finish stops the producers, lets the consumers drain until idle, then
// drains the witnesses, and returns the history. The cluster must be
// healed first. A drain that does not finish leaves the history
// incomplete (and fails the test): what was not delivered may still be
// in the cluster.
func (w *workload) finish() History {
	w.t.Helper()
	var incomplete []string
	if err := w.stopProducers(); err != "" {
		incomplete = append(incomplete, err)
	}
	for _, c := range w.later {
		w.startConsumer(c)
	}
	close(w.drain)
	sent := 0
	for _, e := range w.rec.snapshot() {
		if e.Kind == Send {
			sent++
		}
	}
	drainMax := time.Minute + time.Duration(sent/2000)*time.Second
	if !waitGroup(&w.consumers, drainMax) {
		incomplete = append(incomplete, fmt.Sprintf("the consumers did not drain within %v", drainMax))
	}
	var wg sync.WaitGroup
	for _, c := range w.witnesses {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c.run(w.drain, w.halt)
		}()
	}
	if !waitGroup(&wg, drainMax) {
		incomplete = append(incomplete, fmt.Sprintf("the witnesses did not drain within %v", drainMax))
	}
	w.stopAll()
	wg.Wait()
	for _, s := range incomplete {
		w.t.Error(s)
	}
	return w.history(strings.Join(incomplete, "; "))
}

// stopProducers stops the producers once each has its last attempt
// answered (or given up), and says if they did not.
func (w *workload) stopProducers() string {
	w.stopOnce.Do(func() {
		close(w.stop)
		if d := w.l.timeout + 30*time.Second; !waitGroup(&w.producers, d) {
			w.stopErr = fmt.Sprintf("the producers did not stop within %v", d)
		}
	})
	return w.stopErr
}

// abandon ends every client at once, without a drain: the history is
// incomplete for the reason given.
func (w *workload) abandon(why string) History {
	w.stopAll()
	return w.history(why)
}

func (w *workload) history(incomplete string) History {
	h := History{Events: w.rec.snapshot(), Promotions: w.c.promotions(), Witnessed: w.witnessed,
		StopAndWait: w.stopAndWait, End: w.rec.now(), Incomplete: incomplete}
	path := filepath.Join(w.c.lab.dir, "history.jsonl")
	if err := writeHistory(path, h); err != nil {
		w.t.Error(err)
	}
	return h
}

// writeHistory writes the history as JSON lines, for a look after a
// failure: the lab's directory is kept then.
func writeHistory(path string, h History) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	bw := bufio.NewWriter(f)
	enc := json.NewEncoder(bw)
	for _, p := range h.Promotions {
		enc.Encode(map[string]any{"promotion": p})
	}
	for _, e := range h.Events {
		enc.Encode(map[string]any{"t": e.At.Format("15:04:05.000000"), "kind": e.Kind.String(), "flow": e.Flow, "client": e.Client,
			"id": e.ID, "attempt": e.Attempt, "node": e.Node, "redelivered": e.Redelivered, "bad": e.Bad, "err": e.Err, "hung": e.Hung})
	}
	if err := bw.Flush(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// writeFaults appends the faults to the history file.
func writeFaults(path string, faults []Fault) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		return err
	}
	enc := json.NewEncoder(f)
	for _, x := range faults {
		enc.Encode(map[string]any{"fault": x})
	}
	return f.Close()
}

// confirmsAfter are the confirmations received after t, by node.
func (w *workload) confirmsAfter(t time.Time) map[string][]Event {
	out := map[string][]Event{}
	for _, e := range w.rec.snapshot() {
		if e.Kind == Confirm && e.At.After(t) {
			out[e.Node] = append(out[e.Node], e)
		}
	}
	return out
}
