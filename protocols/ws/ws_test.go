package ws

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/hamq/hamq/core"
	"github.com/hamq/hamq/core/store"
	"github.com/hamq/hamq/protocols/mqtt"
	"github.com/hamq/hamq/protocols/stomp"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

func start(t *testing.T) string {
	t.Helper()
	st, err := store.Open(t.TempDir(), store.Options{}, quiet)
	if err != nil {
		t.Fatal(err)
	}
	b, err := core.NewBroker(core.DefaultConfig(), st, quiet)
	if err != nil {
		t.Fatal(err)
	}
	ss := stomp.NewServer(b, stomp.DefaultOptions(), quiet)
	ms, err := mqtt.NewServer(b, mqtt.DefaultOptions(), quiet)
	if err != nil {
		t.Fatal(err)
	}
	ws := NewServer(ss, ms, DefaultOptions(), quiet)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go ws.Serve(ln)
	t.Cleanup(func() {
		ws.Close()
		ss.Close()
		ms.Close()
		b.Close()
		st.Close()
	})
	return ln.Addr().String()
}

// stompWS is a STOMP client over WebSocket, a frame per message.
type stompWS struct {
	t *testing.T
	c *websocket.Conn
}

func dialSTOMP(t *testing.T, addr string) *stompWS {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, _, err := websocket.Dial(ctx, "ws://"+addr+"/", &websocket.DialOptions{Subprotocols: []string{"v12.stomp"}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.CloseNow() })
	if c.Subprotocol() != "v12.stomp" {
		t.Fatalf("subprotocol %q", c.Subprotocol())
	}
	s := &stompWS{t, c}
	s.send("CONNECT\naccept-version:1.2\nhost:x\nheart-beat:0,0\n\n\x00")
	if f := s.read(); !strings.HasPrefix(f, "CONNECTED") {
		t.Fatalf("got %q", f)
	}
	return s
}

func (s *stompWS) send(frame string) {
	if err := s.c.Write(context.Background(), websocket.MessageText, []byte(frame)); err != nil {
		s.t.Fatal(err)
	}
}

func (s *stompWS) read() string {
	s.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, b, err := s.c.Read(ctx)
	if err != nil {
		s.t.Fatal(err)
	}
	return string(b)
}

func TestSTOMPAndMQTTOverOneWebSocketPort(t *testing.T) {
	addr := start(t)
	s := dialSTOMP(t, addr)
	s.send("SUBSCRIBE\nid:1\ndestination:/topic/room.1\nreceipt:r\n\n\x00")
	if f := s.read(); !strings.HasPrefix(f, "RECEIPT") {
		t.Fatalf("got %q", f)
	}
	got := make(chan string, 1)
	opts := paho.NewClientOptions().AddBroker("ws://" + addr + "/").SetClientID("browserish").
		SetDefaultPublishHandler(func(_ paho.Client, m paho.Message) { got <- string(m.Payload()) })
	mc := paho.NewClient(opts)
	if tok := mc.Connect(); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("mqtt over ws: %v", tok.Error())
	}
	defer mc.Disconnect(0)
	if tok := mc.Subscribe("room/#", 1, nil); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatal(tok.Error())
	}
	if tok := mc.Publish("room/1", 1, false, "hi from mqtt"); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatal(tok.Error())
	}
	if f := s.read(); !strings.HasPrefix(f, "MESSAGE") || !strings.Contains(f, "hi from mqtt") {
		t.Fatalf("stomp over ws got %q", f)
	}
	select {
	case m := <-got:
		if m != "hi from mqtt" {
			t.Fatalf("mqtt got %q", m)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("mqtt got nothing")
	}
	s.send("SEND\ndestination:/topic/room.2\n\nhi from stomp\x00")
	select {
	case m := <-got:
		if m != "hi from stomp" {
			t.Fatalf("mqtt got %q", m)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("STOMP to MQTT over ws: nothing")
	}
}

func TestUnknownSubprotocolRefused(t *testing.T) {
	addr := start(t)
	req, _ := http.NewRequest("GET", "http://"+addr+"/", nil)
	for k, v := range map[string]string{"Connection": "Upgrade", "Upgrade": "websocket", "Sec-WebSocket-Version": "13",
		"Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==", "Sec-WebSocket-Protocol": "amqp, xmpp"} {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(body), `unsupported WebSocket subprotocol "amqp, xmpp"`) {
		t.Fatalf("%d %s", resp.StatusCode, body)
	}
	// Others are unaffected.
	dialSTOMP(t, addr)
}

func TestForeignOriginRefused(t *testing.T) {
	addr := start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, resp, err := websocket.Dial(ctx, "ws://"+addr+"/", &websocket.DialOptions{
		Subprotocols: []string{"v12.stomp"}, HTTPHeader: http.Header{"Origin": {"https://evil.example"}}})
	if err == nil || resp == nil || resp.StatusCode != http.StatusForbidden {
		t.Fatalf("foreign origin: %v %v", err, resp)
	}
}
