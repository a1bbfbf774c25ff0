package amqp

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

	goamqp "github.com/Azure/go-amqp"
	"github.com/hamq/hamq/core"
	"github.com/hamq/hamq/core/store"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

type testServer struct {
	addr string
	b    *core.Broker
}

// startServer runs a broker on a fresh store and an AMQP listener on a
// loopback port, all stopped at the end of the test.
func startServer(t testing.TB, cfg func(*core.Config), opts func(*Options)) *testServer {
	t.Helper()
	st, err := store.Open(t.TempDir(), store.Options{}, quiet)
	if err != nil {
		t.Fatal(err)
	}
	c := core.DefaultConfig()
	c.RedeliveryDelay = 5 * time.Millisecond
	if cfg != nil {
		cfg(&c)
	}
	b, err := core.NewBroker(c, st, quiet)
	if err != nil {
		t.Fatal(err)
	}
	o := DefaultOptions()
	if opts != nil {
		opts(&o)
	}
	srv := NewServer(b, o, quiet)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	t.Cleanup(func() {
		if err := srv.Close(); err != nil {
			t.Error(err)
		}
		if err := <-served; err != ErrServerClosed {
			t.Errorf("Serve returned %v", err)
		}
		b.Close()
		st.Close()
	})
	return &testServer{addr: ln.Addr().String(), b: b}
}

func ctx(t testing.TB) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return c
}

// client is a go-amqp connection with one session.
type client struct {
	conn *goamqp.Conn
	sess *goamqp.Session
}

func (s *testServer) dial(t testing.TB, opts *goamqp.ConnOptions) *client {
	t.Helper()
	conn, err := goamqp.Dial(ctx(t), "amqp://"+s.addr, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	sess, err := conn.NewSession(ctx(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	return &client{conn: conn, sess: sess}
}

func (c *client) sender(t testing.TB, target string, opts *goamqp.SenderOptions) *goamqp.Sender {
	t.Helper()
	s, err := c.sess.NewSender(ctx(t), target, opts)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func (c *client) receiver(t testing.TB, source string, opts *goamqp.ReceiverOptions) *goamqp.Receiver {
	t.Helper()
	r, err := c.sess.NewReceiver(ctx(t), source, opts)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func send(t *testing.T, s *goamqp.Sender, body string) {
	t.Helper()
	m := goamqp.NewMessage([]byte(body))
	m.Header = &goamqp.MessageHeader{Durable: true}
	if err := s.Send(ctx(t), m, nil); err != nil {
		t.Fatalf("send %q: %v", body, err)
	}
}

func receive(t *testing.T, r *goamqp.Receiver) *goamqp.Message {
	t.Helper()
	m, err := r.Receive(ctx(t), nil)
	if err != nil {
		t.Fatalf("receive: %v", err)
	}
	return m
}

func accept(t *testing.T, r *goamqp.Receiver, m *goamqp.Message) {
	t.Helper()
	if err := r.AcceptMessage(ctx(t), m); err != nil {
		t.Fatal(err)
	}
}

// noMessage checks that nothing arrives for a moment.
func noMessage(t *testing.T, r *goamqp.Receiver) {
	t.Helper()
	c, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	if m, err := r.Receive(c, nil); err == nil {
		t.Fatalf("unexpected message %q", m.GetData())
	}
}

func TestQueueRoundTripKeepsWhatTheClientSet(t *testing.T) {
	s := startServer(t, nil, nil)
	c := s.dial(t, nil)
	snd := c.sender(t, "queue://orders", nil)
	to, reply, subject, ctype := "ignored", "queue://replies", "order.created", "application/json"
	m := goamqp.NewMessage([]byte(`{"n":1}`))
	m.Header = &goamqp.MessageHeader{Durable: true, Priority: 7}
	m.Properties = &goamqp.MessageProperties{MessageID: "m-1", CorrelationID: uint64(42), To: &to, ReplyTo: &reply,
		Subject: &subject, ContentType: &ctype}
	m.ApplicationProperties = map[string]any{"region": "eu", "count": int32(3), "ratio": 0.5, "ok": true}
	if err := snd.Send(ctx(t), m, nil); err != nil {
		t.Fatal(err)
	}
	got := receive(t, c.receiver(t, "orders", nil))
	if string(got.GetData()) != `{"n":1}` {
		t.Errorf("body %q", got.GetData())
	}
	h, p := got.Header, got.Properties
	if h == nil || !h.Durable || h.Priority != 7 || h.DeliveryCount != 0 {
		t.Errorf("header %+v", h)
	}
	if p == nil || p.MessageID != "m-1" || p.CorrelationID != "42" || *p.ReplyTo != reply || *p.Subject != subject ||
		*p.ContentType != ctype || *p.To != "queue://orders" {
		t.Errorf("properties %+v", p)
	}
	ap := got.ApplicationProperties
	if ap["region"] != "eu" || ap["count"] != int64(3) || ap["ratio"] != 0.5 || ap["ok"] != true {
		t.Errorf("application properties %v", ap)
	}
}

func TestTextValueStaysText(t *testing.T) {
	s := startServer(t, nil, nil)
	c := s.dial(t, nil)
	snd := c.sender(t, "queue://text", nil)
	m := &goamqp.Message{Value: "héllo"}
	if err := snd.Send(ctx(t), m, nil); err != nil {
		t.Fatal(err)
	}
	m = &goamqp.Message{Value: map[string]any{"k": int64(1)}}
	if err := snd.Send(ctx(t), m, nil); err != nil {
		t.Fatal(err)
	}
	r := c.receiver(t, "queue://text", nil)
	got := receive(t, r)
	if got.Value != "héllo" {
		t.Errorf("amqp-value string came back as %#v (data %q)", got.Value, got.GetData())
	}
	accept(t, r, got)
	if got := receive(t, r); got.Value == nil || got.Value.(map[string]any)["k"] != int64(1) {
		t.Errorf("amqp-value map came back as %#v", got.Value)
	}
}

func TestTopicFansOutAndQueueCompetes(t *testing.T) {
	s := startServer(t, nil, nil)
	c := s.dial(t, nil)
	r1 := c.receiver(t, "topic://prices.>", nil)
	r2 := c.receiver(t, "prices.eu", &goamqp.ReceiverOptions{SourceCapabilities: []string{"topic"}})
	send(t, c.sender(t, "topic://prices.eu", nil), "p1")
	for _, r := range []*goamqp.Receiver{r1, r2} {
		if m := receive(t, r); string(m.GetData()) != "p1" {
			t.Errorf("got %q", m.GetData())
		}
	}
	q1, q2 := c.receiver(t, "queue://work", nil), c.receiver(t, "queue://work", nil)
	snd := c.sender(t, "queue://work", nil)
	for _, b := range []string{"a", "b", "c", "d"} {
		send(t, snd, b)
	}
	// Each receiver has one credit, given back when it accepts: holding
	// one each, they must have been given different messages. Who gets
	// the other two depends on whose credit reaches the broker first.
	m1, m2 := receive(t, q1), receive(t, q2)
	seen := map[string]int{string(m1.GetData()): 1}
	seen[string(m2.GetData())]++
	accept(t, q1, m1)
	accept(t, q2, m2)
	deadline := time.Now().Add(10 * time.Second)
	for n := 2; n < 4 && time.Now().Before(deadline); {
		for _, r := range []*goamqp.Receiver{q1, q2} {
			if m := r.Prefetched(); m != nil {
				seen[string(m.GetData())]++
				accept(t, r, m)
				n++
			}
		}
		time.Sleep(time.Millisecond)
	}
	if len(seen) != 4 || seen["a"] != 1 || seen["b"] != 1 || seen["c"] != 1 || seen["d"] != 1 {
		t.Errorf("queue consumers saw %v, want each of a, b, c, d once", seen)
	}
}

func TestDurableSubscriptionResumesAfterReconnect(t *testing.T) {
	s := startServer(t, nil, nil)
	opts := &goamqp.ReceiverOptions{Name: "audit", SourceDurability: goamqp.DurabilityUnsettledState, SourceExpiryPolicy: goamqp.ExpiryPolicyNever}
	sub := s.dial(t, &goamqp.ConnOptions{ContainerID: "app-1"})
	r := sub.receiver(t, "topic://events", opts)
	pub := s.dial(t, nil)
	snd := pub.sender(t, "topic://events", nil)
	send(t, snd, "e1")
	accept(t, r, receive(t, r))
	sub.conn.Close()

	send(t, snd, "e2")
	send(t, snd, "e3")
	again := s.dial(t, &goamqp.ConnOptions{ContainerID: "app-1"})
	r = again.receiver(t, "topic://events", opts)
	for _, want := range []string{"e2", "e3"} {
		m := receive(t, r)
		if string(m.GetData()) != want {
			t.Fatalf("got %q, want %q", m.GetData(), want)
		}
		accept(t, r, m)
	}
	// Closing the link (not just the connection) unsubscribes.
	if err := r.Close(ctx(t)); err != nil {
		t.Fatal(err)
	}
	send(t, snd, "e4")
	r = again.receiver(t, "topic://events", opts)
	noMessage(t, r)
}

func TestSelectorFilter(t *testing.T) {
	s := startServer(t, nil, nil)
	c := s.dial(t, nil)
	r := c.receiver(t, "queue://sel", &goamqp.ReceiverOptions{Filters: []goamqp.LinkFilter{goamqp.NewSelectorFilter("colour = 'red' AND size > 2")}})
	if r.LinkSourceFilterValue("apache.org:selector-filter:string") == nil {
		t.Error("the attach's answer leaves out the selector it applied")
	}
	snd := c.sender(t, "queue://sel", nil)
	for i, props := range []map[string]any{{"colour": "blue", "size": 5}, {"colour": "red", "size": 1}, {"colour": "red", "size": 3}} {
		m := goamqp.NewMessage([]byte{byte('0' + i)})
		m.ApplicationProperties = props
		if err := snd.Send(ctx(t), m, nil); err != nil {
			t.Fatal(err)
		}
	}
	if m := receive(t, r); string(m.GetData()) != "2" {
		t.Errorf("selector let through %q", m.GetData())
	}
	noMessage(t, r)
}

func TestRequestReplyThroughDynamicNode(t *testing.T) {
	s := startServer(t, nil, nil)
	service := s.dial(t, nil)
	requests := service.receiver(t, "queue://service", nil)
	replier := service.sender(t, "", nil) // anonymous relay: each reply names its queue

	c := s.dial(t, nil)
	replies := c.receiver(t, "", &goamqp.ReceiverOptions{DynamicAddress: true})
	if !strings.HasPrefix(replies.Address(), "temp-queue://") {
		t.Fatalf("dynamic node address %q", replies.Address())
	}
	reply := replies.Address()
	m := goamqp.NewMessage([]byte("ping"))
	m.Properties = &goamqp.MessageProperties{MessageID: "req-1", ReplyTo: &reply}
	if err := c.sender(t, "queue://service", nil).Send(ctx(t), m, nil); err != nil {
		t.Fatal(err)
	}
	req := receive(t, requests)
	accept(t, requests, req)
	answer := goamqp.NewMessage([]byte("pong"))
	answer.Properties = &goamqp.MessageProperties{To: req.Properties.ReplyTo, CorrelationID: req.Properties.MessageID}
	if err := replier.Send(ctx(t), answer, nil); err != nil {
		t.Fatal(err)
	}
	got := receive(t, replies)
	if string(got.GetData()) != "pong" || got.Properties.CorrelationID != "req-1" {
		t.Errorf("reply %q correlation %v", got.GetData(), got.Properties.CorrelationID)
	}
}

func TestLargeMessageInManyFrames(t *testing.T) {
	s := startServer(t, nil, func(o *Options) { o.MaxFrameSize = 64 << 10 })
	c := s.dial(t, &goamqp.ConnOptions{MaxFrameSize: 32 << 10})
	body := bytes.Repeat([]byte("0123456789abcdef"), 10<<20/16)
	m := goamqp.NewMessage(body)
	m.Header = &goamqp.MessageHeader{Durable: true}
	if err := c.sender(t, "queue://big", nil).Send(ctx(t), m, nil); err != nil {
		t.Fatal(err)
	}
	got := receive(t, c.receiver(t, "queue://big", &goamqp.ReceiverOptions{MaxMessageSize: 20 << 20}))
	if !bytes.Equal(got.GetData(), body) {
		t.Errorf("10 MiB message came back as %d bytes", len(got.GetData()))
	}
}

func TestOutcomes(t *testing.T) {
	s := startServer(t, func(c *core.Config) { c.MaxRedeliveries = 1 }, nil)
	c := s.dial(t, nil)
	snd := c.sender(t, "queue://out", nil)
	r := c.receiver(t, "queue://out", nil)
	send(t, snd, "m")

	m := receive(t, r)
	if err := r.ReleaseMessage(ctx(t), m); err != nil {
		t.Fatal(err)
	}
	m = receive(t, r)
	if m.Header.DeliveryCount != 0 {
		t.Errorf("released message came back with delivery count %d, want 0", m.Header.DeliveryCount)
	}
	if err := r.ModifyMessage(ctx(t), m, &goamqp.ModifyMessageOptions{DeliveryFailed: true}); err != nil {
		t.Fatal(err)
	}
	m = receive(t, r)
	if m.Header.DeliveryCount != 1 {
		t.Errorf("modified message came back with delivery count %d, want 1", m.Header.DeliveryCount)
	}
	if err := r.RejectMessage(ctx(t), m, nil); err != nil {
		t.Fatal(err)
	}
	dlq := c.receiver(t, "queue://DLQ.out", nil)
	if m := receive(t, dlq); string(m.GetData()) != "m" {
		t.Errorf("dead letter %q", m.GetData())
	}
	noMessage(t, r)
}

func TestPresettledReceiverGetsEachOnce(t *testing.T) {
	s := startServer(t, nil, nil)
	c := s.dial(t, nil)
	settled := goamqp.SenderSettleModeSettled
	r := c.receiver(t, "queue://fire", &goamqp.ReceiverOptions{RequestedSenderSettleMode: &settled})
	snd := c.sender(t, "queue://fire", &goamqp.SenderOptions{SettlementMode: &settled})
	for range 3 {
		send(t, snd, "x")
	}
	for range 3 {
		receive(t, r)
	}
	noMessage(t, r)
	if st, _ := s.b.Stats(core.Destination{Kind: core.Queue, Name: "fire"}); st.Size != 0 {
		t.Errorf("queue holds %d after pre-settled deliveries, want 0", st.Size)
	}
}

func TestWrongPasswordIsRefused(t *testing.T) {
	s := startServer(t, func(c *core.Config) { c.Users = map[string]string{"alice": "secret"}; c.Anonymous = false }, nil)
	_, err := goamqp.Dial(ctx(t), "amqp://"+s.addr, &goamqp.ConnOptions{SASLType: goamqp.SASLTypePlain("alice", "wrong")})
	if err == nil || !strings.Contains(err.Error(), "authentication failed") && !strings.Contains(err.Error(), "code 1") {
		t.Errorf("wrong password: %v, want a SASL auth failure", err)
	}
	_, err = goamqp.Dial(ctx(t), "amqp://"+s.addr, &goamqp.ConnOptions{SASLType: goamqp.SASLTypeAnonymous()})
	if err == nil {
		t.Error("anonymous client let in with anonymous access off")
	}
	c := s.dial(t, &goamqp.ConnOptions{SASLType: goamqp.SASLTypePlain("alice", "secret")})
	snd := c.sender(t, "queue://auth", nil)
	send(t, snd, "in")
}

func TestMaxConnections(t *testing.T) {
	s := startServer(t, nil, func(o *Options) { o.MaxConnections = 1 })
	c := s.dial(t, nil)
	// The server answers the open, then closes: the client sees it at its
	// next step.
	extra, err := goamqp.Dial(ctx(t), "amqp://"+s.addr, nil)
	if err == nil {
		_, err = extra.NewSession(ctx(t), nil)
	}
	var ce *goamqp.ConnError
	if !errors.As(err, &ce) || ce.RemoteErr == nil || ce.RemoteErr.Condition != goamqp.ErrCondResourceLimitExceeded {
		t.Errorf("second connection: %v, want closed with amqp:resource-limit-exceeded", err)
	}
	send(t, c.sender(t, "queue://still", nil), "ok")
}

func TestSessionsAndLinksShareAConnection(t *testing.T) {
	s := startServer(t, nil, nil)
	c := s.dial(t, nil)
	other, err := c.conn.NewSession(ctx(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	r1 := c.receiver(t, "queue://s1", nil)
	r2, err := other.NewReceiver(ctx(t), "queue://s2", nil)
	if err != nil {
		t.Fatal(err)
	}
	snd2, err := other.NewSender(ctx(t), "queue://s1", nil)
	if err != nil {
		t.Fatal(err)
	}
	send(t, c.sender(t, "queue://s2", nil), "to s2")
	send(t, snd2, "to s1")
	m := receive(t, r1)
	if string(m.GetData()) != "to s1" {
		t.Errorf("s1 got %q", m.GetData())
	}
	accept(t, r1, m)
	if m := receive(t, r2); string(m.GetData()) != "to s2" {
		t.Errorf("s2 got %q", m.GetData())
	}
	if err := other.Close(ctx(t)); err != nil {
		t.Fatal(err)
	}
	send(t, c.sender(t, "queue://s1", nil), "after end")
	if m := receive(t, r1); string(m.GetData()) != "after end" {
		t.Errorf("after the other session ended: %q", m.GetData())
	}
}
