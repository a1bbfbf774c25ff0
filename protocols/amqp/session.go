package amqp

import (
	"fmt"

	"github.com/hamq/hamq/protocols/amqp/wire"
)

// incomingWindow is how many transfer frames a client may send on a session
// before the server opens the window again, which it does at half.
const incomingWindow = 1 << 16

// session is one AMQP session. Its fields are guarded by conn.mu.
type session struct {
	c             *conn
	remoteChannel uint16
	channel       uint16

	nextIncomingID uint32
	incomingWindow uint32
	nextOutgoingID uint32
	// remoteIncomingWindow is how many more transfer frames the client
	// takes; frames beyond it wait in blocked until its next flow.
	remoteIncomingWindow uint32
	blocked              []transferFrame

	links   map[uint32]*link // by the client's handle
	handles map[uint32]*link // by the server's handle

	nextDeliveryID uint32
	unsettled      map[uint32]outDelivery // the server's deliveries, by delivery id

	ending bool // the server sent end and waits for the client's
}

// outDelivery is a message on its way to a client, not yet settled.
type outDelivery struct {
	l   *link
	tag uint64
}

// handle dispatches one performative; what it returns closes the
// connection with that error. Session and link errors end or detach only
// what they concern.
func (c *conn) handle(ch uint16, p wire.Performative, payload []byte) *wire.Error {
	if b, ok := p.(*wire.Begin); ok {
		return c.begin(ch, b)
	}
	c.mu.Lock()
	s := c.sessions[ch]
	ending := s != nil && s.ending
	if _, ok := p.(*wire.End); ok && ending {
		delete(c.sessions, ch)
	}
	c.mu.Unlock()
	if s == nil {
		return &wire.Error{Condition: wire.CondIllegalState, Description: fmt.Sprintf("%s on channel %d, which has no session", describe(p), ch)}
	}
	if ending {
		// The server ended the session; until the client's end arrives,
		// what it sent before seeing ours is dropped.
		return nil
	}
	switch p := p.(type) {
	case *wire.Attach:
		s.attach(p)
	case *wire.Flow:
		return s.flow(p)
	case *wire.Transfer:
		s.transfer(p, payload)
	case *wire.Disposition:
		s.disposition(p)
	case *wire.Detach:
		s.detach(p)
	case *wire.End:
		s.end(nil)
		c.mu.Lock()
		delete(c.sessions, ch)
		c.mu.Unlock()
	default:
		return &wire.Error{Condition: wire.CondIllegalState, Description: fmt.Sprintf("unexpected %s", describe(p))}
	}
	return nil
}

func describe(p wire.Performative) string {
	return fmt.Sprintf("%T", p)[len("*wire."):]
}

func (c *conn) begin(ch uint16, b *wire.Begin) *wire.Error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.sessions[ch] != nil {
		return &wire.Error{Condition: wire.CondIllegalState, Description: fmt.Sprintf("begin on channel %d, which has a session", ch)}
	}
	if b.RemoteChannel != nil {
		return &wire.Error{Condition: wire.CondIllegalState, Description: "begin answers a begin the server never sent"}
	}
	used := map[uint16]bool{}
	for _, s := range c.sessions {
		used[s.channel] = true
	}
	var out uint16
	for used[out] {
		out++
	}
	if out > c.peerMaxChannel {
		return &wire.Error{Condition: wire.CondResourceLimitExceeded, Description: fmt.Sprintf("more sessions than the client's channel-max of %d", c.peerMaxChannel)}
	}
	s := &session{c: c, remoteChannel: ch, channel: out, nextIncomingID: b.NextOutgoingID, incomingWindow: incomingWindow,
		remoteIncomingWindow: b.IncomingWindow, links: map[uint32]*link{}, handles: map[uint32]*link{},
		unsettled: map[uint32]outDelivery{}}
	c.sessions[ch] = s
	c.send(out, &wire.Begin{RemoteChannel: &ch, IncomingWindow: incomingWindow, OutgoingWindow: 1<<31 - 1, HandleMax: 1<<31 - 1})
	return nil
}

// end ends the session: its links go (their unsettled deliveries back to
// their queues); with err the server ends it and waits for the client's end.
func (s *session) end(err *wire.Error) {
	c := s.c
	c.mu.Lock()
	links := make([]*link, 0, len(s.links))
	for _, l := range s.links {
		links = append(links, l)
	}
	c.mu.Unlock()
	for _, l := range links {
		l.close(false)
	}
	c.mu.Lock()
	s.ending = err != nil
	c.send(s.channel, &wire.End{Error: err})
	c.mu.Unlock()
	if err != nil {
		c.srv.log.Info("session ended", "remote", c.nc.RemoteAddr(), "condition", err.Condition, "err", err.Description)
	}
}

// flowState fills a flow frame's session fields; c.mu is held.
func (s *session) flowState(f *wire.Flow) *wire.Flow {
	next := s.nextIncomingID
	f.NextIncomingID = &next
	f.IncomingWindow = s.incomingWindow
	f.NextOutgoingID = s.nextOutgoingID
	f.OutgoingWindow = 1<<31 - 1
	return f
}

func (s *session) flow(f *wire.Flow) *wire.Error {
	c := s.c
	c.mu.Lock()
	next := uint32(0)
	if f.NextIncomingID != nil {
		next = *f.NextIncomingID
	}
	s.remoteIncomingWindow = next + f.IncomingWindow - s.nextOutgoingID
	s.release()
	var l *link
	if f.Handle != nil {
		l = s.links[*f.Handle]
		if l == nil {
			c.mu.Unlock()
			s.end(&wire.Error{Condition: wire.CondUnattachedHandle, Description: fmt.Sprintf("flow on handle %d, which is not attached", *f.Handle)})
			return nil
		}
	}
	if l == nil && f.Echo {
		c.send(s.channel, s.flowState(&wire.Flow{}))
	}
	c.mu.Unlock()
	if l != nil {
		l.flow(f)
	}
	return nil
}

// sendTransfers queues a delivery's transfer frames, or holds them while
// the client's incoming window is closed; c.mu is held.
func (s *session) sendTransfers(frames []transferFrame) {
	s.nextOutgoingID += uint32(len(frames))
	s.blocked = append(s.blocked, frames...)
	s.release()
}

// release passes on the transfers the client's window allows; c.mu is held.
func (s *session) release() {
	n := min(uint32(len(s.blocked)), s.remoteIncomingWindow)
	if n == 0 {
		return
	}
	for _, f := range s.blocked[:n] {
		if f.ackTag != 0 {
			s.c.out.SendAcked(f.buf, f.ackTag)
		} else {
			s.c.out.Send(f.buf)
		}
	}
	s.remoteIncomingWindow -= n
	s.blocked = append(s.blocked[:0], s.blocked[n:]...)
}

func (s *session) transfer(t *wire.Transfer, payload []byte) {
	c := s.c
	c.mu.Lock()
	if s.incomingWindow == 0 {
		c.mu.Unlock()
		s.end(&wire.Error{Condition: wire.CondWindowViolation, Description: "transfer beyond the session's incoming window"})
		return
	}
	s.nextIncomingID++
	s.incomingWindow--
	if s.incomingWindow < incomingWindow/2 {
		s.incomingWindow = incomingWindow
		c.send(s.channel, s.flowState(&wire.Flow{}))
	}
	l := s.links[t.Handle]
	c.mu.Unlock()
	if l == nil {
		s.end(&wire.Error{Condition: wire.CondUnattachedHandle, Description: fmt.Sprintf("transfer on handle %d, which is not attached", t.Handle)})
		return
	}
	l.receive(t, payload)
}

// disposition applies a client's outcomes to the server's deliveries.
func (s *session) disposition(d *wire.Disposition) {
	if d.Role != wire.RoleReceiver {
		// The client settling its own sends: the server settles them
		// itself when it answers, so there is nothing to do.
		return
	}
	c := s.c
	last := d.First
	if d.Last != nil {
		last = *d.Last
	}
	// Accepting within a transaction acknowledges when it commits.
	state, txn := d.State, ""
	if ts, ok := d.State.(*wire.TransactionalState); ok {
		state, txn = ts.Outcome, string(ts.TxnID)
	}
	var settled []outDelivery
	c.mu.Lock()
	if d.Settled || terminal(state) {
		// Ids wrap, so the range is the ids at most last-first past first.
		// The walk is the shorter of the range and the unsettled
		// deliveries: a disposition of one is a lookup, one naming
		// billions of ids a pass over what is unsettled.
		if span := last - d.First; uint64(span) < uint64(len(s.unsettled)) {
			for id := d.First; ; id++ {
				if od, ok := s.unsettled[id]; ok {
					settled = append(settled, od)
					delete(s.unsettled, id)
				}
				if id == last {
					break
				}
			}
		} else {
			for id, od := range s.unsettled {
				if id-d.First <= span {
					settled = append(settled, od)
					delete(s.unsettled, id)
				}
			}
		}
	}
	if !d.Settled && terminal(state) {
		// The client settles second: it waits for the server to settle.
		c.send(s.channel, &wire.Disposition{Role: wire.RoleSender, First: d.First, Last: d.Last, Settled: true, State: d.State})
	}
	c.mu.Unlock()
	for _, od := range settled {
		var err error
		switch st := state.(type) {
		case *wire.Rejected:
			err = c.sess.Reject(od.tag)
		case *wire.Released:
			err = c.sess.Release(od.tag)
		case *wire.Modified:
			if st.DeliveryFailed {
				err = c.sess.Nack("", od.tag, false)
			} else {
				err = c.sess.Release(od.tag)
			}
		default:
			// Accepted, or settled with no outcome: the client is done.
			_, err = c.sess.Ack(c.ctx, txn, od.tag, false, false)
		}
		if err != nil {
			c.srv.log.Debug("settle", "remote", c.nc.RemoteAddr(), "err", err)
		}
	}
}

func terminal(st wire.DeliveryState) bool {
	switch st.(type) {
	case *wire.Accepted, *wire.Rejected, *wire.Released, *wire.Modified:
		return true
	}
	return false
}
