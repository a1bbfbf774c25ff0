package core

import (
	"context"
	"fmt"
	"runtime"
	"slices"
	"sync"
	"testing"
	"time"
)

// BenchmarkScheduler holds a million scheduled messages (due in the next
// hour), reports the heap they cost, then the lateness of 20,000 more that
// fall due over four seconds while a producer and a consumer keep 2,000
// ordinary persistent messages a second going. Run it once:
//
//	go test ./core -run '^$' -bench BenchmarkScheduler -benchtime 1x
func BenchmarkScheduler(b *testing.B) {
	for range b.N {
		benchScheduler(b, 1_000_000, 20_000)
	}
}

func benchScheduler(b *testing.B, held, timed int) {
	br := benchBroker(b)
	s, err := br.Connect(ConnInfo{Protocol: "bench"})
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	body := make([]byte, 100)
	later := Destination{Kind: Queue, Name: "later"}
	start := time.Now()
	var last Confirmation
	for i := range held {
		at := start.Add(time.Minute + time.Duration(i)*time.Hour/time.Duration(held)).UnixMilli()
		m := &Message{Dest: later, Body: body, Persistent: true, Properties: map[string]any{PropDeliveryTime: at}}
		if last, err = s.SendAsync(ctx, m); err != nil {
			b.Fatal(err)
		}
		if i%10_000 == 9_999 {
			if err := last.Wait(ctx); err != nil {
				b.Fatal(err)
			}
		}
	}
	if err := last.Wait(ctx); err != nil {
		b.Fatal(err)
	}
	b.Logf("scheduled %d in %v", held, time.Since(start).Round(time.Millisecond))
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	b.ReportMetric(float64(ms.HeapInuse)/(1<<20), "heap-MiB")

	// The load: a producer and a consumer of ordinary persistent messages.
	busy := Destination{Kind: Queue, Name: "busy"}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		tick := time.NewTicker(time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
			}
			for range 2 {
				if _, err := s.SendAsync(ctx, &Message{Dest: busy, Body: body, Persistent: true}); err != nil {
					b.Error(err)
					return
				}
			}
		}
	}()
	cs, err := br.Connect(ConnInfo{Protocol: "bench"})
	if err != nil {
		b.Fatal(err)
	}
	busyC := make(chanConsumer, 4096)
	if _, err := cs.Subscribe(SubSpec{Dest: busy, Prefetch: 1000}, busyC); err != nil {
		b.Fatal(err)
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			case d := <-busyC:
				if _, err := cs.Ack(ctx, "", d.Tag, false, false); err != nil {
					b.Error(err)
					return
				}
			}
		}
	}()

	soon := Destination{Kind: Queue, Name: "soon"}
	got := make(chanConsumer, timed)
	if _, err := cs.Subscribe(SubSpec{Dest: soon, Prefetch: timed}, got); err != nil {
		b.Fatal(err)
	}
	first := time.Now().Add(3 * time.Second)
	for i := range timed {
		at := first.Add(time.Duration(i) * 4 * time.Second / time.Duration(timed)).UnixMilli()
		m := &Message{Dest: soon, Body: body, Persistent: true, Properties: map[string]any{PropDeliveryTime: at, "at": at}}
		if last, err = s.SendAsync(ctx, m); err != nil {
			b.Fatal(err)
		}
	}
	if err := last.Wait(ctx); err != nil {
		b.Fatal(err)
	}
	if time.Now().After(first) {
		b.Fatal("scheduling the timed messages took longer than their delay")
	}
	late := make([]time.Duration, 0, timed)
	for range timed {
		select {
		case d := <-got:
			late = append(late, time.Since(time.UnixMilli(d.Msg.Properties["at"].(int64))))
		case <-time.After(time.Minute):
			b.Fatalf("%d of %d timed messages came", len(late), timed)
		}
	}
	close(stop)
	wg.Wait()
	slices.Sort(late)
	if late[0] < 0 {
		b.Errorf("a message came %v early", -late[0])
	}
	q := func(p float64) time.Duration { return late[int(p*float64(len(late)-1))] }
	b.ReportMetric(float64(q(0.5).Microseconds())/1000, "late-p50-ms")
	b.ReportMetric(float64(q(0.99).Microseconds())/1000, "late-p99-ms")
	b.ReportMetric(float64(late[len(late)-1].Microseconds())/1000, "late-max-ms")
	b.Log(fmt.Sprintf("lateness p50 %v p99 %v max %v", q(0.5), q(0.99), late[len(late)-1]))
}
