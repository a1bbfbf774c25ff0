package core

import (
	"sync"
	"sync/atomic"
)

// This file holds what keeps a send's entries from consumers until the
// commit that stores it is done (see Persistence in doc.go).

// commitWait is the outcome of one commit, shared by the entries it took
// in.
type commitWait struct {
	err  error // set before done
	done atomic.Bool
}

// promote moves the entries whose commit is done from the head of the
// unconfirmed list to pending, dropping those whose commit failed; q.mu is
// held. Commits finish in log order, which is the list's order, so the
// first entry still waiting ends the walk: it is promoted, and those behind
// it, when its own commit finishes.
func (q *msgQueue) promote() {
	for q.unconfirmed.len() > 0 {
		e := q.unconfirmed.first()
		if !e.wait.done.Load() {
			return
		}
		q.unconfirmed.remove(q.unconfirmed.head)
		err := e.wait.err
		e.wait = nil
		if err != nil {
			// Never delivered; the send's enqueued count is undone by
			// committed, once per send rather than per copy.
			q.bodies -= e.body()
			e.dest.hold(-e.size)
			continue
		}
		q.pend(e)
	}
}

// committed runs once the commit that stores sends is done, on the
// store's goroutine that finished it. It must not block: that goroutine
// may be what a sender holding one of these queues' locks waits for, in
// Submit. So it takes only locks that are free and leaves the other
// queues, and those whose dispatch needs the store, to the promoter.
func (b *Broker) committed(w *commitWait, err error, sends []routed, queues []*msgQueue) {
	w.err = err
	w.done.Store(true)
	if err != nil {
		for _, r := range sends {
			r.d.enqueued.Add(-1)
		}
	}
	for _, q := range queues {
		if q.mu.TryLock() {
			q.promote()
			complete := q.dispatchSome(false)
			q.mu.Unlock()
			if complete {
				continue
			}
		}
		b.promoter.add(q)
	}
}

// promoter promotes and dispatches queues for committed, which could not.
// A queue added after the promoter took the set wakes it again, so no
// promotion is lost; one added twice before is done once.
type promoter struct {
	mu     sync.Mutex
	queues map[*msgQueue]struct{}
	wake   chan struct{} // capacity 1: a wake-up pending or not
}

func newPromoter() *promoter {
	return &promoter{wake: make(chan struct{}, 1)}
}

func (p *promoter) add(q *msgQueue) {
	p.mu.Lock()
	if p.queues == nil {
		p.queues = map[*msgQueue]struct{}{}
	}
	p.queues[q] = struct{}{}
	p.mu.Unlock()
	select {
	case p.wake <- struct{}{}:
	default:
	}
}

func (p *promoter) take() map[*msgQueue]struct{} {
	p.mu.Lock()
	defer p.mu.Unlock()
	qs := p.queues
	p.queues = nil
	return qs
}

// runPromoter is the promoter's goroutine, until Close.
func (b *Broker) runPromoter() {
	defer b.running.Done()
	for {
		select {
		case <-b.stop:
			return
		case <-b.promoter.wake:
		}
		for q := range b.promoter.take() {
			q.mu.Lock()
			q.promote()
			q.dispatch()
			q.mu.Unlock()
		}
	}
}
