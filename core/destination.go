package core

import (
	"context"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// destination is a queue or topic as the registry knows it: its counters,
// the memory its messages hold, and for queues the messages themselves.
type destination struct {
	dest  Destination
	queue *msgQueue // queues only
	owner *Session  // temporary destinations only

	enqueued, dequeued, deadLettered, expired, dropped atomic.Int64
	held, mem                                          atomic.Int64

	duplicates atomic.Int64 // resends dropped by the duplicate window
	dedupOnce  sync.Once    // dedup.go
	dedup      *dedupWindow

	spaceMu sync.Mutex
	space   chan struct{} // closed when memory falls below the limit
	limit   int64
}

func (d *destination) counters() counterValues {
	return counterValues{d.enqueued.Load(), d.dequeued.Load(), d.deadLettered.Load(), d.expired.Load()}
}

func (d *destination) setCounters(c counterValues) {
	d.enqueued.Store(c.enqueued)
	d.dequeued.Store(c.dequeued)
	d.deadLettered.Store(c.deadLettered)
	d.expired.Store(c.expired)
}

// hold accounts a message taken in (size > 0) or let go (size < 0).
func (d *destination) hold(size int64) {
	if size > 0 {
		d.held.Add(1)
	} else {
		d.held.Add(-1)
	}
	d.holdBytes(size)
}

// holdBytes accounts memory alone: a held message's body leaving memory
// for the store (n < 0), or read back (n > 0). It is held all the same,
// and counted so.
func (d *destination) holdBytes(n int64) {
	if d.mem.Add(n) < d.limit && n < 0 {
		d.spaceMu.Lock()
		if d.space != nil {
			close(d.space)
			d.space = nil
		}
		d.spaceMu.Unlock()
	}
}

// waitSpace blocks a producer while the destination is at its memory limit,
// for at most timeout.
func (d *destination) waitSpace(ctx context.Context, timeout time.Duration) error {
	if d.mem.Load() < d.limit {
		return nil
	}
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		d.spaceMu.Lock()
		if d.mem.Load() < d.limit {
			d.spaceMu.Unlock()
			return nil
		}
		if d.space == nil {
			d.space = make(chan struct{})
		}
		ch := d.space
		d.spaceMu.Unlock()
		select {
		case <-ch:
		case <-deadline.C:
			return ErrDestinationFull
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// validName reports whether a name may be used: wildcards only where
// allowed and only as whole levels, ">" only last. Empty topic levels are
// allowed, as MQTT has them ("/sensors/a" is "", "sensors", "a").
func validName(d Destination, wildcards bool) bool {
	if d.Name == "" || strings.ContainsRune(d.Name, 0) {
		return false
	}
	if !d.Kind.IsTopic() {
		return wildcards || !strings.ContainsAny(d.Name, "*>")
	}
	levels := strings.Split(d.Name, ".")
	for i, l := range levels {
		switch {
		case l == "*" || l == ">":
			if !wildcards || (l == ">" && i != len(levels)-1) {
				return false
			}
		case strings.ContainsAny(l, "*>"):
			return false
		}
	}
	return true
}

// topicMatches reports whether a topic name falls under a subscription
// pattern: "*" is one level, ">" the rest (zero or more levels, as MQTT's #).
func topicMatches(pattern, name string) bool {
	for {
		p, prest, pmore := strings.Cut(pattern, ".")
		if p == ">" {
			return true
		}
		n, nrest, nmore := strings.Cut(name, ".")
		if p != "*" && p != n {
			return false
		}
		if !pmore || !nmore {
			return !pmore && !nmore || (pmore && prest == ">")
		}
		pattern, name = prest, nrest
	}
}
