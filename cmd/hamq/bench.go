package main

import (
	"fmt"
	"os"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-stomp/stomp/v3"
	"github.com/go-stomp/stomp/v3/frame"
)

// benchHeader carries the send time, so that consumers measure latency.
const benchHeader = "hamq-bench-sent"

func cmdBench(args []string) error {
	fs := flagSet("bench", "[flags]", "Measures a broker: producers send --count messages in all while consumers\nreceive them; prints send and receive rates and the latency percentiles.\nPersistent sends are each confirmed by a receipt, as a careful client does.")
	u := urlFlag(fs)
	proto := fs.String("proto", "stomp", "protocol (stomp)")
	producers := fs.Int("producers", 1, "producer connections")
	consumers := fs.Int("consumers", 1, "consumer connections")
	count := fs.Int("count", 100_000, "messages in all")
	size := fs.Int("size", 128, "message body bytes")
	persistent := fs.Bool("persistent", false, "persistent messages confirmed by receipt")
	dest := fs.String("destination", "/queue/hamq.bench", "STOMP destination (a /topic/ gives every consumer every message)")
	if err := fs.Parse(args); err != nil {
		return flagError(err)
	}
	if *proto != "stomp" {
		return fmt.Errorf("--proto %q: only stomp for now", *proto)
	}
	if *producers < 1 || *count < *producers {
		return fmt.Errorf("want at least one producer and one message per producer")
	}
	expect := *count
	if len(*dest) > 7 && (*dest)[:7] == "/topic/" {
		expect = *count * *consumers
	}

	var received atomic.Int64
	lat := make([][]time.Duration, *consumers)
	var cwg sync.WaitGroup
	ready := make(chan error, *consumers)
	var lastRecv atomic.Int64
	for i := range *consumers {
		cwg.Add(1)
		go func() {
			defer cwg.Done()
			c, err := dial(*u, 10*time.Second)
			if err != nil {
				ready <- err
				return
			}
			defer c.Disconnect()
			sub, err := c.Subscribe(*dest, stomp.AckAuto, stomp.SubscribeOpt.Header("activemq.prefetchSize", "1000"))
			if err != nil {
				ready <- err
				return
			}
			ready <- nil
			for received.Load() < int64(expect) {
				select {
				case m := <-sub.C:
					if m.Err != nil {
						return
					}
					if sent, err := strconv.ParseInt(m.Header.Get(benchHeader), 10, 64); err == nil {
						lat[i] = append(lat[i], time.Duration(time.Now().UnixNano()-sent))
					}
					received.Add(1)
					lastRecv.Store(time.Now().UnixNano())
				case <-time.After(10 * time.Second):
					return
				}
			}
		}()
	}
	for range *consumers {
		if err := <-ready; err != nil {
			return err
		}
	}

	body := make([]byte, *size)
	for i := range body {
		body[i] = 'a' + byte(i%26)
	}
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
			c, err := dial(*u, 10*time.Second)
			if err != nil {
				errs <- err
				return
			}
			defer c.Disconnect()
			for range n {
				opts := []func(*frame.Frame) error{stomp.SendOpt.Header(benchHeader, strconv.FormatInt(time.Now().UnixNano(), 10))}
				if *persistent {
					opts = append(opts, stomp.SendOpt.Header("persistent", "true"), stomp.SendOpt.Receipt)
				}
				if err := c.Send(*dest, "", body, opts...); err != nil {
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
	cwg.Wait()
	recvTime := time.Duration(lastRecv.Load() - start.UnixNano())
	var all []time.Duration
	for _, l := range lat {
		all = append(all, l...)
	}
	slices.Sort(all)
	kind := "non-persistent"
	if *persistent {
		kind = "persistent"
	}
	fmt.Printf("hamq bench: %s, %d producer(s), %d consumer(s), %d messages of %d B, %s\n", *proto, *producers, *consumers, *count, *size, kind)
	fmt.Printf("send:    %10.0f msgs/s  %8.2f MiB/s  (%d in %s)\n", float64(*count)/sendTime.Seconds(), float64(*count**size)/sendTime.Seconds()/(1<<20), *count, sendTime.Round(time.Millisecond))
	if n := received.Load(); n > 0 {
		fmt.Printf("receive: %10.0f msgs/s  %8.2f MiB/s  (%d in %s)\n", float64(n)/recvTime.Seconds(), float64(n*int64(*size))/recvTime.Seconds()/(1<<20), n, recvTime.Round(time.Millisecond))
	}
	if len(all) > 0 {
		fmt.Printf("latency: p50 %s  p99 %s  max %s\n", pct(all, 50), pct(all, 99), all[len(all)-1].Round(time.Microsecond))
	}
	if got := received.Load(); got != int64(expect) {
		fmt.Fprintf(os.Stderr, "received %d of %d messages\n", got, expect)
		return exitCode(1)
	}
	return nil
}

func pct(sorted []time.Duration, p int) time.Duration {
	return sorted[(len(sorted)-1)*p/100].Round(time.Microsecond)
}
