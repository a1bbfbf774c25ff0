package main

import (
	"fmt"
	"strings"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
)

type mqttBench struct {
	c       paho.Client
	cfg     benchConfig
	opts    *paho.ClientOptions
	session bool
}

// dialMQTTBench connects paho through the failover list; a consumer
// reconnects on its own (paho tries the brokers in turn) and resumes its
// subscription.
func dialMQTTBench(cfg benchConfig, role string) (benchConn, error) {
	consumer := strings.HasPrefix(role, "consumer")
	clean := !(cfg.sessionSub && consumer)
	return connectAny(cfg.url, failoverTimeout, func(addr string) (benchConn, error) {
		opts := paho.NewClientOptions().AddBroker("tcp://" + addr).SetClientID("hamq-bench-" + role).
			SetCleanSession(clean).SetAutoReconnect(consumer).SetOrderMatters(false).SetMaxResumePubInFlight(cfg.window).
			SetWriteTimeout(30 * time.Second).SetResumeSubs(true).SetUsername(cfg.login.user).SetPassword(cfg.login.password)
		if addrs, err := brokerAddrs(cfg.url); err == nil {
			for _, a := range addrs {
				if a != addr {
					opts.AddBroker("tcp://" + a)
				}
			}
		}
		c := paho.NewClient(opts)
		if tok := c.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
			return nil, fmt.Errorf("mqtt connect %s: %w", addr, tok.Error())
		}
		return &mqttBench{c: c, cfg: cfg, opts: opts, session: !clean}, nil
	})
}

func (b *mqttBench) publish(body []byte, done func(error)) error {
	tok := b.c.Publish(b.cfg.dest, b.cfg.qos, false, body)
	go func() {
		tok.Wait()
		done(tok.Error())
	}()
	return nil
}

func (b *mqttBench) subscribe(fn func([]byte)) error {
	tok := b.c.Subscribe(b.cfg.dest, b.cfg.qos, func(_ paho.Client, m paho.Message) { fn(m.Payload()) })
	if !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		return fmt.Errorf("mqtt subscribe: %v", tok.Error())
	}
	return nil
}

// close ends a persistent session too (a clean reconnect discards it), so
// the bench leaves no subscription behind to keep messages for nobody.
func (b *mqttBench) close() {
	b.c.Disconnect(100)
	if b.session {
		c := paho.NewClient(b.opts.SetCleanSession(true))
		if tok := c.Connect(); tok.WaitTimeout(10*time.Second) && tok.Error() == nil {
			c.Disconnect(100)
		}
	}
}
