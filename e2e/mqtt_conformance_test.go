package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"
)

// The MQTT conformance tests of issue 14, each with Debian's paho-mqtt
// (mqtt_client.py) and mosquitto_pub: what the MQTT 5 specification (OASIS,
// 2019) requires of a broker, clause by clause.

// mqttMsg is one "got" line of mqtt_client.py.
type mqttMsg struct {
	topic, payload string
	qos            int
	dup, retain    bool
	props          map[string]any
	at             time.Time
}

// pahoRun runs mqtt_client.py to its quiet end; it returns the messages and
// every other line. ready, when not nil, is closed at the SUBACK (or at
// the CONNACK when nothing is subscribed).
func pahoRun(t *testing.T, n *node, ready chan struct{}, cid string, args ...string) (msgs []mqttMsg, lines []string) {
	t.Helper()
	needPython(t, "paho.mqtt.client")
	host, port := hostPort(t, n.mqtt)
	subscribing := slices.Contains(args, "--subscribe")
	script(t, context.Background(), "mqtt_client.py", func(l string) bool {
		if m, ok := parseGot(t, l); ok {
			msgs = append(msgs, m)
			return true
		}
		lines = append(lines, l)
		if ready != nil && (strings.HasPrefix(l, "subscribed") || !subscribing && strings.HasPrefix(l, "connected")) {
			close(ready)
			ready = nil
		}
		return true
	}, append([]string{host, port, cid}, args...)...)
	return msgs, lines
}

// pahoSubscribed runs mqtt_client.py --subscribe in the background and
// returns once it has its SUBACK; the channel gives its messages when it
// ends.
func pahoSubscribed(t *testing.T, n *node, cid string, args ...string) <-chan []mqttMsg {
	t.Helper()
	ready := make(chan struct{})
	done := make(chan []mqttMsg, 1)
	go func() {
		var msgs []mqttMsg
		defer func() { done <- msgs }() // also when pahoRun fails the test
		msgs, _ = pahoRun(t, n, ready, cid, args...)
	}()
	select {
	case <-ready:
	case <-done:
		t.Fatalf("mqtt_client.py %s ended before subscribing", cid)
	}
	return done
}

func parseGot(t *testing.T, l string) (mqttMsg, bool) {
	rest, ok := strings.CutPrefix(l, "got ")
	if !ok {
		return mqttMsg{}, false
	}
	head, props, _ := strings.Cut(rest, " props=")
	f := strings.Fields(head)
	if len(f) < 5 {
		t.Fatalf("bad line %q", l)
	}
	m := mqttMsg{topic: f[0], payload: strings.Join(f[1:len(f)-3], " "), at: time.Now()}
	fmt.Sscanf(f[len(f)-3], "qos=%d", &m.qos)
	m.dup = f[len(f)-2] == "dup=1"
	m.retain = f[len(f)-1] == "retain=1"
	if err := json.Unmarshal([]byte(props), &m.props); err != nil {
		t.Fatalf("props of %q: %v", l, err)
	}
	return m, true
}

// mosquittoPubLines publishes each line as one message, in order, from one
// mosquitto_pub.
func mosquittoPubLines(t *testing.T, n *node, lines []string, args ...string) {
	t.Helper()
	host, port := hostPort(t, n.mqtt)
	pub := tool(t, "mosquitto_pub", "mosquitto-clients")
	cmd := exec.Command(pub, append([]string{"-h", host, "-p", port, "-l"}, args...)...)
	cmd.Stdin = strings.NewReader(strings.Join(lines, "\n") + "\n")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("mosquitto_pub -l %v: %v %s", args, err, out)
	}
}

func payloads(msgs []mqttMsg) []string {
	var out []string
	for _, m := range msgs {
		out = append(out, m.payload)
	}
	return out
}

// TestMQTTSessionBacklogInOrder (issue 14, item 1): a persistent session
// that was away gets what was published meanwhile once, in the order of
// publication [MQTT-4.6.0-6], flagged DUP=0 since none of it was sent
// before [MQTT-3.3.1-1]; with MQTT 3.1.1 and 5, QoS 1 and 2, after a
// restart, and when the client subscribes again on resuming (which
// replaces the subscription without losing or repeating messages
// [MQTT-3.8.4-3]).
func TestMQTTSessionBacklogInOrder(t *testing.T) {
	cases := []struct {
		name     string
		v5       bool
		qos      int
		restart  bool
		resub    bool
		messages int
	}{
		{name: "3.1.1-qos1", qos: 1, messages: 100},
		{name: "5-qos1", v5: true, qos: 1, messages: 100},
		{name: "3.1.1-qos2", qos: 2, messages: 100},
		{name: "5-qos1-resubscribe", v5: true, qos: 1, resub: true, messages: 100},
		{name: "3.1.1-qos1-restart", qos: 1, restart: true, messages: 100},
	}
	n := startNode(t)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cid, topic := "backlog-"+tc.name, "backlog/"+tc.name
			opts := []string{"--session", "600", "--qos", fmt.Sprint(tc.qos), "--quiet", "0.3"}
			if tc.v5 {
				opts = append(opts, "--v5")
			}
			pahoRun(t, n, nil, cid, append(opts, "--subscribe", topic)...)
			var sent []string
			for i := range tc.messages {
				sent = append(sent, fmt.Sprintf("m%d", i))
			}
			pubArgs := []string{"-t", topic, "-q", fmt.Sprint(tc.qos)}
			if tc.v5 {
				pubArgs = append(pubArgs, "-V", "5")
			}
			mosquittoPubLines(t, n, sent, pubArgs...)
			if tc.restart {
				if err := n.stop(); err != nil {
					t.Fatal(err)
				}
				n.start()
			}
			resume := append(opts[:len(opts):len(opts)], "--quiet", "2")
			if tc.resub {
				resume = append(resume, "--subscribe", topic)
			}
			got, _ := pahoRun(t, n, nil, cid, resume...)
			if p := payloads(got); !slices.Equal(p, sent) {
				t.Fatalf("got %d messages %v,\nwant %d in order", len(p), p, len(sent))
			}
			for _, m := range got {
				if m.dup {
					t.Fatalf("%s came with DUP=1 on its first delivery", m.payload)
				}
				if m.qos != tc.qos {
					t.Fatalf("%s came at QoS %d, want %d", m.payload, m.qos, tc.qos)
				}
			}
		})
	}
}

// TestMQTTReceiveMaximum (item 2): a client that announces Receive
// Maximum 2 has at most 2 unacknowledged QoS 1 PUBLISHes at a time
// [MQTT-3.3.4-9]; once it acknowledges them the rest follow, in order.
func TestMQTTReceiveMaximum(t *testing.T) {
	n := startNode(t)
	done := pahoSubscribed(t, n, "rm-sub", "--v5", "--receive-max", "2", "--subscribe", "rm/t", "--qos", "1",
		"--hold-acks", "2", "--quiet", "3")
	var sent []string
	for i := range 6 {
		sent = append(sent, fmt.Sprintf("r%d", i))
	}
	mosquittoPubLines(t, n, sent, "-t", "rm/t", "-q", "1", "-V", "5")
	got := <-done
	if p := payloads(got); !slices.Equal(p, sent) {
		t.Fatalf("got %v, want %v", p, sent)
	}
	// The first two come at once; the third only after the client's
	// PUBACKs, which it holds back for 2 s after the first.
	if d := got[2].at.Sub(got[0].at); d < 1500*time.Millisecond {
		t.Fatalf("the 3rd PUBLISH came %v after the 1st, while 2 were unacknowledged (Receive Maximum 2)", d)
	}
}

// TestMQTTPubackWithUserProperties (item 3): a QoS 1 PUBLISH with user
// properties is answered with PUBACK reason code 0x00 (0x01 is not a
// PUBACK reason code [MQTT-3.4.2-1]) and without the publisher's user
// properties echoed back; paho 1.6's network thread dies on 0x01 and the
// publish is never confirmed.
func TestMQTTPubackWithUserProperties(t *testing.T) {
	n := startNode(t)
	_, lines := pahoRun(t, n, nil, "puback-pub", "--v5", "--publish", "pa/t", "--user", "a=1", "--user", "b=2", "--quiet", "0.2")
	if !slices.Contains(lines, "puback rc=0 props=0") {
		t.Fatalf("no PUBACK paho accepts: %q", lines)
	}
	// Others keep working.
	mosquittoPub(t, n, "-t", "pa/t", "-q", "1", "-V", "5", "-D", "publish", "user-property", "a", "1", "-m", "x")
}

// TestMQTTMessageExpiryOffline (item 4): a message whose expiry passes
// while a persistent session is away is not delivered to it
// [MQTT-3.3.2-5]; one that is still alive comes with its remaining
// interval [MQTT-3.3.2-6]; the same across a restart.
func TestMQTTMessageExpiryOffline(t *testing.T) {
	for _, restart := range []bool{false, true} {
		t.Run(fmt.Sprintf("restart=%v", restart), func(t *testing.T) {
			n := startNode(t)
			opts := []string{"--v5", "--session", "600", "--qos", "1"}
			pahoRun(t, n, nil, "exp-sub", append(opts, "--subscribe", "exp/t", "--quiet", "0.3")...)
			mosquittoPub(t, n, "-V", "5", "-t", "exp/t", "-q", "1", "-D", "publish", "message-expiry-interval", "1", "-m", "short")
			mosquittoPub(t, n, "-V", "5", "-t", "exp/t", "-q", "1", "-D", "publish", "message-expiry-interval", "30", "-m", "long")
			if restart {
				n.kill()
				n.start()
			}
			time.Sleep(3 * time.Second)
			got, _ := pahoRun(t, n, nil, "exp-sub", append(opts, "--quiet", "1.5")...)
			if p := payloads(got); !slices.Equal(p, []string{"long"}) {
				t.Fatalf("got %v, want [long]", p)
			}
			left, _ := got[0].props["MessageExpiryInterval"].(float64)
			if left < 20 || left > 28 {
				t.Fatalf("MessageExpiryInterval %v, want what is left of 30 s 3 s later", got[0].props["MessageExpiryInterval"])
			}
		})
	}
}

// TestMQTTWillDelay (item 5): the will of a client that drops goes out
// only after its Will Delay Interval [MQTT-3.1.3-9], and not at all when
// the client resumes its session within it.
func TestMQTTWillDelay(t *testing.T) {
	n := startNode(t)
	host, port := hostPort(t, n.mqtt)
	sub := exec.Command(tool(t, "mosquitto_sub", "mosquitto-clients"), "-h", host, "-p", port, "-V", "5", "-t", "will/#",
		"-q", "1", "-v", "-W", "12")
	var out strings.Builder
	sub.Stdout = &out
	if err := sub.Start(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the will subscriber", func() bool {
		return subscriptions(t, n, func(c connJSON) bool { return c.Protocol == "mqtt" }) == 1
	})

	// Drops, and comes back within the delay: no will.
	pahoRun(t, n, nil, "will-back", "--v5", "--session", "60", "--will", "will/back", "--will-delay", "3", "--exit-abruptly", "0.3")
	time.Sleep(time.Second)
	pahoRun(t, n, nil, "will-back", "--v5", "--session", "60", "--quiet", "0.2")

	// Drops for good: the will comes after 2 s, not before.
	dropped := time.Now()
	pahoRun(t, n, nil, "will-gone", "--v5", "--session", "60", "--will", "will/gone", "--will-delay", "2", "--exit-abruptly", "0.3")
	var at time.Duration
	deadline := time.Now().Add(8 * time.Second)
	for time.Now().Before(deadline) && at == 0 {
		if strings.Contains(out.String(), "will/gone") {
			at = time.Since(dropped)
		}
		time.Sleep(20 * time.Millisecond)
	}
	sub.Process.Kill()
	sub.Wait()
	if at == 0 {
		t.Fatalf("no will within 8 s: %q", out.String())
	}
	if at < 2200*time.Millisecond {
		t.Fatalf("the will came %v after the drop, before its 2 s delay", at)
	}
	if strings.Contains(out.String(), "will/back") {
		t.Fatalf("the will of a client that resumed its session in time was sent: %q", out.String())
	}
}

// TestMQTTPropertiesEndToEnd (item 6): Payload Format Indicator
// [MQTT-3.3.2-4], Subscription Identifier [MQTT-3.3.4-3], user
// properties with a repeated key in their order [MQTT-3.3.2-17]
// [MQTT-3.3.2-18] and Retain As Published [MQTT-3.3.1-13] reach an MQTT 5
// subscriber as mosquitto_pub sent them.
func TestMQTTPropertiesEndToEnd(t *testing.T) {
	n := startNode(t)
	done := pahoSubscribed(t, n, "props-sub", "--v5", "--subscribe", "props/#", "--qos", "1", "--sub-id", "7", "--rap",
		"--quiet", "1.5")
	mosquittoPub(t, n, "-V", "5", "-t", "props/a", "-q", "1", "-r", "-m", "héllo",
		"-D", "publish", "payload-format-indicator", "1",
		"-D", "publish", "user-property", "n", "1", "-D", "publish", "user-property", "z", "x",
		"-D", "publish", "user-property", "n", "2")
	got := <-done
	if len(got) != 1 {
		t.Fatalf("got %+v", got)
	}
	m := got[0]
	if m.payload != "héllo" || !m.retain {
		t.Errorf("payload %q retain %v: want héllo with RETAIN=1 (retain as published)", m.payload, m.retain)
	}
	if pfi, _ := m.props["PayloadFormatIndicator"].(float64); pfi != 1 {
		t.Errorf("PayloadFormatIndicator %v, want 1", m.props["PayloadFormatIndicator"])
	}
	if ids, _ := json.Marshal(m.props["SubscriptionIdentifier"]); string(ids) != "[7]" {
		t.Errorf("SubscriptionIdentifier %s, want [7]", ids)
	}
	if up, _ := json.Marshal(m.props["UserProperty"]); string(up) != `[["n","1"],["z","x"],["n","2"]]` {
		t.Errorf("UserProperty %s, want [[n 1] [z x] [n 2]] in that order", up)
	}
	// A late subscriber without retain as published gets the retained
	// message with RETAIN=1 too (it is retained), and its properties.
	late, _ := pahoRun(t, n, nil, "props-late", "--v5", "--subscribe", "props/#", "--qos", "1", "--quiet", "1")
	if len(late) != 1 || !late[0].retain {
		t.Fatalf("late subscriber got %+v", late)
	}
	if up, _ := json.Marshal(late[0].props["UserProperty"]); string(up) != `[["n","1"],["z","x"],["n","2"]]` {
		t.Errorf("retained UserProperty %s", up)
	}
}

// TestSTOMPDurableBacklogInOrder (item 1, STOMP): a durable topic
// subscription that was away gets what was sent meanwhile once, in order,
// not flagged redelivered; the same after kill -9, except that the core's
// delivered mark, written up to 100 messages ahead of the deliveries it
// covers (core/queue.go, deliveredAhead), may flag a few that possibly
// were delivered, as JMS allows.
func TestSTOMPDurableBacklogInOrder(t *testing.T) {
	needPython(t, "stomp")
	n := startNode(t)
	host, port := hostPort(t, n.stomp)
	durable := func(quiet string) (got []string, redelivered int) {
		script(t, context.Background(), "stomp_durable.py", func(l string) bool {
			if f := strings.Fields(l); len(f) == 3 && f[0] == "got" {
				got = append(got, f[1])
				if f[2] == "true" {
					redelivered++
				}
			}
			return true
		}, host, port, "durable-order", "/topic/durable.order", "keeper", quiet)
		return got, redelivered
	}
	for _, restart := range []bool{false, true} {
		durable("0.2")
		var sent []string
		for i := range 100 {
			sent = append(sent, fmt.Sprintf("d%d-%v", i, restart))
		}
		for _, body := range sent {
			if out, code := hamq(t, "send", "--url=tcp://"+n.stomp, "--destination", "/topic/durable.order", "--persistent",
				"--body", body); code != 0 {
				t.Fatalf("send: %s", out)
			}
		}
		if restart {
			n.kill()
			n.start()
		}
		got, redelivered := durable("1.5")
		if !slices.Equal(got, sent) {
			t.Fatalf("restart=%v: got %d %v, want %d in order", restart, len(got), got, len(sent))
		}
		if allowed := map[bool]int{false: 0, true: 100}[restart]; redelivered > allowed {
			t.Errorf("restart=%v: %d of %d flagged redelivered on their first delivery", restart, redelivered, len(got))
		}
	}
}

// TestMQTTSessionBacklogAfterFailover (items 1 and 4 across a failover):
// a persistent MQTT 5 session away while its master is killed resumes on
// the new master with its backlog in the order of publication, without
// the message whose expiry passed meanwhile [MQTT-3.3.2-5], and with what
// is left of a longer one's interval [MQTT-3.3.2-6].
func TestMQTTSessionBacklogAfterFailover(t *testing.T) {
	c := startCluster(t)
	master, err := c.waitMaster(30 * time.Second)
	if err != nil {
		t.Fatal(err)
	}
	opts := []string{"--v5", "--session", "600", "--qos", "1"}
	pahoRun(t, master, nil, "fo-sub", append(opts, "--subscribe", "fo/t", "--quiet", "0.3")...)
	mosquittoPub(t, master, "-V", "5", "-t", "fo/t", "-q", "1", "-D", "publish", "message-expiry-interval", "1", "-m", "short")
	var sent []string
	for i := range 100 {
		sent = append(sent, fmt.Sprintf("m%d", i))
	}
	mosquittoPubLines(t, master, sent, "-t", "fo/t", "-q", "1", "-V", "5")
	mosquittoPub(t, master, "-V", "5", "-t", "fo/t", "-q", "1", "-D", "publish", "message-expiry-interval", "60", "-m", "long")
	sent = append(sent, "long")
	for _, n := range c.others(master) {
		waitCaughtUp(t, n, master)
	}

	master.kill()
	killed := time.Now()
	next, err := c.waitMaster(zkSessionTimeout + 5*time.Second)
	if err != nil {
		t.Fatalf("after kill -9 of the master: %v", err)
	}
	if d := time.Since(killed); d < 1500*time.Millisecond {
		time.Sleep(1500*time.Millisecond - d) // past the short one's expiry
	}
	got, _ := pahoRun(t, next, nil, "fo-sub", append(opts, "--quiet", "2")...)
	if p := payloads(got); !slices.Equal(p, sent) {
		t.Fatalf("got %d messages %v,\nwant %d in order, without the expired one", len(p), p, len(sent))
	}
	long := got[len(got)-1]
	if left, _ := long.props["MessageExpiryInterval"].(float64); left < 30 || left >= 60 {
		t.Fatalf("MessageExpiryInterval %v, want what is left of 60 s", long.props["MessageExpiryInterval"])
	}
}

// TestMQTTClientMaximumPacketSize: a message larger than the Maximum
// Packet Size the client announced is not sent to it, and is treated as
// delivered [MQTT-3.1.2-24] [MQTT-3.1.2-25]: with Receive Maximum 1 the
// next message still comes.
func TestMQTTClientMaximumPacketSize(t *testing.T) {
	n := startNode(t)
	done := pahoSubscribed(t, n, "mps-sub", "--v5", "--session", "600", "--receive-max", "1", "--max-packet", "200",
		"--subscribe", "mps/t", "--qos", "1", "--quiet", "2")
	mosquittoPubLines(t, n, []string{strings.Repeat("x", 1000), "small"}, "-t", "mps/t", "-q", "1", "-V", "5")
	if p := payloads(<-done); !slices.Equal(p, []string{"small"}) {
		t.Fatalf("got %v, want [small]", p)
	}
	// Nothing is left for the session to be sent again, nor held for it
	// in the core.
	if again, _ := pahoRun(t, n, nil, "mps-sub", "--v5", "--session", "600", "--max-packet", "200", "--quiet", "1"); len(again) != 0 {
		t.Fatalf("on resuming the session got %v", payloads(again))
	}
	resp, err := http.Get("http://" + n.http + "/api/topics/mps.t")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var st struct{ Size, Dequeued int }
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		t.Fatal(err)
	}
	if st.Size != 0 || st.Dequeued != 2 {
		t.Fatalf("the topic holds %d message(s), %d of 2 dequeued: the one too large is still kept for the session", st.Size, st.Dequeued)
	}
}
