package stomp

import (
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-stomp/stomp/v3"
	"github.com/go-stomp/stomp/v3/frame"
	"github.com/hamq/hamq/core"
)

var persistent = stomp.SendOpt.Header("persistent", "true")

func TestVersionsConnect(t *testing.T) {
	s := startServer(t, nil, nil)
	for _, v := range []stomp.Version{stomp.V10, stomp.V11, stomp.V12} {
		c := s.dial(t, stomp.ConnOpt.AcceptVersion(v))
		if c.Version() != v {
			t.Errorf("asked %s, got %s", v, c.Version())
		}
		sub, err := c.Subscribe("/queue/v"+v.String(), stomp.AckAuto)
		if err != nil {
			t.Fatal(err)
		}
		if err := c.Send("/queue/v"+v.String(), "text/plain", []byte("hi:there"), stomp.SendOpt.Receipt, stomp.SendOpt.Header("k", "a:b")); err != nil {
			t.Fatal(err)
		}
		m := read(t, sub)
		if string(m.Body) != "hi:there" || m.Header.Get("k") != "a:b" {
			t.Errorf("%s: body %q header k %q", v, m.Body, m.Header.Get("k"))
		}
	}
}

func TestQueueSharedByThreeConsumers(t *testing.T) {
	s := startServer(t, nil, nil)
	var subs []*stomp.Subscription
	for range 3 {
		c := s.dial(t)
		sub, err := c.Subscribe("/queue/work", stomp.AckClientIndividual, stomp.SubscribeOpt.Header("activemq.prefetchSize", "1"))
		if err != nil {
			t.Fatal(err)
		}
		subs = append(subs, sub)
	}
	p := s.dial(t)
	const n = 60
	for i := range n {
		if err := p.Send("/queue/work", "", []byte(fmt.Sprint(i)), persistent, stomp.SendOpt.Receipt); err != nil {
			t.Fatal(err)
		}
	}
	var mu sync.Mutex
	seen := map[string]int{}
	per := make([]int, 3)
	var wg sync.WaitGroup
	for i, sub := range subs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case m := <-sub.C:
					mu.Lock()
					seen[string(m.Body)]++
					per[i]++
					mu.Unlock()
					time.Sleep(time.Millisecond) // a consumer that works, so that others get turns
					m.Conn.Ack(m)
				case <-time.After(500 * time.Millisecond):
					return
				}
			}
		}()
	}
	wg.Wait()
	if len(seen) != n {
		t.Fatalf("received %d distinct of %d", len(seen), n)
	}
	for body, k := range seen {
		if k != 1 {
			t.Errorf("%s received %d times", body, k)
		}
	}
	for i, k := range per {
		if k == 0 {
			t.Errorf("consumer %d got nothing (%v)", i, per)
		}
	}
}

func TestTopicEverySubscriberGetsEverything(t *testing.T) {
	s := startServer(t, nil, nil)
	var subs []*stomp.Subscription
	for _, d := range []string{"/topic/prices.eur", "/topic/prices.*", "/topic/prices.>"} {
		sub, err := s.dial(t).Subscribe(d, stomp.AckAuto)
		if err != nil {
			t.Fatal(err)
		}
		subs = append(subs, sub)
	}
	s.subscribed(t, 3)
	p := s.dial(t)
	for i := range 10 {
		if err := p.Send("/topic/prices.eur", "", []byte(fmt.Sprint(i)), stomp.SendOpt.Receipt); err != nil {
			t.Fatal(err)
		}
	}
	for i, sub := range subs {
		for j := range 10 {
			if m := read(t, sub); string(m.Body) != fmt.Sprint(j) || m.Destination != "/topic/prices.eur" {
				t.Fatalf("subscriber %d message %d: %q on %s", i, j, m.Body, m.Destination)
			}
		}
	}
}

func TestDurableSubscriberGetsWhatItMissed(t *testing.T) {
	s := startServer(t, nil, nil)
	durable := stomp.SubscribeOpt.Header("activemq.subscriptionName", "audit")
	c := s.dial(t, stomp.ConnOpt.Header("client-id", "auditor"))
	sub, err := c.Subscribe("/topic/events", stomp.AckClientIndividual, durable)
	if err != nil {
		t.Fatal(err)
	}
	s.subscribed(t, 1)
	p := s.dial(t)
	p.Send("/topic/events", "", []byte("while online"), persistent, stomp.SendOpt.Receipt)
	c.Ack(read(t, sub))
	c.Disconnect()
	for i := range 3 {
		if err := p.Send("/topic/events", "", []byte(fmt.Sprint("away ", i)), persistent, stomp.SendOpt.Receipt); err != nil {
			t.Fatal(err)
		}
	}
	c = s.dial(t, stomp.ConnOpt.Header("client-id", "auditor"))
	sub, err = c.Subscribe("/topic/events", stomp.AckClientIndividual, durable)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		m := read(t, sub)
		if string(m.Body) != fmt.Sprint("away ", i) {
			t.Fatalf("got %q", m.Body)
		}
		c.Ack(m)
	}
	nothing(t, sub, 50*time.Millisecond)
}

func TestNackUntilDeadLetter(t *testing.T) {
	s := startServer(t, func(c *core.Config) { c.MaxRedeliveries = 2 }, nil)
	c := s.dial(t)
	c.Send("/queue/jobs", "", []byte("poison"), persistent, stomp.SendOpt.Receipt)
	sub, err := c.Subscribe("/queue/jobs", stomp.AckClientIndividual)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		m := read(t, sub)
		if got := m.Header.Get("redelivered"); got != fmt.Sprint(i > 0) {
			t.Fatalf("delivery %d redelivered=%s", i, got)
		}
		if err := c.Nack(m); err != nil {
			t.Fatal(err)
		}
	}
	nothing(t, sub, 100*time.Millisecond)
	dlq, err := c.Subscribe("/queue/DLQ.jobs", stomp.AckAuto)
	if err != nil {
		t.Fatal(err)
	}
	if m := read(t, dlq); string(m.Body) != "poison" || m.Header.Get("originalDestination") != "queue://jobs" {
		t.Fatalf("dead letter %q %v", m.Body, m.Header)
	}
}

func TestExpiredNeverDelivered(t *testing.T) {
	s := startServer(t, func(c *core.Config) { c.ExpiredToDLQ = false }, nil)
	c := s.dial(t)
	past := fmt.Sprint(time.Now().Add(-time.Second).UnixMilli())
	c.Send("/queue/x", "", []byte("old"), stomp.SendOpt.Header("expires", past), stomp.SendOpt.Receipt)
	soon := fmt.Sprint(time.Now().Add(50 * time.Millisecond).UnixMilli())
	c.Send("/queue/x", "", []byte("soon old"), stomp.SendOpt.Header("expires", soon), stomp.SendOpt.Receipt)
	c.Send("/queue/x", "", []byte("fresh"), stomp.SendOpt.Receipt)
	time.Sleep(100 * time.Millisecond)
	sub, _ := c.Subscribe("/queue/x", stomp.AckAuto)
	if m := read(t, sub); string(m.Body) != "fresh" {
		t.Fatalf("got %q", m.Body)
	}
	nothing(t, sub, 100*time.Millisecond)
	if st, _ := s.b.Stats(core.Destination{Kind: core.Queue, Name: "x"}); st.Expired != 2 {
		t.Errorf("expired count %d", st.Expired)
	}
}

func TestAbortedTransaction(t *testing.T) {
	s := startServer(t, nil, nil)
	c := s.dial(t)
	c.Send("/queue/tx", "", []byte("first"), persistent, stomp.SendOpt.Receipt)
	sub, _ := c.Subscribe("/queue/tx", stomp.AckClientIndividual)
	m := read(t, sub)
	tx, err := c.BeginWithError()
	if err != nil {
		t.Fatal(err)
	}
	tx.Send("/queue/tx", "", []byte("never"), persistent)
	tx.Ack(m)
	if err := tx.AbortWithReceipt(); err != nil {
		t.Fatal(err)
	}
	m = read(t, sub)
	if string(m.Body) != "first" || m.Header.Get("redelivered") != "true" {
		t.Fatalf("after abort got %q redelivered=%s", m.Body, m.Header.Get("redelivered"))
	}
	tx, _ = c.BeginWithError()
	tx.Send("/queue/tx", "", []byte("committed"), persistent)
	tx.Ack(m)
	nothing(t, sub, 50*time.Millisecond)
	if err := tx.CommitWithReceipt(); err != nil {
		t.Fatal(err)
	}
	if m := read(t, sub); string(m.Body) != "committed" {
		t.Fatalf("got %q", m.Body)
	}
}

func TestSelectorAndPriority(t *testing.T) {
	s := startServer(t, nil, nil)
	c := s.dial(t)
	for i, p := range []string{"1", "9", "4", "9"} {
		c.Send("/queue/p", "", []byte(fmt.Sprint(p, "-", i)), stomp.SendOpt.Header("priority", p), stomp.SendOpt.Header("color", []string{"red", "blue"}[i%2]), stomp.SendOpt.Receipt)
	}
	red, err := c.Subscribe("/queue/p", stomp.AckAuto, stomp.SubscribeOpt.Header("selector", "color = 'red'"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"4-2", "1-0"} {
		if m := read(t, red); string(m.Body) != want {
			t.Fatalf("red: got %q want %q", m.Body, want)
		}
	}
	nothing(t, red, 50*time.Millisecond)
	all, _ := c.Subscribe("/queue/p", stomp.AckAuto)
	for _, want := range []string{"9-1", "9-3"} {
		if m := read(t, all); string(m.Body) != want {
			t.Fatalf("all: got %q want %q", m.Body, want)
		}
	}
}

func TestBinaryBodyAndEscaping(t *testing.T) {
	s := startServer(t, nil, nil)
	c := s.dial(t, stomp.ConnOpt.AcceptVersion(stomp.V12))
	sub, _ := c.Subscribe("/queue/bin", stomp.AckAuto)
	body := []byte{0, 1, 0, 255, '\n', 0}
	c.Send("/queue/bin", "application/octet-stream", body, stomp.SendOpt.Header("odd", "a:b\\c\nd"), stomp.SendOpt.Receipt)
	m := read(t, sub)
	if string(m.Body) != string(body) || m.Header.Get("odd") != "a:b\\c\nd" || m.ContentType != "application/octet-stream" {
		t.Fatalf("body %v header %q type %q", m.Body, m.Header.Get("odd"), m.ContentType)
	}
}

// A STOMP 1.2 producer's header holding a line break cannot add a header
// to the frame a STOMP 1.0 consumer gets, which has no escaping: the break
// goes as a backslash and an n (found by FuzzConn).
func TestLineBreakInHeaderToStomp10(t *testing.T) {
	s := startServer(t, nil, nil)
	old := dialRaw(t, s.addr)
	old.connect("1.0")
	old.write("SUBSCRIBE\ndestination:/queue/nl\nreceipt:s\n\n\x00")
	if cmd, _, _ := old.frame(); cmd != frame.RECEIPT {
		t.Fatalf("got %s", cmd)
	}
	c := s.dial(t, stomp.ConnOpt.AcceptVersion(stomp.V12))
	c.Send("/queue/nl", "", []byte("x"), stomp.SendOpt.Header("note", "a\ninjected:yes"), stomp.SendOpt.Receipt)
	_, h, body := old.frame()
	if _, ok := h["injected"]; ok || h["note"] != `a\ninjected:yes` || body != "x" {
		t.Fatalf("headers %q body %q", h, body)
	}
}

func TestTempQueueReplyTo(t *testing.T) {
	s := startServer(t, nil, nil)
	requester := s.dial(t)
	replies, _ := requester.Subscribe("/temp-queue/replies", stomp.AckAuto)
	service := s.dial(t)
	requests, _ := service.Subscribe("/queue/service", stomp.AckAuto)
	requester.Send("/queue/service", "", []byte("ping"), stomp.SendOpt.Header("reply-to", "/temp-queue/replies"), stomp.SendOpt.Receipt)
	req := read(t, requests)
	replyTo := req.Header.Get("reply-to")
	if !strings.HasPrefix(replyTo, "/remote-temp-queue/") {
		t.Fatalf("reply-to %q", replyTo)
	}
	service.Send(replyTo, "", []byte("pong"), stomp.SendOpt.Receipt)
	if m := read(t, replies); string(m.Body) != "pong" || m.Destination != "/temp-queue/replies" {
		t.Fatalf("reply %q on %s", m.Body, m.Destination)
	}
}

// TestBadInput sends each kind of bad frame on its own connection while
// another client keeps working: each gets an ERROR naming the problem and is
// closed.
func TestBadInput(t *testing.T) {
	s := startServer(t, nil, func(o *Options) { o.MaxFrameSize = 4096; o.MaxConnections = 20 })
	good := s.dial(t)
	goodSub, _ := good.Subscribe("/queue/good", stomp.AckAuto)
	big := strings.Repeat("x", 5000)
	for _, tc := range []struct {
		name, frames, want string
		connect            bool
	}{
		{"frame before CONNECT", "SEND\ndestination:/queue/a\n\nx\x00", "expected a CONNECT or STOMP frame first", false},
		{"unknown command", "FLY\n\n\x00", `unknown command "FLY"`, true},
		{"SEND without destination", "SEND\n\nbody\x00", "SEND frame has no destination header", true},
		{"header without colon", "SEND\ndestination:/queue/a\nnocolon\n\nx\x00", "header line without a colon", true},
		{"frame over maxFrameSize", "SEND\ndestination:/queue/a\n\n" + big + "\x00", "maximum frame size of 4096", true},
		{"content-length over maxFrameSize", "SEND\ndestination:/queue/a\ncontent-length:999999\n\n", "maximum frame size of 4096", true},
		{"wrong content-length", "SEND\ndestination:/queue/a\ncontent-length:2\n\nhello\x00", "wrong content-length", true},
		{"invalid selector", "SUBSCRIBE\nid:1\ndestination:/queue/a\nselector:price >\n\n\x00", "invalid selector", true},
		{"ACK of unknown message", "ACK\nid:424242\n\n\x00", "ACK of unknown message", true},
		{"invalid destination", "SEND\ndestination:orders\n\nx\x00", `invalid destination "orders"`, true},
		{"bad escape", "SEND\ndestination:/queue/a\nk:\\t\n\nx\x00", "undefined escape", true},
		{"unsupported version", "CONNECT\naccept-version:2.0\n\n\x00", "supported protocol versions are 1.0 1.1 1.2", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := dialRaw(t, s.addr)
			if tc.connect {
				r.connect("1.2")
			}
			r.write(tc.frames)
			cmd, h, _ := r.frame()
			if cmd != "ERROR" || !strings.Contains(h["message"], tc.want) {
				t.Fatalf("got %s %v, want ERROR with %q", cmd, h, tc.want)
			}
			if !r.closed() {
				t.Fatal("connection left open after ERROR")
			}
			if err := good.Send("/queue/good", "", []byte(tc.name), stomp.SendOpt.Receipt); err != nil {
				t.Fatal(err)
			}
			if m := read(t, goodSub); string(m.Body) != tc.name {
				t.Fatalf("other client got %q", m.Body)
			}
		})
	}
	t.Run("connection beyond maximumConnections", func(t *testing.T) {
		var extra []*raw
		for range 19 {
			r := dialRaw(t, s.addr)
			r.connect("1.2")
			extra = append(extra, r)
		}
		r := dialRaw(t, s.addr)
		cmd, h, _ := r.frame()
		if cmd != "ERROR" || !strings.Contains(h["message"], "maximum connections (20) reached") {
			t.Fatalf("got %s %v", cmd, h)
		}
		if !r.closed() {
			t.Fatal("left open")
		}
		if err := good.Send("/queue/good", "", []byte("still"), stomp.SendOpt.Receipt); err != nil {
			t.Fatal(err)
		}
		read(t, goodSub)
	})
}

func TestReceiptOnlyAfterDurable(t *testing.T) {
	s := startServer(t, nil, nil)
	r := dialRaw(t, s.addr)
	r.connect("1.2")
	r.write("SEND\ndestination:/queue/d\npersistent:true\nreceipt:r1\n\nx\x00")
	if cmd, h, _ := r.frame(); cmd != frame.RECEIPT || h["receipt-id"] != "r1" {
		t.Fatalf("got %s %v", cmd, h)
	}
	if st, _ := s.b.Stats(core.Destination{Kind: core.Queue, Name: "d"}); st.Size != 1 {
		t.Fatalf("size %d", st.Size)
	}
	r.write("DISCONNECT\nreceipt:bye\n\n\x00")
	if cmd, h, _ := r.frame(); cmd != frame.RECEIPT || h["receipt-id"] != "bye" {
		t.Fatalf("got %s %v", cmd, h)
	}
	if !r.closed() {
		t.Fatal("open after DISCONNECT")
	}
}

// CONNECTED's heart-beat header says what was agreed, as ActiveMQ's does:
// go-stomp takes it as its own timeouts, and a client that asked for no
// heart-beats, told the server's wish instead, gave up on an idle
// connection as soon as the first one did not come.
func TestHeartBeatHeaderIsWhatWasAgreed(t *testing.T) {
	s := startServer(t, nil, func(o *Options) { o.HeartBeat = 100 * time.Millisecond })
	for _, tc := range []struct{ asked, agreed string }{
		{"0,0", "0,0"}, {"0,50", "100,0"}, {"300,0", "0,300"}, {"50,200", "200,100"},
	} {
		r := dialRaw(t, s.addr)
		r.write("CONNECT\naccept-version:1.2\nhost:x\nheart-beat:" + tc.asked + "\n\n\x00")
		if _, h, _ := r.frame(); h["heart-beat"] != tc.agreed {
			t.Errorf("asked for %s, CONNECTED says %q, want %s", tc.asked, h["heart-beat"], tc.agreed)
		}
	}
	c := s.dial(t, stomp.ConnOpt.HeartBeat(0, 0), stomp.ConnOpt.HeartBeatError(50*time.Millisecond))
	time.Sleep(time.Second)
	if err := c.Send("/queue/idle", "", []byte("x"), stomp.SendOpt.Receipt); err != nil {
		t.Fatalf("go-stomp after a second idle without heart-beats: %v", err)
	}
}

func TestHeartBeats(t *testing.T) {
	s := startServer(t, nil, func(o *Options) { o.HeartBeat = 100 * time.Millisecond })
	r := dialRaw(t, s.addr)
	r.write("CONNECT\naccept-version:1.2\nhost:x\nheart-beat:0,100\n\n\x00")
	if cmd, h, _ := r.frame(); cmd != "CONNECTED" || h["heart-beat"] != "100,0" {
		t.Fatalf("got %s %v", cmd, h)
	}
	for range 3 {
		r.nc.SetReadDeadline(time.Now().Add(2 * time.Second))
		if b, err := r.r.ReadByte(); err != nil || b != '\n' {
			t.Fatalf("heart-beat: %q %v", b, err)
		}
	}
	silent := dialRaw(t, s.addr)
	silent.write("CONNECT\naccept-version:1.2\nhost:x\nheart-beat:100,0\n\n\x00")
	silent.frame()
	start := time.Now()
	cmd, h, _ := silent.frame()
	if cmd != "ERROR" || !strings.Contains(h["message"], "no heart-beat") {
		t.Fatalf("silent client got %s %v", cmd, h)
	}
	if waited := time.Since(start); waited > 5*time.Second {
		t.Errorf("dropped only after %s", waited)
	}
}

// A STOMP 1.1 client acknowledges by message-id and subscription; one topic
// message on two subscriptions has one id.
func TestAckByMessageIDOnTwoSubscriptions(t *testing.T) {
	s := startServer(t, nil, nil)
	c := s.dial(t, stomp.ConnOpt.AcceptVersion(stomp.V11))
	a, _ := c.Subscribe("/topic/t", stomp.AckClientIndividual)
	b, _ := c.Subscribe("/topic/t", stomp.AckClientIndividual)
	c.Send("/topic/t", "", []byte("once"), stomp.SendOpt.Receipt)
	ma, mb := read(t, a), read(t, b)
	if ma.Header.Get("message-id") != mb.Header.Get("message-id") {
		t.Fatal("one message, two ids")
	}
	for _, m := range []*stomp.Message{ma, mb} {
		if err := c.Ack(m); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.Send("/topic/t", "", []byte("after"), stomp.SendOpt.Receipt); err != nil {
		t.Fatalf("connection broken by the acks: %v", err)
	}
	if conns := s.b.Connections(); len(conns) != 1 || conns[0].Unacked != 2 {
		t.Fatalf("connections %+v: want the two new deliveries unacknowledged, the acked ones gone", conns)
	}
}

// Sends are pipelined: a client may write many persistent SENDs without
// waiting; their receipts come back in order, each once durable, and a
// DISCONNECT's receipt after all of them.
func TestPipelinedReceiptsInOrder(t *testing.T) {
	s := startServer(t, nil, nil)
	r := dialRaw(t, s.addr)
	r.connect("1.2")
	var frames strings.Builder
	const n = 500
	for i := range n {
		fmt.Fprintf(&frames, "SEND\ndestination:/queue/pipe\npersistent:true\nreceipt:%d\n\nx\x00", i)
	}
	frames.WriteString("DISCONNECT\nreceipt:bye\n\n\x00")
	r.write(frames.String())
	for i := range n {
		cmd, h, _ := r.frame()
		if cmd != "RECEIPT" || h["receipt-id"] != fmt.Sprint(i) {
			t.Fatalf("frame %d: %s %v", i, cmd, h)
		}
	}
	if cmd, h, _ := r.frame(); cmd != "RECEIPT" || h["receipt-id"] != "bye" {
		t.Fatalf("last: %s %v", cmd, h)
	}
	if st, _ := s.b.Stats(core.Destination{Kind: core.Queue, Name: "pipe"}); st.Size != n {
		t.Fatalf("queue holds %d of %d", st.Size, n)
	}
}

func TestUserStoreRefusesBadCredentials(t *testing.T) {
	s := startServer(t, func(c *core.Config) { c.Users, c.Anonymous = map[string]string{"alice": "secret"}, false }, nil)
	for _, login := range []string{"login:alice\npasscode:wrong\n", "login:mallory\npasscode:secret\n", ""} {
		r := dialRaw(t, s.addr)
		r.write("CONNECT\naccept-version:1.2\n" + login + "\n\x00")
		cmd, h, _ := r.frame()
		if cmd != "ERROR" || !strings.Contains(h["message"], "authentication failed") || !r.closed() {
			t.Errorf("%q: %s %v, want ERROR authentication failed and the connection closed", login, cmd, h)
		}
	}
	c := s.dial(t, stomp.ConnOpt.Login("alice", "secret"))
	if err := c.Send("/queue/auth", "text/plain", []byte("in"), stomp.SendOpt.Receipt); err != nil {
		t.Fatal(err)
	}
}
