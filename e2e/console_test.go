package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/device"
	"github.com/go-stomp/stomp/v3"

	"github.com/hamq/hamq/ha"
)

// adminGet reads an admin API resource as the administrator, decoding
// its JSON into v when v is not nil.
func adminGet(t *testing.T, n *node, path string, v any) int {
	t.Helper()
	code, body := adminRead(t, n, path)
	if v != nil {
		json.Unmarshal(body, v)
	}
	return code
}

// adminRead reads what the admin API answers the administrator at path.
func adminRead(t *testing.T, n *node, path string) (int, []byte) {
	t.Helper()
	req, _ := http.NewRequest("GET", "http://"+n.http+path, nil)
	req.SetBasicAuth("admin", adminPassword)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, body
}

// TestConsole drives the web console in headless Chromium as ActiveMQ's
// getting-started guide drives ActiveMQ's: create testQueue, send a
// message, browse it, see EnqueueCount = 1 from hamq query, purge it. It
// then retries a dead-letter queue's message, looks at a durable
// subscription and a connection, closes the connection, and reads the
// queues on a phone's screen. Every page is photographed once it shows
// what it must.
func TestConsole(t *testing.T) {
	n := startAuthNode(t, "policy:\n  maxRedeliveries: 0\n")
	dir := screenshotDir(t)
	b := newBrowser(t, "admin", adminPassword)
	base := "http://" + n.http

	b.run(chromedp.Navigate(base + "/admin/"))
	b.shoot(dir, "1-overview", "Overview", "Role", "standalone", "Uptime", "Version", "0.1.0", "Health", "ok", "Store", "logged in as admin")

	// Queues: create testQueue.
	b.run(chromedp.Click(chromedp.CSS(`#nav a[data-page="queues"]`)))
	b.waitText("main", "Queue name")
	b.run(chromedp.SendKeys(chromedp.CSS("#create-name"), "testQueue"), chromedp.Click(chromedp.CSS("#create-button")))
	b.shoot(dir, "2-queues", "Created queue testQueue", "testQueue", "Pending", "Enqueued", "Browse", "Purge", "Delete")

	// Send a message to it, with a property.
	b.run(chromedp.Click(chromedp.CSS(`tr[data-name="testQueue"] a[href^="#/send/"]`)))
	b.waitText("main", "Send a message")
	b.run(chromedp.SendKeys(chromedp.CSS("#send-body"), "Hello from the console"),
		chromedp.SendKeys(chromedp.CSS("#send-headers"), "greeting=bonjour"),
		chromedp.Click(chromedp.CSS("#send-button")))
	b.shoot(dir, "3-send", "Sent 1 message(s) to queue testQueue")

	// Browse it: the message stays.
	b.page("#/queue/testQueue")
	b.waitText("#browse-list", "1–1 of 1", "Hello from the console")
	b.run(chromedp.Click(chromedp.CSS("#browse-list details.msg summary")))
	b.shoot(dir, "4-browse", "Queue testQueue", "greeting", "bonjour", "Body: 22 bytes, text", "persistent")

	out, code := hamq(t, "query", "-QQueue=testQueue", "--http", base, "--user", "admin", "--password", adminPassword)
	if code != 0 || !strings.Contains(out, "EnqueueCount = 1\n") || !strings.Contains(out, "QueueSize = 1\n") {
		t.Fatalf("hamq query after the console's send: %d\n%s", code, out)
	}

	// Purge it.
	b.run(chromedp.Click(chromedp.CSS("#queue-purge")))
	b.waitText("#flash", "Purged testQueue: 1 message(s)")
	b.waitText("#stat-size", "0")
	b.shoot(dir, "5-purged", "Purged testQueue: 1 message(s)", "No messages.")

	// A dead letter goes back where it failed.
	c := stompLogin(t, n, "admin", adminPassword, "console-test")
	if err := c.Send("/queue/orders", "text/plain", []byte("order-1"), stomp.SendOpt.Receipt, stomp.SendOpt.Header("persistent", "true")); err != nil {
		t.Fatal(err)
	}
	sub, err := c.Subscribe("/queue/orders", stomp.AckClientIndividual)
	if err != nil {
		t.Fatal(err)
	}
	m := <-sub.C
	if err := c.Nack(m); err != nil {
		t.Fatal(err)
	}
	sub.Unsubscribe()
	b.page("#/queue/DLQ.orders")
	b.waitText("#browse-list", "order-1", "1–1 of 1")
	b.run(chromedp.Click(chromedp.CSS("#browse-list details.msg summary")))
	b.shoot(dir, "6-dlq", "Queue DLQ.orders", "Retry all", "originalDestination", "queue://orders", "dlqDeliveryFailureCause", "Retry to queue://orders")
	b.run(chromedp.Click(chromedp.CSS("#retry-all")))
	b.waitText("#flash", "1 moved")
	b.waitText("#stat-size", "0")
	var orders struct{ Size int }
	adminGet(t, n, "/api/queues/orders", &orders)
	if orders.Size != 1 {
		t.Fatalf("orders after the retry: %+v", orders)
	}

	// A durable subscription, offline with a message waiting.
	dsub, err := c.Subscribe("/topic/prices", stomp.AckAuto, stomp.SubscribeOpt.Header("activemq.subscriptionName", "prices-feed"))
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the durable subscription", func() bool {
		var subs []map[string]any
		adminGet(t, n, "/api/subscriptions", &subs)
		return len(subs) > 0
	})
	dsub.Unsubscribe()
	if err := c.Send("/topic/prices", "text/plain", []byte("42.0"), stomp.SendOpt.Receipt, stomp.SendOpt.Header("persistent", "true")); err != nil {
		t.Fatal(err)
	}
	b.page("#/subscriptions")
	b.shoot(dir, "7-subscriptions", "prices", "console-test / prices-feed", "offline")
	b.run(chromedp.Click(chromedp.CSS(`#subscriptions-list a[href^="#/durable"]`)))
	b.shoot(dir, "8-durable", "Durable subscription console-test / prices-feed", "42.0", "1–1 of 1")

	b.page("#/topics")
	b.shoot(dir, "9-topics", "prices", "Dropped")

	// The connection: shown with its client id, user and age; closed.
	b.page("#/connections")
	b.shoot(dir, "10-connections", "console-test", "admin", "stomp", "ago", "Close")
	b.run(chromedp.Click(chromedp.CSS(`#connections-list button.danger`)))
	b.waitText("#flash", "Closed connection")
	waitFor(t, "the connection to close", func() bool {
		var conns []map[string]any
		adminGet(t, n, "/api/connections", &conns)
		return len(conns) == 0
	})
	b.waitText("#connections-list", "No client is connected.")

	b.page("#/cluster")
	b.shoot(dir, "11-cluster", "This broker is standalone")

	// A phone's screen: the page fits its width, the tables scroll.
	b.run(chromedp.Emulate(device.IPhone13))
	b.page("#/queues")
	b.shoot(dir, "12-queues-narrow", "testQueue", "DLQ.orders")
	if eval[bool](b, `document.documentElement.scrollWidth > window.innerWidth + 1`) {
		t.Error("on a narrow screen the page is wider than the screen")
	}
	t.Logf("screenshots in %s", dir)
}

// stompLogin connects a go-stomp client with a login and a client id.
func stompLogin(t *testing.T, n *node, user, password, clientID string) *stomp.Conn {
	t.Helper()
	c, err := stomp.Dial("tcp", n.stomp, stomp.ConnOpt.Login(user, password), stomp.ConnOpt.Header("client-id", clientID),
		stomp.ConnOpt.HeartBeat(0, 0))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.MustDisconnect() })
	return c
}

// TestConsoleRefusesNonAdministrators: alice logs in, and the console
// tells her she is no administrator.
func TestConsoleRefusesNonAdministrators(t *testing.T) {
	n := startAuthNode(t, "")
	b := newBrowser(t, "alice", alicePassword)
	b.run(chromedp.Navigate("http://" + n.http + "/admin/"))
	b.shoot(screenshotDir(t), "refused", `user "alice" is not in an admin group`)
}

// TestAuthorizationWebSocket: a browser's STOMP over WebSocket gets the
// same refusals as STOMP over TCP, and its other connections go on.
func TestAuthorizationWebSocket(t *testing.T) {
	n := startAuthNode(t, "")
	page := servePage(t, "testdata/auth_ws.html")
	b := newBrowser(t, "", "")
	b.run(chromedp.Navigate(page))
	type outcome struct {
		BadLogin struct {
			Connected bool
			Error     string
		}
		Allowed struct {
			Sent     bool
			Received string
		}
		Refused struct {
			Error  string
			Closed bool
		}
		Others struct {
			Received string
			Closed   bool
		}
	}
	out := eval[outcome](b, fmt.Sprintf(`run(%q)`, "ws://"+n.ws+"/"))
	if out.BadLogin.Connected || !strings.Contains(out.BadLogin.Error, `wrong user name or password for "alice"`) {
		t.Errorf("a wrong password over WebSocket: %+v", out.BadLogin)
	}
	if !out.Allowed.Sent || out.Allowed.Received != "from-the-browser" {
		t.Errorf("allowed send and receive: %+v", out.Allowed)
	}
	if !out.Refused.Closed || !strings.Contains(out.Refused.Error, `user "alice" may not read from queue://payroll`) {
		t.Errorf("a refused subscription: %+v", out.Refused)
	}
	if out.Others.Received != "again" || out.Others.Closed {
		t.Errorf("the other connection: %+v", out.Others)
	}
}

// TestConsoleCluster: the console of a slave says it is one and links
// the master's console, whose cluster page shows every node; the slave's
// API answers 503 naming the master's admin URL; /health/master answers
// 200 on the master alone; hamq query on each node finds the queue where
// it went, as the ActiveMQ guide has it.
func TestConsoleCluster(t *testing.T) {
	c := newCluster(t)
	cfg := authConfig(t, "")
	for _, n := range c.nodes {
		n.extra = append(n.extra, "--config", cfg)
		n.start()
	}
	master, err := c.waitMaster(30 * time.Second)
	if err != nil {
		t.Fatal(err)
	}
	slave := c.others(master)[0]
	waitCaughtUp(t, slave, master)
	for _, n := range c.nodes {
		want := http.StatusServiceUnavailable
		if n == master {
			want = http.StatusOK
		}
		for path, code := range map[string]int{"/health/master": want, "/health/live": http.StatusOK} {
			resp, err := http.Get("http://" + n.http + path)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != code {
				t.Errorf("%s on %s: %d, want %d", path, n.http, resp.StatusCode, code)
			}
		}
	}
	var e map[string]string
	if code := adminGet(t, slave, "/api/destinations", &e); code != http.StatusServiceUnavailable ||
		!strings.Contains(e["error"], "the master is http://"+master.http) || e["master"] != "http://"+master.http {
		t.Errorf("a slave's API: %d %v, want 503 naming http://%s", code, e, master.http)
	}
	if out, code := hamq(t, "send", "--url", c.failoverURL(), "--user", "alice", "--password", alicePassword, "--destination", "/queue/orders.eu", "--body", "o1"); code != 0 {
		t.Fatalf("send: %s", out)
	}
	for _, n := range c.nodes {
		out, code := hamq(t, "query", "-QQueue=orders.eu", "--http", "http://"+n.http, "--user", "admin", "--password", adminPassword)
		switch {
		case n == master && (code != 0 || !strings.Contains(out, "EnqueueCount = 1\n")):
			t.Errorf("hamq query on the master: %d %s", code, out)
		case n != master && (code == 0 || !strings.Contains(out, "the master is http://"+master.http)):
			t.Errorf("hamq query on a slave: %d %s", code, out)
		}
	}

	dir := screenshotDir(t)
	b := newBrowser(t, "admin", adminPassword)
	b.run(chromedp.Navigate("http://" + slave.http + "/admin/"))
	b.shoot(dir, "1-slave-overview", "This node is a slave", "The master is http://"+master.http, "slave")
	b.page("#/queues")
	b.shoot(dir, "2-slave-queues", "Destinations live on the node that serves clients", "this page on the master")
	if href := eval[string](b, `document.querySelector("#master-link").getAttribute("href")`); href != "http://"+master.http+"/admin/" {
		t.Errorf("the slave's console links %q, want the master's console", href)
	}
	b.run(chromedp.Click(chromedp.CSS("#master-link")))
	b.waitText("#node-role", "master")
	b.shoot(dir, "3-master-overview", "Overview", "master", "Epoch")
	b.page("#/cluster")
	var st ha.Status
	adminGet(t, master, "/api/cluster", &st)
	want := []string{"Quorum", "2 of 3", "3 confirming", "(this node)", "connected"}
	for _, n := range c.nodes {
		want = append(want, "http://"+n.http)
	}
	for _, m := range st.Members {
		want = append(want, m.ID)
	}
	b.shoot(dir, "4-cluster", want...)
	rows := b.text("#cluster-list")
	if strings.Count(rows, "slave") < 2 || strings.Count(rows, "master") < 1 {
		t.Errorf("the cluster page's nodes:\n%s", rows)
	}
	b.page("#/queues")
	b.shoot(dir, "5-master-queues", "orders.eu")
}

// servePage serves a testdata page on loopback and returns its URL.
func servePage(t *testing.T, file string) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { http.ServeFile(w, r, file) })}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return "http://" + ln.Addr().String() + "/"
}
