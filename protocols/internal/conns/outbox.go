package conns

import (
	"bufio"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// Outbox is a connection's outbound queue and the writer that drains it.
// Producers never block on the socket: the reader, the core's deliveries
// and confirmations all queue here, and one goroutine (Run) writes, many
// items per system call.
type Outbox[P any] struct {
	nc    net.Conn
	write func(*bufio.Writer, P) error
	ack   func(tag uint64)
	beat  []byte

	mu      sync.Mutex
	items   []item[P]
	wake    chan struct{}
	closing bool
	idle    time.Duration
	done    chan struct{}

	draining atomic.Bool
}

type item[P any] struct {
	p     P
	has   bool
	tag   uint64
	last  bool
	until time.Time // a confirmation's: not written after it (SendUntil)
}

// NewOutbox writes each item with write; ack acknowledges a delivery once
// written (at most once, as its subscriber asked); beat is what an idle
// connection writes to keep alive.
func NewOutbox[P any](nc net.Conn, write func(*bufio.Writer, P) error, ack func(tag uint64), beat []byte) *Outbox[P] {
	return &Outbox[P]{nc: nc, write: write, ack: ack, beat: beat, wake: make(chan struct{}, 1), done: make(chan struct{})}
}

// Send queues p.
func (o *Outbox[P]) Send(p P) { o.put(item[P]{p: p, has: true}) }

// SendAcked queues p and acknowledges tag once p is written.
func (o *Outbox[P]) SendAcked(p P, tag uint64) { o.put(item[P]{p: p, has: true, tag: tag}) }

// SendUntil queues p, a confirmation that goes stale at until (a core
// Confirmation's ValidUntil; zero never does): if the writer gets to it
// later, or is about to put it on the wire later, the connection is
// closed instead, and the client, not told, sends again what it sent.
// The check is made right before the system call, so that a process
// paused after confirming does not confirm once it wakes.
func (o *Outbox[P]) SendUntil(p P, until time.Time) { o.put(item[P]{p: p, has: true, until: until}) }

// SendLast queues p as the last item: the connection's writes end after
// it, and what is queued later is dropped.
func (o *Outbox[P]) SendLast(p P) { o.put(item[P]{p: p, has: true, last: true}) }

// End ends the writes after what is queued.
func (o *Outbox[P]) End() { o.put(item[P]{last: true}) }

func (o *Outbox[P]) put(it item[P]) {
	o.mu.Lock()
	if !o.closing {
		o.items = append(o.items, it)
		o.closing = it.last
	}
	o.mu.Unlock()
	select {
	case o.wake <- struct{}{}:
	default:
	}
}

// SetIdle makes the writer send the beat after d without other writes; 0
// never.
func (o *Outbox[P]) SetIdle(d time.Duration) {
	o.mu.Lock()
	o.idle = d
	o.mu.Unlock()
}

// WaitRoom holds the caller, the connection's reader, while more than limit
// items wait: a client that does not read what it asked for is not read
// either.
func (o *Outbox[P]) WaitRoom(limit int) {
	for {
		o.mu.Lock()
		n := len(o.items)
		o.mu.Unlock()
		if n < limit {
			return
		}
		select {
		case <-o.done:
			return
		case <-time.After(time.Millisecond):
		}
	}
}

// Done is closed when the writer has ended.
func (o *Outbox[P]) Done() <-chan struct{} { return o.done }

// Draining reports whether the writes have ended, so that the reader only
// drains what the client still sends.
func (o *Outbox[P]) Draining() bool { return o.draining.Load() }

// Run writes until the last item or a failed write.
func (o *Outbox[P]) Run() {
	defer close(o.done)
	w := bufio.NewWriterSize(o.nc, 64<<10)
	var until time.Time // the soonest a buffered confirmation goes stale
	stale := func() bool { return !until.IsZero() && time.Now().After(until) }
	for {
		o.mu.Lock()
		items := o.items
		o.items = nil
		idle := o.idle
		o.mu.Unlock()
		if len(items) == 0 {
			if w.Buffered() > 0 && (stale() || w.Flush() != nil) {
				o.nc.Close()
				return
			}
			until = time.Time{}
			var tick <-chan time.Time
			if idle > 0 {
				tick = time.After(idle)
			}
			select {
			case <-o.wake:
			case <-tick:
				w.Write(o.beat)
			}
			continue
		}
		for _, it := range items {
			if !it.until.IsZero() && (until.IsZero() || it.until.Before(until)) {
				until = it.until
			}
			if it.has {
				if stale() {
					o.nc.Close()
					return
				}
				if err := o.write(w, it.p); err != nil {
					o.nc.Close()
					return
				}
			}
			if it.tag != 0 {
				o.ack(it.tag)
			}
			if it.last {
				if !stale() {
					w.Flush()
				}
				o.endWrites()
				return
			}
		}
	}
}

// endWrites half-closes the connection after the last item and bounds the
// reader's wait for the client to go.
func (o *Outbox[P]) endWrites() {
	if cw, ok := o.nc.(interface{ CloseWrite() error }); ok {
		cw.CloseWrite()
	}
	o.draining.Store(true)
	o.nc.SetReadDeadline(time.Now().Add(time.Second))
}

// Finish ends the connection once the writer is done: what the client
// still sends is read for a moment, so that closing does not reset the
// connection before the client has read the last item.
func (o *Outbox[P]) Finish() {
	<-o.done
	o.draining.Store(true)
	o.nc.SetReadDeadline(time.Now().Add(time.Second))
	io.Copy(io.Discard, io.LimitReader(o.nc, 4<<20))
	o.nc.Close()
}
