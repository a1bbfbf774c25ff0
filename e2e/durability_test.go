package e2e

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"
)

// receiveAll receives from dest with stomp.py until none came for quiet
// seconds and counts each body.
func receiveAll(t *testing.T, n *node, dest, quiet string) map[string]int {
	t.Helper()
	needPython(t, "stomp")
	host, port := hostPort(t, n.stomp)
	got := map[string]int{}
	script(t, context.Background(), "stomp_receive.py", func(l string) bool {
		if f := strings.Fields(l); len(f) == 3 && f[0] == "got" {
			got[f[1]]++
		}
		return true
	}, host, port, dest, quiet)
	return got
}

// TestStompPyKill9AfterConfirm: 1000 persistent messages confirmed by
// receipt survive kill -9 and are received exactly once.
func TestStompPyKill9AfterConfirm(t *testing.T) {
	needPython(t, "stomp")
	n := startNode(t)
	stompPySend(t, n, "/queue/durable", 1000)
	n.kill()
	n.start()
	got := receiveAll(t, n, "/queue/durable", "2")
	for i := range 1000 {
		if k := got[fmt.Sprintf("msg-%04d", i)]; k != 1 {
			t.Errorf("msg-%04d received %d times", i, k)
		}
	}
	if len(got) != 1000 {
		t.Errorf("received %d distinct messages, want 1000", len(got))
	}
	// Acknowledged messages stay acknowledged across another crash.
	n.kill()
	n.start()
	if again := receiveAll(t, n, "/queue/durable", "2"); len(again) != 0 {
		t.Errorf("%d acknowledged messages delivered again after a second kill -9", len(again))
	}
}

// TestStompPyKill9MidStream kills the broker while stomp.py is still
// sending: every message confirmed before the kill is there after restart,
// and nothing arrives twice.
func TestStompPyKill9MidStream(t *testing.T) {
	needPython(t, "stomp")
	n := startNode(t)
	host, port := hostPort(t, n.stomp)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	confirmed := map[string]bool{}
	cmd := script(t, ctx, "stomp_send.py", func(l string) bool {
		if s, ok := strings.CutPrefix(l, "confirmed "); ok {
			i, _ := strconv.Atoi(s)
			confirmed[fmt.Sprintf("msg-%04d", i)] = true
		}
		return len(confirmed) < 300
	}, host, port, "/queue/midstream", "5000")
	n.kill()
	cancel()
	cmd.Wait()
	time.Sleep(100 * time.Millisecond)
	n.start()
	got := receiveAll(t, n, "/queue/midstream", "2")
	for id := range confirmed {
		if got[id] != 1 {
			t.Errorf("confirmed %s received %d times", id, got[id])
		}
	}
	for id, k := range got {
		if k != 1 {
			t.Errorf("%s received %d times", id, k)
		}
	}
	t.Logf("confirmed before kill -9: %d; received after restart: %d", len(confirmed), len(got))
}

// stompPySend sends count persistent messages to dest with stomp.py and
// fails unless every one was confirmed by its receipt.
func stompPySend(t *testing.T, n *node, dest string, count int) {
	t.Helper()
	host, port := hostPort(t, n.stomp)
	confirmed := 0
	script(t, context.Background(), "stomp_send.py", func(l string) bool {
		if strings.HasPrefix(l, "confirmed ") {
			confirmed++
		}
		return true
	}, host, port, dest, strconv.Itoa(count))
	if confirmed != count {
		t.Fatalf("%d of %d stomp.py sends to %s confirmed", confirmed, count, dest)
	}
}
