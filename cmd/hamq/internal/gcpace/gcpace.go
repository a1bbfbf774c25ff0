// Package gcpace sets the Go collector's GOGC while the broker runs, so
// that an idle broker does not sit on its garbage.
//
// Go collects once the heap has grown by GOGC percent of the live heap
// plus goroutine stacks and globals. A broker holding many connections is
// mostly goroutine stacks (mochi's two goroutines are 20 KiB an MQTT
// connection), so at GOGC 50 an idle broker with 10,000 connections let
// 80 MiB of garbage build up, from the housekeeping of mochi and of the
// runtime, about 1.5 MiB/s, before it collected; all of it was resident.
// While the allocation rate is low, a collection is cheap to have often
// and that headroom is pure cost; while the broker is busy, headroom is
// what keeps the collector's CPU down. So gcpace lets the heap grow by
// what the broker allocated in the last Period, never more than the
// configured GOGC allows and never less than MinHeadroom: a burst raises
// the headroom within a second, and an idle Period lowers it.
package gcpace

import (
	"context"
	"math"
	"runtime/debug"
	"runtime/metrics"
	"time"
)

// Period is how often an idle broker collects at most: at 10,000 idle
// MQTT connections a collection costs about 0.13 CPU-seconds (it scans
// every goroutine's stack), and with 8 s they held 291 MiB for 3.4% of a
// core in all, with 10 s 294 MiB for 3.2%; 5 s saved some 10 MiB more for
// 2% of a core more.
const Period = 8 * time.Second

// MinHeadroom is Go's own minimum heap goal.
const MinHeadroom = 4 << 20

var names = []string{
	"/gc/heap/allocs:bytes",  // allocated since the start
	"/gc/heap/live:bytes",    // marked live by the last collection
	"/gc/scan/stack:bytes",   // goroutine stacks the last collection scanned
	"/gc/scan/globals:bytes", // globals it scanned
}

// Run paces the collector until ctx ends, then restores percent, the GOGC
// the broker runs with when busy.
func Run(ctx context.Context, percent int) {
	debug.SetGCPercent(percent)
	defer debug.SetGCPercent(percent)
	samples := make([]metrics.Sample, len(names))
	for i, n := range names {
		samples[i].Name = n
	}
	// allocs[i%n] is the heap allocated in all by the i-th second.
	const n = int(Period / time.Second)
	var allocs [n]uint64
	metrics.Read(samples)
	for i := range allocs {
		allocs[i] = samples[0].Value.Uint64()
	}
	current := percent
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for i := 0; ; i++ {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			metrics.Read(samples)
			a := samples[0].Value.Uint64()
			allocated := a - allocs[i%n]
			allocs[i%n] = a
			base := samples[1].Value.Uint64() + samples[2].Value.Uint64() + samples[3].Value.Uint64()
			if p := Percent(percent, allocated, base); p != current {
				debug.SetGCPercent(p)
				current = p
			}
		}
	}
}

// Percent is the GOGC that lets the heap grow by allocated bytes, within
// MinHeadroom and the growth percent allows; base is what Go takes GOGC a
// percentage of: the live heap, the stacks and the globals.
func Percent(percent int, allocated, base uint64) int {
	if base == 0 {
		return percent
	}
	headroom := max(allocated, MinHeadroom)
	p := int(math.Ceil(100 * float64(headroom) / float64(base)))
	return max(1, min(p, percent))
}
