package core

import (
	"cmp"
	"context"
	"fmt"
	"slices"

	"github.com/hamq/hamq/core/store"
)

// Destinations lists every destination's counters, by kind then name.
func (b *Broker) Destinations() []DestStats {
	b.mu.RLock()
	ds := make([]*destination, 0, len(b.dests))
	for _, d := range b.dests {
		ds = append(ds, d)
	}
	b.mu.RUnlock()
	out := make([]DestStats, 0, len(ds))
	for _, d := range ds {
		out = append(out, b.stats(d))
	}
	slices.SortFunc(out, func(x, y DestStats) int {
		return cmp.Or(cmp.Compare(x.Dest.Kind, y.Dest.Kind), cmp.Compare(x.Dest.Name, y.Dest.Name))
	})
	return out
}

// Stats gives one destination's counters.
func (b *Broker) Stats(d Destination) (DestStats, bool) {
	b.mu.RLock()
	dd := b.dests[d]
	b.mu.RUnlock()
	if dd == nil {
		return DestStats{}, false
	}
	return b.stats(dd), true
}

func (b *Broker) stats(d *destination) DestStats {
	s := DestStats{
		Dest: d.dest, Size: d.held.Load(), Enqueued: d.enqueued.Load(), Dequeued: d.dequeued.Load(),
		DeadLettered: d.deadLettered.Load(), Expired: d.expired.Load(), Dropped: d.dropped.Load(),
		Duplicates: d.duplicates.Load(), MemoryBytes: d.mem.Load(), MemoryLimit: d.limit,
	}
	if d.queue != nil {
		d.queue.mu.Lock()
		s.Consumers = int64(len(d.queue.consumers))
		d.queue.mu.Unlock()
		return s
	}
	b.mu.RLock()
	for ts := range b.topicSubs {
		if (ts.durable == nil || ts.active != nil) && topicMatches(ts.pattern, d.dest.Name) {
			s.Consumers++
		}
	}
	b.mu.RUnlock()
	return s
}

// Connections lists the open sessions.
func (b *Broker) Connections() []ConnStats {
	b.mu.RLock()
	ss := make([]*Session, 0, len(b.sessions))
	for _, s := range b.sessions {
		ss = append(ss, s)
	}
	b.mu.RUnlock()
	out := make([]ConnStats, 0, len(ss))
	for _, s := range ss {
		s.mu.Lock()
		out = append(out, ConnStats{ID: s.id, Info: s.info, Subscriptions: len(s.subs), Unacked: len(s.unacked)})
		s.mu.Unlock()
	}
	slices.SortFunc(out, func(x, y ConnStats) int { return cmp.Compare(x.ID, y.ID) })
	return out
}

// CreateDestination makes a queue or topic exist before anyone uses it.
func (b *Broker) CreateDestination(d Destination) error {
	if (d.Kind != Queue && d.Kind != Topic) || !validName(d, false) {
		return fmt.Errorf("%w: %s", ErrInvalidDestination, d)
	}
	_, err := b.destination(d, true)
	return err
}

// PurgeDestination drops every message waiting in a queue (not those being
// delivered) and returns how many went.
func (b *Broker) PurgeDestination(ctx context.Context, d Destination) (int, error) {
	dd, err := b.destination(d, false)
	if err != nil {
		return 0, err
	}
	if dd.queue == nil {
		return 0, fmt.Errorf("purge %s: only queues hold messages; topics pass them on", d)
	}
	q := dd.queue
	q.mu.Lock()
	entries := q.takeAll()
	c := b.drop(q, entries)
	q.mu.Unlock()
	if c != nil {
		return len(entries), c.Wait(ctx)
	}
	return len(entries), nil
}

// drop lets entries taken out of q go, deleting the stored ones; q.mu is held.
func (b *Broker) drop(q *msgQueue, entries []*entry) *store.Commit {
	var ops []store.Op
	for _, e := range entries {
		e.dest.hold(-e.size)
		if e.stored {
			ops = append(ops, store.Op{Key: messageKey(q.storeName, e.seq), Delete: true})
		}
	}
	if q.deleted && q.delivered > 0 {
		ops = append(ops, store.Op{Key: deliveredKey(q.storeName), Delete: true})
	}
	if len(ops) == 0 {
		return nil
	}
	return b.st.Submit(ops)
}

// DeleteDestination removes a queue with its messages, or a topic's
// counters. A queue with consumers is refused.
func (b *Broker) DeleteDestination(ctx context.Context, d Destination) error {
	dd, err := b.destination(d, false)
	if err != nil {
		return err
	}
	if dd.queue != nil {
		dd.queue.mu.Lock()
		n := len(dd.queue.consumers)
		dd.queue.mu.Unlock()
		if n > 0 {
			return fmt.Errorf("delete %s: %w (%d)", d, errHasConsumers, n)
		}
	}
	if c := b.removeDestination(dd); c != nil {
		return c.Wait(ctx)
	}
	return nil
}

func (b *Broker) removeDestination(dd *destination) *store.Commit {
	b.mu.Lock()
	if b.dests[dd.dest] == dd {
		delete(b.dests, dd.dest)
	}
	b.mu.Unlock()
	var c *store.Commit
	if q := dd.queue; q != nil {
		q.mu.Lock()
		q.deleted = true
		c = b.drop(q, q.takeAll())
		q.mu.Unlock()
	}
	if dd.dest.Kind == Queue || dd.dest.Kind == Topic {
		c = b.st.Submit([]store.Op{{Key: counterKey(dd.dest), Delete: true}})
	}
	return c
}

// DeleteDurable removes a durable subscription and the messages it kept. One
// with an active consumer is refused.
func (b *Broker) DeleteDurable(ctx context.Context, clientID, name string) error {
	id := durableID{clientID, name}
	b.mu.Lock()
	ts := b.durables[id]
	if ts == nil {
		b.mu.Unlock()
		return fmt.Errorf("%w: durable subscription %s/%s", ErrNoSuchDestination, clientID, name)
	}
	if ts.active != nil {
		b.mu.Unlock()
		return fmt.Errorf("%w: %s/%s", ErrDurableInUse, clientID, name)
	}
	delete(b.durables, id)
	delete(b.topicSubs, ts)
	b.mu.Unlock()
	ts.q.mu.Lock()
	ts.q.deleted = true
	b.drop(ts.q, ts.q.takeAll())
	c := b.st.Submit([]store.Op{{Key: durableKey(clientID, name), Delete: true}})
	ts.q.mu.Unlock()
	return c.Wait(ctx)
}
