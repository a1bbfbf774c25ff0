package core

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"
)

// Browsing shows pending messages in dispatch order, then those out with a
// consumer, pages through them, reads spooled bodies back from the store,
// and consumes nothing.
func TestBrowse(t *testing.T) {
	h := newHarness(t, func(c *Config) { c.SpoolAfter = 1 << 10 })
	p := h.session("")
	for i, prio := range []uint8{4, 4, 9, 4, 1} {
		m := msg(orders, fmt.Sprintf("%d-%d-%s", prio, i, strings.Repeat("x", 400)), true)
		m.Priority = prio
		h.send(p, m)
	}
	s := h.session("")
	_, c := h.subscribe(s, SubSpec{Dest: orders, Prefetch: 1})
	first := c.next(t) // 9-2, out with the consumer and not acknowledged
	pg, err := h.b.Browse(orders, 0, 10)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, m := range pg.Messages {
		b := string(m.Msg.Body)
		if m.BodyGone || len(b) < 5 {
			t.Fatalf("message %s has no body: %q", m.Msg.ID, b)
		}
		got = append(got, fmt.Sprintf("%s/%v", b[:3], m.Delivered))
	}
	want := "4-0/false 4-1/false 4-3/false 1-4/false 9-2/true"
	if strings.Join(got, " ") != want || pg.Pending != 4 || pg.Delivered != 1 {
		t.Fatalf("browsed %v (pending %d, delivered %d), want %s", got, pg.Pending, pg.Delivered, want)
	}
	pg, _ = h.b.Browse(orders, 3, 2)
	if len(pg.Messages) != 2 || string(pg.Messages[0].Msg.Body[:3]) != "1-4" || !pg.Messages[1].Delivered {
		t.Fatalf("page from 3: %+v", pg)
	}
	if st, _ := h.b.Stats(orders); st.Size != 5 || st.Dequeued != 0 {
		t.Fatalf("browsing consumed: %+v", st)
	}
	h.ack(s, first)
	if _, err := h.b.Browse(temps, 0, 1); err == nil {
		t.Error("browsing a topic: no error")
	}
}

// A dead-letter queue's messages go back where they failed, in one
// commit each batch, without the dead-letter properties; they survive a
// restart there and are gone from the dead-letter queue.
func TestRetryDeadLetters(t *testing.T) {
	h := newHarness(t, func(c *Config) { c.MaxRedeliveries = 0 })
	p := h.session("")
	for i := range 3 {
		h.send(p, msg(orders, fmt.Sprint("m", i), true))
	}
	s := h.session("")
	sub, c := h.subscribe(s, SubSpec{Dest: orders})
	for range 3 {
		if err := s.Nack("", c.next(t).Tag, false); err != nil {
			t.Fatal(err)
		}
	}
	s.Unsubscribe(sub)
	dlq := Destination{Kind: Queue, Name: "DLQ.orders"}
	waitFor(t, func() bool { st, _ := h.b.Stats(dlq); return st.Size == 3 })
	pg, _ := h.b.Browse(dlq, 0, 10)
	moved, err := h.b.MoveMessages(context.Background(), dlq, []string{pg.Messages[1].Msg.ID}, OriginalDestination)
	if err != nil || moved != 1 {
		t.Fatalf("retry one: %d, %v", moved, err)
	}
	if moved, err = h.b.MoveMessages(context.Background(), dlq, nil, OriginalDestination); err != nil || moved != 2 {
		t.Fatalf("retry the rest: %d, %v", moved, err)
	}
	h.restart()
	if st, _ := h.b.Stats(dlq); st.Size != 0 {
		t.Fatalf("dead-letter queue after the retry and a restart: %+v", st)
	}
	_, c = h.subscribe(h.session(""), SubSpec{Dest: orders})
	got := map[string]bool{}
	for range 3 {
		d := c.next(t)
		if _, ok := d.Msg.Properties["dlqDeliveryFailureCause"]; ok {
			t.Errorf("a retried message keeps its failure cause: %v", d.Msg.Properties)
		}
		got[string(d.Msg.Body)] = true
	}
	if len(got) != 3 {
		t.Fatalf("retried %v", got)
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); !cond(); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 5s")
		}
	}
}

func TestSubscriptionsListsDurablesOffline(t *testing.T) {
	h := newHarness(t, nil)
	s := h.session("c1")
	sub, _ := h.subscribe(s, SubSpec{Dest: temps, Durable: "d1"})
	h.subscribe(s, SubSpec{Dest: orders})
	s.Unsubscribe(sub)
	h.send(h.session(""), msg(temps, "t", true))
	subs := h.b.Subscriptions()
	if len(subs) != 2 {
		t.Fatalf("subscriptions %+v", subs)
	}
	d := subs[1]
	if d.Durable != "d1" || d.ClientID != "c1" || d.Session != 0 || d.Pending != 1 {
		t.Fatalf("the offline durable subscription: %+v", d)
	}
	pg, err := h.b.BrowseDurable("c1", "d1", 0, 10)
	if err != nil || len(pg.Messages) != 1 {
		t.Fatalf("browse the durable subscription: %+v %v", pg, err)
	}
}
