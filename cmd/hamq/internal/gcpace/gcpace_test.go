package gcpace

import (
	"context"
	"runtime"
	"runtime/metrics"
	"testing"
	"time"
)

const mib = 1 << 20

func TestPercent(t *testing.T) {
	for _, c := range []struct {
		name      string
		allocated uint64
		base      uint64
		percent   int
	}{
		{"idle with many connections: the garbage of a period", 10 * mib, 160 * mib, 7},
		{"busy: the configured percent", 1000 * mib, 160 * mib, 50},
		{"idle and small: Go's minimum heap", 0, 1 * mib, 50},
		{"idle and large: at least one percent", 0, 1000 * mib, 1},
		{"nothing known yet", 10 * mib, 0, 50},
	} {
		if got := Percent(50, c.allocated, c.base); got != c.percent {
			t.Errorf("%s: Percent(50, %d, %d) = %d, want %d", c.name, c.allocated, c.base, got, c.percent)
		}
	}
}

// Run lowers GOGC while the process idles with a large heap, returns to
// the configured percent as soon as it allocates fast, and restores it when
// it ends.
func TestRunFollowsTheAllocationRate(t *testing.T) {
	live := make([][]byte, 64)
	for i := range live {
		live[i] = make([]byte, mib)
	}
	runtime.GC() // the live heap is what the last collection marked
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		Run(ctx, 50)
	}()
	waitPercent(t, "idle", func(p uint64) bool { return p < 50 })

	stop := make(chan struct{})
	busy := make(chan struct{})
	go func() {
		defer close(busy)
		for {
			select {
			case <-stop:
				return
			default:
				sink = make([]byte, 64<<10)
			}
		}
	}()
	waitPercent(t, "busy", func(p uint64) bool { return p == 50 })
	close(stop)
	<-busy

	waitPercent(t, "idle again", func(p uint64) bool { return p < 50 })
	cancel()
	<-done
	if p := gogc(); p != 50 {
		t.Fatalf("GOGC %d after Run ended, want 50", p)
	}
	runtime.KeepAlive(live)
}

var sink []byte

func gogc() uint64 {
	s := []metrics.Sample{{Name: "/gc/gogc:percent"}}
	metrics.Read(s)
	return s[0].Value.Uint64()
}

func waitPercent(t *testing.T, what string, ok func(uint64) bool) {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); !ok(gogc()); {
		if time.Now().After(deadline) {
			t.Fatalf("%s: GOGC still %d", what, gogc())
		}
		time.Sleep(50 * time.Millisecond)
	}
}
