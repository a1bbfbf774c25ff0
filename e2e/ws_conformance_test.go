package e2e

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"
)

// stompWS runs stomp_ws.py (stomp.py over Debian's python3-websocket) and
// returns its lines.
func stompWS(t *testing.T, n *node, body string, args ...string) []string {
	t.Helper()
	needPython(t, "stomp")
	if err := exec.Command(python, "-c", "import websocket").Run(); err != nil {
		t.Fatalf("websocket-client is needed: apt-get install python3-websocket (%v)", err)
	}
	host, port := hostPort(t, n.ws)
	var lines []string
	script(t, context.Background(), "stomp_ws.py", func(l string) bool {
		lines = append(lines, l)
		return true
	}, append([]string{host, port, "/topic/ws.check", body}, args...)...)
	return lines
}

// TestSTOMPOverWebSocketAsActiveMQ (issue 14, item 7): stomp.py's
// WebSocket transport asks for no subprotocol, and some clients ask for
// "stomp": both are STOMP, as with ActiveMQ. A page opened from a file://
// URL sends Origin: null, which is refused unless ws.allowedOrigins lists
// "null" (any site's sandboxed frame sends it too); clients keep working
// either way.
func TestSTOMPOverWebSocketAsActiveMQ(t *testing.T) {
	n := startNode(t)
	for _, sub := range []string{"", "stomp", "v12.stomp"} {
		var args []string
		if sub != "" {
			args = []string{"--subprotocol", sub}
		}
		if got := stompWS(t, n, "hi-"+sub, args...); !slices.Contains(got, "got hi-"+sub) {
			t.Errorf("subprotocol %q: %q", sub, got)
		}
	}
	if got := stompWS(t, n, "from-file", "--origin", "null"); !slices.Contains(got, "refused 403") {
		t.Errorf("Origin null by default: %q", got)
	}
	if got := stompWS(t, n, "after"); !slices.Contains(got, "got after") {
		t.Errorf("after a refused upgrade: %q", got)
	}

	conf := filepath.Join(t.TempDir(), "hamq.yaml")
	if err := os.WriteFile(conf, []byte("ws:\n  allowedOrigins: [\"null\", \"localhost:*\", \"127.0.0.1:*\"]\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	open := newNode(t)
	open.extra = []string{"--config", conf}
	open.start()
	if got := stompWS(t, open, "from-file", "--origin", "null"); !slices.Contains(got, "got from-file") {
		t.Errorf(`Origin null with "null" allowed: %q`, got)
	}
}
