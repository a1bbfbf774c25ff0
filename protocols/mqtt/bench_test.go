package mqtt

import (
	"bytes"
	"strings"
	"testing"

	"github.com/mochi-mqtt/server/v2/packets"
)

// mochi's PUBLISH codec, which every MQTT message crosses twice: decoded
// from its publisher, encoded to its subscriber (MQTT 5, QoS 1, 1 KiB).

func benchPublish() packets.Packet {
	return packets.Packet{
		FixedHeader:     packets.FixedHeader{Type: packets.Publish, Qos: 1},
		TopicName:       "hamq/bench",
		PacketID:        7,
		Payload:         []byte(strings.Repeat("x", 1024)),
		ProtocolVersion: 5,
		Properties:      packets.Properties{User: []packets.UserProperty{{Key: "k", Val: "v"}}},
	}
}

func BenchmarkPublishEncode(b *testing.B) {
	pk := benchPublish()
	var buf bytes.Buffer
	b.ReportAllocs()
	for b.Loop() {
		buf.Reset()
		if err := pk.PublishEncode(&buf); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkPublishDecode(b *testing.B) {
	pk := benchPublish()
	var buf bytes.Buffer
	if err := pk.PublishEncode(&buf); err != nil {
		b.Fatal(err)
	}
	raw := buf.Bytes()
	b.SetBytes(int64(len(raw)))
	b.ReportAllocs()
	for b.Loop() {
		var fh packets.FixedHeader
		if err := fh.Decode(raw[0]); err != nil {
			b.Fatal(err)
		}
		in := packets.Packet{FixedHeader: fh, ProtocolVersion: 5}
		if err := in.PublishDecode(raw[2+1:]); err != nil { // type byte, 2-byte remaining length
			b.Fatal(err)
		}
	}
}
