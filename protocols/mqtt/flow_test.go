package mqtt

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/mochi-mqtt/server/v2/packets"
)

// A QoS 2 message goes out once even when the subscriber drops the
// connection after PUBREC: on reconnect it gets PUBREL, not the message.
func TestQoS2OutboundExactlyOnceAcrossReconnect(t *testing.T) {
	br := startBroker(t)
	sub := dialRaw(t, br.mqttAddr, 4)
	sub.connect("q2-sub", false)
	sub.send(packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Subscribe, Qos: 1}, PacketID: 1,
		Filters: packets.Subscriptions{{Filter: "q2/#", Qos: 2}}})
	sub.expect(packets.Suback)
	pub := br.client("q2-pub", true, nil)
	wait(t, pub.Publish("q2/x", 2, false, "once"))
	pk := sub.expect(packets.Publish)
	if string(pk.Payload) != "once" || pk.FixedHeader.Qos != 2 {
		t.Fatalf("got %+v", pk)
	}
	sub.send(ackPacket(packets.Pubrec, pk.PacketID))
	time.Sleep(50 * time.Millisecond) // let the PUBREC be read before the drop
	sub.c.Close()

	again := dialRaw(t, br.mqttAddr, 4)
	if ack := again.connect("q2-sub", false); !ack.SessionPresent {
		t.Fatal("session not present after reconnect")
	}
	rel := again.expect(packets.Pubrel)
	if rel.PacketID != pk.PacketID {
		t.Fatalf("PUBREL for %d, want %d", rel.PacketID, pk.PacketID)
	}
	again.send(ackPacket(packets.Pubcomp, pk.PacketID))
	if extra, err := again.readWithin(300 * time.Millisecond); err == nil {
		t.Fatalf("after the flow completed: %+v", extra)
	}
}

// A QoS 2 message comes in once even when the publisher, unsure, sends it
// again after reconnecting.
func TestQoS2InboundExactlyOnceAcrossReconnect(t *testing.T) {
	br := startBroker(t)
	got := make(chan received, 10)
	obs := br.client("observer", true, got)
	wait(t, obs.Subscribe("q2/in", 2, nil))

	p := dialRaw(t, br.mqttAddr, 4)
	p.connect("q2-pub", false)
	p.send(publishPacket("q2/in", "in-once", 2, 7, false))
	p.expect(packets.Pubrec)
	p.c.Close()

	p2 := dialRaw(t, br.mqttAddr, 4)
	p2.connect("q2-pub", false)
	p2.send(publishPacket("q2/in", "in-once", 2, 7, true))
	p2.send(ackPacket(packets.Pubrel, 7))
	// The session's PUBREC is resent on reconnect and the duplicate
	// PUBLISH is answered with one too; then the PUBREL completes.
	for {
		pk, err := p2.read()
		if err != nil {
			t.Fatal(err)
		}
		if pk.PacketID != 7 {
			t.Fatalf("unexpected %+v", pk)
		}
		if pk.FixedHeader.Type == packets.Pubcomp {
			break
		}
		if pk.FixedHeader.Type != packets.Pubrec {
			t.Fatalf("want PUBREC or PUBCOMP, got %d", pk.FixedHeader.Type)
		}
	}

	if r := next(t, got); r.body != "in-once" {
		t.Fatalf("got %+v", r)
	}
	select {
	case r := <-got:
		t.Fatalf("delivered twice: %+v", r)
	case <-time.After(300 * time.Millisecond):
	}
}

// TestBadInput: each bad packet is refused with MQTT's reason and its
// connection closed, while another client keeps working.
func TestBadInput(t *testing.T) {
	br := startBroker(t, func(o *Options) { o.MaxPacketSize = 1 << 20; o.ConnectTimeout = time.Second })
	got := make(chan received, 20)
	good := br.client("good", true, got)
	wait(t, good.Subscribe("ok/#", 1, nil))
	big := strings.Repeat("x", 2<<20)
	for _, tc := range []struct {
		name  string
		run   func(r *raw) []packets.Packet
		check func(t *testing.T, got []packets.Packet)
	}{
		{"silent before CONNECT", func(r *raw) []packets.Packet {
			return r.closedAfter() // within its 5 s, past the connect timeout
		}, func(t *testing.T, got []packets.Packet) {
			if len(got) != 0 {
				t.Fatalf("want the connection closed, got %+v", got)
			}
		}},
		{"malformed packet", func(r *raw) []packets.Packet {
			r.write([]byte{0x10, 0xff, 0xff, 0xff, 0xff, 0x7f}) // remaining length of five bytes
			return r.closedAfter()
		}, nil},
		{"packet over the size limit", func(r *raw) []packets.Packet {
			r.version = 5
			r.connect("big", true)
			var buf bytes.Buffer
			pk := publishPacket("ok/big", big, 0, 0, false)
			pk.ProtocolVersion = 5
			pk.PublishEncode(&buf)
			r.c.Write(buf.Bytes()) // the server may close before taking it all
			return r.closedAfter()
		}, func(t *testing.T, got []packets.Packet) {
			if len(got) != 1 || got[0].FixedHeader.Type != packets.Disconnect || got[0].ReasonCode != packets.ErrPacketTooLarge.Code {
				t.Fatalf("want DISCONNECT packet too large, got %+v", got)
			}
		}},
		{"unsupported protocol level", func(r *raw) []packets.Packet {
			r.version = 6
			r.send(packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Connect},
				Connect: packets.ConnectParams{ProtocolName: []byte("MQTT"), ClientIdentifier: "v6", Clean: true}})
			r.version = 4
			return r.closedAfter()
		}, func(t *testing.T, got []packets.Packet) {
			if len(got) != 1 || got[0].FixedHeader.Type != packets.Connack || got[0].ReasonCode != packets.ErrProtocolViolationProtocolVersion.Code {
				t.Fatalf("want CONNACK unacceptable protocol version, got %+v", got)
			}
		}},
		{"invalid filter", func(r *raw) []packets.Packet {
			r.connect("badfilter", true)
			r.send(packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Subscribe, Qos: 1}, PacketID: 1,
				Filters: packets.Subscriptions{{Filter: "a/#/b", Qos: 1}}})
			return r.closedAfter()
		}, func(t *testing.T, got []packets.Packet) {
			if len(got) != 1 || got[0].FixedHeader.Type != packets.Suback || len(got[0].ReasonCodes) != 1 || got[0].ReasonCodes[0] < 0x80 {
				t.Fatalf("want SUBACK with a failure code, got %+v", got)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := dialRaw(t, br.mqttAddr, 4)
			out := tc.run(r)
			if tc.check != nil {
				tc.check(t, out)
			}
			wait(t, good.Publish("ok/"+tc.name, 1, false, tc.name))
			if m := next(t, got); m.body != tc.name {
				t.Fatalf("other client got %+v", m)
			}
		})
	}
}
