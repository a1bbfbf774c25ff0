package core

import (
	"context"
	"encoding/binary"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hamq/hamq/core/store"
)

// entry is one message held by a msgQueue.
type entry struct {
	msg       *Message
	dest      *destination // where the message was sent: counters and memory
	seq       uint64
	size      int64
	stored    bool      // a persistent message in a persistent queue: its key is in the store
	spooled   bool      // stored, and its body is in the store only (msg is a copy without it)
	notBefore time.Time // redelivery back-off: not dispatched before this
	// wait is the commit that stores the send, while it is on the way:
	// till then the entry is held in the queue's unconfirmed list.
	wait *commitWait
}

// body is what e holds in memory of its message's body.
func (e *entry) body() int64 {
	if !e.stored || e.spooled {
		return 0
	}
	return int64(len(e.msg.Body))
}

// entryList keeps entries in sequence order: those of one priority, or those
// waiting for their commits. Removal from the middle (a selector skipping
// past messages) leaves a hole that a later push or insert compacts away;
// remove never moves items, so a caller may remove while iterating.
type entryList struct {
	items []*entry
	head  int
	holes int
}

func (l *entryList) push(e *entry) {
	if l.head+l.holes > 64 && l.head+l.holes > len(l.items)/2 {
		l.compact()
	}
	l.items = append(l.items, e)
}

// place adds an entry in sequence order: last, unless entries after it
// went ahead (non-persistent ones sent while its commit was on the way).
func (l *entryList) place(e *entry) {
	for i := len(l.items) - 1; i >= l.head; i-- {
		if x := l.items[i]; x != nil {
			if x.seq > e.seq {
				l.insert(e)
				return
			}
			break
		}
	}
	l.push(e)
}

// insert puts back an entry in sequence order (a redelivery).
func (l *entryList) insert(e *entry) {
	l.compact()
	i, _ := slices.BinarySearchFunc(l.items, e.seq, func(x *entry, seq uint64) int {
		switch {
		case x.seq < seq:
			return -1
		case x.seq > seq:
			return 1
		}
		return 0
	})
	l.items = slices.Insert(l.items, i, e)
}

func (l *entryList) remove(i int) {
	l.items[i] = nil
	l.holes++
	for l.head < len(l.items) && l.items[l.head] == nil {
		l.head++
		l.holes--
	}
	if l.head == len(l.items) {
		l.items, l.head, l.holes = l.items[:0], 0, 0
	}
}

func (l *entryList) compact() {
	if l.head == 0 && l.holes == 0 {
		return
	}
	out := l.items[:0]
	for _, e := range l.items[l.head:] {
		if e != nil {
			out = append(out, e)
		}
	}
	clear(l.items[len(out):])
	l.items, l.head, l.holes = out, 0, 0
}

func (l *entryList) len() int { return len(l.items) - l.head - l.holes }

// first is the earliest entry; the list is not empty.
func (l *entryList) first() *entry { return l.items[l.head] }

// msgQueue holds messages for competing consumers. It serves a queue, a
// durable topic subscription, or a non-durable topic subscription (which
// keeps nothing in the store and drops its oldest message past a limit).
type msgQueue struct {
	id        uint64 // orders locking when one operation spans queues
	storeName string // key of its messages in the store; "" for memory-only queues
	limit     int    // pending limit (non-durable topic subscriptions); 0 none

	mu        sync.Mutex
	pending   [10]entryList
	npending  int
	inflight  int
	consumers []*Subscription
	next      int // round-robin position in consumers
	nextSeq   uint64
	timer     *time.Timer // wakes dispatch when a back-off ends
	timerAt   time.Time
	deleted   bool

	// unconfirmed holds, in log order, the entries of sends whose commit
	// is on the way; promote moves them to pending once it is done.
	unconfirmed entryList

	// st keeps the delivered mark of a stored queue: every message up to
	// delivered may have been delivered, so after a crash or a failover
	// those come back flagged redelivered (JMS allows the flag on a
	// message that possibly was). The mark is written ahead by
	// deliveredAhead, so one small write covers that many deliveries; it
	// is submitted without waiting, in log order before any ack of what
	// it covers.
	st        Store
	delivered uint64
	// durable is the mark as far as the store has confirmed it: a stored
	// message goes out only once it is covered (see deliverable), and
	// prom dispatches the queue again when a mark is confirmed. A mark
	// written lazily, with the next send, left the messages delivered
	// meanwhile unmarked on a master killed or cut off then: the next
	// master gave them again without the redelivered flag.
	durable atomic.Uint64
	urgent  atomic.Bool // a mark that deliveries wait for is on its way
	prom    *promoter

	// bodies is the bytes of stored bodies held by pending and unconfirmed
	// entries; past spoolAfter, a new stored entry leaves its body in the
	// store (the message may be shared with other queues, so the entry
	// takes a copy without it) and dispatch reads it back.
	bodies     int64
	spoolAfter int64
	log        *slog.Logger
}

// deliveredAhead is how far past a delivery the mark is moved: more writes
// fewer marks, but more messages flagged redelivered that never went out.
const deliveredAhead = 100

var queueIDs atomic.Uint64

func newMsgQueue(storeName string, limit int, st Store) *msgQueue {
	return &msgQueue{id: queueIDs.Add(1), storeName: storeName, limit: limit, nextSeq: 1, st: st}
}

// keeps reports whether the queue stores m.
func (q *msgQueue) keeps(m *Message) bool { return m.Persistent && q.storeName != "" }

// add takes a message sent to d into the queue; q.mu is held. With w, the
// message is not dispatched before w's commit is done. It returns the store
// op when the message must be kept, else a zero Op.
func (q *msgQueue) add(m *Message, d *destination, w *commitWait) store.Op {
	e := &entry{msg: m, dest: d, seq: q.nextSeq, size: m.size(), stored: q.keeps(m), wait: w}
	q.nextSeq++
	d.hold(e.size)
	if w != nil {
		q.unconfirmed.push(e)
		q.bodies += e.body()
	} else {
		q.push(e)
	}
	if !e.stored {
		return store.Op{}
	}
	op := store.Op{Key: messageKey(q.storeName, e.seq), Value: encodeMessage(m)}
	q.maybeSpool(e)
	return op
}

// maybeSpool drops e's body from memory when the queue holds more than
// spoolAfter of bodies, unless e is next in line for its priority (it
// would be read back at once, perhaps before its write lands).
func (q *msgQueue) maybeSpool(e *entry) {
	if q.spoolAfter <= 0 || q.bodies <= q.spoolAfter || e.spooled {
		return
	}
	ahead := q.pending[min(int(e.msg.Priority), 9)].len() - 1
	if e.wait != nil {
		// Not pending yet: those pending and those waiting before it
		// come first.
		ahead += q.unconfirmed.len()
	}
	if ahead < 1 {
		return
	}
	n := int64(len(e.msg.Body))
	q.bodies -= n
	e.dest.holdBytes(-n)
	e.size -= n
	m := *e.msg
	m.Body = nil
	e.msg, e.spooled = &m, true
}

// unspool reads e's body back from the store. found is false while the
// write that holds it has not landed.
func (q *msgQueue) unspool(e *entry) (found bool, err error) {
	v, found, err := q.st.Get(messageKey(q.storeName, e.seq))
	if err != nil || !found {
		return false, err
	}
	stored, err := decodeMessage(v)
	if err != nil {
		return false, fmt.Errorf("message %s #%d: %w", q.storeName, e.seq, err)
	}
	m := *e.msg
	m.Body = stored.Body
	n := int64(len(m.Body))
	e.msg, e.spooled = &m, false
	e.size += n
	e.dest.holdBytes(n)
	return true, nil
}

// push takes in an entry that may be dispatched at once.
func (q *msgQueue) push(e *entry) {
	q.bodies += e.body()
	q.pend(e)
}

// pend makes an entry whose body q.bodies counts already dispatchable; a
// non-durable subscription's limit applies as it does.
func (q *msgQueue) pend(e *entry) {
	q.pending[min(int(e.msg.Priority), 9)].place(e)
	q.npending++
	if q.limit > 0 && q.npending > q.limit {
		q.dropOldest()
	}
}

// requeue puts back an entry that was delivered, keeping sequence order.
func (q *msgQueue) requeue(e *entry) {
	q.pending[min(int(e.msg.Priority), 9)].insert(e)
	q.npending++
	q.bodies += e.body()
}

func (q *msgQueue) dropOldest() {
	for p := range q.pending {
		l := &q.pending[p]
		if l.len() == 0 {
			continue
		}
		e := l.items[l.head]
		l.remove(l.head)
		q.npending--
		q.bodies -= e.body()
		e.dest.hold(-e.size)
		e.dest.dropped.Add(1)
		return
	}
}

// dispatch hands pending messages to consumers with credit; q.mu is held.
func (q *msgQueue) dispatch() { q.dispatchSome(true) }

// dispatchSome is dispatch that, without useStore, stops before a message
// that needs the store (a spooled body to read, the delivered mark to
// move) and returns false. A commit's callback dispatches so, on the
// store's goroutine, where a Submit could wait for that goroutine itself.
func (q *msgQueue) dispatchSome(useStore bool) (complete bool) {
	if len(q.consumers) == 0 || q.npending == 0 || q.deleted {
		return true
	}
	complete = true
	now := time.Now()
	nowMillis := now.UnixMilli()
	var wake time.Time
	for p := 9; p >= 0; p-- {
		l := &q.pending[p]
		for i := l.head; i < len(l.items); i++ {
			e := l.items[i]
			if e == nil {
				continue
			}
			if e.msg.Expired(nowMillis) {
				// Never delivered; the expiry sweep takes it out, since
				// moving it to a dead-letter queue needs locks this caller
				// may not take.
				continue
			}
			if e.notBefore.After(now) {
				if wake.IsZero() || e.notBefore.Before(wake) {
					wake = e.notBefore
				}
				continue
			}
			if !useStore && e.spooled {
				complete = false
				p = -1
				break
			}
			sub, open := q.pickConsumer(e.msg)
			if !open {
				p = -1
				break
			}
			if sub == nil {
				continue
			}
			// Only now, with a consumer to take it: a mark moved for a
			// queue whose consumers have no credit (an MQTT session
			// away) would flag what was never sent redelivered.
			if ok, wait := q.deliverable(e, useStore); !ok {
				complete = complete && wait
				p = -1
				break
			}
			held := e.body() // what q.bodies counts for e while pending
			if e.spooled {
				found, err := q.unspool(e)
				if !found {
					// Its write is still on the way: try again shortly; a
					// store that cannot read is retried less often.
					retry := 10 * time.Millisecond
					if err != nil {
						q.log.Error("cannot read a spooled message back", "queue", q.storeName, "seq", e.seq, "err", err)
						retry = time.Second
					}
					e.notBefore = now.Add(retry)
					if wake.IsZero() || e.notBefore.Before(wake) {
						wake = e.notBefore
					}
					continue
				}
			}
			l.remove(i)
			q.npending--
			q.bodies -= held
			q.inflight++
			sub.credit--
			sub.delivered++
			if e.stored && q.st != nil && e.seq+deliveredAhead/2 > q.delivered {
				// Half the mark's room used: the next one goes ahead now,
				// so that it is confirmed before it is needed. Lazy, it
				// never waits for room in the store's queue, so a commit's
				// callback may move it too.
				q.moveMark(e.seq, true)
			}
			sub.session.deliver(sub, q, e)
		}
	}
	if !wake.IsZero() {
		q.wakeAt(wake)
	}
	return complete
}

// deliverable reports whether e may go out now: a stored message only once
// the delivered mark covering it is confirmed. Else it submits that mark
// (with useStore), and wait says the mark's confirmation dispatches the
// queue again; without useStore and no mark on its way that the store
// writes now, wait is false and the caller leaves the queue to the
// promoter. q.mu is held.
func (q *msgQueue) deliverable(e *entry, useStore bool) (ok, wait bool) {
	if !e.stored || q.st == nil || e.seq <= q.durable.Load() {
		return true, true
	}
	if q.urgent.Load() && e.seq <= q.delivered {
		return false, true
	}
	if !useStore {
		return false, false
	}
	q.moveMark(e.seq, false)
	return false, true
}

// moveMark submits the delivered mark deliveredAhead past seq; once the
// store confirms it, the queue's messages up to it may go out. A lazy
// mark, moved while the last one still covers what goes out, rides on
// the next send's record; one that deliveries wait for is written now
// (urgent), carrying any lazy one with it. q.mu is held.
func (q *msgQueue) moveMark(seq uint64, lazy bool) {
	mark := max(seq+deliveredAhead, q.delivered)
	q.delivered = mark
	ops := []store.Op{{Key: deliveredKey(q.storeName), Value: binary.BigEndian.AppendUint64(nil, mark)}}
	var c *store.Commit
	if lazy {
		c = q.st.SubmitLazy(ops)
	} else {
		q.urgent.Store(true)
		c = q.st.SubmitThen(ops, nil)
	}
	c.OnDone(func() {
		if !lazy {
			q.urgent.Store(false)
		}
		if c.Wait(context.Background()) != nil {
			return // the store has failed: the broker stops serving from it
		}
		for d := q.durable.Load(); d < mark && !q.durable.CompareAndSwap(d, mark); d = q.durable.Load() {
		}
		q.prom.add(q)
	})
}

// pickConsumer finds the next consumer, round-robin, with credit that accepts
// m. open is false when no consumer has credit at all.
func (q *msgQueue) pickConsumer(m *Message) (sub *Subscription, open bool) {
	n := len(q.consumers)
	for i := range n {
		s := q.consumers[(q.next+i)%n]
		if s.credit <= 0 {
			continue
		}
		open = true
		if s.accepts(m) {
			q.next = (q.next + i + 1) % n
			return s, true
		}
	}
	return nil, open
}

func (q *msgQueue) wakeAt(t time.Time) {
	if q.timer != nil && !q.timerAt.After(t) && q.timerAt.After(time.Now()) {
		return
	}
	if q.timer != nil {
		q.timer.Stop()
	}
	q.timerAt = t
	q.timer = time.AfterFunc(time.Until(t), func() {
		q.mu.Lock()
		defer q.mu.Unlock()
		q.dispatch()
	})
}

func (q *msgQueue) size() int64 {
	q.mu.Lock()
	defer q.mu.Unlock()
	return int64(q.npending + q.inflight + q.unconfirmed.len())
}

// takeAll removes every message not out with a consumer (purge, delete),
// those waiting for their commit too; q.mu is held.
func (q *msgQueue) takeAll() []*entry {
	var out []*entry
	for _, l := range append(q.pending[:], q.unconfirmed) {
		for _, e := range l.items[l.head:] {
			if e != nil {
				out = append(out, e)
			}
		}
	}
	q.pending, q.unconfirmed = [10]entryList{}, entryList{}
	q.npending, q.bodies = 0, 0
	return out
}

// takeExpired removes pending messages past their expiration; q.mu is held.
func (q *msgQueue) takeExpired(nowMillis int64) []*entry {
	var out []*entry
	for p := range q.pending {
		l := &q.pending[p]
		for i := l.head; i < len(l.items); i++ {
			if e := l.items[i]; e != nil && e.msg.Expired(nowMillis) {
				l.remove(i)
				q.npending--
				q.bodies -= e.body()
				out = append(out, e)
			}
		}
	}
	return out
}

func (q *msgQueue) removeConsumer(s *Subscription) {
	q.consumers = slices.DeleteFunc(q.consumers, func(x *Subscription) bool { return x == s })
	if q.next >= len(q.consumers) {
		q.next = 0
	}
}
