package main

import (
	"encoding/binary"
	"fmt"
	"io"
	"math"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// benchLoad is the shape of a bench run: how its clients connect and
// what they send.
type benchLoad struct {
	cfg                  benchConfig
	dial                 func(cfg benchConfig, role string) (benchConn, error)
	producers, consumers int
	fanOut               bool      // every consumer gets every message (a topic)
	progress             io.Writer // when set, a line every progressEvery of a run
}

// benchRun is what one run measured.
type benchRun struct {
	sent, received     int64
	sendTime, recvTime time.Duration   // from the start to the last confirmed send, and to the last message received
	latencies          []time.Duration // send to receive, sorted
	cost               probeSample     // the broker's CPU and its disk's flushes over the run
}

// run has the producers send count messages in all, or as many as they
// send in d when count is 0, while the consumers receive them. The clock
// starts once every connection is up and stops at the last message
// received; the probe is read at both ends.
func (l benchLoad) run(count int, d time.Duration, probe brokerProbe) (benchRun, error) {
	var r benchRun
	// target is the number of deliveries awaited: unknown in a timed run
	// until the producers are done.
	var target atomic.Int64
	target.Store(math.MaxInt64)
	if count > 0 {
		target.Store(l.expected(int64(count)))
	}
	var received, lastRecv atomic.Int64
	allIn := make(chan struct{})
	var allInOnce sync.Once
	arrived := func() { allInOnce.Do(func() { close(allIn) }) }

	var conns []benchConn
	defer func() {
		for _, c := range conns {
			c.close()
		}
	}()
	lat := make([][]time.Duration, l.consumers)
	for i := range l.consumers {
		c, err := l.dial(l.cfg, fmt.Sprintf("consumer-%d", i))
		if err != nil {
			return r, err
		}
		conns = append(conns, c)
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
			if received.Add(1) >= target.Load() {
				arrived()
			}
		})
		if err != nil {
			return r, err
		}
	}
	// Producers connect before the clock starts; a producer whose
	// connection drops (a failover) connects again through the list and
	// sends what was not confirmed.
	prods := make([]benchConn, l.producers)
	for p := range prods {
		c, err := l.dial(l.cfg, fmt.Sprintf("producer-%d", p))
		if err != nil {
			for _, c := range prods[:p] {
				c.close()
			}
			return r, err
		}
		prods[p] = c
	}

	before, err := probe.sample()
	if err != nil {
		for _, c := range prods {
			c.close()
		}
		return r, err
	}
	start := time.Now()
	defer showProgress(l.progress, start, &received, &target)()
	until := start.Add(d)
	var sent atomic.Int64
	var pwg sync.WaitGroup
	errs := make(chan error, l.producers)
	for p, c := range prods {
		n := -1 // a timed run
		if count > 0 {
			n = count / l.producers
			if p < count%l.producers {
				n++
			}
		}
		pwg.Add(1)
		go func() {
			defer pwg.Done()
			for attempt := 0; ; attempt++ {
				if c == nil {
					var err error
					if c, err = l.dial(l.cfg, fmt.Sprintf("producer-%d", p)); err != nil {
						errs <- err
						return
					}
				}
				done, err := produce(c, n, until, l.cfg)
				c.close()
				c = nil
				sent.Add(int64(done))
				if n > 0 {
					n -= done
				}
				if err == nil {
					return
				}
				if attempt == 10 {
					errs <- err
					return
				}
			}
		}()
	}
	pwg.Wait()
	r.sendTime = time.Since(start)
	close(errs)
	if err := <-errs; err != nil {
		return r, fmt.Errorf("producer: %w", err)
	}
	r.sent = sent.Load()
	target.Store(l.expected(r.sent))
	if received.Load() >= target.Load() {
		arrived()
	}
	// Wait for the consumers while they make progress.
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	last, lastMove := received.Load(), time.Now()
wait:
	for {
		select {
		case <-allIn:
			break wait
		case <-tick.C:
			if n := received.Load(); n != last {
				last, lastMove = n, time.Now()
			} else if time.Since(lastMove) > 30*time.Second {
				break wait
			}
		}
	}
	after, err := probe.sample()
	r.cost = after.since(before)
	if err != nil {
		fmt.Fprintf(os.Stderr, "hamq bench: %v; the broker's cost is not measured\n", err)
		r.cost = probeSample{cpu: -1, flushes: -1}
	}
	r.received = received.Load()
	r.recvTime = time.Duration(lastRecv.Load() - start.UnixNano())
	for _, l := range lat {
		r.latencies = append(r.latencies, l...)
	}
	slices.Sort(r.latencies)
	return r, nil
}

// expected is the number of deliveries the consumers should have had.
func (l benchLoad) expected(sent int64) int64 {
	if l.fanOut || l.consumers == 0 {
		return sent * int64(l.consumers)
	}
	return sent
}

// produce sends n messages (or, with n < 0, until the time until) with at
// most cfg.window unconfirmed, and returns how many were confirmed.
func produce(c benchConn, n int, until time.Time, cfg benchConfig) (int, error) {
	slots := make(chan struct{}, cfg.window)
	var confirmed atomic.Int64
	var failed atomic.Value
	body := make([]byte, cfg.size)
	for i := range body {
		body[i] = 'a' + byte(i%26)
	}
	for i := 0; n < 0 || i < n; i++ {
		if n < 0 && time.Now().After(until) {
			break
		}
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

// progressEvery is how often a long run says how far it got.
const progressEvery = 5 * time.Second

// showProgress prints, every progressEvery until the returned function is
// called, the messages received so far and their rate.
func showProgress(w io.Writer, start time.Time, received, target *atomic.Int64) func() {
	if w == nil {
		return func() {}
	}
	stop, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(progressEvery)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
			}
			n, el := received.Load(), time.Since(start)
			of := ""
			if tg := target.Load(); tg != math.MaxInt64 {
				of = fmt.Sprintf(" of %d", tg)
			}
			fmt.Fprintf(w, "hamq bench: %s: %d%s messages received (%.0f/s)\n", el.Round(time.Second), n, of, float64(n)/el.Seconds())
		}
	}()
	return func() {
		close(stop)
		<-done
	}
}
