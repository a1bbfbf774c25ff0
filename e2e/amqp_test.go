package e2e

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
)

// amqpSend runs amqp_send.py to its end and returns its lines ("confirmed
// N" once the broker settled message N, "sent LENGTH sha256:HEX").
func amqpSend(t *testing.T, n *node, address string, args ...string) []string {
	t.Helper()
	return amqpScript(t, n, "amqp_send.py", nil, append([]string{address}, args...)...)
}

// amqpReceive runs amqp_receive.py to its end and returns "KIND BODY" per
// message in arrival order. ready, when not nil, is closed once the broker
// has attached the link.
func amqpReceive(t *testing.T, n *node, ready chan struct{}, address, quiet string, args ...string) []string {
	t.Helper()
	var got []string
	for _, l := range amqpScript(t, n, "amqp_receive.py", ready, append([]string{address, quiet}, args...)...) {
		if g, ok := strings.CutPrefix(l, "got "); ok {
			got = append(got, g)
		}
	}
	return got
}

// amqpReceiver starts amqp_receive.py and returns once its link is
// attached, so that what is sent next reaches it; wait gives what it got.
func amqpReceiver(t *testing.T, n *node, address, quiet string, args ...string) (wait func() []string) {
	t.Helper()
	var got []string
	done := inBackground(t, "amqp_receive.py "+address, func(ready chan struct{}) {
		got = amqpReceive(t, n, ready, address, quiet, args...)
	})
	return func() []string { done(); return got }
}

// inBackground runs a client in fn, which closes ready once the client is
// set up, and returns then; wait waits for fn's end. A client that fails
// before it is ready fails the test here, rather than leave it waiting.
func inBackground(t *testing.T, what string, fn func(ready chan struct{})) (wait func()) {
	t.Helper()
	ready, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		fn(ready)
	}()
	select {
	case <-ready:
	case <-done:
		t.Fatalf("%s ended before it was ready", what)
	}
	return func() { <-done }
}

// amqpScript runs a Proton script against n and returns its output lines,
// closing ready at the line "ready".
func amqpScript(t *testing.T, n *node, name string, ready chan struct{}, args ...string) []string {
	t.Helper()
	needPython(t, "proton")
	host, port := hostPort(t, n.amqp)
	var lines []string
	script(t, context.Background(), name, func(l string) bool {
		if l == "ready" && ready != nil {
			close(ready)
			ready = nil
		}
		lines = append(lines, l)
		return true
	}, append([]string{host, port}, args...)...)
	return lines
}

func confirmations(lines []string) int {
	k := 0
	for _, l := range lines {
		if strings.HasPrefix(l, "confirmed ") {
			k++
		}
	}
	return k
}

func wantLines(t *testing.T, what string, got []string, want ...string) {
	t.Helper()
	if !slices.Equal(got, want) {
		t.Fatalf("%s: got %q, want %q", what, got, want)
	}
}

// TestProtonQueueAndTopic: Proton's strings sent to a bare name arrive in
// order from queue://NAME (bare names are queues), and a topic receiver
// attached before the send gets what is sent to the topic.
func TestProtonQueueAndTopic(t *testing.T) {
	n := startNode(t)
	if k := confirmations(amqpSend(t, n, "orders", "one", "two", "three")); k != 3 {
		t.Fatalf("%d of 3 sends settled", k)
	}
	wantLines(t, "queue://orders", amqpReceive(t, n, nil, "queue://orders", "1"), "str one", "str two", "str three")

	wait := amqpReceiver(t, n, "topic://news", "5", "--count", "2")
	amqpSend(t, n, "topic://news", "n1", "n2")
	wantLines(t, "topic://news", wait(), "str n1", "str n2")
}

// TestProtonDurableSubscription: a durable subscription (container id and
// link name) detached by its client gets, when the client comes back, what
// was published meanwhile; closing the link deletes it.
func TestProtonDurableSubscription(t *testing.T) {
	n := startNode(t)
	sub := []string{"--container", "keeper", "--durable", "news-sub"}
	wait := amqpReceiver(t, n, "topic://news", "5", append(sub, "--count", "1")...)
	amqpSend(t, n, "topic://news", "before")
	wantLines(t, "first attach", wait(), "str before")

	amqpSend(t, n, "topic://news", "away-1", "away-2")
	wantLines(t, "after reconnecting", amqpReceive(t, n, nil, "topic://news", "1", append(sub, "--unsubscribe")...),
		"str away-1", "str away-2")

	amqpSend(t, n, "topic://news", "unsubscribed")
	wantLines(t, "after unsubscribing", amqpReceive(t, n, nil, "topic://news", "0.5", sub...))
}

// TestProtonSelector: a receiver with a JMS selector gets the matching
// messages only, and the others stay on the queue.
func TestProtonSelector(t *testing.T) {
	n := startNode(t)
	amqpSend(t, n, "queue://jobs", "--prop", "color=red", "red-1", "red-2")
	amqpSend(t, n, "queue://jobs", "--prop", "color=blue", "blue-1")
	wantLines(t, "color = 'red'", amqpReceive(t, n, nil, "queue://jobs", "1", "--selector", "color = 'red'"), "str red-1", "str red-2")
	wantLines(t, "no selector", amqpReceive(t, n, nil, "queue://jobs", "1"), "str blue-1")
}

// TestProtonRequestReply: the requester's dynamic receiver gets a
// temporary queue; the replier answers to each request's reply_to, and the
// answers come back correlated.
func TestProtonRequestReply(t *testing.T) {
	n := startNode(t)
	wait := amqpReceiver(t, n, "queue://service", "5", "--reply", "--count", "2")
	lines := amqpScript(t, n, "amqp_request.py", nil, "queue://service", "ping-0", "ping-1")
	if len(lines) != 3 || !strings.HasPrefix(lines[0], "reply-to temp-queue://") {
		t.Fatalf("requester: %q", lines)
	}
	wantLines(t, "replies", lines[1:], "reply re: ping-0 req-0", "reply re: ping-1 req-1")
	wantLines(t, "replier", wait(), "str ping-0", "str ping-1")
}

// TestProtonTenMiBMessage: 10 MiB, ten times the broker's largest frame,
// travel in many transfer frames each way and arrive whole.
func TestProtonTenMiBMessage(t *testing.T) {
	n := startNode(t)
	lines := amqpSend(t, n, "queue://big", "--size", fmt.Sprint(10<<20))
	if len(lines) != 2 || lines[1] != "confirmed 0" {
		t.Fatalf("sender: %q", lines)
	}
	sent := strings.TrimPrefix(lines[0], "sent ")
	wantLines(t, "receiver", amqpReceive(t, n, nil, "queue://big", "5", "--count", "1"), "bytes "+sent)
}

// TestProtonKill9AfterAccepted: 500 durable messages, each accepted before
// the next is sent, survive kill -9 and are received exactly once.
func TestProtonKill9AfterAccepted(t *testing.T) {
	n := startNode(t)
	if k := confirmations(amqpSend(t, n, "queue://durable", "--durable", "--count", "500")); k != 500 {
		t.Fatalf("%d of 500 sends accepted", k)
	}
	n.kill()
	n.start()
	got := map[string]int{}
	for _, g := range amqpReceive(t, n, nil, "queue://durable", "1") {
		got[g]++
	}
	for i := range 500 {
		if k := got[fmt.Sprintf("str msg-%04d", i)]; k != 1 {
			t.Errorf("msg-%04d received %d times", i, k)
		}
	}
	t.Logf("accepted before kill -9: 500; received after restart: %d distinct", len(got))
}

// TestAMQPTopicToMQTTAndSTOMP: a Proton string sent to topic://sensors.temp
// reaches paho subscribed to sensors/temp and stomp.py subscribed to
// /topic/sensors.temp.
func TestAMQPTopicToMQTTAndSTOMP(t *testing.T) {
	needPython(t, "stomp")
	n := startNode(t)
	// Both subscribers count their quiet seconds from their start, which
	// must leave time for the other to subscribe and for Proton to send.
	var stompGot map[string]int
	stompDone := make(chan struct{})
	go func() {
		defer close(stompDone)
		stompGot = receiveAll(t, n, "/topic/sensors.temp", "5")
	}()
	var mqttGot []string
	mqttDone := inBackground(t, "mqtt_sub.py", func(ready chan struct{}) {
		mqttGot = mqttSub(t, n, ready, "paho-sensors", "sensors/temp", "1", "5")
	})
	waitFor(t, "the STOMP subscription", func() bool { return stompSubscriptions(t, n) == 1 })
	amqpSend(t, n, "topic://sensors.temp", "21.5")
	mqttDone()
	wantLines(t, "paho", mqttGot, "sensors/temp 21.5")
	<-stompDone
	if len(stompGot) != 1 || stompGot["21.5"] != 1 {
		t.Fatalf("stomp.py got %v", stompGot)
	}
}

// TestSTOMPAndMQTTToAMQPTopic: a STOMP SEND to /topic/x.y and an MQTT
// publish to x/y reach a Proton receiver of topic://x.y; a body with no
// content type comes as a data section, one of type text/plain (MQTT 5)
// as a string.
func TestSTOMPAndMQTTToAMQPTopic(t *testing.T) {
	n := startNode(t)
	wait := amqpReceiver(t, n, "topic://x.y", "5", "--count", "3")
	if out, code := hamq(t, "send", "--url=tcp://"+n.stomp, "--destination", "/topic/x.y", "--body", "from-stomp"); code != 0 {
		t.Fatalf("send: %s", out)
	}
	mosquittoPub(t, n, "-t", "x/y", "-q", "1", "-m", "from-mqtt")
	mosquittoPub(t, n, "-V", "mqttv5", "-D", "publish", "content-type", "text/plain", "-t", "x/y", "-q", "1", "-m", "text-from-mqtt5")
	wantLines(t, "topic://x.y", wait(), "bytes from-stomp", "bytes from-mqtt", "str text-from-mqtt5")
}

// TestSTOMPQueueToAMQPAndBack: what stomp.py sends to /queue/q a Proton
// receiver of queue://q gets, in order, and what Proton sends there
// stomp.py gets.
func TestSTOMPQueueToAMQPAndBack(t *testing.T) {
	needPython(t, "stomp")
	n := startNode(t)
	stompPySend(t, n, "/queue/q", 20)
	var want []string
	for i := range 20 {
		want = append(want, fmt.Sprintf("bytes msg-%04d", i))
	}
	wantLines(t, "queue://q", amqpReceive(t, n, nil, "queue://q", "1"), want...)

	amqpSend(t, n, "queue://q", "--count", "20")
	got := receiveAll(t, n, "/queue/q", "2")
	for i := range 20 {
		if k := got[fmt.Sprintf("msg-%04d", i)]; k != 1 {
			t.Errorf("stomp.py got msg-%04d %d times", i, k)
		}
	}
}

// amqpTx runs amqp_tx.py to its end: inside one transaction it sends
// bodies to address, or with "--receive", "N" receives and accepts N
// messages ("got BODY" each), then discharges it as discharge (commit or
// abort), printing "committed" or "aborted" once the broker answered.
func amqpTx(t *testing.T, n *node, address, discharge string, args ...string) []string {
	t.Helper()
	return amqpScript(t, n, "amqp_tx.py", nil, append([]string{address, discharge}, args...)...)
}

// TestProtonTransactions: what Proton sends inside a transaction reaches
// the queue when the transaction commits and never when it aborts; what
// it accepts inside one leaves the queue when the transaction commits,
// and after an abort is delivered again.
func TestProtonTransactions(t *testing.T) {
	n := startNode(t)
	var aborted, committed, gotCommitted []string
	for i := range 10 {
		aborted = append(aborted, fmt.Sprintf("aborted-%d", i))
		committed = append(committed, fmt.Sprintf("committed-%d", i))
		gotCommitted = append(gotCommitted, fmt.Sprintf("str committed-%d", i))
	}
	wantLines(t, "sending, then aborting", amqpTx(t, n, "queue://tx", "abort", aborted...), "aborted")
	// The broker answered the abort, so a message of it that escaped is on
	// the queue by now; a second's wait is for the receiver to get it.
	wantLines(t, "after the abort", amqpReceive(t, n, nil, "queue://tx", "1"))
	wantLines(t, "sending, then committing", amqpTx(t, n, "queue://tx", "commit", committed...), "committed")
	// The quiet second here is what would show a message twice, or one of
	// the aborted ones late.
	wantLines(t, "after the commit", amqpReceive(t, n, nil, "queue://tx", "1"), gotCommitted...)

	if k := confirmations(amqpSend(t, n, "queue://acks", "--count", "10")); k != 10 {
		t.Fatalf("%d of 10 sends settled", k)
	}
	var got []string
	for i := range 10 {
		got = append(got, fmt.Sprintf("got msg-%04d", i))
	}
	// Each run is a new connection, so what the first took and the abort
	// left undone must have gone back to the queue for the second to get.
	wantLines(t, "accepting, then aborting", amqpTx(t, n, "queue://acks", "abort", "--receive", "10"), slices.Concat(got, []string{"aborted"})...)
	wantLines(t, "accepting again, then committing", amqpTx(t, n, "queue://acks", "commit", "--receive", "10"), slices.Concat(got, []string{"committed"})...)
	wantLines(t, "after the committed acceptance", amqpReceive(t, n, nil, "queue://acks", "1"))
}

// TestProtonCommitSurvivesKill9: once Proton hears its commit answered,
// what the transaction sent and what it accepted are durable: after kill
// -9 and a restart the sends are there and the accepted messages are not.
func TestProtonCommitSurvivesKill9(t *testing.T) {
	n := startNode(t)
	var sent, want []string
	for i := range 10 {
		sent = append(sent, fmt.Sprintf("tx-%d", i))
		want = append(want, fmt.Sprintf("str tx-%d", i))
	}
	wantLines(t, "sending, then committing", amqpTx(t, n, "queue://txsent", "commit", append(sent, "--durable")...), "committed")
	if k := confirmations(amqpSend(t, n, "queue://txtaken", "--durable", "--count", "10")); k != 10 {
		t.Fatalf("%d of 10 sends accepted", k)
	}
	var took, left []string
	for i := range 10 {
		if i < 5 {
			took = append(took, fmt.Sprintf("got msg-%04d", i))
		} else {
			left = append(left, fmt.Sprintf("str msg-%04d", i))
		}
	}
	wantLines(t, "accepting five, then committing", amqpTx(t, n, "queue://txtaken", "commit", "--receive", "5"), append(took, "committed")...)
	n.kill()
	n.start()
	wantLines(t, "sent in the committed transaction, after kill -9", amqpReceive(t, n, nil, "queue://txsent", "1"), want...)
	wantLines(t, "left by the committed acceptance, after kill -9", amqpReceive(t, n, nil, "queue://txtaken", "1"), left...)
}
