package mqtt

import (
	"fmt"
	"testing"
	"time"

	"github.com/go-stomp/stomp/v3"
	"github.com/mochi-mqtt/server/v2/packets"
)

// MQTT 5 properties travel through the core to STOMP headers and back.
func TestMQTT5PropertiesAcrossProtocols(t *testing.T) {
	br := startBroker(t)
	sc, err := stomp.Dial("tcp", br.stompAddr)
	if err != nil {
		t.Fatal(err)
	}
	defer sc.Disconnect()
	ssub, err := sc.Subscribe("/topic/v5.in", stomp.AckAuto)
	if err != nil {
		t.Fatal(err)
	}
	waitSubscriptions(t, br, 1)

	p := dialRaw(t, br.mqttAddr, 5)
	p.connect("v5-pub", true)
	pk := publishPacket("v5/in", "hello", 1, 1, false)
	pk.Properties = packets.Properties{ContentType: "text/plain", ResponseTopic: "v5/replies",
		CorrelationData: []byte("corr-1"), MessageExpiryInterval: 60, User: []packets.UserProperty{{Key: "region", Val: "eu"}}}
	pk.Mods.AllowResponseInfo = true // mochi's encoder leaves these out otherwise
	p.send(pk)
	p.expect(packets.Puback)
	select {
	case m := <-ssub.C:
		h := m.Header
		if string(m.Body) != "hello" || m.ContentType != "text/plain" || h.Get("correlation-id") != "corr-1" ||
			h.Get("reply-to") != "/topic/v5.replies" || h.Get("region") != "eu" || h.Get("expires") == "0" {
			t.Fatalf("STOMP got %q with headers %v", m.Body, h)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("nothing over STOMP")
	}

	s := dialRaw(t, br.mqttAddr, 5)
	s.connect("v5-sub", true)
	s.send(packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Subscribe, Qos: 1}, PacketID: 1,
		Filters: packets.Subscriptions{{Filter: "v5/out", Qos: 1}}})
	s.expect(packets.Suback)
	err = sc.Send("/topic/v5.out", "application/json", []byte(`{"a":1}`), stomp.SendOpt.Receipt,
		stomp.SendOpt.Header("correlation-id", "corr-2"), stomp.SendOpt.Header("reply-to", "/topic/v5.back"),
		stomp.SendOpt.Header("tenant", "acme"), stomp.SendOpt.Header("persistent", "true"))
	if err != nil {
		t.Fatal(err)
	}
	got := s.expect(packets.Publish)
	pr := got.Properties
	if string(got.Payload) != `{"a":1}` || pr.ContentType != "application/json" || string(pr.CorrelationData) != "corr-2" ||
		pr.ResponseTopic != "v5/back" || !hasUser(pr.User, "tenant", "acme") || got.FixedHeader.Qos != 1 {
		t.Fatalf("MQTT 5 got %+v", got)
	}
}

func hasUser(us []packets.UserProperty, k, v string) bool {
	for _, u := range us {
		if u.Key == k && u.Val == v {
			return true
		}
	}
	return false
}

func waitSubscriptions(t *testing.T, br *broker, n int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		total := 0
		for _, c := range br.b.Connections() {
			total += c.Subscriptions
		}
		if total >= n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d subscriptions", total, n)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// A connection beyond maxConnections gets CONNACK "server unavailable"
// (3.1.1) and is closed; those connected keep working.
func TestConnectionLimit(t *testing.T) {
	br := startBroker(t, func(o *Options) { o.MaxConnections = 2 })
	got := make(chan received, 1)
	a := br.client("a", true, got)
	wait(t, a.Subscribe("lim/#", 0, nil))
	br.client("b", true, nil)
	r := dialRaw(t, br.mqttAddr, 4)
	r.send(packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Connect},
		Connect: packets.ConnectParams{ProtocolName: []byte("MQTT"), ClientIdentifier: "c", Clean: true}})
	out := r.closedAfter()
	const serverUnavailable = 0x03 // MQTT 3.1.1's CONNACK return code
	if len(out) != 1 || out[0].FixedHeader.Type != packets.Connack || out[0].ReasonCode != serverUnavailable {
		var got []string
		for _, pk := range out {
			got = append(got, fmt.Sprintf("type %d reason %#x", pk.FixedHeader.Type, pk.ReasonCode))
		}
		t.Fatalf("third connection got %v, want CONNACK %#x", got, serverUnavailable)
	}
	wait(t, a.Publish("lim/x", 0, false, "still"))
	if m := next(t, got); m.body != "still" {
		t.Fatalf("got %+v", m)
	}
}

// A new subscription's retained messages come after its SUBACK with the
// retain flag, at most at the subscription's QoS and with its identifier;
// MQTT 5's retain handling and no-local hold them back.
func TestRetainedMessagesOnSubscribe(t *testing.T) {
	br := startBroker(t)
	p := dialRaw(t, br.mqttAddr, 5)
	p.connect("rh-pub", true)
	p.send(publishPacket("rh/a", "A", 1, 1, false))
	p.expect(packets.Puback)
	pk := publishPacket("rh/a", "A", 1, 2, false)
	pk.FixedHeader.Retain = true
	p.send(pk)
	p.expect(packets.Puback)

	s := dialRaw(t, br.mqttAddr, 5)
	s.connect("rh-sub", true)
	subscribe := func(r *raw, id uint16, f packets.Subscription) {
		t.Helper()
		pk := packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Subscribe, Qos: 1}, PacketID: id,
			Filters: packets.Subscriptions{f}}
		if f.Identifier > 0 {
			pk.Properties.SubscriptionIdentifier = []int{f.Identifier}
		}
		r.send(pk)
		if ack := r.expect(packets.Suback); ack.ReasonCodes[0] > 2 {
			t.Fatalf("%s refused: %#x", f.Filter, ack.ReasonCodes[0])
		}
	}
	nothing := func(r *raw, what string) {
		t.Helper()
		if pk, err := r.readWithin(300 * time.Millisecond); err == nil {
			t.Fatalf("%s: got %+v", what, pk)
		}
	}

	subscribe(s, 1, packets.Subscription{Filter: "rh/#", Qos: 0, Identifier: 7})
	got := s.expect(packets.Publish)
	if string(got.Payload) != "A" || !got.FixedHeader.Retain || got.FixedHeader.Qos != 0 ||
		len(got.Properties.SubscriptionIdentifier) != 1 || got.Properties.SubscriptionIdentifier[0] != 7 {
		t.Fatalf("retained message: %+v", got)
	}
	nothing(s, "one retained message")
	subscribe(s, 2, packets.Subscription{Filter: "rh/#", Qos: 1, RetainHandling: 1})
	nothing(s, "retain handling 1 on an existing subscription")
	subscribe(s, 3, packets.Subscription{Filter: "rh/+", Qos: 1, RetainHandling: 2})
	nothing(s, "retain handling 2")
	subscribe(s, 4, packets.Subscription{Filter: "rh/a", Qos: 1, RetainHandling: 1})
	if got := s.expect(packets.Publish); string(got.Payload) != "A" || !got.FixedHeader.Retain || got.FixedHeader.Qos != 1 {
		t.Fatalf("retained message at QoS 1: %+v", got)
	}
	subscribe(p, 3, packets.Subscription{Filter: "rh/#", Qos: 1, NoLocal: true})
	nothing(p, "no-local")

	// A live message on the same topic is not flagged retained.
	p.send(publishPacket("rh/a", "live", 0, 0, false))
	for range 3 { // one per subscription of s that matches
		if got := s.expect(packets.Publish); string(got.Payload) != "live" || got.FixedHeader.Retain {
			t.Fatalf("live message: %+v", got)
		}
	}
}
