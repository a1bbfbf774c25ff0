package mqtt

import (
	"bytes"
	"fmt"
	"io"
	"log/slog"
	"net"
	"runtime"
	"strings"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/go-stomp/stomp/v3"

	"github.com/hamq/hamq/core"
	"github.com/hamq/hamq/core/store"
	"github.com/hamq/hamq/protocols/internal/rawconn"
	stompfe "github.com/hamq/hamq/protocols/stomp"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// broker is a core with MQTT and STOMP listeners on loopback ports; restart
// keeps the store, as a restarted process would.
type broker struct {
	t         testing.TB
	dir       string
	cfg       core.Config
	opts      Options
	mqttAddr  string
	stompAddr string
	st        *store.Store
	b         *core.Broker
	m         *Server
	s         *stompfe.Server
}

func startBroker(t testing.TB, change ...func(*Options)) *broker {
	br := &broker{t: t, dir: t.TempDir(), cfg: core.DefaultConfig(), opts: DefaultOptions()}
	for _, c := range change {
		c(&br.opts)
	}
	br.start()
	t.Cleanup(br.stop)
	return br
}

func listen(t testing.TB, addr string) net.Listener {
	t.Helper()
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	return ln
}

func (br *broker) start() {
	t := br.t
	var err error
	if br.st, err = store.Open(br.dir, store.Options{}, quiet); err != nil {
		t.Fatal(err)
	}
	if br.b, err = core.NewBroker(br.cfg, br.st, quiet); err != nil {
		t.Fatal(err)
	}
	if br.m, err = NewServer(br.b, br.opts, quiet); err != nil {
		t.Fatal(err)
	}
	ml, sl := listen(t, br.mqttAddr), listen(t, br.stompAddr)
	br.mqttAddr, br.stompAddr = ml.Addr().String(), sl.Addr().String()
	go br.m.Serve(ml)
	br.s = stompfe.NewServer(br.b, stompfe.DefaultOptions(), quiet)
	go br.s.Serve(sl)
}

func (br *broker) stop() {
	if br.m == nil {
		return
	}
	br.m.Close()
	br.s.Close()
	br.b.Close()
	br.st.Close()
	br.m = nil
}

func (br *broker) restart() {
	br.stop()
	br.start()
}

type received struct {
	topic string
	body  string
	qos   byte
	dup   bool
}

func (br *broker) client(id string, clean bool, onMsg chan received) paho.Client {
	br.t.Helper()
	opts := paho.NewClientOptions().AddBroker("tcp://" + br.mqttAddr).SetClientID(id).SetCleanSession(clean).
		SetAutoReconnect(false).SetConnectRetry(false).SetOrderMatters(false)
	if onMsg != nil {
		opts.SetDefaultPublishHandler(func(_ paho.Client, m paho.Message) {
			onMsg <- received{m.Topic(), string(m.Payload()), m.Qos(), m.Duplicate()}
		})
	}
	c := paho.NewClient(opts)
	if tok := c.Connect(); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		br.t.Fatalf("connect %s: %v", id, tok.Error())
	}
	br.t.Cleanup(func() { c.Disconnect(0) })
	return c
}

func wait(t *testing.T, tok paho.Token) {
	t.Helper()
	if !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("token: %v", tok.Error())
	}
}

func next(t *testing.T, ch chan received) received {
	t.Helper()
	select {
	case r := <-ch:
		return r
	case <-time.After(5 * time.Second):
		t.Fatal("no message within 5s")
		return received{}
	}
}

func TestMQTTWildcardsAndQoS(t *testing.T) {
	br := startBroker(t)
	got := make(chan received, 100)
	sub := br.client("sub", true, got)
	wait(t, sub.Subscribe("sensors/+/temp", 1, nil))
	wait(t, sub.Subscribe("alerts/#", 0, nil))
	pub := br.client("pub", true, nil)
	wait(t, pub.Publish("sensors/kitchen/temp", 1, false, "21"))
	wait(t, pub.Publish("sensors/kitchen/humidity", 1, false, "no"))
	wait(t, pub.Publish("alerts/fire/floor2", 2, false, "!"))
	// Two subscriptions, and paho hands messages over on goroutines of
	// their own (order does not matter to this client): either may come
	// first.
	byTopic := map[string]received{}
	for range 2 {
		r := next(t, got)
		byTopic[r.topic] = r
	}
	if r := byTopic["sensors/kitchen/temp"]; r.body != "21" || r.qos != 1 {
		t.Fatalf("sensors/kitchen/temp: got %+v", byTopic)
	}
	if r := byTopic["alerts/fire/floor2"]; r.body != "!" || r.qos != 0 {
		t.Fatalf("alerts/fire/floor2: got %+v (QoS is the lower of publish and subscription)", byTopic)
	}
	select {
	case r := <-got:
		t.Fatalf("unexpected %+v", r)
	case <-time.After(100 * time.Millisecond):
	}
}

func TestMQTTAndSTOMPMeet(t *testing.T) {
	br := startBroker(t)
	sc, err := stomp.Dial("tcp", br.stompAddr)
	if err != nil {
		t.Fatal(err)
	}
	defer sc.Disconnect()
	ssub, err := sc.Subscribe("/topic/a.*", stomp.AckAuto)
	if err != nil {
		t.Fatal(err)
	}
	waitSubscriptions(t, br, 1) // a SUBSCRIBE has no answer to wait for
	got := make(chan received, 10)
	mc := br.client("m", true, got)
	wait(t, mc.Subscribe("a/#", 1, nil))

	wait(t, mc.Publish("a/b", 1, false, "from mqtt"))
	select {
	case m := <-ssub.C:
		if string(m.Body) != "from mqtt" || m.Destination != "/topic/a.b" {
			t.Fatalf("stomp got %q on %s", m.Body, m.Destination)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("MQTT to STOMP: nothing")
	}
	if r := next(t, got); r.body != "from mqtt" {
		t.Fatalf("own echo %+v", r)
	}
	if err := sc.Send("/topic/a.c", "text/plain", []byte("from stomp"), stomp.SendOpt.Receipt, stomp.SendOpt.Header("persistent", "true")); err != nil {
		t.Fatal(err)
	}
	if r := next(t, got); r.topic != "a/c" || r.body != "from stomp" || r.qos != 1 {
		t.Fatalf("STOMP to MQTT: %+v", r)
	}
}

func TestPersistentSessionSurvivesRestart(t *testing.T) {
	br := startBroker(t)
	sub := br.client("keeper", false, nil)
	wait(t, sub.Subscribe("orders/#", 1, nil))
	sub.Disconnect(100)
	pub := br.client("pub", true, nil)
	for i := range 100 {
		wait(t, pub.Publish("orders/new", 1, false, fmt.Sprint(i)))
	}
	wait(t, pub.Publish("status/last", 1, true, "retained"))
	pub.Disconnect(0)
	br.restart()

	got := make(chan received, 200)
	br.client("keeper", false, got)
	seen := map[string]bool{}
	for len(seen) < 100 {
		r := next(t, got)
		if r.topic != "orders/new" {
			t.Fatalf("got %+v", r)
		}
		seen[r.body] = true
	}
	late := make(chan received, 1)
	c := br.client("late", true, late)
	wait(t, c.Subscribe("status/#", 1, nil))
	if r := next(t, late); r.body != "retained" {
		t.Fatalf("retained after restart: %+v", r)
	}
}

func TestSharedSubscription(t *testing.T) {
	br := startBroker(t)
	got := make(chan received, 100)
	a := br.client("a", true, got)
	b := br.client("b", true, got)
	wait(t, a.Subscribe("$share/g/jobs/#", 1, nil))
	wait(t, b.Subscribe("$share/g/jobs/#", 1, nil))
	pub := br.client("pub", true, nil)
	for i := range 20 {
		wait(t, pub.Publish("jobs/x", 1, false, fmt.Sprint(i)))
	}
	seen := map[string]int{}
	for range 20 {
		seen[next(t, got).body]++
	}
	select {
	case r := <-got:
		t.Fatalf("extra %+v: shared members got copies", r)
	case <-time.After(100 * time.Millisecond):
	}
	if len(seen) != 20 {
		t.Fatalf("seen %v", seen)
	}
}

func TestUserStoreRefusesBadCredentials(t *testing.T) {
	br := &broker{t: t, dir: t.TempDir(), cfg: core.DefaultConfig(), opts: DefaultOptions()}
	br.cfg.Users, br.cfg.Anonymous = map[string]string{"alice": "secret"}, false
	br.start()
	t.Cleanup(br.stop)
	connect := func(user, password string) error {
		opts := paho.NewClientOptions().AddBroker("tcp://" + br.mqttAddr).SetClientID("auth-" + user + password).
			SetUsername(user).SetPassword(password).SetAutoReconnect(false).SetConnectRetry(false)
		c := paho.NewClient(opts)
		tok := c.Connect()
		if !tok.WaitTimeout(5 * time.Second) {
			t.Fatal("connect timed out")
		}
		if tok.Error() == nil {
			c.Disconnect(0)
		}
		return tok.Error()
	}
	for _, bad := range [][2]string{{"alice", "wrong"}, {"mallory", "secret"}, {"", ""}} {
		if err := connect(bad[0], bad[1]); err == nil || !strings.Contains(err.Error(), "not Authorized") {
			t.Errorf("user %q password %q: %v, want refused as not authorized", bad[0], bad[1], err)
		}
	}
	if err := connect("alice", "secret"); err != nil {
		t.Errorf("alice with her password: %v", err)
	}
}

// A clean session's connect has nothing stored to forget, and writes
// nothing: a deletion is a durable, replicated record. What a persistent
// session stored still goes when it comes back clean. (A SUBACK is read
// after the connect's forgetting is done.)
func TestCleanConnectForgetsOnlyWhatIsStored(t *testing.T) {
	br := startBroker(t)
	end := br.st.End()
	for _, id := range []string{"a", "b", "c"} {
		c := br.client(id, true, nil)
		wait(t, c.Subscribe("x", 0, nil))
		c.Disconnect(0)
	}
	if got := br.st.End(); got != end {
		t.Fatalf("clean connects wrote to the store: end %v, then %v", end, got)
	}

	p := br.client("p", false, nil)
	wait(t, p.Subscribe("x/#", 1, nil))
	p.Disconnect(0)
	p = br.client("p", true, nil)
	wait(t, p.Subscribe("x", 0, nil))
	br.b.State("mqtt/", func(k string, _ []byte) error {
		t.Errorf("%s still stored after a clean connect", k)
		return nil
	})
}

// mochi would send a SUBSCRIBE's retained messages through its outbound
// queue and drop what does not fit: with 128 slots on one CPU, where its
// writer runs only when the reader filling the queue yields, 64 lost none
// of 1000 and 32 lost some. hamq's writer waits for the client instead;
// 3000 are a hundred times the queue.
func TestRetainedBurstOnOneCPU(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	br := startBroker(t)
	pub := br.client("pub", true, nil)
	const n = 3000
	for i := range n {
		wait(t, pub.Publish(fmt.Sprintf("r/%d", i), 0, true, "x"))
	}
	got := make(chan received, n)
	sub := br.client("sub", true, got)
	wait(t, sub.Subscribe("r/#", 0, nil))
	seen := map[string]bool{}
	for len(seen) < n {
		seen[next(t, got).topic] = true
	}
}

// A client that disconnects and connects again at once with the same
// client id gets its new session, not "server unavailable" because the
// core still held the id for the old one (found by FuzzConn). The core
// holds a client id for one session at a time.
func TestReconnectAtOnceWithSameClientID(t *testing.T) {
	br := startBroker(t)
	// CONNECT (3.1.1, clean, client id "again"), PINGREQ, DISCONNECT.
	hello := []byte{0x10, 17, 0, 4, 'M', 'Q', 'T', 'T', 4, 2, 0, 30, 0, 5, 'a', 'g', 'a', 'i', 'n', 0xc0, 0, 0xe0, 0}
	for i := range 300 {
		if got := rawconn.Exchange(t, br.mqttAddr, hello, false); !bytes.Equal(got, []byte{0x20, 2, 0, 0, 0xd0, 0}) {
			t.Fatalf("connection %d got % x, want CONNACK 0 and PINGRESP", i, got)
		}
	}
}
