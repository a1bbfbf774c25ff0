package mqtt

import (
	"bufio"
	"bytes"
	"io"
	"net"
	"testing"
	"time"

	"github.com/mochi-mqtt/server/v2/packets"
)

// raw is an MQTT client driven packet by packet, with mochi's codec, for
// flows real clients do not let a test interrupt.
type raw struct {
	t       *testing.T
	c       net.Conn
	r       *bufio.Reader
	version byte
}

func dialRaw(t *testing.T, addr string, version byte) *raw {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &raw{t: t, c: c, r: bufio.NewReader(c), version: version}
}

func (r *raw) send(pk packets.Packet) {
	r.t.Helper()
	pk.ProtocolVersion = r.version
	var buf bytes.Buffer
	var err error
	switch pk.FixedHeader.Type {
	case packets.Connect:
		err = pk.ConnectEncode(&buf)
	case packets.Publish:
		err = pk.PublishEncode(&buf)
	case packets.Puback:
		err = pk.PubackEncode(&buf)
	case packets.Pubrec:
		err = pk.PubrecEncode(&buf)
	case packets.Pubrel:
		err = pk.PubrelEncode(&buf)
	case packets.Pubcomp:
		err = pk.PubcompEncode(&buf)
	case packets.Subscribe:
		err = pk.SubscribeEncode(&buf)
	}
	if err != nil {
		r.t.Fatal(err)
	}
	r.write(buf.Bytes())
}

func (r *raw) write(b []byte) {
	r.t.Helper()
	if _, err := r.c.Write(b); err != nil {
		r.t.Fatal(err)
	}
}

// read returns the next packet, or an error when the server closed.
func (r *raw) read() (packets.Packet, error) {
	return r.readWithin(5 * time.Second)
}

func (r *raw) readWithin(d time.Duration) (packets.Packet, error) {
	r.c.SetReadDeadline(time.Now().Add(d))
	b0, err := r.r.ReadByte()
	if err != nil {
		return packets.Packet{}, err
	}
	var fh packets.FixedHeader
	if err := fh.Decode(b0); err != nil {
		return packets.Packet{}, err
	}
	n, mul := 0, 1
	for {
		b, err := r.r.ReadByte()
		if err != nil {
			return packets.Packet{}, err
		}
		n += int(b&127) * mul
		mul *= 128
		if b&128 == 0 {
			break
		}
	}
	fh.Remaining = n
	body := make([]byte, n)
	if _, err := io.ReadFull(r.r, body); err != nil {
		return packets.Packet{}, err
	}
	pk := packets.Packet{FixedHeader: fh, ProtocolVersion: r.version}
	switch fh.Type {
	case packets.Connack:
		err = pk.ConnackDecode(body)
	case packets.Publish:
		err = pk.PublishDecode(body)
	case packets.Puback, packets.Pubrec, packets.Pubrel, packets.Pubcomp:
		err = pk.PubackDecode(body)
	case packets.Suback:
		err = pk.SubackDecode(body)
	case packets.Disconnect:
		err = pk.DisconnectDecode(body)
	}
	return pk, err
}

func (r *raw) expect(typ byte) packets.Packet {
	r.t.Helper()
	pk, err := r.read()
	if err != nil {
		r.t.Fatalf("want packet type %d: %v", typ, err)
	}
	if pk.FixedHeader.Type != typ {
		r.t.Fatalf("want packet type %d, got %d %+v", typ, pk.FixedHeader.Type, pk)
	}
	return pk
}

// closedAfter reads until the server closes, returning what came first.
func (r *raw) closedAfter() []packets.Packet {
	r.t.Helper()
	var got []packets.Packet
	for {
		pk, err := r.read()
		if err != nil {
			var ne net.Error
			if ok := asNetErr(err, &ne); ok && ne.Timeout() {
				r.t.Fatal("connection left open")
			}
			return got
		}
		got = append(got, pk)
	}
}

func asNetErr(err error, ne *net.Error) bool {
	e, ok := err.(net.Error)
	if ok {
		*ne = e
	}
	return ok
}

func (r *raw) connect(id string, clean bool) packets.Packet {
	r.t.Helper()
	r.send(packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Connect},
		Connect: packets.ConnectParams{ProtocolName: []byte("MQTT"), ClientIdentifier: id, Clean: clean, Keepalive: 30}})
	return r.expect(packets.Connack)
}

func publishPacket(topic, body string, qos byte, id uint16, dup bool) packets.Packet {
	return packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Publish, Qos: qos, Dup: dup},
		TopicName: topic, Payload: []byte(body), PacketID: id}
}

func ackPacket(typ byte, id uint16) packets.Packet {
	fh := packets.FixedHeader{Type: typ}
	if typ == packets.Pubrel {
		fh.Qos = 1
	}
	return packets.Packet{FixedHeader: fh, PacketID: id}
}
