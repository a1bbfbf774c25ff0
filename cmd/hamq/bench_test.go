package main

import (
	"bufio"
	"flag"
	"net"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/go-stomp/stomp/v3/frame"
)

func TestApplyWorkload(t *testing.T) {
	for _, tc := range []struct {
		name              string
		args              []string
		producers, window int
		ack               string
	}{
		{"workload alone", []string{"--workload", "W1"}, 4, 1, "client-individual"},
		{"flags override", []string{"--producers", "2", "--workload", "w1", "--window", "100"}, 2, 100, "client-individual"},
		{"W2", []string{"--workload", "W2", "--ack", "auto"}, 1, 1, "auto"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fs := flag.NewFlagSet("bench", flag.ContinueOnError)
			workload := fs.String("workload", "", "")
			fs.String("proto", "stomp", "")
			producers := fs.Int("producers", 1, "")
			fs.Int("consumers", 1, "")
			fs.Int("count", 1, "")
			fs.Int("size", 128, "")
			fs.Bool("persistent", false, "")
			fs.Int("qos", 1, "")
			fs.Bool("session", false, "")
			window := fs.Int("window", 1, "")
			ack := fs.String("ack", "client-individual", "")
			fs.Int("prefetch", 1000, "")
			if err := fs.Parse(tc.args); err != nil {
				t.Fatal(err)
			}
			if err := applyWorkload(fs, *workload); err != nil {
				t.Fatal(err)
			}
			if *producers != tc.producers || *window != tc.window || *ack != tc.ack {
				t.Errorf("producers %d window %d ack %s, want %d %d %s", *producers, *window, *ack, tc.producers, tc.window, tc.ack)
			}
		})
	}
	if err := applyWorkload(flag.NewFlagSet("bench", flag.ContinueOnError), "W9"); err == nil {
		t.Error("W9 accepted")
	}
}

func TestParseWarmup(t *testing.T) {
	for _, tc := range []struct {
		in   string
		n    int
		d    time.Duration
		fail bool
	}{
		{"", 0, 0, false}, {"0", 0, 0, false}, {"5000", 5000, 0, false}, {"10s", 0, 10 * time.Second, false},
		{"-3", 0, 0, true}, {"soon", 0, 0, true},
	} {
		n, d, err := parseWarmup(tc.in)
		if n != tc.n || d != tc.d || (err != nil) != tc.fail {
			t.Errorf("parseWarmup(%q) = %d, %s, %v", tc.in, n, d, err)
		}
	}
}

func TestProbeReadsOwnCPU(t *testing.T) {
	p, err := parseProbe(strconv.Itoa(os.Getpid()), "")
	if err != nil {
		t.Fatal(err)
	}
	s, err := p.sample()
	if err != nil || s.cpu < 0 || s.flushes != -1 {
		t.Fatalf("sample %+v, %v", s, err)
	}
	if _, err := parseProbe("12,x", ""); err == nil {
		t.Error("pid x accepted")
	}
}

// TestSTOMPConsumerAcksEach runs the bench consumer against a scripted
// broker that follows each frame with a newline, as ActiveMQ does, sends
// a whole prefetch at once and the first messages ahead of the
// subscription's receipt: every message must be handed on and ACKed by
// the id of its ack header.
func TestSTOMPConsumerAcksEach(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	const n = 2000
	acked := make(chan []string, 1)
	go func() {
		nc, err := ln.Accept()
		if err != nil {
			return
		}
		defer nc.Close()
		r, w := frame.NewReader(bufio.NewReader(nc)), bufio.NewWriter(nc)
		var wmu sync.Mutex // the last MESSAGE's Flush may still run as its ACK comes in
		write := func(f *frame.Frame) {
			wmu.Lock()
			defer wmu.Unlock()
			frame.NewWriter(w).Write(f)
			w.WriteString("\n")
			w.Flush()
		}
		next := func() *frame.Frame {
			for {
				f, err := r.Read()
				if err != nil {
					return nil
				}
				if f != nil {
					return f
				}
			}
		}
		if f := next(); f == nil || f.Command != frame.CONNECT {
			return
		}
		write(frame.New(frame.CONNECTED, frame.Version, "1.2"))
		sub := next()
		if sub == nil || sub.Header.Get(frame.Ack) != "client-individual" || sub.Header.Get("activemq.prefetchSize") != "1000" {
			return
		}
		message := func(i int) {
			m := frame.New(frame.MESSAGE, frame.Subscription, "1", frame.MessageId, strconv.Itoa(i), frame.Ack, "a"+strconv.Itoa(i), frame.ContentLength, "1024")
			m.Body = make([]byte, 1024)
			write(m)
		}
		// A queue's backlog (after a failover, what was not acknowledged)
		// may be dispatched ahead of the SUBSCRIBE's receipt.
		const early = 10
		for i := range early {
			message(i)
		}
		write(frame.New(frame.RECEIPT, frame.ReceiptId, sub.Header.Get(frame.Receipt)))
		go func() {
			for i := early; i < n; i++ {
				message(i)
			}
		}()
		var ids []string
		for len(ids) < n {
			f := next()
			if f == nil {
				break
			}
			if f.Command == frame.ACK {
				ids = append(ids, f.Header.Get(frame.Id))
			}
		}
		acked <- ids
		// close waits for the DISCONNECT's receipt.
		for f := next(); f != nil; f = next() {
			if f.Command == frame.DISCONNECT {
				write(frame.New(frame.RECEIPT, frame.ReceiptId, f.Header.Get(frame.Receipt)))
			}
		}
	}()
	c, err := dialSTOMPBench(benchConfig{url: "tcp://" + ln.Addr().String(), dest: "/queue/q", ack: "client-individual", prefetch: 1000}, "consumer-0")
	if err != nil {
		t.Fatal(err)
	}
	got := make(chan struct{}, n)
	if err := c.subscribe(func([]byte) { got <- struct{}{} }); err != nil {
		t.Fatal(err)
	}
	select {
	case ids := <-acked:
		if len(ids) != n || ids[0] != "a0" || ids[n-1] != "a"+strconv.Itoa(n-1) {
			t.Fatalf("%d ACKs, first %v", len(ids), ids[:min(len(ids), 3)])
		}
	case <-time.After(20 * time.Second):
		t.Fatal("the ACKs never all came")
	}
	if len(got) != n {
		t.Errorf("%d messages handed on, want %d", len(got), n)
	}
	start := time.Now()
	c.close()
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("close took %s: no receipt for the DISCONNECT", d)
	}
}
