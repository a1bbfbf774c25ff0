package conns

import (
	"bufio"
	"bytes"
	"io"
	"net"
	"slices"
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
	running bool // Run is writing: it took items, or its buffer holds some
	direct  bool // a confirmation is being written by put's caller

	// raw writes a confirmation at once from the goroutine that confirms
	// (see SendUntil); nil when the connection has no descriptor of its
	// own (TLS, WebSocket).
	raw  *RawWriter
	enc  bytes.Buffer  // the confirmation written at once, encoded; guarded by direct
	encw *bufio.Writer // writes into enc

	draining atomic.Bool
}

type item[P any] struct {
	p     P
	has   bool
	raw   []byte // bytes a write at once left unwritten: they go first
	tag   uint64
	last  bool
	until time.Time // a confirmation's: not written after it (SendUntil)
}

// NewOutbox writes each item with write; ack acknowledges a delivery once
// written (at most once, as its subscriber asked); beat is what an idle
// connection writes to keep alive.
func NewOutbox[P any](nc net.Conn, write func(*bufio.Writer, P) error, ack func(tag uint64), beat []byte) *Outbox[P] {
	o := &Outbox[P]{nc: nc, write: write, ack: ack, beat: beat, wake: make(chan struct{}, 1), done: make(chan struct{}), raw: NewRawWriter(nc)}
	o.encw = bufio.NewWriterSize(&o.enc, 512)
	return o
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
//
// When nothing else is queued or being written, the caller writes p
// itself, without blocking: a stop-and-wait producer's answer then goes
// out from the goroutine that made its message durable, not one woken
// for it (what the socket does not take at once is left to the writer).
func (o *Outbox[P]) SendUntil(p P, until time.Time) {
	it := item[P]{p: p, has: true, until: until}
	o.mu.Lock()
	if o.raw == nil || o.closing || o.running || o.direct || len(o.items) > 0 {
		o.mu.Unlock()
		o.put(it)
		return
	}
	o.direct = true
	o.mu.Unlock()
	rest, written := o.writeNow(it)
	o.mu.Lock()
	o.direct = false
	if !written {
		rest = nil
		o.items = slices.Insert(o.items, 0, it)
	} else if len(rest) > 0 {
		o.items = slices.Insert(o.items, 0, item[P]{raw: rest})
	}
	more := len(o.items) > 0
	o.mu.Unlock()
	if more {
		o.signal()
	}
}

// writeNow writes it, a confirmation, to the socket without blocking; it
// returns what the socket did not take. It writes nothing (false) when it
// cannot encode it or it went stale: the writer then meets the same and
// ends the connection as it does. o.direct is set.
func (o *Outbox[P]) writeNow(it item[P]) ([]byte, bool) {
	o.enc.Reset()
	if o.write(o.encw, it.p) != nil || o.encw.Flush() != nil {
		return nil, false
	}
	if !it.until.IsZero() && time.Now().After(it.until) {
		return nil, false
	}
	b := o.enc.Bytes()
	return bytes.Clone(b[o.raw.TryWrite(b):]), true
}

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
	o.signal()
}

func (o *Outbox[P]) signal() {
	select {
	case o.wake <- struct{}{}:
	default:
	}
}

// SetIdle makes the writer send the beat after d without other writes; 0
// never. The writer is woken to take it up: one already waiting without a
// beat due would otherwise stay silent until something is sent.
func (o *Outbox[P]) SetIdle(d time.Duration) {
	o.mu.Lock()
	o.idle = d
	o.mu.Unlock()
	o.signal()
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
		if o.direct {
			// SendUntil's caller is writing; it wakes Run if items wait.
			o.mu.Unlock()
			<-o.wake
			continue
		}
		items := o.items
		o.items = nil
		idle := o.idle
		o.running = len(items) > 0 || w.Buffered() > 0
		o.mu.Unlock()
		if len(items) == 0 {
			if w.Buffered() > 0 {
				if stale() || w.Flush() != nil {
					o.nc.Close()
					return
				}
				continue // idle only once nothing came meanwhile
			}
			until = time.Time{}
			var tick <-chan time.Time
			if idle > 0 {
				tick = time.After(idle)
			}
			select {
			case <-o.wake:
			case <-tick:
				o.mu.Lock()
				if !o.direct {
					o.running = true
					w.Write(o.beat)
				}
				o.mu.Unlock()
			}
			continue
		}
		for _, it := range items {
			if it.has && !it.until.IsZero() && time.Now().After(it.until) {
				// Stale itself: what went before it still goes out,
				// unless stale too, and the connection closes instead.
				if !stale() {
					w.Flush()
				}
				o.nc.Close()
				return
			}
			if !it.until.IsZero() && (until.IsZero() || it.until.Before(until)) {
				until = it.until
			}
			if it.raw != nil {
				w.Write(it.raw)
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
