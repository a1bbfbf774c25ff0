package main

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

// benchConn is one bench connection in some protocol. The first 8 bytes of
// every body carry the send time, so that consumers measure latency.
type benchConn interface {
	// publish sends body; done is called once the broker confirmed it (a
	// receipt, a PUBACK) or at once when nothing will confirm it, but never
	// when publish returns an error.
	publish(body []byte, done func(error)) error
	// subscribe hands every message's body to fn, and then acknowledges
	// it as the consumer's acknowledgement mode says.
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
	ack        string // STOMP ack mode; for AMQP, auto means pre-settled deliveries
	prefetch   int    // STOMP activemq.prefetchSize, AMQP link credit; 0 leaves the broker's default
	login      creds  // --user, --password (creds.go)
}

func cmdBench(args []string) error {
	fs := flagSet("bench", "[flags]", "Measures a broker: producers send --count messages in all while consumers\nreceive them; prints send and receive rates, latency percentiles and, with\n--broker-pid and --device, the broker's CPU and its disk's flushes per message.\nA send counts once the broker confirmed it (STOMP receipt for persistent\nsends, MQTT PUBACK/PUBCOMP for QoS 1/2, AMQP accepted outcome); by default\neach producer waits for that before its next send (--window 1), and each\nconsumer acknowledges every message (STOMP client-individual, MQTT PUBACK,\nAMQP accepted). The last line, result key=value ..., is for scripts.\n\nWorkloads (--workload; flags given explicitly override theirs):"+workloadHelp())
	workload := fs.String("workload", "", "W1, W2, W3 or W4: set the parameters of that workload")
	u := fs.String("url", "", "broker: tcp://host:port, or failover:(…) for STOMP (default: the protocol's port on 127.0.0.1)")
	proto := fs.String("proto", "stomp", "protocol: stomp, mqtt or amqp")
	producers := fs.Int("producers", 1, "producer connections")
	consumers := fs.Int("consumers", 1, "consumer connections")
	count := fs.Int("count", 100_000, "messages in all")
	size := fs.Int("size", 128, "message body bytes (at least 8)")
	persistent := fs.Bool("persistent", false, "STOMP: persistent messages, a receipt per SEND; AMQP: durable messages")
	qos := fs.Int("qos", 1, "MQTT: QoS of publishes and subscriptions")
	sessionSub := fs.Bool("session", false, "MQTT: consumers keep persistent sessions (clean session false)")
	window := fs.Int("window", 1, "unconfirmed sends each producer may have outstanding: 1 waits for each confirmation, more pipelines")
	ack := fs.String("ack", "client-individual", "STOMP consumers' ack mode: auto, client or client-individual (client modes ACK each message); AMQP: auto takes deliveries pre-settled, otherwise each is accepted")
	prefetch := fs.Int("prefetch", 1000, "STOMP: activemq.prefetchSize of each subscription (0: no header, the broker's default); AMQP: link credit (0: go-amqp's default, 1)")
	warmup := fs.String("warmup", "", "before the measured run, the same load for N messages or for a duration (e.g. 10s), not measured")
	pids := fs.String("broker-pid", "", "the broker's process ids (a cluster's, separated by commas): report its CPU per message, from /proc/PID/stat")
	device := fs.String("device", "", "the broker's block device (e.g. sda, nvme0n1): report its flush requests per message, from /sys/class/block/DEV/stat")
	idle := fs.Int("idle", 0, "MQTT: instead of messages, hold this many idle connections and print the broker's memory (needs --http)")
	adminURL := fs.String("http", defaultHTTP, "admin API of the broker: removes the destination the bench made, and with --idle reads the broker's memory")
	hold := fs.Duration("hold", 5*time.Second, "with --idle: how long the connections are held before the broker's memory is read")
	dest := fs.String("destination", "", "STOMP destination (default /queue/hamq.bench; a /topic/ gives every consumer every message), MQTT topic (default hamq/bench) or AMQP address (default queue://hamq.bench)")
	login := credFlags(fs)
	if err := fs.Parse(args); err != nil {
		return flagError(err)
	}
	if *workload != "" {
		if err := applyWorkload(fs, *workload); err != nil {
			return err
		}
		*workload = strings.ToUpper(*workload)
	}
	switch *ack {
	case "auto", "client", "client-individual":
	default:
		return fmt.Errorf("--ack %q: want auto, client or client-individual", *ack)
	}
	cfg := benchConfig{url: *u, dest: *dest, size: max(*size, 8), persistent: *persistent, qos: byte(*qos), sessionSub: *sessionSub,
		window: max(*window, 1), ack: *ack, prefetch: max(*prefetch, 0), login: login.fill()}
	load := benchLoad{producers: *producers, consumers: *consumers}
	switch *proto {
	case "stomp":
		cfg.url = orDefault(cfg.url, "tcp://127.0.0.1:61613")
		cfg.dest = orDefault(cfg.dest, "/queue/hamq.bench")
		load.fanOut = strings.HasPrefix(cfg.dest, "/topic/")
		load.dial = dialSTOMPBench
	case "mqtt":
		cfg.url = orDefault(cfg.url, "tcp://127.0.0.1:1883")
		cfg.dest = orDefault(cfg.dest, "hamq/bench")
		load.fanOut = true
		load.dial = dialMQTTBench
	case "amqp":
		cfg.url = orDefault(cfg.url, "tcp://127.0.0.1:5672")
		cfg.dest = orDefault(cfg.dest, "queue://hamq.bench")
		load.fanOut = strings.HasPrefix(cfg.dest, "topic://")
		load.dial = dialAMQPBench
	default:
		return fmt.Errorf("--proto %q: want stomp, mqtt or amqp", *proto)
	}
	load.cfg = cfg
	if *idle > 0 {
		if *proto != "mqtt" {
			return fmt.Errorf("--idle is for --proto mqtt")
		}
		return benchIdle(cfg.url, *adminURL, *idle, *hold)
	}
	if *producers < 1 || *count < *producers {
		return fmt.Errorf("want at least one producer and one message per producer")
	}
	warmCount, warmFor, err := parseWarmup(*warmup)
	if err != nil {
		return err
	}
	probe, err := parseProbe(*pids, *device)
	if err != nil {
		return err
	}

	load.progress = os.Stderr
	defer benchCleanup(*proto, cfg, *adminURL)()
	title := describeLoad(*proto, load, *count)
	if *workload != "" {
		title = *workload + ": " + title
	}
	fmt.Printf("hamq bench: %s\n", title)
	if warmCount > 0 || warmFor > 0 {
		w, err := load.run(warmCount, warmFor, brokerProbe{})
		if err != nil {
			return fmt.Errorf("warm-up: %w", err)
		}
		fmt.Printf("warm-up: %d messages in %s, not measured\n", w.sent, w.sendTime.Round(time.Millisecond))
		if w.received < load.expected(w.sent) {
			fmt.Fprintf(os.Stderr, "warm-up: received %d of %d messages\n", w.received, load.expected(w.sent))
			return exitCode(1)
		}
	}
	r, err := load.run(*count, 0, probe)
	if err != nil {
		return err
	}
	printRun(*workload, *proto, load, probe, r)
	if want := load.expected(r.sent); r.received < want {
		fmt.Fprintf(os.Stderr, "received %d of %d messages\n", r.received, want)
		return exitCode(1)
	}
	return nil
}

// parseWarmup reads --warmup: a number of messages or a duration.
func parseWarmup(v string) (int, time.Duration, error) {
	if v == "" || v == "0" {
		return 0, 0, nil
	}
	if n, err := strconv.Atoi(v); err == nil && n > 0 {
		return n, 0, nil
	}
	if d, err := time.ParseDuration(v); err == nil && d > 0 {
		return 0, d, nil
	}
	return 0, 0, fmt.Errorf("--warmup %q: want a number of messages or a duration such as 10s", v)
}

// describeLoad says what the clients do, in words.
func describeLoad(proto string, l benchLoad, count int) string {
	c := l.cfg
	var prod, cons, kind string
	pipe := "each waits for its confirmation before the next"
	if c.window > 1 {
		pipe = fmt.Sprintf("pipelined, window %d", c.window)
	}
	switch proto {
	case "stomp":
		kind = "non-persistent"
		prod = "SENDs without receipts"
		if c.persistent {
			kind = "persistent"
			prod = "a receipt per SEND, " + pipe
		}
		cons = fmt.Sprintf("ack %s", c.ack)
		if c.ack != "auto" {
			cons += ", an ACK for each message"
		}
		if c.prefetch > 0 {
			cons += fmt.Sprintf(", prefetch %d", c.prefetch)
		}
	case "mqtt":
		kind = fmt.Sprintf("QoS %d", c.qos)
		prod = "clean sessions"
		if c.qos > 0 {
			prod += ", " + pipe
		}
		cons = fmt.Sprintf("QoS %d, clean sessions", c.qos)
		if c.sessionSub {
			cons = fmt.Sprintf("QoS %d, persistent sessions", c.qos)
		}
	case "amqp":
		kind = "non-durable"
		if c.persistent {
			kind = "durable"
		}
		prod = "unsettled sends, " + pipe
		cons = "each delivery accepted"
		if c.ack == "auto" {
			cons = "deliveries pre-settled"
		}
		if c.prefetch > 0 {
			cons += fmt.Sprintf(", credit %d", c.prefetch)
		}
	}
	return fmt.Sprintf("%s, %d producer(s) (%s), %d consumer(s) (%s), %d messages of %d B, %s, to %s",
		proto, l.producers, prod, l.consumers, cons, count, c.size, kind, c.dest)
}

func printRun(workload, proto string, l benchLoad, probe brokerProbe, r benchRun) {
	c := l.cfg
	mib := func(n int64, d time.Duration) float64 { return float64(n*int64(c.size)) / d.Seconds() / (1 << 20) }
	sendRate := float64(r.sent) / r.sendTime.Seconds()
	fmt.Printf("send:    %10.0f msgs/s  %8.2f MiB/s  (%d in %s)\n", sendRate, mib(r.sent, r.sendTime), r.sent, r.sendTime.Round(time.Millisecond))
	rate := sendRate
	if r.received > 0 && r.recvTime > 0 {
		rate = float64(r.received) / r.recvTime.Seconds()
		fmt.Printf("receive: %10.0f msgs/s  %8.2f MiB/s  (%d in %s)\n", rate, mib(r.received, r.recvTime), r.received, r.recvTime.Round(time.Millisecond))
	}
	p50, p99 := "na", "na"
	if len(r.latencies) > 0 {
		fmt.Printf("latency: p50 %s  p99 %s  max %s\n", pct(r.latencies, 50), pct(r.latencies, 99), r.latencies[len(r.latencies)-1].Round(time.Microsecond))
		p50, p99 = fmt.Sprint(pct(r.latencies, 50).Microseconds()), fmt.Sprint(pct(r.latencies, 99).Microseconds())
	}
	cpu, flushes := "na", "na"
	var cost []string
	if r.cost.cpu >= 0 && r.sent > 0 {
		cpu = fmt.Sprintf("%.1f", float64(r.cost.cpu.Microseconds())/float64(r.sent))
		cost = append(cost, fmt.Sprintf("CPU %s µs/msg (%.2f s, pid %s)", cpu, r.cost.cpu.Seconds(), joinInts(probe.pids)))
	}
	if r.cost.flushes >= 0 && r.sent > 0 {
		flushes = fmt.Sprintf("%.3f", float64(r.cost.flushes)/float64(r.sent))
		cost = append(cost, fmt.Sprintf("%s flushes/msg (%d on %s)", flushes, r.cost.flushes, probe.device))
	}
	if len(cost) > 0 {
		fmt.Printf("broker:  %s\n", strings.Join(cost, ", "))
	}
	ack, qos := c.ack, "-"
	if proto == "mqtt" {
		ack, qos = "puback", strconv.Itoa(int(c.qos))
		if c.qos == 0 {
			ack = "none"
		}
	}
	fmt.Printf("result workload=%s proto=%s producers=%d consumers=%d size=%d persistent=%t qos=%s window=%d ack=%s prefetch=%d"+
		" sent=%d received=%d send_rate=%.0f rate=%.0f p50_us=%s p99_us=%s cpu_us_per_msg=%s flushes_per_msg=%s device=%s\n",
		orDefault(workload, "-"), proto, l.producers, l.consumers, c.size, c.persistent, qos, c.window, ack, c.prefetch,
		r.sent, r.received, sendRate, rate, p50, p99, cpu, flushes, orDefault(probe.device, "-"))
}

func joinInts(v []int) string {
	s := make([]string, len(v))
	for i, n := range v {
		s[i] = strconv.Itoa(n)
	}
	return strings.Join(s, ",")
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
