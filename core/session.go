package core

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/hamq/hamq/core/selector"
	"github.com/hamq/hamq/core/store"
)

// Session is one client connection's view of the core. Its methods are safe
// for concurrent use.
type Session struct {
	b    *Broker
	id   uint64
	info ConnInfo

	mu      sync.Mutex
	subs    map[*Subscription]struct{}
	unacked map[uint64]*inflight
	txs     map[string]*transaction
	temps   []*destination
	closed  bool
}

// inflight is a delivery awaiting its acknowledgement.
type inflight struct {
	tag            uint64
	sub            *Subscription
	q              *msgQueue
	e              *entry
	creditReturned bool // acknowledged inside a transaction not yet committed
}

type transaction struct {
	sends []routed
	acks  []*inflight
	nacks []*inflight
	bytes int // about what its sends will store
}

// Subscription is a consumer attached to a queue or a topic subscription.
type Subscription struct {
	session  *Session
	spec     SubSpec
	consumer Consumer
	sel      *selector.Selector // queues: filters at dispatch
	q        *msgQueue
	topic    *topicSub
	credit   int // guarded by q.mu
	// delivered counts deliveries, wrapping, for LinkCredit; guarded by q.mu
	delivered uint32
	order     []uint64 // unacknowledged tags in delivery order; guarded by session.mu
}

// returnCredit gives a settled delivery's credit back to its consumer, once,
// unless the front-end grants credit itself; a.q.mu is held.
func (a *inflight) returnCredit() {
	if !a.creditReturned && !a.sub.spec.LinkCredit {
		a.sub.credit++
	}
}

// SetCreditLimit grants a LinkCredit subscription deliveries until it has
// had limit of them in all (AMQP's delivery-count plus link-credit, with the
// same wrap-around), and dispatches what that allows. With drain, credit
// left once nothing more can be dispatched is used up as if delivered. It
// returns the deliveries counted so far, for the front-end's flow state.
func (sub *Subscription) SetCreditLimit(limit uint32, drain bool) (delivered uint32) {
	q := sub.q
	q.mu.Lock()
	defer q.mu.Unlock()
	sub.credit = max(int(int32(limit-sub.delivered)), 0)
	q.dispatch()
	if drain {
		sub.delivered += uint32(sub.credit)
		sub.credit = 0
	}
	return sub.delivered
}

// Spec is what the subscription was asked to receive.
func (sub *Subscription) Spec() SubSpec { return sub.spec }

func (sub *Subscription) accepts(m *Message) bool {
	return sub.sel == nil || sub.sel.Matches(resolver(m))
}

// Connect opens a session. A client id, when given, must be unique among
// connected sessions, as durable subscriptions hang off it.
func (b *Broker) Connect(info ConnInfo) (*Session, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return nil, ErrClosed
	}
	if info.ClientID != "" && b.clientIDs[info.ClientID] != nil {
		return nil, fmt.Errorf("%w: %q", ErrClientIDInUse, info.ClientID)
	}
	// The maps are made on first use: an idle connection's session is
	// small.
	s := &Session{b: b, id: b.sessionSeq.Add(1), info: info}
	b.sessions[s.id] = s
	if info.ClientID != "" {
		b.clientIDs[info.ClientID] = s
	}
	return s, nil
}

// ID identifies the session within this broker run.
func (s *Session) ID() uint64 { return s.id }

// Close ends the session: open transactions abort, subscriptions end with
// their unacknowledged messages redelivered, temporary destinations go.
func (s *Session) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return ErrClosed
	}
	s.closed = true
	txs := s.txs
	s.txs = nil
	subs := make([]*Subscription, 0, len(s.subs))
	for sub := range s.subs {
		subs = append(subs, sub)
	}
	temps := s.temps
	s.mu.Unlock()

	for _, t := range txs {
		s.abort(t)
	}
	for _, sub := range subs {
		s.unsubscribe(sub)
	}
	for _, d := range temps {
		s.b.removeDestination(d)
	}
	s.b.mu.Lock()
	delete(s.b.sessions, s.id)
	if s.info.ClientID != "" && s.b.clientIDs[s.info.ClientID] == s {
		delete(s.b.clientIDs, s.info.ClientID)
	}
	s.b.mu.Unlock()
	return nil
}

// Send routes m to its destination, within transaction tx when tx is not
// empty. Outside a transaction it returns once a persistent message is
// durable per the store's policy.
func (s *Session) Send(ctx context.Context, tx string, m *Message) error {
	if tx != "" {
		if _, _, later, err := scheduleOf(m, time.Now()); later || err != nil {
			return cmp.Or(err, ErrScheduledInTransaction)
		}
		r, err := s.prepare(m)
		if err != nil {
			return err
		}
		s.mu.Lock()
		defer s.mu.Unlock()
		t := s.txs[tx]
		if t == nil {
			return fmt.Errorf("%w: %q", ErrUnknownTransaction, tx)
		}
		// A transaction commits as one store record, and one too large to
		// replicate is refused: better at the send that makes it so than
		// after the client has sent and the broker held it all.
		for _, q := range r.targets {
			if q.keeps(m) {
				t.bytes += int(m.size())
			}
		}
		if t.bytes > store.MaxRecordBytes {
			return fmt.Errorf("%w: %q holds %d MiB to store, at most %d MiB", ErrTransactionTooBig, tx, t.bytes>>20, store.MaxRecordBytes>>20)
		}
		t.sends = append(t.sends, r)
		return nil
	}
	c, err := s.SendAsync(ctx, m)
	if err != nil {
		return err
	}
	return c.Wait(ctx)
}

// Confirmation is a send, an acknowledgement or a transaction on its way
// to durability.
type Confirmation interface {
	// Wait returns once it is durable per the store's policy (at once
	// when nothing needed storing), or with what stopped it.
	Wait(ctx context.Context) error
	// Done is closed once Wait returns at once: a front-end answering
	// many sends together sends what is ready before it waits for more.
	Done() <-chan struct{}
	// OnDone calls f once Wait returns at once, from the goroutine that
	// made it so (the store's committer, mostly) or, when it is done
	// already, from the caller's: f must not block.
	OnDone(f func())
	// ValidUntil is, once Wait has returned nil, when the confirmation
	// goes stale; the zero time is never. A cluster's master confirms
	// only under a lease (package ha), and a process paused between
	// confirming and writing the client's answer must not answer after a
	// newer master has taken over: a front-end checks Stale right before
	// it writes the answer, and closes the connection instead, leaving
	// the client to send again what it did not hear confirmed.
	ValidUntil() time.Time
}

type leadKey struct{}

// Leading marks ctx as a front-end reader's that has read everything its
// client sent: a send or acknowledgement made under it is written to the
// disk by the calling goroutine when no group is being written, so that a
// stop-and-wait producer's message goes from its socket to the disk and
// its confirmation back with no goroutine woken in between (the
// Confirmation is then done when the call returns). A reader with more to
// read leaves it out, and its sends share the committer's groups.
func Leading(ctx context.Context) context.Context { return context.WithValue(ctx, leadKey{}, true) }

func leads(ctx context.Context) bool {
	v, _ := ctx.Value(leadKey{}).(bool)
	return v
}

// Stale reports whether c, confirmed, may no longer be passed on.
func Stale(c Confirmation) bool {
	until := c.ValidUntil()
	return !until.IsZero() && time.Now().After(until)
}

// Confirmed is the Confirmation of what needed nothing stored.
var Confirmed Confirmation = confirmed{}

type confirmed struct{}

var closedChan = func() chan struct{} { c := make(chan struct{}); close(c); return c }()

func (confirmed) Wait(context.Context) error { return nil }
func (confirmed) Done() <-chan struct{}      { return closedChan }
func (confirmed) OnDone(f func())            { f() }
func (confirmed) ValidUntil() time.Time      { return time.Time{} }

// SendAsync routes m like Send outside a transaction but returns before the
// message is durable: a front-end that confirms many sends of one client in
// order (MQTT's PUBACKs) waits on each Confirmation while it reads on.
// Sends of one session are stored in the order of their calls.
func (s *Session) SendAsync(ctx context.Context, m *Message) (Confirmation, error) {
	rule, keeps := s.b.dedupRule(m.Dest)
	var dupID string
	if keeps {
		dupID = dedupID(m, rule) // before the core sets an id of its own
	}
	// send stores m, with extra ops (the duplicate window's) in its record.
	var send func(extra ...store.Op) (Confirmation, error)
	var d *destination
	if sc, first, later, err := scheduleOf(m, time.Now()); err != nil {
		return nil, err
	} else if later {
		if !validName(m.Dest, false) {
			return nil, fmt.Errorf("%w: %q", ErrInvalidDestination, m.Dest.Name)
		}
		if err := s.stamp(m); err != nil {
			return nil, err
		}
		send = func(extra ...store.Op) (Confirmation, error) { return s.b.sched.add(m, sc, first, extra...) }
		if dupID != "" {
			if d, err = s.b.destination(m.Dest, true); err != nil {
				return nil, err
			}
		}
	} else {
		r, err := s.prepare(m)
		if err != nil {
			return nil, err
		}
		send = func(extra ...store.Op) (Confirmation, error) {
			return confirmation(s.b.commit(ctx, []routed{r}, nil, false, extra...))
		}
		d = r.d
	}
	if dupID != "" {
		return s.b.sendOnce(ctx, d, dupID, rule, send)
	}
	return send()
}

// prepare fills what the core sets on a message and routes it.
func (s *Session) prepare(m *Message) (routed, error) {
	if err := s.stamp(m); err != nil {
		return routed{}, err
	}
	return s.b.route(s, m)
}

// stamp checks that the session may send m and fills what the core sets.
func (s *Session) stamp(m *Message) error {
	if err := s.Authorize(m.Dest, Write); err != nil {
		return err
	}
	if m.ID == "" {
		m.ID = s.b.newMessageID()
	}
	if m.Timestamp == 0 {
		m.Timestamp = time.Now().UnixMilli()
	}
	m.Priority = min(m.Priority, 9)
	return nil
}

// Subscribe attaches c to what spec names.
func (s *Session) Subscribe(spec SubSpec, c Consumer) (*Subscription, error) {
	if !validName(spec.Dest, true) {
		return nil, fmt.Errorf("%w: %q", ErrInvalidDestination, spec.Dest.Name)
	}
	if err := s.Authorize(spec.Dest, Read); err != nil {
		return nil, err
	}
	if spec.Prefetch <= 0 {
		spec.Prefetch = s.b.cfg.DefaultPrefetch
	}
	var sel *selector.Selector
	spec.Selector = strings.TrimSpace(spec.Selector) // a blank selector header selects everything
	if spec.Selector != "" {
		var err error
		if sel, err = selector.Parse(spec.Selector); err != nil {
			return nil, fmt.Errorf("%w: %v", ErrInvalidSelector, err)
		}
	}
	sub := &Subscription{session: s, spec: spec, consumer: c, credit: spec.Prefetch}
	if spec.LinkCredit {
		sub.credit = 0
	}
	var err error
	if spec.Dest.Kind.IsTopic() {
		err = s.b.attachTopic(s, sub, sel)
	} else {
		err = s.b.attachQueue(s, sub, sel)
	}
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	closed := s.closed
	if !closed {
		if s.subs == nil {
			s.subs = map[*Subscription]struct{}{}
		}
		s.subs[sub] = struct{}{}
	}
	s.mu.Unlock()
	if closed {
		s.unsubscribe(sub)
		return nil, ErrClosed
	}
	sub.q.mu.Lock()
	sub.q.dispatch()
	sub.q.mu.Unlock()
	return sub, nil
}

func (b *Broker) attachQueue(s *Session, sub *Subscription, sel *selector.Selector) error {
	if strings.ContainsAny(sub.spec.Dest.Name, "*>") {
		return fmt.Errorf("%w: wildcards are for topics: %q", ErrInvalidDestination, sub.spec.Dest.Name)
	}
	if sub.spec.Durable != "" {
		return ErrDurableNeedsTopic
	}
	d, err := b.destination(sub.spec.Dest, true)
	if err != nil {
		return err
	}
	if d.owner != nil && d.owner != s {
		return ErrTempNotOwned
	}
	sub.sel, sub.q = sel, d.queue
	d.queue.mu.Lock()
	defer d.queue.mu.Unlock()
	if d.queue.deleted {
		return fmt.Errorf("%w: %s", ErrNoSuchDestination, d.dest)
	}
	d.queue.consumers = append(d.queue.consumers, sub)
	return nil
}

func (b *Broker) attachTopic(s *Session, sub *Subscription, sel *selector.Selector) error {
	spec := sub.spec
	if spec.Dest.Kind == TempTopic {
		d, err := b.destination(spec.Dest, false)
		if err != nil {
			return err
		}
		if d.owner != s {
			return ErrTempNotOwned
		}
	}
	if spec.Shared != "" {
		if spec.Durable != "" {
			return fmt.Errorf("%w: a subscription is shared or durable, not both", ErrInvalidDestination)
		}
		id := sharedID{spec.Shared, spec.Dest.Name}
		b.mu.Lock()
		ts := b.shared[id]
		if ts == nil {
			ts = &topicSub{pattern: spec.Dest.Name, selector: spec.Selector, sel: sel, shared: &id, q: newMsgQueue("", 0, nil)}
			b.shared[id] = ts
			b.topicSubs[ts] = struct{}{}
		}
		b.mu.Unlock()
		ts.q.mu.Lock()
		ts.q.consumers = append(ts.q.consumers, sub)
		ts.q.mu.Unlock()
		sub.q, sub.topic = ts.q, ts
		return nil
	}
	if spec.Durable == "" {
		ts := &topicSub{pattern: spec.Dest.Name, selector: spec.Selector, sel: sel, noLocal: spec.NoLocal, owner: s.id,
			q: newMsgQueue("", b.cfg.TopicPendingLimit, nil)}
		ts.q.consumers = []*Subscription{sub}
		sub.q, sub.topic = ts.q, ts
		b.mu.Lock()
		b.topicSubs[ts] = struct{}{}
		b.mu.Unlock()
		return nil
	}
	clientID := spec.ClientID
	if clientID == "" {
		clientID = s.info.ClientID
	}
	if clientID == "" {
		return ErrDurableNeedsID
	}
	id := durableID{clientID, spec.Durable}
	b.mu.Lock()
	ts := b.durables[id]
	if ts != nil && ts.active != nil {
		b.mu.Unlock()
		return fmt.Errorf("%w: %s/%s", ErrDurableInUse, id.clientID, id.name)
	}
	if ts != nil && (ts.pattern != spec.Dest.Name || ts.selector != spec.Selector || ts.noLocal != spec.NoLocal) {
		// As in JMS: subscribing under the same name to something else
		// replaces the subscription and what it held.
		b.mu.Unlock()
		if err := b.DeleteDurable(context.Background(), id.clientID, id.name); err != nil {
			return err
		}
		b.mu.Lock()
		ts = b.durables[id]
	}
	if ts == nil {
		ts = b.newDurable(id, spec.Dest.Name, spec.Selector, sel, spec.NoLocal)
		rec := durableRecord{topic: spec.Dest.Name, selector: spec.Selector, noLocal: spec.NoLocal}
		c := b.st.Submit([]store.Op{{Key: durableKey(id.clientID, id.name), Value: encodeDurable(rec)}})
		b.mu.Unlock()
		if err := c.Wait(context.Background()); err != nil {
			return fmt.Errorf("store durable subscription %s/%s: %w", id.clientID, id.name, err)
		}
		b.mu.Lock()
	}
	ts.active = sub
	b.mu.Unlock()
	ts.q.mu.Lock()
	ts.q.consumers = []*Subscription{sub}
	ts.q.mu.Unlock()
	sub.q, sub.topic = ts.q, ts
	return nil
}

// newDurable registers a durable subscription; b.mu is held.
func (b *Broker) newDurable(id durableID, pattern, selText string, sel *selector.Selector, noLocal bool) *topicSub {
	ts := &topicSub{pattern: pattern, selector: selText, sel: sel, noLocal: noLocal, durable: &id,
		q: b.storedQueue("d:" + string(appendName(nil, id.clientID)) + id.name)}
	b.durables[id] = ts
	b.topicSubs[ts] = struct{}{}
	return ts
}

// Unsubscribe ends a subscription; its unacknowledged messages are
// redelivered. A durable subscription keeps its messages for later.
func (s *Session) Unsubscribe(sub *Subscription) error {
	s.mu.Lock()
	_, ok := s.subs[sub]
	s.mu.Unlock()
	if !ok {
		return ErrSubscriptionClosed
	}
	s.unsubscribe(sub)
	return nil
}

func (s *Session) unsubscribe(sub *Subscription) {
	q := sub.q
	q.mu.Lock()
	q.removeConsumer(sub)
	q.mu.Unlock()

	s.mu.Lock()
	delete(s.subs, sub)
	var back []*inflight
	for _, tag := range sub.order {
		if a := s.unacked[tag]; a != nil {
			back = append(back, a)
			delete(s.unacked, tag)
		}
	}
	sub.order = nil
	s.mu.Unlock()
	for _, a := range back {
		s.b.redeliver(a, consumerLeft)
	}

	if ts := sub.topic; ts != nil {
		q.mu.Lock()
		lastShare := ts.shared != nil && len(q.consumers) == 0
		q.mu.Unlock()
		gone := ts.durable == nil && (ts.shared == nil || lastShare)
		s.b.mu.Lock()
		if gone {
			delete(s.b.topicSubs, ts)
			if ts.shared != nil && s.b.shared[*ts.shared] == ts {
				delete(s.b.shared, *ts.shared)
			}
		} else if ts.active == sub {
			ts.active = nil
		}
		s.b.mu.Unlock()
		if gone {
			q.mu.Lock()
			for _, e := range q.takeAll() {
				e.dest.hold(-e.size)
			}
			q.mu.Unlock()
		}
	}
}

// deliver records and hands over one message; q.mu is held.
func (s *Session) deliver(sub *Subscription, q *msgQueue, e *entry) {
	a := &inflight{tag: s.b.tagSeq.Add(1), sub: sub, q: q, e: e}
	s.mu.Lock()
	if s.unacked == nil {
		s.unacked = map[uint64]*inflight{}
	}
	s.unacked[a.tag] = a
	sub.order = append(sub.order, a.tag)
	s.mu.Unlock()
	sub.consumer.Deliver(Delivery{Tag: a.tag, Sub: sub, Msg: e.msg})
}

// take removes the deliveries an ack or nack names: tag alone, or with
// cumulative every earlier one of the same subscription. s.mu is held.
func (s *Session) take(tag uint64, cumulative bool) ([]*inflight, error) {
	a := s.unacked[tag]
	if a == nil {
		return nil, fmt.Errorf("%w: %d", ErrUnknownDelivery, tag)
	}
	sub := a.sub
	i := slices.Index(sub.order, tag)
	from := i
	if cumulative {
		from = 0
	}
	var out []*inflight
	for _, t := range sub.order[from : i+1] {
		out = append(out, s.unacked[t])
		delete(s.unacked, t)
	}
	sub.order = slices.Delete(sub.order, from, i+1)
	return out, nil
}

// Ack acknowledges a delivery (with cumulative, every earlier one of its
// subscription too), within transaction tx when tx is not empty. With
// receipt, the client asked to be told once the acknowledgement is
// durable, which the Confirmation says; without, it needs no fsync of its
// own and rides on the next one, and a crash may redeliver the message.
func (s *Session) Ack(ctx context.Context, tx string, tag uint64, cumulative, receipt bool) (Confirmation, error) {
	acks, t, err := s.settle(tx, tag, cumulative, func(t *transaction, as []*inflight) { t.acks = append(t.acks, as...) })
	if err != nil {
		return nil, err
	}
	if t != nil {
		// The consumer gets its credit back now, or it could never ack
		// more than its prefetch in one transaction.
		for _, a := range acks {
			a.q.mu.Lock()
			a.returnCredit()
			a.creditReturned = true
			a.q.dispatch()
			a.q.mu.Unlock()
		}
		return Confirmed, nil
	}
	return confirmation(s.b.commit(ctx, nil, acks, !receipt))
}

// confirmation is what a commit of the core gives a front-end to wait on.
func confirmation(c *store.Commit, err error) (Confirmation, error) {
	switch {
	case err != nil:
		return nil, err
	case c == nil:
		return Confirmed, nil
	}
	return c, nil
}

// Nack refuses a delivery (with cumulative, every earlier one of its
// subscription too): it is redelivered after the back-off, or dead-lettered
// past the redelivery limit. Within transaction tx that happens on commit.
func (s *Session) Nack(tx string, tag uint64, cumulative bool) error {
	nacks, t, err := s.settle(tx, tag, cumulative, func(t *transaction, ns []*inflight) { t.nacks = append(t.nacks, ns...) })
	if err != nil || t != nil {
		return err
	}
	for _, a := range nacks {
		s.b.redeliver(a, nacked)
	}
	return nil
}

// Release puts a delivery back for any consumer at once, its delivery count
// unchanged: the consumer did not process it (AMQP's released outcome).
func (s *Session) Release(tag uint64) error { return s.putBack(tag, released) }

// Reject sends a delivery to the dead-letter queue at once: the consumer
// found it invalid (AMQP's rejected outcome).
func (s *Session) Reject(tag uint64) error { return s.putBack(tag, rejected) }

func (s *Session) putBack(tag uint64, how putBack) error {
	as, _, err := s.settle("", tag, false, nil)
	for _, a := range as {
		s.b.redeliver(a, how)
	}
	return err
}

// settle takes the deliveries an ack or nack names and, within a
// transaction, hands them to keep, which records them there.
func (s *Session) settle(tx string, tag uint64, cumulative bool, keep func(*transaction, []*inflight)) ([]*inflight, *transaction, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var t *transaction
	if tx != "" {
		if t = s.txs[tx]; t == nil {
			return nil, nil, fmt.Errorf("%w: %q", ErrUnknownTransaction, tx)
		}
	}
	taken, err := s.take(tag, cumulative)
	if err != nil {
		return nil, nil, err
	}
	if t != nil {
		keep(t, taken)
	}
	return taken, t, nil
}

// Begin starts transaction tx.
func (s *Session) Begin(tx string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.txs[tx] != nil {
		return fmt.Errorf("%w: %q", ErrTransactionExists, tx)
	}
	if s.txs == nil {
		s.txs = map[string]*transaction{}
	}
	s.txs[tx] = &transaction{}
	return nil
}

func (s *Session) endTx(tx string) (*transaction, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	t := s.txs[tx]
	if t == nil {
		return nil, fmt.Errorf("%w: %q", ErrUnknownTransaction, tx)
	}
	delete(s.txs, tx)
	return t, nil
}

// Commit applies the transaction's sends and acks atomically; the
// Confirmation says when they are durable.
func (s *Session) Commit(ctx context.Context, tx string) (Confirmation, error) {
	t, err := s.endTx(tx)
	if err != nil {
		return nil, err
	}
	for _, a := range t.nacks {
		s.b.redeliver(a, nacked)
	}
	return confirmation(s.b.commit(ctx, t.sends, t.acks, false))
}

// Abort drops the transaction's sends and redelivers what it acknowledged.
func (s *Session) Abort(tx string) error {
	t, err := s.endTx(tx)
	if err != nil {
		return err
	}
	s.abort(t)
	return nil
}

func (s *Session) abort(t *transaction) {
	for _, a := range append(t.acks, t.nacks...) {
		s.b.redeliver(a, consumerLeft)
	}
}

// CreateTemp makes a temporary queue or topic that lives as long as s and
// that only s may consume.
func (s *Session) CreateTemp(kind Kind) Destination {
	d := Destination{Kind: kind, Name: fmt.Sprintf("ID:hamq-%s-%d-%d", s.b.id, s.id, s.b.tempSeq.Add(1))}
	s.b.mu.Lock()
	dd := s.b.destinationLocked(d)
	dd.owner = s
	s.b.mu.Unlock()
	s.mu.Lock()
	s.temps = append(s.temps, dd)
	s.mu.Unlock()
	return d
}
