package amqp

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/hamq/hamq/core"
	"github.com/hamq/hamq/protocols/amqp/wire"
)

// Terminus capabilities by which Qpid JMS and Artemis clients say what a
// bare address is.
var kindCapabilities = map[wire.Symbol]core.Kind{
	"queue": core.Queue, "topic": core.Topic, "temporary-queue": core.TempQueue, "temporary-topic": core.TempTopic,
}

// destination maps an address onto the core: queue://NAME, topic://NAME,
// temp-queue://NAME and temp-topic://NAME as core writes them, or a bare
// name whose kind a capability gives, or else the configured default.
func (c *conn) destination(address string, capabilities []wire.Symbol) (core.Destination, error) {
	if strings.Contains(address, "://") {
		d, err := core.ParseDestination(address)
		if err != nil {
			return core.Destination{}, fmt.Errorf("invalid address %q: use queue://NAME, topic://NAME or a bare queue name", address)
		}
		return d, nil
	}
	if address == "" {
		return core.Destination{}, fmt.Errorf("no address")
	}
	kind := c.srv.opts.BareAddress
	for _, cp := range capabilities {
		if k, ok := kindCapabilities[cp]; ok {
			kind = k
		}
	}
	return core.Destination{Kind: kind, Name: address}, nil
}

// bodyIsSections marks a core message whose body holds AMQP body sections as
// encoded (an amqp-value that is not text or binary, or amqp-sequences), so
// that AMQP receivers get them back as sent; other protocols see the bytes
// under this content type.
const bodyIsSections = "application/x-amqp-sections"

// textPlain is what an amqp-value string is to other protocols.
const textPlain = "text/plain; charset=utf-8"

// toCore builds the core message of an AMQP message sent to dest.
func toCore(m *wire.Message, dest core.Destination) (*core.Message, error) {
	cm := &core.Message{Dest: dest, Priority: core.DefaultPriority}
	if h := m.Header; h != nil {
		cm.Persistent = h.Durable
		cm.Priority = min(h.Priority, 9)
		if h.TTL != nil && *h.TTL > 0 {
			cm.Expiration = time.Now().UnixMilli() + int64(*h.TTL)
		}
	}
	if p := m.Properties; p != nil {
		cm.ID = idString(p.MessageID)
		cm.CorrelationID = idString(p.CorrelationID)
		cm.ContentType = string(p.ContentType)
		cm.Type = p.Subject
		if p.AbsoluteExpiryTime != nil && *p.AbsoluteExpiryTime > 0 {
			cm.Expiration = int64(*p.AbsoluteExpiryTime)
		}
		if p.CreationTime != nil {
			cm.Timestamp = int64(*p.CreationTime)
		}
		if p.ReplyTo != "" {
			d, err := core.ParseDestination(p.ReplyTo)
			if err != nil {
				d = core.Destination{Kind: core.Queue, Name: p.ReplyTo}
			}
			cm.ReplyTo = d
		}
	}
	for k, v := range m.ApplicationProperties {
		if cm.Properties == nil {
			cm.Properties = make(map[string]any, len(m.ApplicationProperties))
		}
		cm.Properties[k] = property(v)
	}
	// Delivery time and delay, as Artemis and Azure Service Bus clients
	// annotate them, become the properties the core schedules by.
	for _, k := range []string{core.PropDeliveryTime, core.PropDeliveryDelay} {
		if v, ok := m.MessageAnnotations[wire.Symbol(k)]; ok {
			if cm.Properties == nil {
				cm.Properties = map[string]any{}
			}
			cm.Properties[k] = property(v)
		}
	}
	switch {
	case len(m.Data) == 1:
		cm.Body = m.Data[0]
	case len(m.Data) > 1:
		for _, d := range m.Data {
			cm.Body = append(cm.Body, d...)
		}
	case m.HasValue:
		switch v := m.Value.(type) {
		case nil:
		case string:
			cm.Body = []byte(v)
			if cm.ContentType == "" {
				cm.ContentType = textPlain
			}
		case []byte:
			cm.Body = v
		default:
			return cm, sections(cm, &wire.Message{Value: v, HasValue: true})
		}
	case len(m.Sequence) > 0:
		return cm, sections(cm, &wire.Message{Sequence: m.Sequence})
	}
	return cm, nil
}

// sections keeps a body the core has no type for as its AMQP encoding.
func sections(cm *core.Message, body *wire.Message) error {
	var err error
	cm.Body, err = wire.AppendMessage(nil, body)
	cm.ContentType = bodyIsSections
	return err
}

// idString writes a message-id or correlation-id, which AMQP allows to be a
// string, ulong, uuid or binary, as the core's string.
func idString(v any) string {
	switch v := v.(type) {
	case nil:
		return ""
	case string:
		return v
	case uint64:
		return strconv.FormatUint(v, 10)
	case wire.UUID:
		return v.String()
	case []byte:
		if utf8.Valid(v) {
			return string(v)
		}
		return fmt.Sprintf("%x", v)
	}
	return fmt.Sprint(v)
}

// property narrows an application property to the core's types: string,
// int64, float64 or bool.
func property(v any) any {
	switch v := v.(type) {
	case string, int64, float64, bool:
		return v
	case wire.Symbol:
		return string(v)
	case int8:
		return int64(v)
	case int16:
		return int64(v)
	case int32:
		return int64(v)
	case uint8:
		return int64(v)
	case uint16:
		return int64(v)
	case uint32:
		return int64(v)
	case uint64:
		if v <= math.MaxInt64 {
			return int64(v)
		}
		return strconv.FormatUint(v, 10)
	case float32:
		return float64(v)
	case wire.Timestamp:
		return int64(v)
	case wire.Char:
		return string(rune(v))
	case wire.UUID:
		return v.String()
	case []byte:
		return string(v)
	}
	return fmt.Sprint(v)
}

// fromCore encodes the message an AMQP receiver gets.
func fromCore(b []byte, m *core.Message) ([]byte, error) {
	h := &wire.Header{Durable: m.Persistent, Priority: m.Priority, DeliveryCount: m.DeliveryCount,
		FirstAcquirer: m.DeliveryCount == 0}
	props := &wire.Properties{MessageID: m.ID, To: m.Dest.String(), Subject: m.Type}
	if m.CorrelationID != "" {
		props.CorrelationID = m.CorrelationID
	}
	if !m.ReplyTo.IsZero() {
		props.ReplyTo = m.ReplyTo.String()
	}
	if m.Timestamp != 0 {
		t := wire.Timestamp(m.Timestamp)
		props.CreationTime = &t
	}
	if m.Expiration != 0 {
		t := wire.Timestamp(m.Expiration)
		props.AbsoluteExpiryTime = &t
		ttl := max(m.Expiration-time.Now().UnixMilli(), 1)
		ttl32 := uint32(min(ttl, math.MaxUint32))
		h.TTL = &ttl32
	}
	wm := &wire.Message{Header: h, Properties: props, ApplicationProperties: m.Properties}
	var sections []byte
	switch {
	case m.ContentType == bodyIsSections:
		sections = m.Body
	case strings.HasPrefix(m.ContentType, "text/") && utf8.Valid(m.Body):
		props.ContentType = wire.Symbol(m.ContentType)
		wm.Value, wm.HasValue = string(m.Body), true
	default:
		props.ContentType = wire.Symbol(m.ContentType)
		wm.Data = [][]byte{m.Body}
	}
	b, err := wire.AppendMessage(b, wm)
	return append(b, sections...), err
}
