package core

import (
	"cmp"
	"context"
	"fmt"
	"slices"
)

// This file is what an operator sees of messages without consuming them
// (browsing a queue or a durable subscription), the subscriptions, and
// moving messages between queues (a dead-letter queue's back to where
// they failed).

// Browsed is a message as a browser sees it.
type Browsed struct {
	// Msg is shared: read it, never change it. A spooled message's body
	// is read back from the store; BodyGone says it was no longer there
	// (acknowledged meanwhile).
	Msg      *Message
	BodyGone bool
	// Delivered: out with a consumer, awaiting its acknowledgement.
	Delivered bool
}

// Page is part of what a queue holds.
type Page struct {
	// Pending messages come first, in the order they would be dispatched
	// (higher priority first, then oldest first); then those delivered
	// and not yet acknowledged, in delivery order. Messages whose send is
	// not yet durable are not shown: no consumer could get them yet.
	Messages []Browsed
	Offset   int
	// Pending and Delivered count what the whole listing holds.
	Pending, Delivered int
}

// Browse lists a queue's messages without consuming them: limit of them
// from offset in the listing Page describes.
func (b *Broker) Browse(d Destination, offset, limit int) (Page, error) {
	dd, err := b.destination(d, false)
	if err != nil {
		return Page{}, err
	}
	if dd.queue == nil {
		return Page{}, fmt.Errorf("browse %s: a topic keeps no messages; its durable subscriptions do", d)
	}
	return b.browse(dd.queue, offset, limit), nil
}

// BrowseDurable lists the messages a durable subscription keeps.
func (b *Broker) BrowseDurable(clientID, name string, offset, limit int) (Page, error) {
	b.mu.RLock()
	ts := b.durables[durableID{clientID, name}]
	b.mu.RUnlock()
	if ts == nil {
		return Page{}, fmt.Errorf("%w: durable subscription %s/%s", ErrNoSuchDestination, clientID, name)
	}
	return b.browse(ts.q, offset, limit), nil
}

// seen is an entry as it was under its queue's lock.
type seen struct {
	msg     *Message
	seq     uint64
	spooled bool
	tag     uint64
}

func (b *Broker) browse(q *msgQueue, offset, limit int) Page {
	offset, limit = max(offset, 0), max(limit, 0)
	p := Page{Offset: offset}
	var page []seen
	q.mu.Lock()
	i := 0
	for pr := 9; pr >= 0; pr-- {
		l := &q.pending[pr]
		for _, e := range l.items[l.head:] {
			if e == nil {
				continue
			}
			if i >= offset && len(page) < limit {
				page = append(page, seen{msg: e.msg, seq: e.seq, spooled: e.spooled})
			}
			i++
		}
	}
	p.Pending = i
	q.mu.Unlock()
	delivered := b.deliveredFrom(q)
	p.Delivered = len(delivered)
	for _, s := range delivered {
		if i >= offset && len(page) < limit {
			page = append(page, s)
		}
		i++
	}
	for _, s := range page {
		m := Browsed{Msg: s.msg, Delivered: s.tag != 0}
		if s.spooled {
			m.Msg, m.BodyGone = q.storedBody(s.msg, s.seq)
		}
		p.Messages = append(p.Messages, m)
	}
	return p
}

// deliveredFrom lists what consumers hold unacknowledged from q, in
// delivery order.
func (b *Broker) deliveredFrom(q *msgQueue) []seen {
	b.mu.RLock()
	ss := make([]*Session, 0, len(b.sessions))
	for _, s := range b.sessions {
		ss = append(ss, s)
	}
	b.mu.RUnlock()
	var out []seen
	for _, s := range ss {
		s.mu.Lock()
		for tag, a := range s.unacked {
			if a.q == q {
				out = append(out, seen{msg: a.e.msg, tag: tag})
			}
		}
		s.mu.Unlock()
	}
	slices.SortFunc(out, func(x, y seen) int { return cmp.Compare(x.tag, y.tag) })
	return out
}

// storedBody reads a spooled message's body back without changing its
// entry.
func (q *msgQueue) storedBody(m *Message, seq uint64) (*Message, bool) {
	v, found, err := q.st.Get(messageKey(q.storeName, seq))
	if err != nil || !found {
		return m, true
	}
	stored, err := decodeMessage(v)
	if err != nil {
		return m, true
	}
	c := *m
	c.Body = stored.Body
	return &c, false
}

// SubStats describes one subscription: a consumer on a queue, or a topic
// subscription, durable ones included while their consumer is away.
type SubStats struct {
	Dest     Destination // the queue, or the topic pattern
	ClientID string      // of a durable subscription
	Durable  string      // its name
	Shared   string      // the group of an MQTT shared subscription
	Selector string
	// Session is the consumer's connection; 0 for a durable subscription
	// that is offline.
	Session uint64
	// Pending is what waits to be dispatched: the subscription's own
	// messages for a topic subscription, the queue's for a queue consumer.
	Pending  int64
	Unacked  int
	Prefetch int
}

// Subscriptions lists every consumer and topic subscription.
func (b *Broker) Subscriptions() []SubStats {
	b.mu.RLock()
	ss := make([]*Session, 0, len(b.sessions))
	for _, s := range b.sessions {
		ss = append(ss, s)
	}
	var offline []*topicSub
	for _, ts := range b.durables {
		if ts.active == nil {
			offline = append(offline, ts)
		}
	}
	b.mu.RUnlock()
	type found struct {
		st SubStats
		q  *msgQueue
	}
	var all []found
	for _, s := range ss {
		s.mu.Lock()
		for sub := range s.subs {
			st := SubStats{Dest: sub.spec.Dest, Selector: sub.spec.Selector, Session: s.id, Unacked: len(sub.order),
				Prefetch: sub.spec.Prefetch, Shared: sub.spec.Shared}
			if ts := sub.topic; ts != nil && ts.durable != nil {
				st.ClientID, st.Durable = ts.durable.clientID, ts.durable.name
			}
			all = append(all, found{st, sub.q})
		}
		s.mu.Unlock()
	}
	for _, ts := range offline {
		all = append(all, found{SubStats{Dest: Destination{Kind: Topic, Name: ts.pattern}, ClientID: ts.durable.clientID,
			Durable: ts.durable.name, Selector: ts.selector}, ts.q})
	}
	out := make([]SubStats, 0, len(all))
	for _, f := range all {
		f.q.mu.Lock()
		f.st.Pending = int64(f.q.npending)
		f.q.mu.Unlock()
		out = append(out, f.st)
	}
	slices.SortFunc(out, func(x, y SubStats) int {
		return cmp.Or(cmp.Compare(x.Dest.Kind, y.Dest.Kind), cmp.Compare(x.Dest.Name, y.Dest.Name),
			cmp.Compare(x.ClientID, y.ClientID), cmp.Compare(x.Durable, y.Durable), cmp.Compare(x.Session, y.Session))
	})
	return out
}

// OriginalDestination is where a dead-lettered message was sent, from the
// property the dead-letter queue adds.
func OriginalDestination(m *Message) (Destination, error) {
	s, _ := m.Properties["originalDestination"].(string)
	if s == "" {
		return Destination{}, fmt.Errorf("message %s has no originalDestination", m.ID)
	}
	return ParseDestination(s)
}

// moveBatch bounds the messages one store record moves.
const moveBatch = 500

// MoveMessages takes the pending messages of queue from whose ids are in
// ids (all of them when ids is empty) and sends each to the destination
// to names for it (for a dead-letter queue's messages, their
// OriginalDestination: a retry). Each batch is one commit: the copies
// arrive and the originals leave together. A message to gives no
// destination for stays. It returns how many moved.
func (b *Broker) MoveMessages(ctx context.Context, from Destination, ids []string, to func(*Message) (Destination, error)) (int, error) {
	dd, err := b.destination(from, false)
	if err != nil {
		return 0, err
	}
	q := dd.queue
	if q == nil {
		return 0, fmt.Errorf("move from %s: only queues hold messages", from)
	}
	want := map[string]bool{}
	for _, id := range ids {
		want[id] = true
	}
	skip := map[*entry]bool{}
	moved := 0
	for {
		acks, sends, err := b.takeForMove(q, want, skip, to)
		if err != nil || len(acks) == 0 {
			return moved, err
		}
		c, err := b.commit(ctx, sends, acks, false)
		if err != nil {
			b.putBackMoved(q, acks)
			return moved, fmt.Errorf("move from %s: %w", from, err)
		}
		if c != nil {
			if err := c.Wait(ctx); err != nil {
				return moved, fmt.Errorf("move from %s: %w", from, err)
			}
		}
		moved += len(acks)
	}
}

// takeForMove takes up to moveBatch messages out of q as if delivered,
// and routes their copies.
func (b *Broker) takeForMove(q *msgQueue, want map[string]bool, skip map[*entry]bool, to func(*Message) (Destination, error)) ([]*inflight, []routed, error) {
	var acks []*inflight
	var sends []routed
	q.mu.Lock()
	for pr := 9; pr >= 0 && len(acks) < moveBatch; pr-- {
		l := &q.pending[pr]
		for i := l.head; i < len(l.items) && len(acks) < moveBatch; i++ {
			e := l.items[i]
			if e == nil || skip[e] || (len(want) > 0 && !want[e.msg.ID]) {
				continue
			}
			dest, err := to(e.msg)
			if err != nil {
				skip[e] = true
				continue
			}
			held := e.body()
			if e.spooled {
				if found, _ := q.unspool(e); !found {
					skip[e] = true
					continue
				}
			}
			m := *e.msg
			m.Properties = make(map[string]any, len(e.msg.Properties))
			for k, v := range e.msg.Properties {
				if k != "originalDestination" && k != "dlqDeliveryFailureCause" {
					m.Properties[k] = v
				}
			}
			m.Dest, m.DeliveryCount = dest, 0
			r, err := b.route(nil, &m)
			if err != nil {
				skip[e] = true
				continue
			}
			l.remove(i)
			q.npending--
			q.bodies -= held
			q.inflight++
			// As if delivered and now acknowledged: no subscription
			// to give credit back to.
			acks = append(acks, &inflight{q: q, e: e, creditReturned: true})
			sends = append(sends, r)
		}
	}
	q.mu.Unlock()
	return acks, sends, nil
}

// putBackMoved returns messages whose move failed.
func (b *Broker) putBackMoved(q *msgQueue, acks []*inflight) {
	q.mu.Lock()
	defer q.mu.Unlock()
	for _, a := range acks {
		q.inflight--
		q.requeue(a.e)
	}
	q.dispatch()
}
