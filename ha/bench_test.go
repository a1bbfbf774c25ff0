package ha

import (
	"context"
	"fmt"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/hamq/hamq/core/store"
)

// BenchmarkReplicatedMessages runs a master and two slaves in this
// process, with the store's default options, under the load of a broker
// taking persistent 1 KiB messages: 4 producers with 100 unconfirmed
// each, every message put and, once confirmed, deleted as an ack would.
// cpu-ms/1k-msgs is the whole cluster's CPU (the three stores, the
// replication and the loopback traffic), which the benchmark's own
// allocation figures cannot show for the other goroutines.
func BenchmarkReplicatedMessages(b *testing.B) {
	_, aAddr := slaveWith(b, b.TempDir(), store.Options{})
	_, bAddr := slaveWith(b, b.TempDir(), store.Options{})
	master, err := store.Open(b.TempDir(), store.Options{}, quiet())
	if err != nil {
		b.Fatal(err)
	}
	defer master.Close()
	rep := lead(b, master, 1, map[string]string{"a": aAddr, "b": bAddr})
	defer rep.close("test")
	defer master.SetConfirmer(nil)

	const producers, window = 4, 100
	body := make([]byte, 1024)
	per := b.N/producers + 1
	var wg sync.WaitGroup
	before := cpuTime(b)
	b.ResetTimer()
	for p := range producers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			inflight := make(chan []byte, window)
			ack := func(key []byte, c *store.Commit) {
				if err := c.Wait(ctx); err != nil {
					b.Error(err)
				}
				master.Submit([]store.Op{{Key: key, Delete: true}})
			}
			var commits []*store.Commit
			for i := range per {
				key := fmt.Appendf(nil, "m%d-%08d", p, i)
				commits = append(commits, master.Submit([]store.Op{{Key: key, Value: body}}))
				inflight <- key
				if len(inflight) == window {
					ack(<-inflight, commits[0])
					commits = commits[1:]
				}
			}
			for len(inflight) > 0 {
				ack(<-inflight, commits[0])
				commits = commits[1:]
			}
		}()
	}
	wg.Wait()
	if err := master.Submit(nil).Wait(context.Background()); err != nil {
		b.Fatal(err)
	}
	b.StopTimer()
	n := float64(per * producers)
	b.ReportMetric((cpuTime(b)-before).Seconds()*1000/(n/1000), "cpu-ms/1k-msgs")
}

func cpuTime(t testing.TB) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		t.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
