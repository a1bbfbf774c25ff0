package mqtt

import (
	"fmt"
	"io"
	"net"
	"runtime"
	"runtime/debug"
	"testing"
	"time"
)

// An idle connection costs the broker mochi's two goroutines, a reader
// whose stack grows to 16 KiB while it reads the CONNECT (mochi's frames
// hold packets by value: it allocates the packet's bytes 7.3 KiB deep,
// past 8 KiB with the runtime's stack guard) and a 4 KiB writer, and the
// client's and the session's state. 10,000 in 300 MiB of RSS leave the
// heap about 9 KiB of each, garbage included (see cmd/hamq/internal/gcpace
// for the garbage); live it was 9.2 KiB before mochi's read buffer and
// outbound queue were cut, 4.9 once retained messages no longer needed
// the queue and sessions made their maps on first use.
func TestIdleConnectionMemory(t *testing.T) {
	if raceEnabled() {
		t.Skip("the race detector changes stack and heap sizes")
	}
	const n = 500
	br := startBroker(t, func(o *Options) { o.MaxConnections = n })
	before := memStats()
	for i := range n {
		c, err := net.Dial("tcp", br.mqttAddr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		c.SetDeadline(time.Now().Add(5 * time.Second))
		ack := make([]byte, 4)
		if _, err := c.Write(idleConnect(fmt.Sprintf("idle-%d", i))); err != nil {
			t.Fatal(err)
		}
		if _, err := io.ReadFull(c, ack); err != nil || ack[0] != 0x20 || ack[3] != 0 {
			t.Fatalf("connection %d: CONNACK %x, %v", i, ack, err)
		}
	}
	// The CONNACK goes out before mochi establishes the session.
	for deadline := time.Now().Add(5 * time.Second); len(br.b.Connections()) < n; {
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d sessions established", len(br.b.Connections()), n)
		}
		time.Sleep(10 * time.Millisecond)
	}
	after := memStats()
	stack := float64(after.StackInuse-before.StackInuse) / n / 1024
	heap := float64(int64(after.HeapAlloc)-int64(before.HeapAlloc)) / n / 1024
	t.Logf("per idle connection: %.1f KiB of stacks, %.1f KiB of live heap", stack, heap)
	if stack > 20.5 {
		t.Errorf("%.1f KiB of goroutine stacks per idle connection, want 16 + 4", stack)
	}
	if heap > 5.5 {
		t.Errorf("%.1f KiB of live heap per idle connection, want at most 5.5", heap)
	}
}

func memStats() runtime.MemStats {
	// The second collection frees what the first one's finalizers let go.
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m
}

// idleConnect is an MQTT 3.1.1 CONNECT with a clean session and no
// keep-alive.
func idleConnect(clientID string) []byte {
	body := []byte{0, 4, 'M', 'Q', 'T', 'T', 4, 0x02, 0, 0, byte(len(clientID) >> 8), byte(len(clientID))}
	body = append(body, clientID...)
	return append([]byte{0x10, byte(len(body))}, body...)
}

func raceEnabled() bool {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return false
	}
	for _, s := range bi.Settings {
		if s.Key == "-race" {
			return s.Value == "true"
		}
	}
	return false
}
