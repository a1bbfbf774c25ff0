package core

import (
	"context"
	"slices"
	"testing"
	"time"
)

func withID(d Destination, body, id string) *Message {
	m := msg(d, body, true)
	m.Properties = map[string]any{PropDuplicateID: id}
	return m
}

// TestDedupDropsResendsAcrossRestart: a resend of an id in the window is
// confirmed and not enqueued, also after a restart (the window is in the
// store); other ids, and messages without one, go through.
func TestDedupDropsResendsAcrossRestart(t *testing.T) {
	h := newHarness(t, nil)
	s := h.session("")
	h.send(s, withID(orders, "a", "id-1"))
	h.send(s, withID(orders, "a again", "id-1"))
	h.restart()
	s = h.session("")
	m := msg(orders, "b", true)
	m.Properties = map[string]any{PropDedupID: "id-2"}
	h.send(s, m)
	h.send(s, withID(orders, "a after the restart", "id-1"))
	h.send(s, msg(orders, "no id", true))
	h.send(s, msg(orders, "no id", true))
	_, c := h.subscribe(s, SubSpec{Dest: orders})
	var got []string
	for range 4 {
		got = append(got, string(c.next(t).Msg.Body))
	}
	c.none(t, 100*time.Millisecond)
	if want := []string{"a", "b", "no id", "no id"}; !slices.Equal(got, want) {
		t.Errorf("got %q, want %q", got, want)
	}
	if st, _ := h.b.Stats(orders); st.Duplicates != 1 {
		t.Errorf("Duplicates = %d after the restart, want 1", st.Duplicates)
	}
}

// TestDedupWindowBounds: an id past the window's size or age is forgotten,
// and its resend goes through.
func TestDedupWindowBounds(t *testing.T) {
	h := newHarness(t, func(c *Config) {
		c.Dedup = []DedupRule{{Pattern: "small", Size: 2, TTL: time.Hour}, {Pattern: ">", Size: 100, TTL: 200 * time.Millisecond}}
	})
	s := h.session("")
	small := Destination{Kind: Queue, Name: "small"}
	for _, id := range []string{"1", "2", "3", "1"} {
		h.send(s, withID(small, id, id))
	}
	h.send(s, withID(orders, "x", "x"))
	time.Sleep(300 * time.Millisecond)
	h.send(s, withID(orders, "x", "x"))
	for d, want := range map[Destination]int64{small: 4, orders: 2} {
		if st, _ := h.b.Stats(d); st.Enqueued != want || st.Duplicates != 0 {
			t.Errorf("%s: enqueued %d, duplicates %d; want %d and 0", d, st.Enqueued, st.Duplicates, want)
		}
	}
}

// TestDedupMessageIDRule: with MessageID, the id the client set is the
// duplicate id; without it, a client's message id is not one.
func TestDedupMessageIDRule(t *testing.T) {
	h := newHarness(t, func(c *Config) {
		c.Dedup = []DedupRule{{Pattern: "amqp.>", Size: 10, TTL: time.Hour, MessageID: true}, {Pattern: ">", Size: 10, TTL: time.Hour}}
	})
	s := h.session("")
	for _, d := range []Destination{{Kind: Queue, Name: "amqp.in"}, orders} {
		for range 2 {
			m := msg(d, "m", true)
			m.ID = "client-id-1"
			if _, err := s.SendAsync(context.Background(), m); err != nil {
				t.Fatal(err)
			}
		}
	}
	if st, _ := h.b.Stats(Destination{Kind: Queue, Name: "amqp.in"}); st.Enqueued != 1 {
		t.Errorf("amqp.in: %d enqueued, want 1", st.Enqueued)
	}
	if st, _ := h.b.Stats(orders); st.Enqueued != 2 {
		t.Errorf("orders: %d enqueued, want 2", st.Enqueued)
	}
}

// TestDedupScheduled: a scheduled message sent again with its name makes
// one job, not two.
func TestDedupScheduled(t *testing.T) {
	h := newHarness(t, nil)
	s := h.session("")
	for range 2 {
		h.send(s, scheduled(orders, "later", map[string]any{PropDedupID: "s-1", PropScheduledDelay: "60000"}))
	}
	if _, total, err := h.b.Scheduled(0, 10); total != 1 || err != nil {
		t.Errorf("%d jobs (%v), want 1", total, err)
	}
}
