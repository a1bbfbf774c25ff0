package core

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"runtime/pprof"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hamq/hamq/core/store"
)

// gate is a Confirmer that holds every record, written locally, until the
// test lets it through: one record per value sent on steps (nil confirms
// it, an error refuses it), or all of them once opened.
type gate struct {
	seen     chan uint64 // indexes of the records that reached the gate
	steps    chan error
	opened   chan struct{}
	openOnce sync.Once
}

func (g *gate) Confirm(ctx context.Context, r store.Record, _ time.Time) (time.Time, error) {
	select {
	case g.seen <- r.Index:
	default:
	}
	select {
	case err := <-g.steps:
		return time.Time{}, err
	case <-g.opened:
		return time.Time{}, nil
	case <-ctx.Done():
		return time.Time{}, ctx.Err()
	}
}

func (g *gate) open() { g.openOnce.Do(func() { close(g.opened) }) }

// step lets one record through with err as its outcome.
func (g *gate) step(t *testing.T, err error) {
	t.Helper()
	select {
	case g.steps <- err:
	case <-time.After(5 * time.Second):
		t.Fatal("no record reached the gate within 5s")
	}
}

// awaitRecord waits for a record to reach the gate: written locally, not
// confirmed.
func (g *gate) awaitRecord(t *testing.T) {
	t.Helper()
	select {
	case <-g.seen:
	case <-time.After(5 * time.Second):
		t.Fatal("no record reached the gate within 5s")
	}
}

// gatedOrders is a harness whose records wait at a closed gate, with a
// session and a consumer of orders.
func gatedOrders(t *testing.T, prefetch int) (*harness, *Session, chanConsumer, *gate) {
	h := newHarness(t, nil)
	s := h.session("")
	_, c := h.subscribe(s, SubSpec{Dest: orders, Prefetch: prefetch})
	return h, s, c, closeGate(h)
}

// closeGate makes h's store confirm records only through the gate it
// returns, opened when the test ends so that nothing is left waiting.
func closeGate(h *harness) *gate {
	g := &gate{seen: make(chan uint64, 1000), steps: make(chan error), opened: make(chan struct{})}
	h.st.SetConfirmer(g)
	h.t.Cleanup(g.open)
	return g
}

// TestUnconfirmedSendsAreNotDispatched: a persistent message is dispatched
// to no consumer, of a queue or a topic, durable or not, until its commit
// is confirmed; a non-persistent one is dispatched at once.
func TestUnconfirmedSendsAreNotDispatched(t *testing.T) {
	h := newHarness(t, nil)
	s := h.session("client-1")
	_, queued := h.subscribe(s, SubSpec{Dest: orders})
	_, durable := h.subscribe(s, SubSpec{Dest: temps, Durable: "audit"})
	_, plain := h.subscribe(s, SubSpec{Dest: temps})
	g := closeGate(h)
	p := h.session("")
	ctx := context.Background()

	var pending []Confirmation
	for _, m := range []*Message{msg(orders, "q", true), msg(temps, "t", true)} {
		c, err := p.SendAsync(ctx, m)
		if err != nil {
			t.Fatal(err)
		}
		pending = append(pending, c)
	}
	g.awaitRecord(t)
	h.send(p, msg(orders, "q-np", false))
	h.send(p, msg(temps, "t-np", false))
	for _, c := range []struct {
		name string
		c    chanConsumer
		want string
	}{{"queue", queued, "q-np"}, {"durable", durable, "t-np"}, {"non-durable", plain, "t-np"}} {
		if d := c.c.next(t); string(d.Msg.Body) != c.want {
			t.Fatalf("%s consumer got %q before %q", c.name, d.Msg.Body, c.want)
		}
	}
	queued.none(t, 200*time.Millisecond)
	durable.none(t, 10*time.Millisecond)
	plain.none(t, 10*time.Millisecond)
	if st, _ := h.b.Stats(orders); st.Size != 2 {
		t.Errorf("queue size %d with one message delivered and one unconfirmed, want 2", st.Size)
	}

	g.open()
	for _, c := range []struct {
		name string
		c    chanConsumer
		want string
	}{{"queue", queued, "q"}, {"durable", durable, "t"}, {"non-durable", plain, "t"}} {
		if d := c.c.next(t); string(d.Msg.Body) != c.want {
			t.Fatalf("%s consumer got %q, want %q", c.name, d.Msg.Body, c.want)
		}
	}
	for _, c := range pending {
		if err := c.Wait(ctx); err != nil {
			t.Fatal(err)
		}
	}
}

// TestFailedCommitDropsSends: a send whose commit fails, when confirmed or
// at once, reaches no consumer and leaves the counters as they were.
func TestFailedCommitDropsSends(t *testing.T) {
	noQuorum := errors.New("no quorum")
	for _, tc := range []struct {
		name string
		body string
		fail func(*testing.T, *gate) // makes the commit fail, if submitting did not
		want error
	}{
		{"refused by the confirmer", "small", func(t *testing.T, g *gate) { g.step(t, noQuorum) }, noQuorum},
		{"refused at once", strings.Repeat("x", 4<<10), func(*testing.T, *gate) {}, store.ErrTooLarge},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarnessWith(t, store.Options{MaxRecordBytes: 2 << 10}, nil)
			s := h.session("client-1")
			_, queued := h.subscribe(s, SubSpec{Dest: orders})
			_, durable := h.subscribe(s, SubSpec{Dest: temps, Durable: "audit"})
			_, plain := h.subscribe(s, SubSpec{Dest: temps})
			g := closeGate(h)
			p := h.session("")
			ctx := context.Background()
			before := map[Destination]DestStats{}
			for _, d := range []Destination{orders, temps} {
				if err := h.b.CreateDestination(d); err != nil {
					t.Fatal(err)
				}
				before[d], _ = h.b.Stats(d)
			}

			for _, d := range []Destination{orders, temps} {
				c, err := p.SendAsync(ctx, msg(d, tc.body, true))
				if err != nil {
					t.Fatal(err)
				}
				tc.fail(t, g)
				if err := c.Wait(ctx); !errors.Is(err, tc.want) {
					t.Fatalf("send to %s: %v, want %v", d, err, tc.want)
				}
			}
			for d, want := range before {
				var st DestStats
				if !eventually(func() bool { st, _ = h.b.Stats(d); return st == want }) {
					t.Fatalf("%s: stats %+v, want %+v", d, st, want)
				}
			}
			for _, q := range h.b.allQueues() {
				if n := q.size(); n != 0 {
					t.Errorf("queue %q holds %d messages", q.storeName, n)
				}
			}
			queued.none(t, 200*time.Millisecond)
			durable.none(t, 10*time.Millisecond)
			plain.none(t, 10*time.Millisecond)

			// The queues go on with later sends.
			g.open()
			h.send(p, msg(orders, "later", true))
			if d := queued.next(t); string(d.Msg.Body) != "later" {
				t.Fatalf("got %q", d.Msg.Body)
			}
		})
	}
}

// eventually reports whether cond holds within 5s.
func eventually(cond func() bool) bool {
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(time.Millisecond)
	}
	return true
}

// TestConfirmedInLogOrder: with records confirmed one at a time, a queue's
// consumer gets persistent messages in the order sent, each once its
// commit is done.
func TestConfirmedInLogOrder(t *testing.T) {
	_, s, c, g := gatedOrders(t, 1000)
	const n = 50
	var sent []Confirmation
	for i := range n {
		cf, err := s.SendAsync(context.Background(), msg(orders, fmt.Sprint(i), true))
		if err != nil {
			t.Fatal(err)
		}
		sent = append(sent, cf)
	}
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		for {
			select {
			case g.steps <- nil:
			case <-stop:
				return
			}
			time.Sleep(time.Millisecond) // pacing only: each step is one record
		}
	}()
	for i := range n {
		d := c.next(t)
		if string(d.Msg.Body) != fmt.Sprint(i) {
			t.Fatalf("got %q, want %d", d.Msg.Body, i)
		}
		select {
		case <-sent[i].Done():
		default:
			t.Fatalf("message %d delivered before its commit was done", i)
		}
	}
}

// TestTransactionDispatchedWhenConfirmed: a transaction's sends, persistent
// or not, reach consumers together, once its record is confirmed.
func TestTransactionDispatchedWhenConfirmed(t *testing.T) {
	_, s, c, g := gatedOrders(t, 0)
	ctx := context.Background()
	if err := s.Begin("tx"); err != nil {
		t.Fatal(err)
	}
	for i, persistent := range []bool{true, false, true} {
		if err := s.Send(ctx, "tx", msg(orders, fmt.Sprint(i), persistent)); err != nil {
			t.Fatal(err)
		}
	}
	committed := make(chan error, 1)
	go func() { committed <- durable(s.Commit(ctx, "tx")) }()
	g.awaitRecord(t)
	c.none(t, 200*time.Millisecond)
	select {
	case err := <-committed:
		t.Fatalf("commit returned before its record was confirmed: %v", err)
	default:
	}
	g.step(t, nil)
	if err := <-committed; err != nil {
		t.Fatal(err)
	}
	// The persistent ones go out once the delivered mark covering them is
	// confirmed too; the non-persistent one between them waits its turn.
	g.awaitRecord(t)
	c.none(t, 100*time.Millisecond)
	g.step(t, nil)
	for i := range 3 {
		if d := c.next(t); string(d.Msg.Body) != fmt.Sprint(i) {
			t.Fatalf("got %q, want %d", d.Msg.Body, i)
		}
	}
}

// confirmLog is a Confirmer that confirms each record after a short random
// wait, noting when it confirmed each message the record stores.
type confirmLog struct {
	mu        sync.Mutex
	confirmed map[string]time.Time // by message id
}

func (c *confirmLog) Confirm(_ context.Context, r store.Record, _ time.Time) (time.Time, error) {
	time.Sleep(time.Duration(rand.IntN(300)) * time.Microsecond)
	c.mu.Lock()
	defer c.mu.Unlock()
	now := time.Now()
	for _, op := range r.Ops {
		if op.Delete || len(op.Key) == 0 || op.Key[0] != prefixMessage {
			continue
		}
		m, err := decodeMessage(op.Value)
		if err != nil {
			panic(err)
		}
		c.confirmed[m.ID] = now
	}
	return time.Time{}, nil
}

func (c *confirmLog) at(id string) (time.Time, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	at, ok := c.confirmed[id]
	return at, ok
}

// TestConcurrentSendsDispatchedOnceConfirmed: many producers and consumers
// at once, on a queue and a topic with a durable and a non-durable
// subscriber: every copy is delivered once, never before its commit is
// confirmed.
func TestConcurrentSendsDispatchedOnceConfirmed(t *testing.T) {
	h := newHarness(t, nil)
	cl := &confirmLog{confirmed: map[string]time.Time{}}
	h.st.SetConfirmer(cl)
	const producers, perProducer, queueConsumers = 8, 100, 4
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	var mu sync.Mutex
	got := map[string]int{} // by consumer kind and message id
	var violations []string
	var consumers sync.WaitGroup
	consume := func(kind string, spec SubSpec) {
		s := h.session(spec.ClientID)
		spec.ClientID = ""
		_, c := h.subscribe(s, spec)
		consumers.Add(1)
		go func() {
			defer consumers.Done()
			for {
				select {
				case d := <-c:
					now := time.Now()
					at, ok := cl.at(d.Msg.ID)
					mu.Lock()
					got[kind+" "+d.Msg.ID]++
					if !ok || at.After(now) {
						violations = append(violations, fmt.Sprintf("%s got %s before its commit was confirmed", kind, d.Msg.ID))
					}
					mu.Unlock()
					if _, err := s.Ack(ctx, "", d.Tag, false, false); err != nil {
						t.Error(err)
						return
					}
				case <-ctx.Done():
					return
				}
			}
		}()
	}
	for range queueConsumers {
		consume("queue", SubSpec{Dest: orders, Prefetch: 10})
	}
	consume("durable", SubSpec{Dest: temps, Durable: "audit", ClientID: "client-1", Prefetch: 10})
	consume("non-durable", SubSpec{Dest: temps, Prefetch: 10})

	var ids sync.Map // message id → its destination
	var producing sync.WaitGroup
	for range producers {
		producing.Add(1)
		go func() {
			defer producing.Done()
			s := h.session("")
			var last Confirmation
			for i := range perProducer {
				d := orders
				if i%2 == 1 {
					d = temps
				}
				m := msg(d, fmt.Sprint(i), true)
				c, err := s.SendAsync(ctx, m)
				if err != nil {
					t.Error(err)
					return
				}
				ids.Store(m.ID, d)
				last = c
			}
			if err := last.Wait(ctx); err != nil {
				t.Error(err)
			}
		}()
	}
	producing.Wait()

	want := map[string]int{}
	ids.Range(func(id, d any) bool {
		if d == orders {
			want["queue "+id.(string)] = 1
		} else {
			want["durable "+id.(string)] = 1
			want["non-durable "+id.(string)] = 1
		}
		return true
	})
	if !eventually(func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(got) >= len(want)
	}) {
		t.Error("not every message was delivered within 5s")
	}
	cancel()
	consumers.Wait()
	for _, v := range violations {
		t.Error(v)
	}
	for k, n := range got {
		if want[k] != n {
			t.Errorf("%s: delivered %d times, want %d", k, n, want[k])
		}
	}
}

// slowConfirmer confirms each record after a fixed wait.
type slowConfirmer time.Duration

func (c slowConfirmer) Confirm(context.Context, store.Record, time.Time) (time.Time, error) {
	time.Sleep(time.Duration(c))
	return time.Time{}, nil
}

// TestNoDeadlockWithFullCommitQueue: with a commit queue of one, senders
// holding the queue's lock wait in Submit for the committer, while commits
// finish whose callbacks want that lock: on the committer itself
// (standalone), or on the Confirmer's loop, which the committer waits for
// once a backlog of records fills its hand-over. All of them complete.
func TestNoDeadlockWithFullCommitQueue(t *testing.T) {
	for _, tc := range []struct {
		name      string
		confirmer store.Confirmer
		perSender int
		async     bool // SendAsync, waiting on the last only: a backlog of records
	}{
		{"standalone", nil, 20, false},
		{"slow confirmer", slowConfirmer(500 * time.Microsecond), 100, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarnessWith(t, store.Options{QueueLen: 1}, nil)
			if tc.confirmer != nil {
				h.st.SetConfirmer(tc.confirmer)
			}
			s := h.session("")
			_, c := h.subscribe(s, SubSpec{Dest: orders, Prefetch: 50})
			const senders = 32
			ctx := context.Background()
			send := func(p *Session, m *Message) (Confirmation, error) {
				if tc.async {
					return p.SendAsync(ctx, m)
				}
				return Confirmed, p.Send(ctx, "", m)
			}
			done := make(chan struct{})
			go func() {
				defer close(done)
				var wg sync.WaitGroup
				for range senders {
					wg.Add(1)
					go func() {
						defer wg.Done()
						p := h.session("")
						var last Confirmation
						for i := range tc.perSender {
							var err error
							if last, err = send(p, msg(orders, fmt.Sprint(i), true)); err != nil {
								t.Error(err)
								return
							}
						}
						if err := last.Wait(ctx); err != nil {
							t.Error(err)
						}
					}()
				}
				wg.Add(1)
				go func() {
					defer wg.Done()
					for range senders * tc.perSender {
						d := <-c
						if _, err := s.Ack(ctx, "", d.Tag, false, false); err != nil {
							t.Error(err)
							return
						}
					}
				}()
				wg.Wait()
			}()
			select {
			case <-done:
			case <-time.After(10 * time.Second):
				var stacks strings.Builder
				pprof.Lookup("goroutine").WriteTo(&stacks, 2)
				t.Fatalf("sends and acks stuck after 10s:\n%s", stacks.String())
			}
		})
	}
}

// TestCommitterDispatchesWithFullQueue: a standalone store's committer
// finishes commits, and so dispatches, while others keep its queue of one
// full; a delivery that moves the delivered mark, which is a Submit, must
// not be made there. All of the sends complete.
func TestCommitterDispatchesWithFullQueue(t *testing.T) {
	h := newHarnessWith(t, store.Options{QueueLen: 1}, nil)
	s := h.session("")
	_, c := h.subscribe(s, SubSpec{Dest: orders, Prefetch: 10000})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var flooding sync.WaitGroup
	for range 8 {
		flooding.Add(1)
		go func() {
			defer flooding.Done()
			p := h.session("")
			for ctx.Err() == nil {
				if _, err := p.SendAsync(ctx, msg(Destination{Kind: Queue, Name: "flood"}, "x", true)); err != nil {
					return
				}
			}
		}()
	}
	const n = 5 * deliveredAhead
	done := make(chan struct{})
	go func() {
		defer close(done)
		p := h.session("")
		for i := range n {
			if err := p.Send(ctx, "", msg(orders, fmt.Sprint(i), true)); err != nil {
				t.Error(err)
				return
			}
			<-c
		}
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		var stacks strings.Builder
		pprof.Lookup("goroutine").WriteTo(&stacks, 2)
		t.Fatalf("sends stuck after 10s:\n%s", stacks.String())
	}
	cancel()
	flooding.Wait()
}

// TestDeliveryWaitsForItsDeliveredMark: a stored message goes out only
// once the delivered mark covering it is confirmed, so that a master lost
// right after delivering leaves its successor a mark that flags the
// message redelivered. The mark moves ahead of the deliveries, one record
// for many.
func TestDeliveryWaitsForItsDeliveredMark(t *testing.T) {
	h, s, c, g := gatedOrders(t, 0)
	ctx := context.Background()
	conf, err := s.SendAsync(ctx, msg(orders, "first", true))
	if err != nil {
		t.Fatal(err)
	}
	g.awaitRecord(t)
	g.step(t, nil)
	if err := conf.Wait(ctx); err != nil {
		t.Fatal(err)
	}
	g.awaitRecord(t) // the mark
	c.none(t, 200*time.Millisecond)
	g.step(t, nil)
	if d := c.next(t); string(d.Msg.Body) != "first" {
		t.Fatalf("got %q", d.Msg.Body)
	}
	v, found, err := h.st.Get(deliveredKey("q:" + orders.Name))
	if err != nil || !found || binary.BigEndian.Uint64(v) < 1 {
		t.Fatalf("delivered mark %x (found %v, %v): want one covering the delivery", v, found, err)
	}
	// The next ones, covered by that mark or the next, go out as they come.
	g.open()
	for i := range 10 {
		if err := durable(s.SendAsync(ctx, msg(orders, fmt.Sprint(i), true))); err != nil {
			t.Fatal(err)
		}
		if d := c.next(t); string(d.Msg.Body) != fmt.Sprint(i) {
			t.Fatalf("got %q, want %d", d.Msg.Body, i)
		}
	}
}
