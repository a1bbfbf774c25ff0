package core

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"

	"github.com/hamq/hamq/core/store"
)

// Store keys. Every key starts with one letter naming its family; names are
// length-prefixed so that no name can run into the next field.
//
//	m <queue> <seq:8>          a persistent message held by a queue or durable subscription
//	s <client id> <name>       a durable topic subscription
//	c <kind:1> <name>          a destination's counters
//	x <key>                    a front-end's own state (state.go)
//	d <queue>                  the delivered mark of a queue or durable subscription (queue.go)
const (
	prefixMessage   = 'm'
	prefixDurable   = 's'
	prefixCounter   = 'c'
	prefixState     = 'x'
	prefixDelivered = 'd'
)

func appendName(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

func messagePrefix(queue string) []byte {
	return appendName([]byte{prefixMessage}, queue)
}

func messageKey(queue string, seq uint64) []byte {
	return binary.BigEndian.AppendUint64(messagePrefix(queue), seq)
}

func deliveredKey(queue string) []byte { return appendName([]byte{prefixDelivered}, queue) }

func durableKey(clientID, name string) []byte {
	return appendName(appendName([]byte{prefixDurable}, clientID), name)
}

func counterKey(d Destination) []byte {
	return appendName([]byte{prefixCounter, byte(d.Kind)}, d.Name)
}

// decoder reads what the append functions wrote; the first error sticks.
type decoder struct {
	b   []byte
	err error
}

var errCorrupt = errors.New("core: corrupt stored record")

func (d *decoder) uvarint() uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.err = errCorrupt
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) bytes() []byte {
	n := d.uvarint()
	if d.err != nil {
		return nil
	}
	if n > uint64(len(d.b)) {
		d.err = errCorrupt
		return nil
	}
	v := d.b[:n:n]
	d.b = d.b[n:]
	return v
}

func (d *decoder) string() string { return string(d.bytes()) }

func (d *decoder) byte() byte {
	if d.err != nil {
		return 0
	}
	if len(d.b) == 0 {
		d.err = errCorrupt
		return 0
	}
	v := d.b[0]
	d.b = d.b[1:]
	return v
}

func (d *decoder) uint64() uint64 {
	if d.err != nil {
		return 0
	}
	if len(d.b) < 8 {
		d.err = errCorrupt
		return 0
	}
	v := binary.BigEndian.Uint64(d.b)
	d.b = d.b[8:]
	return v
}

func parseMessageKey(key []byte) (queue string, seq uint64, err error) {
	d := decoder{b: key[1:]}
	queue = d.string()
	seq = d.uint64()
	if d.err == nil && len(d.b) != 0 {
		d.err = errCorrupt
	}
	return queue, seq, d.err
}

// messageFormat is the first byte of a stored message. Format 2 is format
// 1 with a PropertyList after the properties; it is written only for a
// message that has one, so what older versions wrote and read is
// unchanged, and an older version refuses a format 2 record rather than
// misreading it.
const (
	messageFormat         = 1
	messageFormatWithList = 2
)

// Property value tags in the message encoding.
const (
	propString = iota + 1
	propInt
	propFloat
	propBool
)

func encodeMessage(m *Message) []byte {
	b := make([]byte, 0, len(m.Body)+len(m.ID)+64)
	if m.PropertyList != nil {
		b = append(b, messageFormatWithList)
	} else {
		b = append(b, messageFormat)
	}
	b = appendName(b, m.ID)
	b = append(b, byte(m.Dest.Kind))
	b = appendName(b, m.Dest.Name)
	var flags byte
	if m.Persistent {
		flags |= 1
	}
	b = append(b, flags, m.Priority)
	b = binary.AppendUvarint(b, uint64(m.Expiration))
	b = binary.AppendUvarint(b, uint64(m.Timestamp))
	b = binary.AppendUvarint(b, uint64(m.DeliveryCount))
	b = append(b, byte(m.ReplyTo.Kind))
	b = appendName(b, m.ReplyTo.Name)
	b = appendName(b, m.CorrelationID)
	b = appendName(b, m.ContentType)
	b = appendName(b, m.Type)
	b = binary.AppendUvarint(b, uint64(len(m.Properties)))
	for k, v := range m.Properties {
		b = appendName(b, k)
		switch v := v.(type) {
		case string:
			b = appendName(append(b, propString), v)
		case int64:
			b = binary.AppendUvarint(append(b, propInt), uint64(v))
		case float64:
			b = binary.AppendUvarint(append(b, propFloat), math.Float64bits(v))
		case bool:
			var x byte
			if v {
				x = 1
			}
			b = append(b, propBool, x)
		default:
			b = appendName(append(b, propString), fmt.Sprint(v))
		}
	}
	if m.PropertyList != nil {
		b = appendPropertyList(b, m.PropertyList)
	}
	b = binary.AppendUvarint(b, uint64(len(m.Body)))
	return store.AppendPieces(b, m.Body)
}

func decodeMessage(b []byte) (*Message, error) {
	d := decoder{b: b}
	format := d.byte()
	if format != messageFormat && format != messageFormatWithList {
		return nil, fmt.Errorf("%w: unknown message format", errCorrupt)
	}
	m := &Message{ID: d.string()}
	m.Dest.Kind = Kind(d.byte())
	m.Dest.Name = d.string()
	flags := d.byte()
	m.Persistent = flags&1 != 0
	m.Priority = d.byte()
	m.Expiration = int64(d.uvarint())
	m.Timestamp = int64(d.uvarint())
	m.DeliveryCount = uint32(d.uvarint())
	m.ReplyTo.Kind = Kind(d.byte())
	m.ReplyTo.Name = d.string()
	m.CorrelationID = d.string()
	m.ContentType = d.string()
	m.Type = d.string()
	if n := d.uvarint(); n > 0 && d.err == nil {
		if n > uint64(len(d.b)) {
			return nil, errCorrupt
		}
		m.Properties = make(map[string]any, n)
		for range n {
			k := d.string()
			switch d.byte() {
			case propString:
				m.Properties[k] = d.string()
			case propInt:
				m.Properties[k] = int64(d.uvarint())
			case propFloat:
				m.Properties[k] = math.Float64frombits(d.uvarint())
			case propBool:
				m.Properties[k] = d.byte() == 1
			default:
				d.err = errCorrupt
			}
		}
	}
	if format == messageFormatWithList {
		m.PropertyList = d.propertyList()
	}
	m.Body = d.bytes()
	if d.err != nil {
		return nil, d.err
	}
	return m, nil
}

func appendPropertyList(b []byte, list []Property) []byte {
	b = binary.AppendUvarint(b, uint64(len(list)))
	for _, p := range list {
		b = appendName(appendName(b, p.Key), p.Value)
	}
	return b
}

func (d *decoder) propertyList() []Property {
	n := d.uvarint()
	if d.err != nil || n > uint64(len(d.b)) {
		d.err = errCorrupt
		return nil
	}
	list := make([]Property, 0, n)
	for range n {
		list = append(list, Property{d.string(), d.string()})
	}
	return list
}

// counters persisted per destination.
type counterValues struct {
	enqueued, dequeued, deadLettered, expired int64
}

func encodeCounters(c counterValues) []byte {
	b := make([]byte, 0, 24)
	for _, v := range []int64{c.enqueued, c.dequeued, c.deadLettered, c.expired} {
		b = binary.AppendUvarint(b, uint64(v))
	}
	return b
}

func decodeCounters(b []byte) (counterValues, error) {
	d := decoder{b: b}
	c := counterValues{int64(d.uvarint()), int64(d.uvarint()), int64(d.uvarint()), int64(d.uvarint())}
	return c, d.err
}

// durableRecord is a durable subscription as stored.
type durableRecord struct {
	topic    string
	selector string
	noLocal  bool
}

func encodeDurable(r durableRecord) []byte {
	b := appendName(nil, r.topic)
	b = appendName(b, r.selector)
	if r.noLocal {
		return append(b, 1)
	}
	return append(b, 0)
}

func decodeDurable(b []byte) (durableRecord, error) {
	d := decoder{b: b}
	r := durableRecord{topic: d.string(), selector: d.string(), noLocal: d.byte() == 1}
	return r, d.err
}

func parseDurableKey(key []byte) (clientID, name string, err error) {
	d := decoder{b: key[1:]}
	clientID, name = d.string(), d.string()
	return clientID, name, d.err
}

func parseCounterKey(key []byte) (Destination, error) {
	d := decoder{b: key[1:]}
	dest := Destination{Kind: Kind(d.byte()), Name: d.string()}
	return dest, d.err
}
