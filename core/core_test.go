package core

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/hamq/hamq/core/store"
)

// chanConsumer collects deliveries; its buffer is larger than any prefetch
// used here, so Deliver never blocks.
type chanConsumer chan Delivery

func (c chanConsumer) Deliver(d Delivery) { c <- d }

func (c chanConsumer) next(t *testing.T) Delivery {
	t.Helper()
	select {
	case d := <-c:
		return d
	case <-time.After(5 * time.Second):
		t.Fatal("no delivery within 5s")
		return Delivery{}
	}
}

func (c chanConsumer) none(t *testing.T, wait time.Duration) {
	t.Helper()
	select {
	case d := <-c:
		t.Fatalf("unexpected delivery %s %q", d.Msg.ID, d.Msg.Body)
	case <-time.After(wait):
	}
}

type harness struct {
	t      *testing.T
	dir    string
	cfg    Config
	stOpts store.Options
	st     *store.Store
	b      *Broker
}

func newHarness(t *testing.T, change func(*Config)) *harness {
	return newHarnessWith(t, store.Options{}, change)
}

func newHarnessWith(t *testing.T, stOpts store.Options, change func(*Config)) *harness {
	cfg := DefaultConfig()
	cfg.RedeliveryDelay = 5 * time.Millisecond
	cfg.ExpirySweep = 20 * time.Millisecond
	if change != nil {
		change(&cfg)
	}
	h := &harness{t: t, dir: t.TempDir(), cfg: cfg, stOpts: stOpts}
	h.open()
	t.Cleanup(h.close)
	return h
}

func (h *harness) open() {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	st, err := store.Open(h.dir, h.stOpts, log)
	if err != nil {
		h.t.Fatal(err)
	}
	b, err := NewBroker(h.cfg, st, log)
	if err != nil {
		h.t.Fatal(err)
	}
	h.st, h.b = st, b
}

func (h *harness) close() {
	if h.b == nil {
		return
	}
	if err := h.b.Close(); err != nil {
		h.t.Error(err)
	}
	if err := h.st.Close(); err != nil {
		h.t.Error(err)
	}
	h.b = nil
}

func (h *harness) restart() {
	h.close()
	h.open()
}

func (h *harness) session(clientID string) *Session {
	s, err := h.b.Connect(ConnInfo{Protocol: "test", ClientID: clientID})
	if err != nil {
		h.t.Fatal(err)
	}
	h.t.Cleanup(func() { s.Close() })
	return s
}

func (h *harness) send(s *Session, m *Message) {
	h.t.Helper()
	if err := s.Send(context.Background(), "", m); err != nil {
		h.t.Fatal(err)
	}
}

func (h *harness) subscribe(s *Session, spec SubSpec) (*Subscription, chanConsumer) {
	h.t.Helper()
	c := make(chanConsumer, 10000)
	sub, err := s.Subscribe(spec, c)
	if err != nil {
		h.t.Fatal(err)
	}
	return sub, c
}

func (h *harness) ack(s *Session, d Delivery) {
	h.t.Helper()
	if err := durable(s.Ack(context.Background(), "", d.Tag, false, true)); err != nil {
		h.t.Fatal(err)
	}
}

var (
	orders = Destination{Kind: Queue, Name: "orders"}
	temps  = Destination{Kind: Topic, Name: "sensors.temp"}
)

func msg(d Destination, body string, persistent bool) *Message {
	return &Message{Dest: d, Body: []byte(body), Persistent: persistent, Priority: DefaultPriority}
}

func TestQueueCompetingConsumers(t *testing.T) {
	h := newHarness(t, nil)
	s := h.session("")
	var cs []chanConsumer
	for range 3 {
		_, c := h.subscribe(s, SubSpec{Dest: orders, Prefetch: 1})
		cs = append(cs, c)
	}
	p := h.session("")
	const n = 30
	for i := range n {
		h.send(p, msg(orders, fmt.Sprint(i), true))
	}
	seen := map[string]int{}
	per := make([]int, len(cs))
	for len(seen) < n {
		progressed := false
		for i, c := range cs {
			select {
			case d := <-c:
				seen[string(d.Msg.Body)]++
				per[i]++
				h.ack(s, d)
				progressed = true
			default:
			}
		}
		if !progressed {
			time.Sleep(time.Millisecond)
		}
	}
	for body, k := range seen {
		if k != 1 {
			t.Errorf("message %s received %d times", body, k)
		}
	}
	for i, k := range per {
		if k == 0 {
			t.Errorf("consumer %d got nothing: %v", i, per)
		}
	}
	st, _ := h.b.Stats(orders)
	if st.Enqueued != n || st.Dequeued != n || st.Size != 0 || st.Consumers != 3 {
		t.Errorf("stats %+v", st)
	}
}

func TestQueueOrderAndPriority(t *testing.T) {
	h := newHarness(t, nil)
	p := h.session("")
	for i, prio := range []uint8{1, 1, 9, 4, 9} {
		m := msg(orders, fmt.Sprintf("%d-%d", prio, i), false)
		m.Priority = prio
		h.send(p, m)
	}
	s := h.session("")
	_, c := h.subscribe(s, SubSpec{Dest: orders})
	want := []string{"9-2", "9-4", "4-3", "1-0", "1-1"}
	for _, w := range want {
		if d := c.next(t); string(d.Msg.Body) != w {
			t.Fatalf("got %q want %q", d.Msg.Body, w)
		}
	}
}

func TestTopicFanOutAndWildcards(t *testing.T) {
	h := newHarness(t, nil)
	s := h.session("")
	var cs []chanConsumer
	for _, pattern := range []string{"sensors.temp", "sensors.*", "sensors.>", ">"} {
		_, c := h.subscribe(s, SubSpec{Dest: Destination{Kind: Topic, Name: pattern}})
		cs = append(cs, c)
	}
	_, other := h.subscribe(s, SubSpec{Dest: Destination{Kind: Topic, Name: "sensors.humidity"}})
	h.send(s, msg(temps, "21.5", false))
	for i, c := range cs {
		if d := c.next(t); string(d.Msg.Body) != "21.5" {
			t.Fatalf("subscriber %d got %q", i, d.Msg.Body)
		}
	}
	other.none(t, 50*time.Millisecond)
}

func TestTopicMatches(t *testing.T) {
	for _, tc := range []struct {
		pattern, name string
		want          bool
	}{
		{"a.b", "a.b", true}, {"a.b", "a.c", false}, {"a.*", "a.b", true}, {"a.*", "a.b.c", false},
		{"a.*", "a", false}, {"a.>", "a.b.c", true}, {"a.>", "a", true}, {">", "x.y", true},
		{"*.b", "a.b", true}, {"*.b", "a.c", false}, {"a.*.c", "a.x.c", true}, {"a.b", "a.b.c", false},
		{"a.b.c", "a.b", false},
	} {
		if got := topicMatches(tc.pattern, tc.name); got != tc.want {
			t.Errorf("topicMatches(%q, %q) = %v", tc.pattern, tc.name, got)
		}
	}
}

func TestDurableSubscriptionKeepsMessagesOffline(t *testing.T) {
	h := newHarness(t, nil)
	sub := h.session("client-1")
	durable := SubSpec{Dest: temps, Durable: "audit"}
	sub1, c := h.subscribe(sub, durable)
	p := h.session("")
	h.send(p, msg(temps, "one", true))
	h.ack(sub, c.next(t))
	if err := sub.Unsubscribe(sub1); err != nil {
		t.Fatal(err)
	}
	h.send(p, msg(temps, "two", true))
	h.send(p, msg(temps, "three", false))
	h.restart()
	p = h.session("")
	h.send(p, msg(temps, "four", true))
	sub = h.session("client-1")
	_, c = h.subscribe(sub, durable)
	for _, want := range []string{"two", "four"} {
		d := c.next(t)
		if string(d.Msg.Body) != want {
			t.Fatalf("got %q want %q", d.Msg.Body, want)
		}
		h.ack(sub, d)
	}
	c.none(t, 50*time.Millisecond)
	if _, err := h.b.Connect(ConnInfo{ClientID: "client-1"}); !errors.Is(err, ErrClientIDInUse) {
		t.Errorf("second client-1: %v", err)
	}
}

func TestNackRedeliversThenDeadLetters(t *testing.T) {
	h := newHarness(t, func(c *Config) { c.MaxRedeliveries = 2 })
	s := h.session("")
	h.send(s, msg(orders, "poison", true))
	_, c := h.subscribe(s, SubSpec{Dest: orders})
	for i := range 3 {
		d := c.next(t)
		if int(d.Msg.DeliveryCount) != i || d.Msg.Redelivered() != (i > 0) {
			t.Fatalf("delivery %d has count %d", i, d.Msg.DeliveryCount)
		}
		if err := s.Nack("", d.Tag, false); err != nil {
			t.Fatal(err)
		}
	}
	c.none(t, 50*time.Millisecond)
	_, dlq := h.subscribe(s, SubSpec{Dest: Destination{Kind: Queue, Name: "DLQ.orders"}})
	d := dlq.next(t)
	if string(d.Msg.Body) != "poison" || d.Msg.Properties["originalDestination"] != "queue://orders" {
		t.Fatalf("dead letter %+v", d.Msg)
	}
	st, _ := h.b.Stats(orders)
	if st.DeadLettered != 1 || st.Size != 0 {
		t.Errorf("stats %+v", st)
	}
}

func TestExpiredNeverDelivered(t *testing.T) {
	h := newHarness(t, nil)
	s := h.session("")
	m := msg(orders, "stale", true)
	m.Expiration = time.Now().Add(30 * time.Millisecond).UnixMilli()
	h.send(s, m)
	h.send(s, msg(orders, "fresh", true))
	time.Sleep(60 * time.Millisecond)
	_, c := h.subscribe(s, SubSpec{Dest: orders})
	if d := c.next(t); string(d.Msg.Body) != "fresh" {
		t.Fatalf("got %q", d.Msg.Body)
	}
	c.none(t, 50*time.Millisecond)
	_, dlq := h.subscribe(s, SubSpec{Dest: Destination{Kind: Queue, Name: "DLQ.orders"}})
	if d := dlq.next(t); string(d.Msg.Body) != "stale" || d.Msg.Expiration != 0 {
		t.Fatalf("dead letter %q expiration %d", d.Msg.Body, d.Msg.Expiration)
	}
	if st, _ := h.b.Stats(orders); st.Expired != 1 {
		t.Errorf("stats %+v", st)
	}
}

func TestTransactions(t *testing.T) {
	h := newHarness(t, nil)
	s := h.session("")
	h.send(s, msg(orders, "acked-in-tx", true))
	_, c := h.subscribe(s, SubSpec{Dest: orders})
	d := c.next(t)
	ctx := context.Background()
	if err := s.Begin("tx1"); err != nil {
		t.Fatal(err)
	}
	if err := s.Send(ctx, "tx1", msg(orders, "sent-in-tx", true)); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Ack(ctx, "tx1", d.Tag, false, false); err != nil {
		t.Fatal(err)
	}
	if err := s.Abort("tx1"); err != nil {
		t.Fatal(err)
	}
	d = c.next(t)
	if string(d.Msg.Body) != "acked-in-tx" || !d.Msg.Redelivered() {
		t.Fatalf("after abort got %q redelivered=%v", d.Msg.Body, d.Msg.Redelivered())
	}
	c.none(t, 50*time.Millisecond)

	if err := s.Begin("tx2"); err != nil {
		t.Fatal(err)
	}
	if err := s.Send(ctx, "tx2", msg(orders, "committed", true)); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Ack(ctx, "tx2", d.Tag, false, false); err != nil {
		t.Fatal(err)
	}
	c.none(t, 20*time.Millisecond)
	if err := durable(s.Commit(ctx, "tx2")); err != nil {
		t.Fatal(err)
	}
	d = c.next(t)
	if string(d.Msg.Body) != "committed" {
		t.Fatalf("got %q", d.Msg.Body)
	}
	h.ack(s, d)
	if _, err := s.Commit(ctx, "nope"); !errors.Is(err, ErrUnknownTransaction) {
		t.Errorf("commit of unknown tx: %v", err)
	}
	h.restart()
	if st, _ := h.b.Stats(orders); st.Size != 0 || st.Enqueued != 2 || st.Dequeued != 2 {
		t.Errorf("after restart %+v", st)
	}
}

func TestSelectorFilters(t *testing.T) {
	h := newHarness(t, nil)
	s := h.session("")
	_, c := h.subscribe(s, SubSpec{Dest: orders, Selector: "type = 'book' AND price > 10"})
	for _, props := range []map[string]any{
		{"type": "book", "price": "5"}, {"type": "book", "price": "50"}, {"type": "pen", "price": int64(50)},
	} {
		m := msg(orders, fmt.Sprint(props["type"], props["price"]), false)
		m.Properties = props
		h.send(s, m)
	}
	if d := c.next(t); string(d.Msg.Body) != "book50" {
		t.Fatalf("got %q", d.Msg.Body)
	}
	c.none(t, 50*time.Millisecond)
	if _, err := s.Subscribe(SubSpec{Dest: orders, Selector: "price >"}, make(chanConsumer, 1)); !errors.Is(err, ErrInvalidSelector) {
		t.Errorf("bad selector: %v", err)
	}
}

func TestRestartKeepsPersistentOnly(t *testing.T) {
	h := newHarness(t, nil)
	s := h.session("")
	for i := range 10 {
		h.send(s, msg(orders, fmt.Sprint("p", i), true))
		h.send(s, msg(orders, fmt.Sprint("n", i), false))
	}
	_, c := h.subscribe(s, SubSpec{Dest: orders, Prefetch: 4})
	for range 4 {
		h.ack(s, c.next(t))
	}
	h.restart()
	st, _ := h.b.Stats(orders)
	// Four of the first acked were p0 n0 p1 n1; p2..p9 remain.
	if st.Size != 8 || st.Enqueued != 20 {
		t.Fatalf("after restart %+v", st)
	}
	s = h.session("")
	_, c = h.subscribe(s, SubSpec{Dest: orders})
	for i := 2; i < 10; i++ {
		if d := c.next(t); string(d.Msg.Body) != fmt.Sprint("p", i) {
			t.Fatalf("got %q want p%d", d.Msg.Body, i)
		}
	}
}

func TestMemoryLimitBlocksThenFails(t *testing.T) {
	h := newHarness(t, func(c *Config) { c.MemoryLimit = 4096; c.SendTimeout = 50 * time.Millisecond })
	s := h.session("")
	big := string(make([]byte, 3000))
	h.send(s, msg(orders, big, false))
	h.send(s, msg(orders, big, false))
	if err := s.Send(context.Background(), "", msg(orders, big, false)); !errors.Is(err, ErrDestinationFull) {
		t.Fatalf("third send: %v", err)
	}
	_, c := h.subscribe(s, SubSpec{Dest: orders})
	done := make(chan error, 1)
	go func() { done <- s.Send(context.Background(), "", msg(orders, big, false)) }()
	h.ack(s, c.next(t))
	h.ack(s, c.next(t))
	if err := <-done; err != nil {
		t.Fatalf("send after space freed: %v", err)
	}
}

func TestSlowTopicSubscriberDropsOldest(t *testing.T) {
	h := newHarness(t, func(c *Config) { c.TopicPendingLimit = 5 })
	s := h.session("")
	_, c := h.subscribe(s, SubSpec{Dest: temps, Prefetch: 1})
	for i := range 20 {
		h.send(s, msg(temps, fmt.Sprint(i), false))
	}
	first := c.next(t)
	if string(first.Msg.Body) != "0" {
		t.Fatalf("first %q", first.Msg.Body)
	}
	h.ack(s, first)
	if d := c.next(t); string(d.Msg.Body) != "15" {
		t.Fatalf("after drops got %q, want 15 (the oldest of the last five)", d.Msg.Body)
	}
	if st, _ := h.b.Stats(temps); st.Dropped != 14 {
		t.Errorf("dropped %d", st.Dropped)
	}
}

func TestTempQueueGoesWithSession(t *testing.T) {
	h := newHarness(t, nil)
	owner := h.session("")
	tq := owner.CreateTemp(TempQueue)
	other := h.session("")
	if _, err := other.Subscribe(SubSpec{Dest: tq}, make(chanConsumer, 1)); !errors.Is(err, ErrTempNotOwned) {
		t.Fatalf("foreign subscribe: %v", err)
	}
	_, c := h.subscribe(owner, SubSpec{Dest: tq})
	h.send(other, msg(tq, "reply", true))
	if d := c.next(t); string(d.Msg.Body) != "reply" {
		t.Fatalf("got %q", d.Msg.Body)
	}
	owner.Close()
	if err := other.Send(context.Background(), "", msg(tq, "late", false)); !errors.Is(err, ErrNoSuchDestination) {
		t.Fatalf("send to a gone temp queue: %v", err)
	}
}

func TestCloseRedeliversUnacked(t *testing.T) {
	h := newHarness(t, nil)
	s := h.session("")
	h.send(s, msg(orders, "x", true))
	_, c := h.subscribe(s, SubSpec{Dest: orders})
	c.next(t)
	s.Close()
	s2 := h.session("")
	_, c2 := h.subscribe(s2, SubSpec{Dest: orders})
	if d := c2.next(t); !d.Msg.Redelivered() {
		t.Fatal("redelivered flag not set")
	}
}

func TestClientAckIsCumulative(t *testing.T) {
	h := newHarness(t, nil)
	s := h.session("")
	for i := range 3 {
		h.send(s, msg(orders, fmt.Sprint(i), true))
	}
	_, c := h.subscribe(s, SubSpec{Dest: orders})
	c.next(t)
	c.next(t)
	last := c.next(t)
	if err := durable(s.Ack(context.Background(), "", last.Tag, true, true)); err != nil {
		t.Fatal(err)
	}
	if st, _ := h.b.Stats(orders); st.Size != 0 || st.Dequeued != 3 {
		t.Fatalf("stats %+v", st)
	}
	if _, err := s.Ack(context.Background(), "", last.Tag, false, false); !errors.Is(err, ErrUnknownDelivery) {
		t.Fatalf("second ack: %v", err)
	}
}

func TestMessageCodecRoundTrip(t *testing.T) {
	m := &Message{ID: "ID:1", Dest: temps, Body: []byte{0, 1, 2}, Persistent: true, Priority: 7,
		Expiration: 123, Timestamp: 456, DeliveryCount: 2, ReplyTo: orders, CorrelationID: "c",
		ContentType: "text/plain", Type: "t",
		Properties: map[string]any{"s": "v", "i": int64(-3), "f": 1.5, "b": true}}
	got, err := decodeMessage(encodeMessage(m))
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprintf("%+v", *got) != fmt.Sprintf("%+v", *m) {
		t.Fatalf("round trip:\n got %+v\nwant %+v", *got, *m)
	}
	for i := range len(encodeMessage(m)) {
		if _, err := decodeMessage(encodeMessage(m)[:i]); err == nil {
			t.Fatalf("truncated at %d decoded without error", i)
		}
	}
}

func TestSharedSubscriptionCompetes(t *testing.T) {
	h := newHarness(t, nil)
	s := h.session("")
	group := SubSpec{Dest: Destination{Kind: Topic, Name: "jobs.*"}, Shared: "workers", Prefetch: 1}
	_, a := h.subscribe(s, group)
	subB, b := h.subscribe(s, group)
	_, solo := h.subscribe(s, SubSpec{Dest: Destination{Kind: Topic, Name: "jobs.*"}})
	for i := range 10 {
		h.send(s, msg(Destination{Kind: Topic, Name: "jobs.x"}, fmt.Sprint(i), true))
	}
	got := map[string]int{}
	for len(got) < 10 {
		select {
		case d := <-a:
			got[string(d.Msg.Body)]++
			h.ack(s, d)
		case d := <-b:
			got[string(d.Msg.Body)]++
			h.ack(s, d)
		case <-time.After(5 * time.Second):
			t.Fatalf("group received %d of 10", len(got))
		}
	}
	for body, k := range got {
		if k != 1 {
			t.Errorf("%s went to the group %d times", body, k)
		}
	}
	for range 10 {
		h.ack(s, solo.next(t))
	}
	// The last member leaving ends the group's queue.
	s.Unsubscribe(subB)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if n := len(h.b.shared); n != 0 {
		t.Errorf("%d shared groups left after every member went", n)
	}
}

func TestFrontEndState(t *testing.T) {
	h := newHarness(t, nil)
	ctx := context.Background()
	h.b.PutState(ctx, "mqtt/retained/a", []byte("1"))
	h.b.PutState(ctx, "mqtt/retained/b", []byte("2"))
	h.b.PutState(ctx, "other/x", []byte("3"))
	h.b.DeleteState(ctx, "mqtt/retained/a")
	h.restart()
	var got []string
	h.b.State("mqtt/", func(k string, v []byte) error { got = append(got, k+"="+string(v)); return nil })
	if fmt.Sprint(got) != "[mqtt/retained/b=2]" {
		t.Fatalf("state %v", got)
	}
}

// TestRestartFlagsPossiblyDelivered: messages delivered and not acked when
// the broker went away come back flagged redelivered; those well past the
// last delivery do not.
func TestRestartFlagsPossiblyDelivered(t *testing.T) {
	h := newHarness(t, nil)
	s := h.session("")
	for i := range 300 {
		h.send(s, msg(orders, fmt.Sprint(i), true))
	}
	_, c := h.subscribe(s, SubSpec{Dest: orders, Prefetch: 5})
	for i := range 5 {
		if d := c.next(t); i < 2 {
			h.ack(s, d)
		}
	}
	h.restart()
	_, c = h.subscribe(h.session(""), SubSpec{Dest: orders, Prefetch: 1000})
	for i := 2; i < 300; i++ {
		d := c.next(t)
		if string(d.Msg.Body) != fmt.Sprint(i) {
			t.Fatalf("got %q, want %d", d.Msg.Body, i)
		}
		if i < 5 && d.Msg.DeliveryCount == 0 {
			t.Errorf("message %d was delivered before the restart but is not flagged", i)
		}
		if i >= 5+deliveredAhead && d.Msg.DeliveryCount != 0 {
			t.Errorf("message %d was never delivered but is flagged", i)
		}
	}
}

// TestSpooledBacklog: past SpoolAfter, a queue's persistent bodies stay in
// the store only, before and after a restart, and come back in order and
// whole when consumed; expired ones reach the dead-letter queue whole.
func TestSpooledBacklog(t *testing.T) {
	h := newHarness(t, func(c *Config) { c.SpoolAfter = 4 << 10 })
	s := h.session("")
	body := func(i int) string { return fmt.Sprintf("%04d:%s", i, strings.Repeat("x", 1020)) }
	for i := range 200 {
		h.send(s, msg(orders, body(i), true))
	}
	for i := range 20 {
		m := msg(orders, "expiring "+body(i), true)
		m.Expiration = time.Now().Add(30 * time.Millisecond).UnixMilli()
		h.send(s, m)
	}
	held := func(when string) {
		t.Helper()
		// 220 KiB of bodies, of which SpoolAfter and the entry being
		// added stay in memory, plus a small per-message overhead.
		st, _ := h.b.Stats(orders)
		if st.MemoryBytes > 64<<10 {
			t.Errorf("%s: the queue holds %d bytes in memory", when, st.MemoryBytes)
		}
		// Every message counts, its body in memory or not (QueueSize
		// showed only those in memory).
		if st.Size != 220 {
			t.Errorf("%s: the queue's size is %d, not the 220 messages it holds", when, st.Size)
		}
	}
	held("sent")
	h.restart()
	held("restarted")
	time.Sleep(60 * time.Millisecond)
	s = h.session("")
	_, c := h.subscribe(s, SubSpec{Dest: orders})
	for i := range 200 {
		d := c.next(t)
		if string(d.Msg.Body) != body(i) {
			t.Fatalf("message %d: %.10q…", i, d.Msg.Body)
		}
		h.ack(s, d)
	}
	_, dlq := h.subscribe(s, SubSpec{Dest: Destination{Kind: Queue, Name: "DLQ.orders"}})
	for i := range 20 {
		if d := dlq.next(t); string(d.Msg.Body) != "expiring "+body(i) {
			t.Fatalf("dead letter %d: %.20q…", i, d.Msg.Body)
		}
	}
	if st, _ := h.b.Stats(orders); st.MemoryBytes != 0 {
		t.Errorf("the emptied queue still holds %d bytes", st.MemoryBytes)
	}
}

// durable waits for what an Ack or a Commit gives back.
func durable(c Confirmation, err error) error {
	if err != nil {
		return err
	}
	return c.Wait(context.Background())
}
