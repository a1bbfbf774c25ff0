package core

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"
)

func scheduled(d Destination, body string, props map[string]any) *Message {
	m := msg(d, body, true)
	m.Properties = props
	return m
}

func TestScheduledDelayIsNeverEarly(t *testing.T) {
	h := newHarness(t, nil)
	s := h.session("")
	_, c := h.subscribe(s, SubSpec{Dest: orders})
	sent := time.Now()
	h.send(s, scheduled(orders, "later", map[string]any{PropScheduledDelay: "300"}))
	h.send(s, msg(orders, "now", true))
	if d := c.next(t); string(d.Msg.Body) != "now" {
		t.Fatalf("first delivery %q, want the unscheduled message", d.Msg.Body)
	}
	d := c.next(t)
	late := time.Since(sent) - 300*time.Millisecond
	if string(d.Msg.Body) != "later" || late < 0 {
		t.Fatalf("got %q %v after its time", d.Msg.Body, late)
	}
	if late > 100*time.Millisecond {
		t.Errorf("delivered %v late", late)
	}
}

func TestScheduledRepeatsAndSurvivesRestart(t *testing.T) {
	h := newHarness(t, nil)
	s := h.session("")
	h.send(s, scheduled(orders, "tick", map[string]any{
		PropScheduledDelay: int64(100), PropScheduledPeriod: int64(150), PropScheduledRepeat: int64(4)}))
	list, total, err := h.b.Scheduled(0, 10)
	if err != nil || total != 1 || list[0].Repeat != 4 {
		t.Fatalf("Scheduled = %+v, %d, %v; want one job repeating 4 more times", list, total, err)
	}
	h.restart() // the job is in the store, not only in memory
	s = h.session("")
	_, c := h.subscribe(s, SubSpec{Dest: orders})
	ids := map[string]bool{}
	for range 5 {
		d := c.next(t)
		ids[d.Msg.ID] = true
		if d.Msg.Properties[PropScheduledJobID] == nil {
			t.Errorf("delivery %s has no %s", d.Msg.ID, PropScheduledJobID)
		}
		h.ack(s, d)
	}
	if len(ids) != 5 {
		t.Errorf("5 deliveries with %d distinct ids", len(ids))
	}
	c.none(t, 400*time.Millisecond)
	if _, total, _ := h.b.Scheduled(0, 10); total != 0 {
		t.Errorf("%d jobs left after the last repeat", total)
	}
}

func TestScheduledCancel(t *testing.T) {
	h := newHarness(t, nil)
	s := h.session("")
	m := scheduled(orders, "never", map[string]any{PropScheduledDelay: "200"})
	h.send(s, m)
	ok, err := h.b.CancelScheduled(context.Background(), m.ID)
	if !ok || err != nil {
		t.Fatalf("CancelScheduled = %v, %v", ok, err)
	}
	_, c := h.subscribe(s, SubSpec{Dest: orders})
	c.none(t, 400*time.Millisecond)
	if ok, _ := h.b.CancelScheduled(context.Background(), m.ID); ok {
		t.Error("cancelled twice")
	}
}

func TestScheduledCron(t *testing.T) {
	now := time.Date(2026, 12, 6, 10, 7, 30, 0, time.UTC)
	sc, first, ok, err := scheduleOf(&Message{Properties: map[string]any{PropScheduledCron: "*/5 * * * *"}}, now)
	if err != nil || !ok || !first.Equal(time.Date(2026, 12, 6, 10, 10, 0, 0, time.UTC)) {
		t.Fatalf("cron */5 at 10:07:30: first %v, %v, %v", first, ok, err)
	}
	if next, ok := sc.next(first); !ok || !next.Equal(first.Add(5*time.Minute)) {
		t.Errorf("next after %v: %v", first, next)
	}
}

func TestScheduleErrors(t *testing.T) {
	for _, props := range []map[string]any{
		{PropScheduledDelay: "soon"},
		{PropScheduledDelay: int64(-5)},
		{PropScheduledCron: "every tuesday"},
		{PropScheduledPeriod: true},
	} {
		h := newHarness(t, nil)
		err := h.session("").Send(context.Background(), "", scheduled(orders, "x", props))
		if !errors.Is(err, ErrBadSchedule) {
			t.Errorf("%v: %v, want ErrBadSchedule", props, err)
		}
	}
	h := newHarness(t, nil)
	s := h.session("")
	if err := s.Begin("t1"); err != nil {
		t.Fatal(err)
	}
	if err := s.Send(context.Background(), "t1", scheduled(orders, "x", map[string]any{PropScheduledDelay: "10"})); !errors.Is(err, ErrScheduledInTransaction) {
		t.Errorf("in a transaction: %v", err)
	}
}

// TestScheduledBeyondTheWindow: more jobs than the memory window holds are
// all delivered, in due order, the later ones read back from the store.
func TestScheduledBeyondTheWindow(t *testing.T) {
	h := newHarness(t, nil)
	s := h.session("")
	n := schedWindow + 500
	base := time.Now().Add(2 * time.Second).UnixMilli()
	for i := range n {
		// Sent latest first: each new one belongs before the window's.
		at := base + int64(n-1-i)/64
		c, err := s.SendAsync(context.Background(), scheduled(orders, fmt.Sprint(n-1-i), map[string]any{PropDeliveryTime: at}))
		if err != nil {
			t.Fatal(err)
		}
		if i == n-1 {
			if err := c.Wait(context.Background()); err != nil {
				t.Fatal(err)
			}
		}
	}
	if time.Now().UnixMilli() >= base {
		t.Fatal("sending took longer than the first delay: the order checked below says nothing")
	}
	_, c := h.subscribe(s, SubSpec{Dest: orders, Prefetch: n})
	last := -1
	for range n {
		d := c.next(t)
		var i int
		fmt.Sscan(string(d.Msg.Body), &i)
		if i/64 < last/64 {
			t.Fatalf("message %d (%q, %s) delivered after %d: out of due order", i, d.Msg.Body, d.Msg.ID, last)
		}
		last = i
	}
	c.none(t, 200*time.Millisecond)
}
