package stomp

import (
	"strconv"
	"strings"

	"github.com/go-stomp/stomp/v3/frame"
	"github.com/hamq/hamq/core"
)

// Destination prefixes, as ActiveMQ names them.
const (
	prefixQueue           = "/queue/"
	prefixTopic           = "/topic/"
	prefixTempQueue       = "/temp-queue/"
	prefixTempTopic       = "/temp-topic/"
	prefixRemoteTempQueue = "/remote-temp-queue/"
	prefixRemoteTempTopic = "/remote-temp-topic/"
)

// destination maps a STOMP destination onto the core. /temp-queue/NAME is
// this connection's own temporary queue NAME, made on first use;
// /remote-temp-queue/ID names one made by any connection.
func (c *conn) destination(s string) (core.Destination, error) {
	for _, p := range []struct {
		prefix string
		kind   core.Kind
	}{{prefixQueue, core.Queue}, {prefixTopic, core.Topic}, {prefixRemoteTempQueue, core.TempQueue}, {prefixRemoteTempTopic, core.TempTopic}} {
		if name, ok := strings.CutPrefix(s, p.prefix); ok && name != "" {
			return core.Destination{Kind: p.kind, Name: name}, nil
		}
	}
	for _, p := range []struct {
		prefix string
		kind   core.Kind
	}{{prefixTempQueue, core.TempQueue}, {prefixTempTopic, core.TempTopic}} {
		if name, ok := strings.CutPrefix(s, p.prefix); ok && name != "" {
			c.tempMu.Lock()
			defer c.tempMu.Unlock()
			if d, ok := c.temps[s]; ok {
				return d, nil
			}
			d := c.sess.CreateTemp(p.kind)
			c.temps[s] = d
			return d, nil
		}
	}
	return core.Destination{}, protocolErrorf("invalid destination %q: use /queue/NAME, /topic/NAME, /temp-queue/NAME or /temp-topic/NAME", s)
}

// stompName is how a core destination is written in a header: a temporary
// destination of this connection by its own alias, others' as remote.
func (c *conn) stompName(d core.Destination) string {
	switch d.Kind {
	case core.Queue:
		return prefixQueue + d.Name
	case core.Topic:
		return prefixTopic + d.Name
	}
	c.tempMu.Lock()
	defer c.tempMu.Unlock()
	for alias, t := range c.temps {
		if t == d {
			return alias
		}
	}
	if d.Kind == core.TempQueue {
		return prefixRemoteTempQueue + d.Name
	}
	return prefixRemoteTempTopic + d.Name
}

// remoteName is how a reply-to is passed on: other connections know a
// temporary destination only by its broker-wide name.
func remoteName(d core.Destination) string {
	switch d.Kind {
	case core.Queue:
		return prefixQueue + d.Name
	case core.Topic:
		return prefixTopic + d.Name
	case core.TempQueue:
		return prefixRemoteTempQueue + d.Name
	}
	return prefixRemoteTempTopic + d.Name
}

// Headers with a meaning of their own; every other header of a SEND is an
// application property.
var reserved = map[string]bool{
	frame.Destination: true, frame.Transaction: true, frame.Receipt: true, frame.ContentLength: true,
	frame.ContentType: true, frame.MessageId: true, frame.Subscription: true, frame.Ack: true,
	"persistent": true, "priority": true, "expires": true, "reply-to": true, "correlation-id": true,
	"type": true, "redelivered": true, "timestamp": true,
}

// message builds a core message from a SEND frame.
func (c *conn) message(f *frame.Frame, dest core.Destination) (*core.Message, error) {
	m := &core.Message{Dest: dest, Body: f.Body, Priority: core.DefaultPriority,
		Persistent: f.Header.Get("persistent") == "true", ContentType: f.Header.Get(frame.ContentType),
		CorrelationID: f.Header.Get("correlation-id"), Type: f.Header.Get("type")}
	if v, ok := f.Header.Contains("priority"); ok {
		p, err := strconv.Atoi(v)
		if err != nil || p < 0 || p > 9 {
			return nil, protocolErrorf("invalid priority %q: want 0 to 9", v)
		}
		m.Priority = uint8(p)
	}
	if v, ok := f.Header.Contains("expires"); ok {
		e, err := strconv.ParseInt(v, 10, 64)
		if err != nil || e < 0 {
			return nil, protocolErrorf("invalid expires %q: want milliseconds since the epoch, or 0", v)
		}
		m.Expiration = e
	}
	if v, ok := f.Header.Contains("reply-to"); ok && v != "" {
		d, err := c.destination(v)
		if err != nil {
			return nil, err
		}
		m.ReplyTo = d
	}
	for i := range f.Header.Len() {
		k, v := f.Header.GetAt(i)
		if reserved[k] {
			continue
		}
		if m.Properties == nil {
			m.Properties = map[string]any{}
		}
		m.Properties[k] = v
	}
	return m, nil
}

// messageFrame is what a subscriber receives.
func (c *conn) messageFrame(s *subscription, d core.Delivery) *frame.Frame {
	m := d.Msg
	f := frame.New(frame.MESSAGE,
		frame.Subscription, s.id,
		frame.MessageId, m.ID,
		frame.Destination, c.stompName(m.Dest),
		"persistent", strconv.FormatBool(m.Persistent),
		"priority", strconv.Itoa(int(m.Priority)),
		"timestamp", strconv.FormatInt(m.Timestamp, 10),
		"expires", strconv.FormatInt(m.Expiration, 10),
		"redelivered", strconv.FormatBool(m.Redelivered()),
	)
	if s.ack != ackAuto {
		f.Header.Add(frame.Ack, strconv.FormatUint(d.Tag, 10))
	}
	if !m.ReplyTo.IsZero() {
		f.Header.Add("reply-to", remoteName(m.ReplyTo))
	}
	if m.CorrelationID != "" {
		f.Header.Add("correlation-id", m.CorrelationID)
	}
	if m.Type != "" {
		f.Header.Add("type", m.Type)
	}
	if m.ContentType != "" {
		f.Header.Add(frame.ContentType, m.ContentType)
	}
	for k, v := range m.Properties {
		if !reserved[k] {
			f.Header.Add(k, core.PropertyString(v))
		}
	}
	f.Header.Add(frame.ContentLength, strconv.Itoa(len(m.Body)))
	f.Body = m.Body
	return f
}
