package mqtt

import (
	"bytes"
	"errors"
	"net"
	"slices"
	"testing"

	"github.com/mochi-mqtt/server/v2/packets"

	"github.com/hamq/hamq/protocols/internal/rawconn"
)

// FuzzConn sends arbitrary bytes to hamq's MQTT listener (mochi as hamq
// configures it, with hamq's hook and connection wrapper) as one client's
// connection and half-closes it. The server must end the connection; what
// it writes must frame as MQTT packets a server may send, a PUBACK or
// PUBREC with a reason code MQTT 5 defines for it [MQTT-3.4.2-1]
// [MQTT-3.5.2-1]; and a client connecting next must be served.
//
// Its seeds are testdata/fuzz/FuzzConn.
func FuzzConn(f *testing.F) {
	br := startBroker(f, func(o *Options) { o.MaxPacketSize = 64 << 10 })
	f.Fuzz(func(t *testing.T, data []byte) {
		out := rawconn.Exchange(t, br.mqttAddr, data, true)
		pks, err := frames(out)
		if err != nil {
			t.Fatalf("the server wrote % x: %v", out, err)
		}
		for _, pk := range pks {
			checkFromServer(t, pk, out)
		}
		// CONNECT (3.1.1, clean, client id "fuzz-check"), PINGREQ,
		// DISCONNECT; CONNACK 0 and PINGRESP back, then the close.
		check := []byte{0x10, 22, 0, 4, 'M', 'Q', 'T', 'T', 4, 2, 0, 30, 0, 10, 'f', 'u', 'z', 'z', '-', 'c', 'h', 'e', 'c', 'k',
			0xc0, 0, 0xe0, 0}
		if got := rawconn.Exchange(t, br.mqttAddr, check, false); !bytes.Equal(got, []byte{0x20, 2, 0, 0, 0xd0, 0}) {
			t.Fatalf("after that connection, a well-behaved client got % x", got)
		}
	})
}

// packet is one packet as framed on the wire.
type packet struct {
	header byte
	body   []byte
}

// frames splits out into packets by their fixed headers and remaining
// lengths; it fails if out does not end with a whole packet.
func frames(out []byte) ([]packet, error) {
	var pks []packet
	for len(out) > 0 {
		n, used := 0, 1
		for mul := 1; ; mul *= 128 {
			if used >= len(out) || used > 4 {
				return nil, errors.New("bad remaining length")
			}
			b := out[used]
			used++
			n += int(b&0x7f) * mul
			if b&0x80 == 0 {
				break
			}
		}
		if len(out) < used+n {
			return nil, errors.New("a packet cut short")
		}
		pks = append(pks, packet{out[0], out[used : used+n]})
		out = out[used+n:]
	}
	return pks, nil
}

// pubackCodes are the reason codes MQTT 5 defines for PUBACK and PUBREC.
var pubackCodes = []byte{0x00, 0x10, 0x80, 0x83, 0x87, 0x90, 0x91, 0x97, 0x99}

func checkFromServer(t *testing.T, pk packet, out []byte) {
	switch typ := pk.header >> 4; typ {
	case packets.Connack, packets.Publish, packets.Pubrel, packets.Pubcomp, packets.Suback, packets.Unsuback,
		packets.Pingresp, packets.Disconnect, packets.Auth:
	case packets.Puback, packets.Pubrec:
		if len(pk.body) > 2 && !slices.Contains(pubackCodes, pk.body[2]) {
			t.Fatalf("a %s with reason code %#x, which is none of its own: % x", packets.PacketNames[typ], pk.body[2], out)
		}
	default:
		t.Fatalf("the server wrote a packet of type %d, which only clients send: % x", typ, out)
	}
}

// An MQTT 5 SUBSCRIBE whose body ends right after a topic filter, however
// the bytes are split across reads, ends its connection with DISCONNECT
// "malformed packet" before mochi sees it; well-formed ones pass.
func TestMalformedSubscribeRefused(t *testing.T) {
	connect := []byte{0x10, 14, 0, 4, 'M', 'Q', 'T', 'T', 5, 2, 0, 30, 0, 0, 1, 'c'}
	tests := []struct {
		name      string
		subscribe []byte
		ok        bool
	}{
		{"options", []byte{0x82, 7, 0, 1, 0, 0, 1, 'a', 1}, true},
		{"two filters, a property", []byte{0x82, 13, 0, 1, 2, 0x0b, 7, 0, 1, 'a', 1, 0, 1, 'b', 2}, true},
		{"empty filter with options", []byte{0x82, 6, 0, 1, 0, 0, 0, 0}, true},
		{"no options", []byte{0x82, 6, 0, 1, 0, 0, 1, 'a'}, false},
		{"second without options", []byte{0x82, 10, 0, 1, 0, 0, 1, 'a', 1, 0, 1, 'b'}, false},
		{"empty filter without options", []byte{0x82, 5, 0, 1, 0, 0, 0}, false},
		{"after properties", []byte{0x82, 8, 0, 1, 2, 0x0b, 7, 0, 1, 'a'}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			stream := append(append(slices.Clone(connect), tc.subscribe...), 0xc0, 0)
			for _, step := range []int{1, 3, len(stream)} {
				c := &limitConn{Conn: discard{}, limit: 1 << 20}
				c.flushed.L = &c.wmu
				ok := true
				for b := stream; len(b) > 0 && ok; b = b[min(step, len(b)):] {
					ok = c.scan(b[:min(step, len(b))])
				}
				if ok != tc.ok {
					t.Fatalf("read %d bytes at a time: scan says %v", step, ok)
				}
			}
		})
	}
	br := startBroker(t)
	out := rawconn.Exchange(t, br.mqttAddr, append(slices.Clone(connect), 0x82, 6, 0, 1, 0, 0, 1, 'a'), false)
	if !bytes.HasSuffix(out, []byte{0xe0, 2, 0x81, 0}) {
		t.Fatalf("got % x, want DISCONNECT 0x81 last", out)
	}
}

// discard is a connection whose writes go nowhere.
type discard struct{ net.Conn }

func (discard) Write(p []byte) (int, error) { return len(p), nil }
