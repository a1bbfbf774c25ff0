package core

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hamq/hamq/core/selector"
	"github.com/hamq/hamq/core/store"
)

// Broker is the destination core: the registry of destinations and
// subscriptions, and the operations that change them.
type Broker struct {
	cfg  Config
	st   Store
	log  *slog.Logger
	auth *Auth  // auth.go
	id   string // tags message ids and temporary names of this run

	idPrefix string // "ID:hamq-<id>-", the start of every message id

	msgSeq, tagSeq, sessionSeq, tempSeq atomic.Uint64

	mu        sync.RWMutex
	dests     map[Destination]*destination
	topicSubs map[*topicSub]struct{}
	durables  map[durableID]*topicSub
	shared    map[sharedID]*topicSub
	sessions  map[uint64]*Session
	clientIDs map[string]*Session
	closed    bool

	promoter *promoter
	sched    *scheduler // schedule.go

	stop    chan struct{}
	running sync.WaitGroup // sweep, runPromoter and the scheduler
}

type durableID struct{ clientID, name string }

type sharedID struct{ group, pattern string }

// topicSub is one subscription to a topic pattern: the queue of messages it
// has yet to consume. Durable ones outlive their consumer.
type topicSub struct {
	pattern  string
	selector string
	sel      *selector.Selector
	noLocal  bool
	owner    uint64 // session of a non-durable subscription
	durable  *durableID
	shared   *sharedID // competing members of an MQTT $share group
	q        *msgQueue
	active   *Subscription // the consumer of a durable subscription, if any
}

// NewBroker loads the persistent state from st and starts the expiry sweep
// and the promoter.
func NewBroker(cfg Config, st Store, log *slog.Logger) (*Broker, error) {
	var rnd [4]byte
	_, _ = rand.Read(rnd[:])
	b := &Broker{
		cfg:       cfg,
		auth:      authOf(cfg),
		st:        st,
		log:       log.With("component", "core"),
		id:        hex.EncodeToString(rnd[:]),
		idPrefix:  "ID:hamq-" + hex.EncodeToString(rnd[:]) + "-",
		dests:     map[Destination]*destination{},
		topicSubs: map[*topicSub]struct{}{},
		durables:  map[durableID]*topicSub{},
		shared:    map[sharedID]*topicSub{},
		sessions:  map[uint64]*Session{},
		clientIDs: map[string]*Session{},
		promoter:  newPromoter(),
		stop:      make(chan struct{}),
	}
	b.sched = newScheduler(b)
	if err := b.load(); err != nil {
		return nil, err
	}
	b.running.Add(3)
	go b.sweep()
	go b.runPromoter()
	go b.sched.run()
	return b, nil
}

// Close stops the broker's own work. Front-ends close their sessions first;
// the store belongs to the caller and stays open.
func (b *Broker) Close() error {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return ErrClosed
	}
	b.closed = true
	b.mu.Unlock()
	close(b.stop)
	b.running.Wait()
	return nil
}

// destination finds d, creating a queue or topic (never a temporary one)
// when create is set.
func (b *Broker) destination(d Destination, create bool) (*destination, error) {
	b.mu.RLock()
	dd := b.dests[d]
	b.mu.RUnlock()
	if dd != nil {
		return dd, nil
	}
	if !create || d.Kind == TempQueue || d.Kind == TempTopic {
		return nil, fmt.Errorf("%w: %s", ErrNoSuchDestination, d)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.destinationLocked(d), nil
}

func (b *Broker) destinationLocked(d Destination) *destination {
	if dd := b.dests[d]; dd != nil {
		return dd
	}
	dd := &destination{dest: d, limit: b.cfg.MemoryLimit}
	switch d.Kind {
	case Queue:
		dd.queue = b.storedQueue("q:" + d.Name)
	case TempQueue:
		dd.queue = newMsgQueue("", 0, nil)
	}
	b.dests[d] = dd
	return dd
}

// storedQueue makes the queue of a queue destination or a durable
// subscription, whose persistent messages are kept in the store.
func (b *Broker) storedQueue(storeName string) *msgQueue {
	q := newMsgQueue(storeName, 0, b.st)
	q.prom = b.promoter
	q.spoolAfter, q.log = b.cfg.SpoolAfter, b.log
	return q
}

func (b *Broker) newMessageID() string {
	return string(strconv.AppendUint([]byte(b.idPrefix), b.msgSeq.Add(1), 10))
}

func (b *Broker) deadLetterQueue(d Destination) Destination {
	if b.cfg.SharedDeadLetterQueue != "" {
		return Destination{Kind: Queue, Name: b.cfg.SharedDeadLetterQueue}
	}
	return Destination{Kind: Queue, Name: b.cfg.DeadLetterPrefix + d.Name}
}

// routed is a message on its way: where it was sent and the queues that take
// a copy.
type routed struct {
	m       *Message
	d       *destination
	targets []*msgQueue
}

// route finds the queues a message goes to.
func (b *Broker) route(from *Session, m *Message) (routed, error) {
	if !validName(m.Dest, false) {
		return routed{}, fmt.Errorf("%w: %q", ErrInvalidDestination, m.Dest.Name)
	}
	d, err := b.destination(m.Dest, true)
	if err != nil {
		return routed{}, err
	}
	r := routed{m: m, d: d}
	if d.queue != nil {
		r.targets = []*msgQueue{d.queue}
		return r, nil
	}
	get := resolver(m)
	b.mu.RLock()
	defer b.mu.RUnlock()
	for ts := range b.topicSubs {
		if !topicMatches(ts.pattern, m.Dest.Name) ||
			(ts.noLocal && from != nil && ts.owner == from.id) ||
			(ts.sel != nil && !ts.sel.Matches(get)) {
			continue
		}
		if ts.noLocal && ts.durable != nil && from != nil && ts.active != nil && ts.active.session == from {
			continue
		}
		r.targets = append(r.targets, ts.q)
	}
	return r, nil
}

// commit applies sends and acknowledgements atomically: in memory under the
// locks of every queue involved, in the store as one record. It returns the
// store commit to wait on, or nil when nothing needed storing. When
// something is stored, every copy the sends make, stored or not, waits for
// the commit before it is dispatched. Acknowledgements alone that nobody
// waits on are lazy (store.SubmitLazy): they ride on the next fsync.
// Under a Leading context the caller's goroutine writes the record itself
// when no group is being written, once the queues' locks are released
// (the commit's callback takes them).
func (b *Broker) commit(ctx context.Context, sends []routed, acks []*inflight, lazy bool, extra ...store.Op) (*store.Commit, error) {
	submit := b.st.SubmitThen
	if leads(ctx) {
		submit = b.st.SubmitHeld
		defer b.st.Flush()
	}
	for _, r := range sends {
		if err := r.d.waitSpace(ctx, b.cfg.SendTimeout); err != nil {
			return nil, fmt.Errorf("send to %s: %w", r.d.dest, err)
		}
	}
	var w *commitWait
	if len(sends) > 0 && stores(sends, acks) {
		w = &commitWait{}
	}
	var targets []*msgQueue
	for _, r := range sends {
		targets = append(targets, r.targets...)
	}
	queues := slices.Clone(targets)
	for _, a := range acks {
		queues = append(queues, a.q)
	}
	byID := func(x, y *msgQueue) int { return cmp.Compare(x.id, y.id) }
	slices.SortFunc(targets, byID)
	targets = slices.Compact(targets)
	slices.SortFunc(queues, byID)
	queues = slices.Compact(queues)
	for _, q := range queues {
		q.mu.Lock()
	}
	defer func() {
		for _, q := range queues {
			q.dispatch()
			q.mu.Unlock()
		}
	}()

	var ops []store.Op
	var counted map[*destination]bool // destinations whose counters go with ops
	for _, r := range sends {
		r.d.enqueued.Add(1)
		for _, q := range r.targets {
			if op := q.add(r.m, r.d, w); op.Key != nil {
				ops = append(ops, op)
				counted = mark(counted, r.d)
			}
		}
	}
	for _, a := range acks {
		a.q.inflight--
		a.returnCredit()
		a.e.dest.hold(-a.e.size)
		a.e.dest.dequeued.Add(1)
		if a.e.stored {
			ops = append(ops, store.Op{Key: messageKey(a.q.storeName, a.e.seq), Delete: true})
			counted = mark(counted, a.e.dest)
		}
	}
	ops = append(ops, extra...) // what must land in the same record: a job (schedule.go), a duplicate id (dedup.go)
	if len(ops) == 0 {
		return nil, nil
	}
	for d := range counted {
		ops = append(ops, store.Op{Key: counterKey(d.dest), Value: encodeCounters(d.counters())})
	}
	if w == nil {
		if lazy && len(sends) == 0 {
			return b.st.SubmitLazy(ops), nil
		}
		return submit(ops, nil), nil
	}
	c := submit(ops, func(err error) { b.committed(w, err, sends, targets) })
	if w.done.Load() {
		// Done already (it may fail at once): committed could not take
		// the locks held here.
		for _, q := range targets {
			q.promote()
		}
	}
	return c, nil
}

// stores reports whether committing sends and acks writes anything.
func stores(sends []routed, acks []*inflight) bool {
	for _, r := range sends {
		for _, q := range r.targets {
			if q.keeps(r.m) {
				return true
			}
		}
	}
	for _, a := range acks {
		if a.e.stored {
			return true
		}
	}
	return false
}

func mark(m map[*destination]bool, d *destination) map[*destination]bool {
	if m == nil {
		m = map[*destination]bool{}
	}
	m[d] = true
	return m
}

// putBack says why a delivery goes back without an acknowledgement.
type putBack uint8

const (
	// consumerLeft: its consumer went away. Not counted against the
	// redelivery limit; a non-durable topic subscriber's copy is dropped.
	consumerLeft putBack = iota
	// nacked: refused. Counted, redelivered after the back-off, or
	// dead-lettered past the limit.
	nacked
	// released: not processed (AMQP's released outcome). Back at once,
	// with its delivery count unchanged.
	released
	// rejected: invalid (AMQP's rejected outcome). Dead-lettered at once.
	rejected
)

// redeliver puts back a delivery that was not acknowledged.
func (b *Broker) redeliver(a *inflight, how putBack) {
	q := a.q
	q.mu.Lock()
	q.inflight--
	a.returnCredit()
	if how == rejected {
		q.mu.Unlock()
		a.e.dest.deadLettered.Add(1)
		b.deadLetter(q, []*entry{a.e}, "rejected by the consumer")
		return
	}
	if how != released {
		m := *a.e.msg
		m.DeliveryCount++
		a.e.msg = &m
	}
	count := a.e.msg.DeliveryCount
	if ts := a.sub.topic; ts != nil && ts.durable == nil && ts.shared == nil && how == consumerLeft {
		// A non-durable subscriber left: nobody else will read its copy.
		a.e.dest.hold(-a.e.size)
		q.mu.Unlock()
		return
	}
	if how == nacked && b.cfg.MaxRedeliveries >= 0 && int(count) > b.cfg.MaxRedeliveries {
		q.mu.Unlock()
		a.e.dest.deadLettered.Add(1)
		b.deadLetter(q, []*entry{a.e}, fmt.Sprintf("delivery count %d exceeds the maximum of %d redeliveries", count, b.cfg.MaxRedeliveries))
		return
	}
	if how == nacked {
		a.e.notBefore = time.Now().Add(b.redeliveryDelay(count))
		if a.e.stored {
			// Keep the count so a restart does not reset the limit.
			b.st.SubmitLazy([]store.Op{{Key: messageKey(q.storeName, a.e.seq), Value: encodeMessage(a.e.msg)}})
		}
	}
	q.requeue(a.e)
	q.dispatch()
	q.mu.Unlock()
}

func (b *Broker) redeliveryDelay(count uint32) time.Duration {
	d := float64(b.cfg.RedeliveryDelay)
	for i := uint32(1); i < count && d < float64(b.cfg.MaxRedeliveryDelay); i++ {
		d *= b.cfg.RedeliveryBackoff
	}
	return min(time.Duration(d), b.cfg.MaxRedeliveryDelay)
}

// deadLetter moves entries already taken out of from to the dead-letter
// queue, or drops them when from is itself that queue. The caller has
// counted them and holds no queue lock.
func (b *Broker) deadLetter(from *msgQueue, entries []*entry, cause string) {
	for _, e := range entries {
		if !e.spooled {
			continue
		}
		if found, err := from.unspool(e); !found {
			b.log.Error("a spooled message goes to the dead-letter queue without its body, which could not be read back",
				"queue", from.storeName, "id", e.msg.ID, "err", err)
		}
	}
	var ops []store.Op
	counted := map[*destination]bool{}
	for _, e := range entries {
		if e.stored {
			ops = append(ops, store.Op{Key: messageKey(from.storeName, e.seq), Delete: true})
			counted[e.dest] = true
		}
	}
	byDLQ := map[*destination][]*entry{}
	for _, e := range entries {
		e.dest.hold(-e.size)
		if e.dest.dest.Kind == TempQueue || e.dest.dest.Kind == TempTopic {
			continue
		}
		dlq, _ := b.destination(b.deadLetterQueue(e.dest.dest), true)
		if dlq.queue == from {
			b.log.Warn("dropping a message that failed in its dead-letter queue", "queue", dlq.dest.Name, "id", e.msg.ID, "cause", cause)
			continue
		}
		byDLQ[dlq] = append(byDLQ[dlq], e)
	}
	var locked []*msgQueue
	for dlq, es := range byDLQ {
		dlq.queue.mu.Lock()
		locked = append(locked, dlq.queue)
		for _, e := range es {
			m := *e.msg
			m.Properties = make(map[string]any, len(e.msg.Properties)+2)
			for k, v := range e.msg.Properties {
				m.Properties[k] = v
			}
			m.Properties["dlqDeliveryFailureCause"] = cause
			m.Properties["originalDestination"] = e.dest.dest.String()
			m.Expiration = 0
			m.Dest = dlq.dest
			dlq.enqueued.Add(1)
			if op := dlq.queue.add(&m, dlq, nil); op.Key != nil {
				ops = append(ops, op)
				counted[dlq] = true
			}
		}
	}
	for d := range counted {
		ops = append(ops, store.Op{Key: counterKey(d.dest), Value: encodeCounters(d.counters())})
	}
	if len(ops) > 0 {
		b.st.Submit(ops)
	}
	for _, q := range locked {
		q.dispatch()
		q.mu.Unlock()
	}
}

// expire takes expired messages out of q: to the dead-letter queue or gone.
func (b *Broker) expire(q *msgQueue, entries []*entry) {
	for _, e := range entries {
		e.dest.expired.Add(1)
	}
	if b.cfg.ExpiredToDLQ {
		b.deadLetter(q, entries, "message expired")
		return
	}
	var ops []store.Op
	counted := map[*destination]bool{}
	for _, e := range entries {
		e.dest.hold(-e.size)
		if e.stored {
			ops = append(ops, store.Op{Key: messageKey(q.storeName, e.seq), Delete: true})
			counted[e.dest] = true
		}
	}
	for d := range counted {
		ops = append(ops, store.Op{Key: counterKey(d.dest), Value: encodeCounters(d.counters())})
	}
	if len(ops) > 0 {
		b.st.Submit(ops)
	}
}

// sweep takes expired messages out of every queue, so that they leave even
// when nobody consumes.
func (b *Broker) sweep() {
	defer b.running.Done()
	t := time.NewTicker(b.cfg.ExpirySweep)
	defer t.Stop()
	for {
		select {
		case <-b.stop:
			return
		case <-t.C:
		}
		now := time.Now().UnixMilli()
		for _, q := range b.allQueues() {
			q.mu.Lock()
			ex := q.takeExpired(now)
			q.mu.Unlock()
			if len(ex) > 0 {
				b.expire(q, ex)
			}
		}
	}
}

func (b *Broker) allQueues() []*msgQueue {
	b.mu.RLock()
	defer b.mu.RUnlock()
	var qs []*msgQueue
	for _, d := range b.dests {
		if d.queue != nil {
			qs = append(qs, d.queue)
		}
	}
	for ts := range b.topicSubs {
		qs = append(qs, ts.q)
	}
	return qs
}

var errHasConsumers = errors.New("destination has active consumers")
