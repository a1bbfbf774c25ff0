package store

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"
)

// BenchmarkGroupCommit measures 1 KiB puts, each waited for, from 1, 8 and
// 64 concurrent submitters: commits/s is what a producer waiting for each
// receipt sees in total, ops/record how well fsyncs are shared.
func BenchmarkGroupCommit(b *testing.B) {
	for _, writers := range []int{1, 4, 8, 64} {
		b.Run(fmt.Sprint("writers=", writers), func(b *testing.B) {
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
						c := s.Submit([]Op{{Key: fmt.Appendf(nil, "k%d-%d", w, i), Value: value}})
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
		})
	}
}
