package e2e

import (
	"encoding/json"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestBrowserOverWebSocket loads a page in headless Chromium that talks
// STOMP over WebSocket and MQTT over WebSocket to hamq, and exchanges
// messages with TCP clients of both protocols.
func TestBrowserOverWebSocket(t *testing.T) {
	chromium := tool(t, "chromium", "chromium")
	needPython(t, "paho.mqtt.client")
	n := startNode(t)

	ready := make(chan struct{})
	results := make(chan map[string]any, 1)
	mux := http.NewServeMux()
	mux.HandleFunc("GET /", func(w http.ResponseWriter, r *http.Request) { http.ServeFile(w, r, "testdata/browser.html") })
	mux.HandleFunc("POST /ready", func(w http.ResponseWriter, r *http.Request) { close(ready) })
	mux.HandleFunc("POST /result", func(w http.ResponseWriter, r *http.Request) {
		var v map[string]any
		json.NewDecoder(r.Body).Decode(&v)
		results <- v
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	page := &http.Server{Handler: mux}
	go page.Serve(ln)
	defer page.Close()

	profile := t.TempDir()
	browser := exec.Command(chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
		"--disable-background-networking", "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage",
		"--user-data-dir="+profile,
		"http://"+ln.Addr().String()+"/?ws="+url.QueryEscape("ws://"+n.ws+"/"))
	browser.Stdout, browser.Stderr = os.Stderr, nil
	browser.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := browser.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		syscall.Kill(-browser.Process.Pid, syscall.SIGKILL) // Chromium and the helpers it started
		browser.Wait()
	}()

	select {
	case <-ready:
	case v := <-results:
		t.Fatalf("page failed before subscribing: %v", v)
	case <-time.After(30 * time.Second):
		t.Fatal("the page did not connect within 30s")
	}
	// TCP subscribers for what the page will send.
	fromWebMQTT := make(chan []string, 1)
	subReady := make(chan struct{})
	go func() { fromWebMQTT <- mqttSub(t, n, subReady, "tcp-sub", "browser/fromweb", "0", "3") }()
	<-subReady
	rcv := exec.Command(hamqBin, "receive", "--url=tcp://"+n.stomp, "--destination", "/topic/browser.fromweb", "--count", "2", "--timeout", "20s")
	var stompOut strings.Builder
	rcv.Stdout = &stompOut
	if err := rcv.Start(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the STOMP subscription", func() bool { return stompSubscriptions(t, n) >= 2 }) // the page's and ours

	mosquittoPub(t, n, "-t", "browser/fromtcp", "-m", "from-tcp-mqtt")
	if out, code := hamq(t, "send", "--url=tcp://"+n.stomp, "--destination", "/topic/browser.fromtcp", "--persistent=false", "--body", "from-tcp-stomp"); code != 0 {
		t.Fatalf("send: %s", out)
	}
	var got map[string]any
	select {
	case got = <-results:
	case <-time.After(30 * time.Second):
		t.Fatal("no result from the page within 30s")
	}
	if e, ok := got["error"]; ok {
		t.Fatalf("page: %v", e)
	}
	for _, proto := range []string{"stomp", "mqtt"} {
		var bodies []string
		for _, b := range got[proto].([]any) {
			bodies = append(bodies, b.(string))
		}
		slices.Sort(bodies)
		if strings.Join(bodies, ",") != "from-tcp-mqtt,from-tcp-stomp" {
			t.Errorf("the page's %s-over-WebSocket subscriber got %q", proto, bodies)
		}
	}
	if err := rcv.Wait(); err != nil {
		t.Fatalf("receive: %v", err)
	}
	lines := strings.Fields(stompOut.String())
	slices.Sort(lines)
	if strings.Join(lines, ",") != "from-ws-mqtt,from-ws-stomp" {
		t.Errorf("STOMP over TCP got %q from the page", lines)
	}
	mq := <-fromWebMQTT
	slices.Sort(mq)
	if strings.Join(mq, ",") != "browser/fromweb from-ws-mqtt,browser/fromweb from-ws-stomp" {
		t.Errorf("MQTT over TCP got %q from the page", mq)
	}
}
