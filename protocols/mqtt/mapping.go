package mqtt

import (
	"strings"
	"time"

	"github.com/hamq/hamq/core"
	"github.com/mochi-mqtt/server/v2/packets"
)

// qosProperty keeps the publisher's QoS on the core message, so that a
// subscriber gets min(publisher QoS, subscription QoS) as MQTT requires.
const qosProperty = "MQTT_QoS"

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

// message builds a core message from a PUBLISH.
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
	for _, u := range pk.Properties.User {
		m.Properties[u.Key] = u.Val
	}
	return m
}

// publish builds the PUBLISH a subscriber gets for a core message.
func publish(m *core.Message, subQoS byte) packets.Packet {
	qos := byte(0)
	if m.Persistent {
		qos = 2
	}
	if v, ok := m.Properties[qosProperty].(int64); ok && v >= 0 && v <= 2 {
		qos = byte(v)
	}
	pk := packets.Packet{
		FixedHeader: packets.FixedHeader{Type: packets.Publish, Qos: min(qos, subQoS), Dup: m.Redelivered()},
		TopicName:   mqttTopic(m.Dest),
		Payload:     m.Body,
		Created:     time.Now().Unix(),
	}
	pk.Properties.ContentType = m.ContentType
	if m.CorrelationID != "" {
		pk.Properties.CorrelationData = []byte(m.CorrelationID)
	}
	if !m.ReplyTo.IsZero() {
		pk.Properties.ResponseTopic = mqttTopic(m.ReplyTo)
	}
	if m.Expiration > 0 {
		pk.Expiry = m.Expiration / 1000
	}
	for k, v := range m.Properties {
		if k == qosProperty {
			continue
		}
		pk.Properties.User = append(pk.Properties.User, packets.UserProperty{Key: k, Val: core.PropertyString(v)})
	}
	return pk
}
