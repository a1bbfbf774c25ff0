package mqtt

import (
	"slices"
	"strings"
	"time"

	"github.com/hamq/hamq/core"
	"github.com/mochi-mqtt/server/v2/packets"
)

// Core properties that carry what MQTT says of a message beyond its user
// properties, so that an MQTT subscriber gets it as published. Other
// protocols see them as ordinary properties (STOMP headers, AMQP
// application properties).
const (
	// qosProperty keeps the publisher's QoS, so that a subscriber gets
	// min(publisher QoS, subscription QoS) as MQTT requires.
	qosProperty = "MQTT_QoS"
	// payloadFormatProperty is the Payload Format Indicator when the
	// publisher set it to 1, UTF-8 [MQTT-3.3.2-4].
	payloadFormatProperty = "MQTT_PayloadFormat"
	// retainProperty is true on a message published with RETAIN=1, for
	// subscribers with Retain As Published [MQTT-3.3.1-13].
	retainProperty = "MQTT_Retain"
)

var internalProperties = map[string]bool{qosProperty: true, payloadFormatProperty: true, retainProperty: true}

var toCoreName = strings.NewReplacer("/", ".", ".", "/", "+", "*", "#", ">")
var fromCoreName = strings.NewReplacer(".", "/", "/", ".", "*", "+", ">", "#")

// coreTopic maps an MQTT topic name or filter onto a core topic.
func coreTopic(name string) core.Destination {
	return core.Destination{Kind: core.Topic, Name: toCoreName.Replace(name)}
}

// mqttTopic is the MQTT name of a core destination; queues keep their name.
func mqttTopic(d core.Destination) string {
	if d.Kind.IsTopic() {
		return fromCoreName.Replace(d.Name)
	}
	return d.Name
}

// sharedFilter splits $share/GROUP/filter.
func sharedFilter(filter string) (group, rest string, ok bool) {
	s, ok := strings.CutPrefix(filter, "$share/")
	if !ok {
		return "", filter, false
	}
	group, rest, ok = strings.Cut(s, "/")
	return group, rest, ok
}

// message builds a core message from a PUBLISH. User properties go into
// the core's Properties, each key with its first value (as a STOMP header
// repeated); two or more also go, in order and with any repeated key, into
// its PropertyList, which MQTT subscribers get back [MQTT-3.3.2-17]
// [MQTT-3.3.2-18].
func message(pk packets.Packet) *core.Message {
	m := &core.Message{
		Dest:          coreTopic(pk.TopicName),
		Body:          pk.Payload,
		Persistent:    pk.FixedHeader.Qos > 0,
		Priority:      core.DefaultPriority,
		ContentType:   pk.Properties.ContentType,
		CorrelationID: string(pk.Properties.CorrelationData),
		Properties:    map[string]any{qosProperty: int64(pk.FixedHeader.Qos)},
	}
	if pk.Properties.ResponseTopic != "" {
		m.ReplyTo = coreTopic(pk.Properties.ResponseTopic)
	}
	if e := pk.Properties.MessageExpiryInterval; e > 0 {
		m.Expiration = time.Now().Add(time.Duration(e) * time.Second).UnixMilli()
	}
	if pk.Properties.PayloadFormatFlag && pk.Properties.PayloadFormat == 1 {
		m.Properties[payloadFormatProperty] = int64(1)
	}
	if pk.FixedHeader.Retain {
		m.Properties[retainProperty] = true
	}
	for _, u := range pk.Properties.User {
		if _, ok := m.Properties[u.Key]; !ok {
			m.Properties[u.Key] = u.Val
		}
	}
	if len(pk.Properties.User) > 1 {
		m.PropertyList = make([]core.Property, len(pk.Properties.User))
		for i, u := range pk.Properties.User {
			m.PropertyList[i] = core.Property{Key: u.Key, Value: u.Val}
		}
	}
	return m
}

// messageQoS is the QoS a core message was published at: an MQTT
// publisher's, else 2 for a persistent message and 0 for another.
func messageQoS(m *core.Message) byte {
	if v, ok := m.Properties[qosProperty].(int64); ok && v >= 0 && v <= 2 {
		return byte(v)
	}
	if m.Persistent {
		return 2
	}
	return 0
}

// publish builds the PUBLISH a subscriber gets for a core message at
// nowMillis: at most the subscription's QoS, RETAIN as published when the
// subscription asks for it, its subscription identifier, and what is left
// of the message's expiry interval [MQTT-3.3.2-6].
func publish(m *core.Message, subQoS byte, rap bool, identifier int, nowMillis int64) packets.Packet {
	qos := min(messageQoS(m), subQoS)
	pk := packets.Packet{
		FixedHeader: packets.FixedHeader{Type: packets.Publish, Qos: qos, Dup: qos > 0 && m.Redelivered(),
			Retain: rap && m.Properties[retainProperty] == true},
		TopicName: mqttTopic(m.Dest),
		Payload:   m.Body,
		Created:   nowMillis / 1000,
	}
	pk.Properties.ContentType = m.ContentType
	if m.CorrelationID != "" {
		pk.Properties.CorrelationData = []byte(m.CorrelationID)
	}
	if !m.ReplyTo.IsZero() {
		pk.Properties.ResponseTopic = mqttTopic(m.ReplyTo)
	}
	if m.Expiration > 0 {
		// Rounded up: a message with 1.2 s left says 2, not 1 (or 0,
		// which would be no expiry at all).
		pk.Properties.MessageExpiryInterval = uint32(max((m.Expiration-nowMillis+999)/1000, 1))
	}
	if pf := m.Properties[payloadFormatProperty]; pf == int64(1) || pf == "1" {
		pk.Properties.PayloadFormat, pk.Properties.PayloadFormatFlag = 1, true
	}
	if identifier > 0 {
		pk.Properties.SubscriptionIdentifier = []int{identifier}
	}
	pk.Properties.User = userProperties(m)
	return pk
}

// userProperties are a core message's properties as MQTT user properties:
// its PropertyList as it came, then (sorted, so that the order is the same
// every time) any property not in the list, such as those a STOMP or AMQP
// sender set.
func userProperties(m *core.Message) []packets.UserProperty {
	var out []packets.UserProperty
	listed := map[string]bool{}
	for _, p := range m.PropertyList {
		out = append(out, packets.UserProperty{Key: p.Key, Val: p.Value})
		listed[p.Key] = true
	}
	var rest []string
	for k := range m.Properties {
		if !internalProperties[k] && !listed[k] {
			rest = append(rest, k)
		}
	}
	slices.Sort(rest)
	for _, k := range rest {
		out = append(out, packets.UserProperty{Key: k, Val: core.PropertyString(m.Properties[k])})
	}
	return out
}
