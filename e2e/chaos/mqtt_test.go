package chaos

import (
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
)

// The MQTT clients are paho's, one client per connection, with its own
// reconnecting switched off: the producer and consumer loops move through
// the nodes themselves. A keep-alive of 2 s finds a paused master within
// about 4 s.

func init() {
	// paho logs nothing unless given loggers; keep it so.
	mqtt.ERROR = mqtt.NOOPLogger{}
}

func mqttOptions(ep endpoint, clientID string, clean bool) *mqtt.ClientOptions {
	return mqtt.NewClientOptions().AddBroker("tcp://" + ep.addr).SetClientID(clientID).SetCleanSession(clean).
		SetAutoReconnect(false).SetConnectRetry(false).SetConnectTimeout(connectTimeout).
		SetKeepAlive(2 * time.Second).SetPingTimeout(2 * time.Second).SetWriteTimeout(2 * time.Second).
		SetOrderMatters(true).SetAutoAckDisabled(true)
}

func mqttConnect(opts *mqtt.ClientOptions) (mqtt.Client, error) {
	c := mqtt.NewClient(opts)
	tok := c.Connect()
	if !tok.WaitTimeout(connectTimeout + time.Second) {
		c.Disconnect(0)
		return nil, errors.New("MQTT CONNECT: no CONNACK in time")
	}
	if err := tok.Error(); err != nil {
		return nil, err
	}
	return c, nil
}

// mqttSender is a QoS 1 publisher's connection (clean session).
type mqttSender struct {
	c     mqtt.Client
	topic string
}

func mqttDialer(client, topic string) func(endpoint) (sender, error) {
	return func(ep endpoint) (sender, error) {
		c, err := mqttConnect(mqttOptions(ep, client, true))
		if err != nil {
			return nil, err
		}
		return &mqttSender{c: c, topic: topic}, nil
	}
}

func (s *mqttSender) send(id string, attempt int, body []byte, timeout time.Duration) (Kind, string, bool) {
	tok := s.c.Publish(s.topic, 1, false, body)
	if !tok.WaitTimeout(timeout) {
		return Unknown, fmt.Sprintf("no PUBACK within %v", timeout), true
	}
	if err := tok.Error(); err != nil {
		return Unknown, err.Error(), false
	}
	return Confirm, "", false
}

func (s *mqttSender) close() { s.c.Disconnect(0) }

// mqttSession consumes topic at QoS 1 in the persistent session of
// clientID, acknowledging each message after recording it.
func mqttSession(rec *recorder, flow, client, clientID, topic string) session {
	return func(ep endpoint, got func(copyOf), idle time.Duration, stop <-chan struct{}) error {
		lost := make(chan error, 1)
		var last atomic.Int64
		last.Store(time.Now().UnixNano())
		opts := mqttOptions(ep, clientID, false).
			SetConnectionLostHandler(func(_ mqtt.Client, err error) {
				select {
				case lost <- err:
				default:
				}
			}).
			SetDefaultPublishHandler(func(_ mqtt.Client, m mqtt.Message) {
				last.Store(time.Now().UnixNano())
				cp := copyOf{body: m.Payload(), redelivered: m.Duplicate()}
				if id, _, ok := ParseBody(cp.body); ok {
					cp.header = id // MQTT 3.1.1 has no properties: the body is all
				}
				got(cp)
				m.Ack()
				rec.add(Event{Kind: Ack, Flow: flow, Client: client, ID: cp.header, Node: ep.name})
			})
		c, err := mqttConnect(opts)
		if err != nil {
			return err
		}
		defer c.Disconnect(0)
		tok := c.Subscribe(topic, 1, nil)
		if !tok.WaitTimeout(5 * time.Second) {
			return errors.New("MQTT SUBSCRIBE: no SUBACK in time")
		}
		if err := tok.Error(); err != nil {
			return err
		}
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case err := <-lost:
				return fmt.Errorf("MQTT connection lost: %w", err)
			case <-stop:
				return nil
			case <-tick.C:
				if time.Since(time.Unix(0, last.Load())) > idle {
					return errIdle
				}
			}
		}
	}
}

// mqttPersistent makes the persistent session of clientID subscribe to
// topic and goes away, leaving the session to collect: a witness.
func mqttPersistent(eps []endpoint, clientID, topic string, timeout time.Duration) error {
	var last error
	for deadline := time.Now().Add(timeout); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		for _, ep := range eps {
			c, err := mqttConnect(mqttOptions(ep, clientID, false))
			if err != nil {
				last = err
				continue
			}
			tok := c.Subscribe(topic, 1, nil)
			switch {
			case !tok.WaitTimeout(5 * time.Second):
				last = errors.New("no SUBACK in time")
			case tok.Error() != nil:
				last = tok.Error()
			default:
				c.Disconnect(250)
				return nil
			}
			c.Disconnect(0)
		}
	}
	return fmt.Errorf("MQTT session %s subscribing to %s: %w", clientID, topic, last)
}

func mqttEndpoints(c *cluster) []endpoint {
	var out []endpoint
	for _, n := range c.nodes {
		out = append(out, endpoint{n.name, n.mqtt()})
	}
	return out
}
