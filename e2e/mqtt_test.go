package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// mqttSub runs mqtt_sub.py to its quiet end and returns "topic payload"
// lines in arrival order. ready, when not nil, is closed at the SUBACK (or
// at the CONNACK when not subscribing).
func mqttSub(t *testing.T, n *node, ready chan struct{}, args ...string) []string {
	t.Helper()
	needPython(t, "paho.mqtt.client")
	host, port := hostPort(t, n.mqtt)
	var got []string
	script(t, context.Background(), "mqtt_sub.py", func(l string) bool {
		switch {
		case strings.HasPrefix(l, "got "):
			got = append(got, strings.TrimPrefix(l, "got "))
		case strings.HasPrefix(l, "subscribed"), strings.HasPrefix(l, "connected") && strings.Contains(strings.Join(args, " "), "--no-subscribe"):
			if ready != nil {
				close(ready)
				ready = nil
			}
		}
		return true
	}, append([]string{host, port}, args...)...)
	return got
}

func mosquittoPub(t *testing.T, n *node, args ...string) {
	t.Helper()
	host, port := hostPort(t, n.mqtt)
	pub := tool(t, "mosquitto_pub", "mosquitto-clients")
	out, err := exec.Command(pub, append([]string{"-h", host, "-p", port}, args...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("mosquitto_pub %v: %v %s", args, err, out)
	}
}

// TestMQTTAndSTOMPWithRealClients: mosquitto_pub reaches a stomp.py
// subscriber of /topic/…, and a STOMP send reaches paho subscribed with a
// wildcard.
func TestMQTTAndSTOMPWithRealClients(t *testing.T) {
	n := startNode(t)
	ready := make(chan struct{})
	done := make(chan []string)
	go func() { done <- mqttSub(t, n, ready, "paho-sub", "home/+/temp", "1", "2") }()
	<-ready
	if out, code := hamq(t, "send", "--url=tcp://"+n.stomp, "--destination", "/topic/home.kitchen.temp", "--body", "from-stomp"); code != 0 {
		t.Fatalf("send: %s", out)
	}
	if got := <-done; len(got) != 1 || got[0] != "home/kitchen/temp from-stomp" {
		t.Fatalf("paho got %q", got)
	}

	rcv := exec.Command(hamqBin, "receive", "--url=tcp://"+n.stomp, "--destination", "/topic/home.>", "--count", "1", "--timeout", "10s")
	var out strings.Builder
	rcv.Stdout = &out
	if err := rcv.Start(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the STOMP subscription", func() bool { return stompSubscriptions(t, n) == 1 })
	mosquittoPub(t, n, "-t", "home/hall/temp", "-q", "1", "-m", "from-mosquitto")
	if err := rcv.Wait(); err != nil {
		t.Fatalf("receive: %v", err)
	}
	if strings.TrimSpace(out.String()) != "from-mosquitto" {
		t.Fatalf("STOMP got %q", out.String())
	}
}

// stompSubscriptions counts the subscriptions of STOMP connections.
func stompSubscriptions(t *testing.T, n *node) int {
	return subscriptions(t, n, func(c connJSON) bool { return c.Protocol == "stomp" })
}

// connJSON is a connection as the admin API lists it.
type connJSON struct {
	Protocol      string `json:"protocol"`
	ClientID      string `json:"clientId"`
	Subscriptions int    `json:"subscriptions"`
}

// subscriptions counts the subscriptions of the connections that match,
// from the admin API.
func subscriptions(t *testing.T, n *node, match func(connJSON) bool) int {
	t.Helper()
	resp, err := http.Get("http://" + n.http + "/api/connections")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var conns []connJSON
	if err := json.NewDecoder(resp.Body).Decode(&conns); err != nil {
		t.Fatalf("/api/connections: %v", err)
	}
	total := 0
	for _, c := range conns {
		if match(c) {
			total += c.Subscriptions
		}
	}
	return total
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("no %s within 10s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestPahoPersistentSessionKill9: a persistent session subscribed at QoS 1
// gets every message published while it was away, across kill -9; so does
// a retained message.
func TestPahoPersistentSessionKill9(t *testing.T) {
	n := startNode(t)
	if got := mqttSub(t, n, nil, "keeper", "orders/#", "1", "0.5", "--session"); len(got) != 0 {
		t.Fatalf("nothing sent yet, got %q", got)
	}
	for i := range 100 {
		mosquittoPub(t, n, "-t", "orders/new", "-q", "1", "-m", fmt.Sprint("order-", i))
	}
	mosquittoPub(t, n, "-t", "status/door", "-q", "1", "-r", "-m", "open")
	n.kill()
	n.start()
	got := mqttSub(t, n, nil, "keeper", "orders/#", "1", "2", "--session", "--no-subscribe")
	seen := map[string]int{}
	for _, g := range got {
		seen[g]++
	}
	for i := range 100 {
		if k := seen[fmt.Sprint("orders/new order-", i)]; k != 1 {
			t.Errorf("order-%d received %d times", i, k)
		}
	}
	if retained := mqttSub(t, n, nil, "late", "status/#", "1", "1"); len(retained) != 1 || retained[0] != "status/door open" {
		t.Fatalf("retained after kill -9: %q", retained)
	}
}
