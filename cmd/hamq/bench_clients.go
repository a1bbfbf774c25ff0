package main

import (
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/go-stomp/stomp/v3"
)

// stompBench consumes with go-stomp, but produces on a connection of its
// own: go-stomp's Send waits for each receipt before the next frame, so a
// producer could never have more than one send unconfirmed, which is not
// how a pipelining client (or ActiveMQ's async sends) behaves.
type stompBench struct {
	c          *stomp.Conn
	p          *stompPipe
	url, dest  string
	persistent bool
	closing    atomic.Bool
	mu         sync.Mutex // guards c, which a failover replaces
}

func dialSTOMPBench(cfg benchConfig, role string) (benchConn, error) {
	b := &stompBench{url: cfg.url, dest: cfg.dest, persistent: cfg.persistent}
	var err error
	if strings.HasPrefix(role, "producer") {
		b.p, err = dialPipe(cfg.url)
	} else {
		b.c, err = dial(cfg.url, failoverTimeout)
	}
	if err != nil {
		return nil, err
	}
	return b, nil
}

func (b *stompBench) publish(body []byte, done func(error)) error {
	return b.p.send(b.dest, body, b.persistent, done)
}

// subscribe consumes until close, connecting again through the list
// when the connection drops (a failover) and subscribing again.
func (b *stompBench) subscribe(fn func([]byte)) error {
	sub, err := b.c.Subscribe(b.dest, stomp.AckAuto, stomp.SubscribeOpt.Header("activemq.prefetchSize", "1000"))
	if err != nil {
		return err
	}
	go func() {
		for {
			for m := range sub.C {
				if m.Err != nil {
					break
				}
				fn(m.Body)
			}
			if b.closing.Load() {
				return
			}
			b.mu.Lock()
			b.c.MustDisconnect()
			b.mu.Unlock()
			c, err := dial(b.url, failoverTimeout)
			if err != nil {
				return
			}
			b.mu.Lock()
			b.c = c
			b.mu.Unlock()
			if sub, err = c.Subscribe(b.dest, stomp.AckAuto, stomp.SubscribeOpt.Header("activemq.prefetchSize", "1000")); err != nil {
				return
			}
		}
	}()
	return nil
}

func (b *stompBench) close() {
	b.closing.Store(true)
	if b.p != nil {
		b.p.close()
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.c != nil {
		b.c.Disconnect()
	}
}

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
			SetWriteTimeout(30 * time.Second).SetResumeSubs(true)
		if addrs, err := brokerAddrs(cfg.url); err == nil {
			for _, a := range addrs {
				if a != addr {
					opts.AddBroker("tcp://" + a)
				}
			}
		}
		c := paho.NewClient(opts)
		if tok := c.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
			return nil, fmt.Errorf("mqtt connect %s: %v", addr, tok.Error())
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
