package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// scheduledTimes runs testdata/scheduled.py and returns, per message name,
// when the broker confirmed it and when it arrived (unix ms).
func scheduledTimes(t *testing.T, args ...string) (sent, got map[string]int64) {
	t.Helper()
	sent, got = map[string]int64{}, map[string]int64{}
	script(t, context.Background(), "scheduled.py", func(line string) bool {
		f := strings.Fields(line)
		if len(f) == 3 {
			ms, _ := strconv.ParseInt(f[2], 10, 64)
			map[string]map[string]int64{"sent": sent, "got": got}[f[0]][f[1]] = ms
		}
		return true
	}, args...)
	return sent, got
}

// checkOnTime fails unless name arrived no earlier than due and at most
// slack after it.
func checkOnTime(t *testing.T, name string, due, got int64, slack time.Duration) {
	t.Helper()
	switch late := time.Duration(got-due) * time.Millisecond; {
	case got == 0:
		t.Errorf("%s never arrived", name)
	case late < 0:
		t.Errorf("%s arrived %v early", name, -late)
	case late > slack:
		t.Errorf("%s arrived %v late", name, late)
	default:
		t.Logf("%s arrived %v after its time", name, late)
	}
}

// TestScheduledDeliveryEveryProtocol: each protocol's own way of asking for
// a later delivery (STOMP's AMQ_SCHEDULED_DELAY and AMQ_SCHEDULED_CRON
// headers, AMQP's x-opt-delivery-delay annotation, an MQTT 5 user
// property) with its real client; each message arrives on time, none
// early. The measured delay counts from the client's confirmation, so
// "early" has a margin of the confirmation's own round trip.
func TestScheduledDeliveryEveryProtocol(t *testing.T) {
	n := startNode(t)
	const delay = 1500
	for _, proto := range []string{"stomp", "amqp", "mqtt"} {
		t.Run(proto, func(t *testing.T) {
			t.Parallel()
			needPython(t, map[string]string{"stomp": "stomp", "amqp": "proton", "mqtt": "paho.mqtt.client"}[proto])
			host, port := hostPort(t, n.clientPorts()[proto])
			args := []string{proto, host, port, strconv.Itoa(delay)}
			if proto == "stomp" {
				// A delivery at the next minute: up to a minute's wait,
				// spent while the other protocols run.
				args = append(args, "--cron", "* * * * *")
			}
			sent, got := scheduledTimes(t, args...)
			// The send is confirmed after the broker read it: the
			// schedule starts before sent, by at most the round trip.
			checkOnTime(t, proto+" delayed", sent["delayed"]+delay-50, got["delayed"], 300*time.Millisecond)
			if proto == "stomp" {
				minute := time.UnixMilli(sent["cron"]).Truncate(time.Minute).Add(time.Minute).UnixMilli()
				checkOnTime(t, "stomp cron", minute, got["cron"], 300*time.Millisecond)
			}
		})
	}
}

// TestClusterScheduledSurvivesFailover: on a 3-node cluster a delayed
// message and a repeating one are scheduled through stomp.py; the master
// is killed -9 in between. The delayed one arrives from the new master on
// time (it falls due after the failover) and once; the repeating one
// makes all its deliveries, each once (deliveries due while there was no
// master are made up at once by the new one).
func TestClusterScheduledSurvivesFailover(t *testing.T) {
	needPython(t, "stomp")
	c := startCluster(t)
	master, err := c.waitMaster(30 * time.Second)
	if err != nil {
		t.Fatal(err)
	}
	host, port := hostPort(t, master.stomp)
	const dest, once, period, repeat = "/queue/scheduled.failover", 6000, 1000, 9
	sent := map[string]int64{}
	for _, s := range [][]string{
		{"once", "AMQ_SCHEDULED_DELAY=" + strconv.Itoa(once)},
		{"tick", "AMQ_SCHEDULED_DELAY=1000", "AMQ_SCHEDULED_PERIOD=" + strconv.Itoa(period), "AMQ_SCHEDULED_REPEAT=" + strconv.Itoa(repeat)},
	} {
		script(t, context.Background(), "stomp_send_headers.py", func(l string) bool {
			if f := strings.Fields(l); len(f) == 3 && f[0] == "sent" {
				sent[f[1]], _ = strconv.ParseInt(f[2], 10, 64)
			}
			return true
		}, append([]string{host, port, dest}, s...)...)
	}
	type arrival struct {
		id string
		at int64
	}
	got := map[string][]arrival{}
	done := make(chan struct{})
	go func() {
		defer close(done)
		script(t, context.Background(), "stomp_failover_receive.py", func(l string) bool {
			if f := strings.Fields(l); len(f) == 4 && f[0] == "got" {
				got[f[1]] = append(got[f[1]], arrival{f[2], time.Now().UnixMilli()})
			}
			return true
		}, c.stompHosts(), dest, "5")
	}()
	time.Sleep(1500 * time.Millisecond)
	master.kill()
	killed := time.Now()
	if _, err := c.waitMaster(zkSessionTimeout + 5*time.Second); err != nil {
		t.Fatal(err)
	}
	t.Logf("new master %v after the kill", time.Since(killed).Round(time.Millisecond))
	<-done

	distinct := func(as []arrival) map[string]int64 {
		first := map[string]int64{}
		for _, a := range as {
			if _, ok := first[a.id]; !ok {
				first[a.id] = a.at
			}
		}
		return first
	}
	if o := distinct(got["once"]); len(o) != 1 {
		t.Errorf("the delayed message arrived as %d distinct messages: %v", len(o), got["once"])
	} else {
		for _, at := range o {
			checkOnTime(t, "delayed across the failover", sent["once"]+once-50, at, time.Second)
		}
	}
	ticks := distinct(got["tick"])
	if len(ticks) != repeat+1 {
		t.Errorf("the repeating message made %d distinct deliveries, want %d: %v", len(ticks), repeat+1, got["tick"])
	}
	for id, at := range ticks {
		if at < sent["tick"]+1000-50 {
			t.Errorf("delivery %s came %d ms after the send, before the first was due", id, at-sent["tick"])
		}
	}
}

// TestClusterDedupAcrossFailovers: stomp.py sends 1,000 messages, each
// with its name as _HQ_DUPL_ID, through the failover list and sends again
// whatever was unconfirmed when its connection dropped; the master is
// killed -9 twice meanwhile (the first one restarted in between, so that
// a quorum is left). The consumer gets every one of the 1,000, and none a
// second time as a new message: a copy it gets again is the same message
// redelivered, never a resend enqueued twice.
func TestClusterDedupAcrossFailovers(t *testing.T) {
	needPython(t, "stomp")
	c := startCluster(t)
	if _, err := c.waitMaster(30 * time.Second); err != nil {
		t.Fatal(err)
	}
	type copy struct{ id, redelivered string }
	got := map[string][]copy{}
	received := make(chan struct{})
	go func() {
		defer close(received)
		script(t, context.Background(), "stomp_failover_receive.py", func(l string) bool {
			if f := strings.Fields(l); len(f) == 4 && f[0] == "got" {
				got[f[1]] = append(got[f[1]], copy{f[2], f[3]})
			}
			return true
		}, c.stompHosts(), "/queue/dedup", "10")
	}()
	confirmed, kills, reconnects := 0, 0, 0
	script(t, context.Background(), "stomp_failover_send.py", func(l string) bool {
		f := strings.Fields(l)
		switch {
		case len(f) == 2 && f[0] == "confirmed":
			confirmed++
			if confirmed == 300 || confirmed == 650 {
				m, err := c.waitMaster(zkSessionTimeout + 5*time.Second)
				if err != nil {
					t.Errorf("before kill %d: %v", kills+1, err)
					return true
				}
				m.kill()
				kills++
				if kills == 1 {
					m.start() // back as a slave, so that the next kill leaves a quorum
				}
			}
		case len(f) == 1 && f[0] == "reconnected":
			reconnects++
		}
		return true
	}, c.stompHosts(), "/queue/dedup", "1000", "0.0005", "dedup")
	<-received
	if kills != 2 || reconnects < 2 {
		t.Fatalf("%d kills and %d reconnects during the sends, want 2 and at least 2", kills, reconnects)
	}
	resent, redelivered := 0, 0
	for i := range 1000 {
		body := fmt.Sprintf("msg-%04d", i)
		copies := got[body]
		if len(copies) == 0 {
			t.Errorf("%s never received", body)
			continue
		}
		for _, cp := range copies[1:] {
			if cp.id != copies[0].id {
				resent++
				t.Errorf("%s arrived as two messages (%s and %s): a resend was enqueued again", body, copies[0].id, cp.id)
			} else {
				redelivered++
			}
		}
	}
	t.Logf("confirmed %d, %d reconnects, received %d distinct, redelivered %d, resends enqueued twice %d",
		confirmed, reconnects, len(got), redelivered, resent)
	m, err := c.waitMaster(10 * time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("the last master dropped %d resends to /queue/dedup", destination(t, m, "dedup").Duplicates)
}

// TestScheduledListAndCancel: hamq scheduled lists what stomp.py scheduled
// and cancels it; a cancelled job never delivers.
func TestScheduledListAndCancel(t *testing.T) {
	needPython(t, "stomp")
	n := startNode(t)
	host, port := hostPort(t, n.stomp)
	script(t, context.Background(), "stomp_send_headers.py", func(string) bool { return true },
		host, port, "/queue/later", "tomorrow", "AMQ_SCHEDULED_DELAY=2000", "AMQ_SCHEDULED_PERIOD=500", "AMQ_SCHEDULED_REPEAT=3")
	out, code := hamq(t, "scheduled", "--http", "http://"+n.http)
	if code != 0 || !strings.Contains(out, "queue://later") || !strings.Contains(out, "1 of 1 scheduled") {
		t.Fatalf("hamq scheduled (exit %d):\n%s", code, out)
	}
	job := strings.Fields(strings.Split(out, "\n")[1])[0]
	if out, code := hamq(t, "scheduled", "--http", "http://"+n.http, "--cancel", job); code != 0 || !strings.Contains(out, "cancelled "+job) {
		t.Fatalf("hamq scheduled --cancel %s (exit %d):\n%s", job, code, out)
	}
	if out, code := hamq(t, "scheduled", "--http", "http://"+n.http, "--cancel", job); code == 0 {
		t.Errorf("cancelling %s twice succeeded:\n%s", job, out)
	}
	time.Sleep(3 * time.Second) // past all four deliveries' times
	if out, _ := hamq(t, "scheduled", "--http", "http://"+n.http); !strings.Contains(out, "0 of 0 scheduled") {
		t.Errorf("after the cancel:\n%s", out)
	}
	if out, _ := hamq(t, "queues", "--http", "http://"+n.http); strings.Contains(out, "later") {
		t.Errorf("the cancelled job delivered:\n%s", out)
	}
}

// TestDedupEveryProtocol: each protocol's client sends one message twice,
// named its protocol's way (STOMP header and MQTT 5 user property
// dedup-id; AMQP message-id where a policy.dedup rule says messageId);
// both sends are confirmed, one message is enqueued and one duplicate
// counted.
func TestDedupEveryProtocol(t *testing.T) {
	conf := filepath.Join(t.TempDir(), "hamq.yaml")
	err := os.WriteFile(conf, []byte(`policy:
  dedup:
    - destinations: "amqp.>"
      size: 100
      ttl: 1m
      messageId: true
    - destinations: ">"
      size: 100
      ttl: 1m
`), 0o644)
	if err != nil {
		t.Fatal(err)
	}
	n := newNode(t)
	n.extra = []string{"--config", conf}
	n.start()
	for _, c := range []struct{ proto, module, dest, name string }{
		{"stomp", "stomp", "/queue/dedup.stomp", "dedup.stomp"},
		{"mqtt", "paho.mqtt.client", "dedup/mqtt", "dedup.mqtt"},
		{"amqp", "proton", "amqp.dedup", "amqp.dedup"},
	} {
		needPython(t, c.module)
		host, port := hostPort(t, n.clientPorts()[c.proto])
		confirmed := 0
		script(t, context.Background(), "dedup_send.py", func(l string) bool {
			if strings.HasPrefix(l, "confirmed") {
				confirmed++
			}
			return true
		}, c.proto, host, port, c.dest, "order-17")
		if confirmed != 2 {
			t.Errorf("%s: %d of 2 sends confirmed", c.proto, confirmed)
		}
		if c.proto == "mqtt" {
			continue // a topic nobody subscribes to keeps nothing: counted below
		}
		d := destination(t, n, c.name)
		if d.Enqueued != 1 || d.Duplicates != 1 {
			t.Errorf("%s: enqueued %d, duplicates %d; want 1 and 1", c.proto, d.Enqueued, d.Duplicates)
		}
	}
	if d := destination(t, n, "dedup.mqtt"); d.Duplicates != 1 {
		t.Errorf("mqtt: duplicates %d, want 1", d.Duplicates)
	}
}

type destStats struct {
	Name       string
	Enqueued   int64
	Duplicates int64
}

// destination reads one destination's counters from the admin API.
func destination(t *testing.T, n *node, name string) destStats {
	t.Helper()
	resp, err := http.Get("http://" + n.http + "/api/destinations")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var dests []destStats
	if err := json.NewDecoder(resp.Body).Decode(&dests); err != nil {
		t.Fatal(err)
	}
	for _, d := range dests {
		if d.Name == name {
			return d
		}
	}
	t.Fatalf("no destination %s in /api/destinations", name)
	return destStats{}
}

// TestCLISendNamesMessages: hamq send names each message for the
// duplicate window, differently, so that its resends after a failover
// are dropped and its messages are not.
func TestCLISendNamesMessages(t *testing.T) {
	n := startNode(t)
	if out, code := hamq(t, "send", "--url", "tcp://"+n.stomp, "--destination", "/queue/named", "--count", "3", "--body", "x"); code != 0 {
		t.Fatalf("hamq send: %s", out)
	}
	out, _ := hamq(t, "browse", "named", "--http", "http://"+n.http)
	names := map[string]bool{}
	for _, l := range strings.Split(out, "\n") {
		if f := strings.Fields(l); len(f) == 2 && f[0] == "_HQ_DUPL_ID:" {
			names[f[1]] = true
		}
	}
	if len(names) != 3 {
		t.Errorf("3 messages sent with %d distinct _HQ_DUPL_ID:\n%s", len(names), out)
	}
}
