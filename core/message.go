package core

import (
	"fmt"
	"strconv"
	"strings"
)

// Kind says what sort of destination a name refers to.
type Kind uint8

const (
	Queue Kind = iota + 1
	Topic
	TempQueue
	TempTopic
)

var kindNames = map[Kind]string{Queue: "queue", Topic: "topic", TempQueue: "temp-queue", TempTopic: "temp-topic"}

func (k Kind) String() string {
	if s, ok := kindNames[k]; ok {
		return s
	}
	return fmt.Sprintf("kind(%d)", k)
}

// IsTopic reports whether messages sent to this kind fan out to every subscriber.
func (k Kind) IsTopic() bool { return k == Topic || k == TempTopic }

// Destination names a queue or topic. Topic names are dot-separated; in
// subscriptions "*" matches one level and ">" the rest.
type Destination struct {
	Kind Kind
	Name string
}

// String gives the canonical form "queue://name", parsed by ParseDestination.
func (d Destination) String() string {
	if d.Kind == 0 {
		return ""
	}
	return d.Kind.String() + "://" + d.Name
}

// IsZero reports whether d names nothing (an absent reply-to, say).
func (d Destination) IsZero() bool { return d.Kind == 0 }

// ParseDestination reads the canonical form written by Destination.String.
func ParseDestination(s string) (Destination, error) {
	for k, name := range kindNames {
		if rest, ok := strings.CutPrefix(s, name+"://"); ok && rest != "" {
			return Destination{Kind: k, Name: rest}, nil
		}
	}
	return Destination{}, fmt.Errorf("core: %q is not a destination (want queue://, topic://, temp-queue:// or temp-topic:// and a name)", s)
}

// DefaultPriority is the JMS default, used when a client sets none.
const DefaultPriority = 4

// Message is what every protocol's message becomes in the core. A message
// handed to Send belongs to the core from then on; a message handed out in a
// Delivery is shared and must not be modified.
type Message struct {
	ID   string // set by the core on Send when empty
	Dest Destination
	// Properties holds application properties; values are string, int64,
	// float64 or bool.
	Properties    map[string]any
	Body          []byte
	Persistent    bool
	Priority      uint8  // 0–9, higher first
	Expiration    int64  // unix milliseconds; 0 never expires
	Timestamp     int64  // unix milliseconds; set by the core on Send when 0
	DeliveryCount uint32 // deliveries before this one; > 0 means redelivered
	ReplyTo       Destination
	CorrelationID string
	ContentType   string
	Type          string // JMSType
	// PropertyList is, for a protocol whose properties are an ordered
	// list that may repeat a key (MQTT 5 user properties), every pair as
	// sent; Properties then holds each key's first value, for selectors
	// and for protocols whose properties are a map. Nil when the order
	// says nothing more than Properties (fewer than two pairs).
	PropertyList []Property
}

// Property is one name and value of a Message's PropertyList.
type Property struct{ Key, Value string }

// Redelivered reports whether the message was delivered before.
func (m *Message) Redelivered() bool { return m.DeliveryCount > 0 }

// Expired reports whether the message's expiration has passed at nowMillis.
func (m *Message) Expired(nowMillis int64) bool {
	return m.Expiration != 0 && m.Expiration <= nowMillis
}

func (m *Message) size() int64 {
	n := int64(len(m.Body) + len(m.ID) + len(m.Dest.Name) + 128)
	for k, v := range m.Properties {
		n += int64(len(k) + 16)
		if s, ok := v.(string); ok {
			n += int64(len(s))
		}
	}
	for _, p := range m.PropertyList {
		n += int64(len(p.Key) + len(p.Value) + 32)
	}
	return n
}

// PropertyString writes a property value as text, for protocols whose
// headers are strings.
func PropertyString(v any) string {
	switch v := v.(type) {
	case string:
		return v
	case int64:
		return strconv.FormatInt(v, 10)
	case float64:
		return strconv.FormatFloat(v, 'g', -1, 64)
	case bool:
		return strconv.FormatBool(v)
	}
	return fmt.Sprint(v)
}
