package admin

import (
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/hamq/hamq/core"
	"github.com/hamq/hamq/core/store"
	"github.com/hamq/hamq/ha"
)

func TestAPI(t *testing.T) {
	srv := newTestAPI(t)

	call := func(method, path, body string, wantStatus int, into any) {
		t.Helper()
		req, _ := http.NewRequest(method, srv.URL+path, strings.NewReader(body))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		data, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != wantStatus {
			t.Fatalf("%s %s: %d %s, want %d", method, path, resp.StatusCode, data, wantStatus)
		}
		if into != nil {
			if err := json.Unmarshal(data, into); err != nil {
				t.Fatalf("%s %s: %v in %s", method, path, err, data)
			}
		}
	}
	var d DestJSON
	call("POST", "/api/queues/orders", "", http.StatusCreated, &d)
	if d.Name != "orders" || d.Type != "queue" {
		t.Fatalf("created %+v", d)
	}
	call("POST", "/api/queues/orders/messages?persistent=true&priority=7&region=eu", "hello", http.StatusCreated, nil)
	call("POST", "/api/queues/orders/messages?priority=12", "x", http.StatusBadRequest, nil)
	call("GET", "/api/queues/orders", "", http.StatusOK, &d)
	if d.Size != 1 || d.Enqueued != 1 {
		t.Fatalf("after send %+v", d)
	}
	// The same, as Prometheus scrapes it.
	resp, err := http.Get(srv.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	scraped, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, line := range []string{
		`hamq_destination_messages{destination="queue://orders"} 1`,
		`hamq_destination_enqueued_total{destination="queue://orders"} 1`,
		`hamq_role{role="standalone"} 1`,
		`hamq_role{role="master"} 0`,
		`hamq_log_end_index `,
		`go_goroutines `,
		`process_resident_memory_bytes `,
	} {
		if !strings.Contains(string(scraped), "\n"+line) {
			t.Errorf("/metrics has no line %q", line)
		}
	}
	if t.Failed() {
		t.Fatalf("/metrics:\n%s", scraped)
	}
	var broker map[string]any
	call("GET", "/api/broker", "", http.StatusOK, &broker)
	if broker["name"] != "n1" || broker["role"] != "standalone" || broker["destinations"].(float64) != 1 {
		t.Fatalf("broker %v", broker)
	}
	if cpu, _ := broker["cpuSeconds"].(float64); cpu <= 0 {
		t.Fatalf("broker cpuSeconds %v", broker["cpuSeconds"])
	}
	if gogc, _ := broker["memory"].(map[string]any)["gcPercent"].(float64); gogc <= 0 {
		t.Fatalf("broker memory %v", broker["memory"])
	}
	var list []DestJSON
	call("GET", "/api/destinations", "", http.StatusOK, &list)
	if len(list) != 1 {
		t.Fatalf("destinations %v", list)
	}
	var purged map[string]int
	call("POST", "/api/queues/orders/purge", "", http.StatusOK, &purged)
	if purged["purged"] != 1 {
		t.Fatalf("purged %v", purged)
	}
	call("POST", "/api/topics/orders/purge", "", http.StatusNotFound, nil)
	var conns []map[string]any
	call("GET", "/api/connections", "", http.StatusOK, &conns)
	call("DELETE", "/api/queues/orders", "", http.StatusNoContent, nil)
	var e map[string]string
	call("GET", "/api/queues/orders", "", http.StatusNotFound, &e)
	if !strings.Contains(e["error"], `no queue named "orders"`) {
		t.Fatalf("error %v", e)
	}
}

// A slave's metrics say its role, epoch and log; it has no destinations to
// speak of.
func TestMetricsOfASlave(t *testing.T) {
	st := ha.Status{Role: ha.RoleSlave, Epoch: 7, End: store.Position{Epoch: 7, Index: 42}}
	srv := httptest.NewServer(New(func() *core.Broker { return nil },
		Info{Name: "n2", End: func() store.Position { return st.End }, Health: func() string { return "ok" }, Cluster: func() ha.Status { return st }}))
	defer srv.Close()
	resp, err := http.Get(srv.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	scraped, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, line := range []string{`hamq_role{role="slave"} 1`, `hamq_role{role="standalone"} 0`, "hamq_epoch 7", "hamq_log_end_index 42"} {
		if !strings.Contains(string(scraped), "\n"+line+"\n") {
			t.Errorf("/metrics has no line %q", line)
		}
	}
	if strings.Contains(string(scraped), "hamq_destination_") {
		t.Error("a slave reports destinations")
	}
}

// TestCrossSiteChangesRefused: another site's page cannot make a browser
// that holds the console's login change anything; the console's own
// requests and the commands' (no Origin) go through.
func TestCrossSiteChangesRefused(t *testing.T) {
	srv := newTestAPI(t)
	for _, tc := range []struct {
		method, origin, fetchSite string
		want                      int
	}{
		{"POST", "http://evil.example", "", http.StatusForbidden},
		{"DELETE", "", "cross-site", http.StatusForbidden},
		{"POST", "null", "", http.StatusForbidden},
		{"POST", srv.URL, "same-origin", http.StatusCreated},
		{"POST", "", "", http.StatusCreated},
		{"GET", "http://evil.example", "cross-site", http.StatusOK},
	} {
		req, _ := http.NewRequest(tc.method, srv.URL+"/api/queues/q1", nil)
		if tc.origin != "" {
			req.Header.Set("Origin", tc.origin)
		}
		if tc.fetchSite != "" {
			req.Header.Set("Sec-Fetch-Site", tc.fetchSite)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != tc.want {
			t.Errorf("%s with Origin %q, Sec-Fetch-Site %q: %d, want %d", tc.method, tc.origin, tc.fetchSite, resp.StatusCode, tc.want)
		}
	}
}

// newTestAPI serves the API of a standalone broker on a store of its own.
func newTestAPI(t *testing.T) *httptest.Server {
	t.Helper()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	st, err := store.Open(t.TempDir(), store.Options{}, log)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	b, err := core.NewBroker(core.DefaultConfig(), st, log)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	srv := httptest.NewServer(New(func() *core.Broker { return b }, Info{Name: "n1", Version: "test", End: st.End, Health: func() string { return "ok" }}))
	t.Cleanup(srv.Close)
	return srv
}
