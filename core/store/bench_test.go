package store

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"
)

// BenchmarkGroupCommit measures 1 KiB puts, each waited for, from 1, 4, 8
// and 64 concurrent submitters: commits/s is what a producer waiting for
// each receipt sees in total, ops/record how well fsyncs are shared. In
// the answered runs each commit is submitted as a front-end's reader does
// (SubmitHeld, Flush) with a callback that takes answerTime, as writing a
// RECEIPT does, on the goroutine that finishes the group.
func BenchmarkGroupCommit(b *testing.B) {
	for _, writers := range []int{1, 4, 8, 64} {
		b.Run(fmt.Sprint("writers=", writers), func(b *testing.B) { benchGroupCommit(b, writers, false) })
	}
	b.Run("writers=4,answered", func(b *testing.B) { benchGroupCommit(b, 4, true) })
}

const answerTime = 40 * time.Microsecond

func benchGroupCommit(b *testing.B, writers int, answered bool) {
	s := open(b, b.TempDir(), Options{})
	defer s.Close()
	value := make([]byte, 1024)
	per := b.N/writers + 1
	var wg sync.WaitGroup
	b.ResetTimer()
	start := time.Now()
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range per {
				ops := []Op{{Key: fmt.Appendf(nil, "k%d-%d", w, i), Value: value}}
				var c *Commit
				if answered {
					c = s.SubmitHeld(ops, answer)
					s.Flush()
				} else {
					c = s.Submit(ops)
				}
				if err := c.Wait(context.Background()); err != nil {
					b.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	b.StopTimer()
	n := float64(per * writers)
	b.ReportMetric(n/time.Since(start).Seconds(), "commits/s")
	b.ReportMetric(n/float64(s.End().Index), "ops/record")
}

// answer spins for answerTime: a sleep would yield the core the answer's
// write holds.
func answer(error) {
	for start := time.Now(); time.Since(start) < answerTime; {
	}
}
