package conns

import (
	"context"
	"sync"

	"github.com/hamq/hamq/core"
)

// Answers sends a connection's answers (receipts, acceptances) in the
// order of what they answer, each once the core has made it durable. The
// answer goes out from the goroutine that finishes the confirmation, the
// store's committer mostly: a goroutine of the connection's own woken in
// between cost a stop-and-wait producer one more hand-off per message.
type Answers[T any] struct {
	mu    sync.Mutex
	room  sync.Cond
	items []pending[T]
	limit int
	ended bool
	emit  func(v T, conf core.Confirmation, err error) bool
}

type pending[T any] struct {
	v    T
	conf core.Confirmation // nil: nothing to wait for
}

// NewAnswers calls emit for each answer in turn, with its confirmation's
// error (nil when it has none); emit returns false to answer no more (an
// ERROR sent, the connection ending). At most limit answers wait: Add
// holds the connection's reader beyond, the client's back-pressure. emit
// is called with the Answers' lock held and must not block: it queues.
func NewAnswers[T any](limit int, emit func(v T, conf core.Confirmation, err error) bool) *Answers[T] {
	a := &Answers[T]{limit: limit, emit: emit}
	a.room.L = &a.mu
	return a
}

// Add queues v to be answered once conf, and everything added before it,
// is done. It waits while limit answers are queued; it reports false once
// the answers have ended.
func (a *Answers[T]) Add(v T, conf core.Confirmation) bool {
	a.mu.Lock()
	for len(a.items) >= a.limit && !a.ended {
		a.room.Wait()
	}
	if a.ended {
		a.mu.Unlock()
		return false
	}
	a.items = append(a.items, pending[T]{v, conf})
	a.mu.Unlock()
	if conf == nil {
		a.settle()
	} else {
		conf.OnDone(a.settle)
	}
	return true
}

// Stop answers nothing more: what is queued, and added later, is dropped.
func (a *Answers[T]) Stop() {
	a.mu.Lock()
	a.ended = true
	a.items = nil
	a.room.Broadcast()
	a.mu.Unlock()
}

// settle answers what is done at the head of the queue.
func (a *Answers[T]) settle() {
	a.mu.Lock()
	defer a.mu.Unlock()
	n := 0
	for n < len(a.items) && !a.ended {
		it := a.items[n]
		var err error
		if it.conf != nil {
			if !done(it.conf) {
				break
			}
			err = it.conf.Wait(context.Background())
		}
		n++
		if !a.emit(it.v, it.conf, err) {
			a.ended = true
		}
	}
	switch {
	case a.ended:
		a.items = nil
		a.room.Broadcast()
	case n > 0:
		clear(a.items[:n])
		a.items = a.items[n:]
		a.room.Broadcast()
	}
}

func done(c core.Confirmation) bool {
	select {
	case <-c.Done():
		return true
	default:
		return false
	}
}
