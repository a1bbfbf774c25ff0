package main

import (
	"encoding/binary"
	"fmt"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// benchConn is one bench connection in some protocol. The first 8 bytes of
// every body carry the send time, so that consumers measure latency.
type benchConn interface {
	// publish sends body; done is called once the broker confirmed it (a
	// receipt, a PUBACK) or at once when nothing will confirm it, but never
	// when publish returns an error.
	publish(body []byte, done func(error)) error
	// subscribe hands every message's body to fn.
	subscribe(fn func(body []byte)) error
	close()
}

type benchConfig struct {
	url, dest  string
	size       int
	persistent bool
	qos        byte
	sessionSub bool
	window     int
}

func cmdBench(args []string) error {
	fs := flagSet("bench", "[flags]", "Measures a broker: producers send --count messages in all while consumers\nreceive them; prints send and receive rates and the latency percentiles.\nA send counts once the broker confirmed it (STOMP receipt for persistent\nsends, MQTT PUBACK/PUBCOMP for QoS 1/2, AMQP accepted outcome);\n--window confirmations may be outstanding per producer, as a pipelining\nclient does.")
	u := fs.String("url", "", "broker: tcp://host:port, or failover:(…) for STOMP (default: the protocol's port on 127.0.0.1)")
	proto := fs.String("proto", "stomp", "protocol: stomp, mqtt or amqp")
	producers := fs.Int("producers", 1, "producer connections")
	consumers := fs.Int("consumers", 1, "consumer connections")
	count := fs.Int("count", 100_000, "messages in all")
	size := fs.Int("size", 128, "message body bytes (at least 8)")
	persistent := fs.Bool("persistent", false, "STOMP: persistent messages confirmed by receipt; AMQP: durable messages")
	qos := fs.Int("qos", 1, "MQTT: QoS of publishes and subscriptions")
	sessionSub := fs.Bool("session", false, "MQTT: consumers keep persistent sessions (clean session false)")
	window := fs.Int("window", 1, "unconfirmed sends each producer may have outstanding")
	idle := fs.Int("idle", 0, "MQTT: instead of messages, hold this many idle connections and print the broker's memory (needs --http)")
	adminURL := fs.String("http", defaultHTTP, "admin API of the broker, for --idle")
	hold := fs.Duration("hold", 5*time.Second, "with --idle: how long the connections are held before the broker's memory is read")
	dest := fs.String("destination", "", "STOMP destination (default /queue/hamq.bench; a /topic/ gives every consumer every message), MQTT topic (default hamq/bench) or AMQP address (default queue://hamq.bench)")
	if err := fs.Parse(args); err != nil {
		return flagError(err)
	}
	cfg := benchConfig{url: *u, dest: *dest, size: max(*size, 8), persistent: *persistent, qos: byte(*qos), sessionSub: *sessionSub, window: max(*window, 1)}
	var dial func(cfg benchConfig, role string) (benchConn, error)
	fanOut := false
	switch *proto {
	case "stomp":
		cfg.url = orDefault(cfg.url, "tcp://127.0.0.1:61613")
		cfg.dest = orDefault(cfg.dest, "/queue/hamq.bench")
		fanOut = strings.HasPrefix(cfg.dest, "/topic/")
		dial = dialSTOMPBench
	case "mqtt":
		cfg.url = orDefault(cfg.url, "tcp://127.0.0.1:1883")
		cfg.dest = orDefault(cfg.dest, "hamq/bench")
		fanOut = true
		dial = dialMQTTBench
	case "amqp":
		cfg.url = orDefault(cfg.url, "tcp://127.0.0.1:5672")
		cfg.dest = orDefault(cfg.dest, "queue://hamq.bench")
		fanOut = strings.HasPrefix(cfg.dest, "topic://")
		dial = dialAMQPBench
	default:
		return fmt.Errorf("--proto %q: want stomp, mqtt or amqp", *proto)
	}
	if *idle > 0 {
		if *proto != "mqtt" {
			return fmt.Errorf("--idle is for --proto mqtt")
		}
		return benchIdle(cfg.url, *adminURL, *idle, *hold)
	}
	if *producers < 1 || *count < *producers {
		return fmt.Errorf("want at least one producer and one message per producer")
	}
	expect := int64(*count)
	if fanOut || *consumers == 0 {
		expect *= int64(*consumers)
	}

	var received atomic.Int64
	var lastRecv atomic.Int64
	lat := make([][]time.Duration, *consumers)
	allIn := make(chan struct{})
	if expect == 0 {
		close(allIn)
	}
	var subs []benchConn
	for i := range *consumers {
		c, err := dial(cfg, fmt.Sprintf("consumer-%d", i))
		if err != nil {
			return err
		}
		subs = append(subs, c)
		var mu sync.Mutex
		err = c.subscribe(func(body []byte) {
			if len(body) < 8 {
				return // not a bench message: left on the destination by something else
			}
			now := time.Now().UnixNano()
			mu.Lock()
			lat[i] = append(lat[i], time.Duration(now-int64(binary.BigEndian.Uint64(body))))
			mu.Unlock()
			lastRecv.Store(now)
			if received.Add(1) == expect {
				close(allIn)
			}
		})
		if err != nil {
			return err
		}
	}
	defer func() {
		for _, c := range subs {
			c.close()
		}
	}()

	start := time.Now()
	var pwg sync.WaitGroup
	errs := make(chan error, *producers)
	for p := range *producers {
		n := *count / *producers
		if p < *count%*producers {
			n++
		}
		pwg.Add(1)
		go func() {
			defer pwg.Done()
			// A producer whose connection drops (a failover) connects
			// again through the list and sends what was not confirmed.
			for attempt := 0; n > 0; attempt++ {
				c, err := dial(cfg, fmt.Sprintf("producer-%d", p))
				if err != nil {
					errs <- err
					return
				}
				done, err := produce(c, n, cfg)
				c.close()
				n -= done
				if err != nil && attempt == 10 {
					errs <- err
					return
				}
			}
		}()
	}
	pwg.Wait()
	sendTime := time.Since(start)
	close(errs)
	if err := <-errs; err != nil {
		return fmt.Errorf("producer: %w", err)
	}
	select {
	case <-allIn:
	case <-time.After(30 * time.Second):
	}
	recvTime := time.Duration(lastRecv.Load() - start.UnixNano())
	var all []time.Duration
	for _, l := range lat {
		all = append(all, l...)
	}
	slices.Sort(all)

	kind := "non-persistent"
	switch {
	case *proto == "mqtt" && cfg.sessionSub:
		kind = fmt.Sprintf("QoS %d, persistent-session subscribers", cfg.qos)
	case *proto == "mqtt":
		kind = fmt.Sprintf("QoS %d, clean sessions", cfg.qos)
	case *proto == "amqp" && cfg.persistent:
		kind = "durable, unsettled"
	case *proto == "amqp":
		kind = "non-durable, unsettled"
	case cfg.persistent:
		kind = "persistent"
	}
	fmt.Printf("hamq bench: %s, %d producer(s), %d consumer(s), %d messages of %d B, %s, window %d\n", *proto, *producers, *consumers, *count, cfg.size, kind, cfg.window)
	fmt.Printf("send:    %10.0f msgs/s  %8.2f MiB/s  (%d in %s)\n", float64(*count)/sendTime.Seconds(), float64(*count*cfg.size)/sendTime.Seconds()/(1<<20), *count, sendTime.Round(time.Millisecond))
	if n := received.Load(); n > 0 {
		fmt.Printf("receive: %10.0f msgs/s  %8.2f MiB/s  (%d in %s)\n", float64(n)/recvTime.Seconds(), float64(n*int64(cfg.size))/recvTime.Seconds()/(1<<20), n, recvTime.Round(time.Millisecond))
	}
	if len(all) > 0 {
		fmt.Printf("latency: p50 %s  p99 %s  max %s\n", pct(all, 50), pct(all, 99), all[len(all)-1].Round(time.Microsecond))
	}
	if got := received.Load(); got < expect {
		fmt.Fprintf(os.Stderr, "received %d of %d messages\n", got, expect)
		return exitCode(1)
	}
	return nil
}

// produce sends n messages with at most cfg.window unconfirmed, and
// returns how many were confirmed.
func produce(c benchConn, n int, cfg benchConfig) (int, error) {
	slots := make(chan struct{}, cfg.window)
	var confirmed atomic.Int64
	var failed atomic.Value
	body := make([]byte, cfg.size)
	for i := range body {
		body[i] = 'a' + byte(i%26)
	}
	for range n {
		slots <- struct{}{}
		if err, _ := failed.Load().(error); err != nil {
			<-slots
			break
		}
		b := slices.Clone(body)
		binary.BigEndian.PutUint64(b, uint64(time.Now().UnixNano()))
		err := c.publish(b, func(err error) {
			if err != nil {
				failed.Store(err)
			} else {
				confirmed.Add(1)
			}
			<-slots
		})
		if err != nil {
			failed.Store(err)
			<-slots
			break
		}
	}
	for range cfg.window {
		slots <- struct{}{}
	}
	err, _ := failed.Load().(error)
	return int(confirmed.Load()), err
}

func orDefault(v, def string) string {
	if v == "" {
		return def
	}
	return v
}

func pct(sorted []time.Duration, p int) time.Duration {
	return sorted[(len(sorted)-1)*p/100].Round(time.Microsecond)
}
