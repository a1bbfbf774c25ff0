package chaos

import (
	"errors"
	"fmt"
	"sync"
	"time"
)

// recorder is the run's history as the clients write it. Times come from
// one monotonic clock, turned into wall times to compare with the nodes'
// logs.
type recorder struct {
	run   string // the run's tag in every message id
	start time.Time

	mu     sync.Mutex
	events []Event
}

func newRecorder(run string) *recorder { return &recorder{run: run, start: time.Now()} }

func (r *recorder) now() time.Time { return r.start.Round(0).Add(time.Since(r.start)) }

func (r *recorder) add(e Event) {
	r.mu.Lock()
	e.At = r.now()
	r.events = append(r.events, e)
	r.mu.Unlock()
}

// snapshot copies the events so far.
func (r *recorder) snapshot() []Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Event(nil), r.events...)
}

// delivered records a copy a consumer (kind Deliver) or a witness (kind
// Witness) got, checking its body against the id its header names.
func (r *recorder) delivered(kind Kind, flow, client, node string, c copyOf) {
	e := Event{Kind: kind, Flow: flow, Client: client, Node: node, Redelivered: c.redelivered}
	id, attempt, ok := ParseBody(c.body)
	switch {
	case !ok:
		e.ID, e.Bad = c.header, fmt.Sprintf("body %.40q is not a message of this run", c.body)
	case c.header != id:
		e.ID, e.Attempt, e.Bad = id, attempt, fmt.Sprintf("its header names %q", c.header)
	default:
		e.ID, e.Attempt = id, attempt
	}
	r.add(e)
}

// endpoint is one node's address for one protocol.
type endpoint struct{ name, addr string }

// copyOf is a message as a consumer got it.
type copyOf struct {
	header      string // the id in the message's header or properties
	body        []byte
	redelivered bool
}

// sender is one connection of a stop-and-wait producer.
type sender interface {
	// send sends one attempt and waits at most timeout for its outcome:
	// Confirm, Fail (with why) or Unknown (hung when the wait ran out).
	send(id string, attempt int, body []byte, timeout time.Duration) (k Kind, why string, hung bool)
	close()
}

// producer sends messages one at a time, each after the last was
// confirmed, through the nodes in turn: an attempt that fails or whose
// connection ends is sent again on the next connection.
type producer struct {
	rec          *recorder
	flow, client string
	eps          []endpoint
	dial         func(endpoint) (sender, error)
	// timeout is the longest wait for an answer before the producer gives
	// the connection up; pace the pause after a confirmation.
	timeout, pace time.Duration
}

func (p *producer) run(stop <-chan struct{}) {
	var (
		s       sender
		ep      endpoint
		next    int
		id      string
		seq     int
		attempt int
	)
	defer func() {
		if s != nil {
			s.close()
		}
	}()
	for {
		if id == "" {
			if closed(stop) {
				return
			}
			seq++
			id, attempt = MessageID(p.rec.run, p.client, seq), 0
		}
		if s == nil {
			if s, ep, next = connect(stop, p.eps, next, p.dial); s == nil {
				return
			}
		}
		attempt++
		p.rec.add(Event{Kind: Send, Flow: p.flow, Client: p.client, ID: id, Attempt: attempt, Node: ep.name})
		k, why, hung := s.send(id, attempt, Body(id, attempt), p.timeout)
		p.rec.add(Event{Kind: k, Flow: p.flow, Client: p.client, ID: id, Attempt: attempt, Node: ep.name, Err: why, Hung: hung})
		if k == Confirm {
			id = ""
			sleep(stop, p.pace)
			continue
		}
		s.close()
		s = nil
		sleep(stop, p.pace) // a node that fails every send is not hammered
		if closed(stop) {
			return
		}
	}
}

// connect dials the nodes in turn from next until one takes the client
// (slaves refuse); it returns nil once stop is closed.
func connect[T any](stop <-chan struct{}, eps []endpoint, next int, dial func(endpoint) (T, error)) (T, endpoint, int) {
	for tries := 0; ; tries++ {
		if closed(stop) {
			var zero T
			return zero, endpoint{}, next
		}
		ep := eps[next%len(eps)]
		next++
		if c, err := dial(ep); err == nil {
			return c, ep, next - 1
		}
		if tries%len(eps) == len(eps)-1 {
			sleep(stop, 100*time.Millisecond)
		}
	}
}

func closed(c <-chan struct{}) bool {
	select {
	case <-c:
		return true
	default:
		return false
	}
}

// sleep waits d or until stop closes.
func sleep(stop <-chan struct{}, d time.Duration) {
	if d <= 0 {
		return
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-stop:
	case <-t.C:
	}
}

// errIdle ends a consumer's session that got nothing for its idle time.
var errIdle = errors.New("idle")

// session is one connection of a consumer: it connects to ep, subscribes
// and hands every copy to got, acknowledging it after, until the
// connection ends, stop closes, or nothing comes for idle (errIdle).
type session func(ep endpoint, got func(copyOf), idle time.Duration, stop <-chan struct{}) error

// consumer receives a flow's messages through the nodes in turn: the live
// consumer while the run lasts and until the final drain finds nothing
// more, or a witness in the final drain.
type consumer struct {
	rec          *recorder
	flow, client string
	kind         Kind // Deliver or Witness
	eps          []endpoint
	session      session
	// idle: while the run lasts, a connection that gives nothing for this
	// long is given up (it may be a paused master's); in the drain, a
	// connection that gives nothing for drainIdle ends the consumer.
	idle, drainIdle time.Duration
}

// run consumes until drain is closed and then a session on a node that
// serves stays idle for drainIdle, or until stop closes.
func (c *consumer) run(drain, stop <-chan struct{}) {
	next := 0
	for fails := 0; !closed(stop); {
		draining := closed(drain)
		idle := c.idle
		if draining {
			idle = c.drainIdle
		}
		ep := c.eps[next%len(c.eps)]
		got := func(cp copyOf) { c.rec.delivered(c.kind, c.flow, c.client, ep.name, cp) }
		err := c.session(ep, got, idle, stop)
		switch {
		case errors.Is(err, errIdle) && draining:
			return
		case errors.Is(err, errIdle):
			// Perhaps a paused master's: the same node again first, which
			// is the master unless something happened.
		default:
			next++
			if fails++; fails%len(c.eps) == 0 {
				sleep(stop, 100*time.Millisecond)
			}
		}
	}
}
