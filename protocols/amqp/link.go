package amqp

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/hamq/hamq/core"
	"github.com/hamq/hamq/protocols/amqp/wire"
)

// JMS selector and no-local filters, by symbolic and numeric descriptor, as
// Qpid JMS, ActiveMQ and Artemis write them.
var (
	selectorFilter = []any{wire.Symbol("apache.org:selector-filter:string"), uint64(0x0000468C00000004)}
	noLocalFilter  = []any{wire.Symbol("apache.org:no-local-filter:list"), uint64(0x0000468C00000003)}
)

// link is an attached link: one the client sends on (the server receives
// into dest) or one it receives from (sub). Its fields are guarded by
// conn.mu.
type link struct {
	s            *session
	name         string
	remoteHandle uint32
	handle       uint32

	// The server receives: the link's target, or none for an anonymous
	// relay, whose messages name their own.
	receiving     bool
	dest          core.Destination
	credit        uint32 // what the client may still send
	deliveryCount uint32 // the client's, as the spec has both ends count
	unconfirmed   uint32 // received, not yet durable
	current       *incoming
	// A coordinator link's transactions, declared and not yet discharged.
	txns map[string]struct{}

	// The server sends.
	sub        *core.Subscription
	presettled bool
	durable    string // the durable subscription's name, when it is one
	detached   bool
}

// incoming is a delivery whose transfers are arriving.
type incoming struct {
	id      uint32
	settled bool
	state   wire.DeliveryState // the sender's, such as the transaction it is part of
	payload []byte
}

func (s *session) attach(a *wire.Attach) {
	c := s.c
	c.mu.Lock()
	if s.links[a.Handle] != nil {
		c.mu.Unlock()
		s.end(&wire.Error{Condition: wire.CondHandleInUse, Description: fmt.Sprintf("attach on handle %d, which is attached", a.Handle)})
		return
	}
	l := &link{s: s, name: a.Name, remoteHandle: a.Handle}
	for s.handles[l.handle] != nil {
		l.handle++
	}
	// Reserved until the link is set up or refused.
	s.links[a.Handle], s.handles[l.handle] = l, l
	c.mu.Unlock()

	var reply *wire.Attach
	var err *wire.Error
	if a.Role == wire.RoleSender {
		reply, err = l.attachReceiving(a)
	} else {
		reply, err = l.attachSending(a)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	reply.Name, reply.Handle, reply.Role = a.Name, l.handle, !a.Role
	if err != nil {
		// Refused: an attach with no terminus, then the detach saying why.
		reply.Source, reply.Target, reply.Coordinator = nil, nil, nil
		c.send(s.channel, reply)
		c.send(s.channel, &wire.Detach{Handle: l.handle, Closed: true, Error: err})
		// The client answers with its own detach (Qpid Proton does),
		// which must find the handle, detached, rather than end the
		// session and with it the connection's other links.
		l.detached = true
		c.srv.log.Info("link refused", "remote", c.nc.RemoteAddr(), "link", a.Name, "condition", err.Condition, "err", err.Description)
		return
	}
	c.send(s.channel, reply)
	if l.receiving {
		l.credit = c.srv.opts.Credit
		c.send(s.channel, s.flowState(l.flowState(&wire.Flow{})))
	}
}

// flowState fills a flow frame's link fields; c.mu is held.
func (l *link) flowState(f *wire.Flow) *wire.Flow {
	h, dc, cr := l.handle, l.deliveryCount, l.credit
	f.Handle, f.DeliveryCount, f.LinkCredit = &h, &dc, &cr
	return f
}

// attachReceiving sets up a link the client sends on.
func (l *link) attachReceiving(a *wire.Attach) (*wire.Attach, *wire.Error) {
	c := l.s.c
	reply := &wire.Attach{SndSettleMode: a.SndSettleMode, RcvSettleMode: wire.RcvFirst, Source: a.Source,
		MaxMessageSize: c.srv.opts.MaxMessageSize}
	l.receiving = true
	if a.InitialDeliveryCount != nil {
		l.deliveryCount = *a.InitialDeliveryCount
	}
	switch t := a.Target; {
	case a.Coordinator != nil:
		l.txns = map[string]struct{}{}
		reply.Coordinator = &wire.Coordinator{Capabilities: txnCapabilities}
	case t == nil:
		return reply, &wire.Error{Condition: wire.CondInvalidField, Description: "a sending link needs a target"}
	case t.Dynamic:
		l.dest = c.sess.CreateTemp(tempKind(t.Capabilities))
		tt := *t
		tt.Address = l.dest.String()
		reply.Target = &tt
	case t.Address == "":
		reply.Target = t // an anonymous relay: each message names its destination
	default:
		d, err := c.destination(t.Address, t.Capabilities)
		if err != nil {
			return reply, &wire.Error{Condition: wire.CondInvalidField, Description: err.Error()}
		}
		// A link to a target the user may not write to is refused at
		// once, with amqp:unauthorized-access, rather than each message.
		if err := c.sess.Authorize(d, core.Write); err != nil {
			return reply, &wire.Error{Condition: condition(err), Description: err.Error()}
		}
		l.dest = d
		reply.Target = t
	}
	return reply, nil
}

func tempKind(capabilities []wire.Symbol) core.Kind {
	for _, cp := range capabilities {
		if cp == "temporary-topic" || cp == "topic" {
			return core.TempTopic
		}
	}
	return core.TempQueue
}

// attachSending sets up a link the client receives from: a subscription
// whose credit is the link's.
func (l *link) attachSending(a *wire.Attach) (*wire.Attach, *wire.Error) {
	c := l.s.c
	reply := &wire.Attach{SndSettleMode: wire.SndUnsettled, RcvSettleMode: wire.RcvFirst, Target: a.Target,
		InitialDeliveryCount: new(uint32)}
	src := a.Source
	if src == nil {
		return reply, &wire.Error{Condition: wire.CondInvalidField, Description: "a receiving link needs a source"}
	}
	out := *src
	reply.Source = &out
	spec := core.SubSpec{LinkCredit: true}
	if src.Dynamic {
		spec.Dest = c.sess.CreateTemp(tempKind(src.Capabilities))
		out.Address = spec.Dest.String()
	} else {
		d, err := c.destination(src.Address, src.Capabilities)
		if err != nil {
			return reply, &wire.Error{Condition: wire.CondInvalidField, Description: err.Error()}
		}
		spec.Dest = d
	}
	out.Filter = nil
	for k, v := range src.Filter {
		f, ok := v.(wire.Described)
		switch {
		case ok && matches(f.Descriptor, selectorFilter):
			sel, _ := f.Value.(string)
			spec.Selector = sel
		case ok && matches(f.Descriptor, noLocalFilter):
			spec.NoLocal = true
		default:
			continue // not applied, so not in the answer: the client decides
		}
		if out.Filter == nil {
			out.Filter = wire.Fields{}
		}
		out.Filter[k] = v
	}
	if src.Durable != wire.DurableNone && spec.Dest.Kind == core.Topic {
		// A durable subscription is the container's, under the link's
		// name, as ActiveMQ and Artemis have it.
		spec.Durable, spec.ClientID = a.Name, c.container
		l.durable = a.Name
	}
	if a.SndSettleMode == wire.SndSettled {
		l.presettled = true
		reply.SndSettleMode = wire.SndSettled
	}
	sub, err := c.sess.Subscribe(spec, l)
	if err != nil {
		return reply, &wire.Error{Condition: condition(err), Description: err.Error()}
	}
	c.mu.Lock()
	l.sub = sub
	c.mu.Unlock()
	return reply, nil
}

func matches(descriptor any, names []any) bool {
	for _, n := range names {
		if descriptor == n {
			return true
		}
	}
	return false
}

// Deliver sends one message on the link. It runs under the core's queue
// lock: it encodes and queues, nothing more.
func (l *link) Deliver(d core.Delivery) {
	s := l.s
	c := s.c
	// The message is encoded after room for its transfer's frame header
	// and performative, written in front of it below, so that a message
	// fitting one frame costs one buffer.
	buf, err := fromCore(make([]byte, headRoom, headRoom+len(d.Msg.Body)+512), d.Msg)
	if err != nil {
		c.srv.log.Error("cannot encode a message for AMQP", "id", d.Msg.ID, "err", err)
	}
	payload := buf[headRoom:]
	c.mu.Lock()
	defer c.mu.Unlock()
	if l.detached {
		// Unsubscribe, under way, puts the delivery back.
		return
	}
	id := s.nextDeliveryID
	s.nextDeliveryID++
	format := uint32(0)
	var tag [8]byte
	binary.BigEndian.PutUint64(tag[:], d.Tag)
	t := &wire.Transfer{Handle: l.handle, DeliveryID: &id, DeliveryTag: tag[:], MessageFormat: &format, Settled: l.presettled}
	var frames []transferFrame
	if head := frame(s.channel, t, nil); len(head) <= headRoom && len(head)+len(payload) <= int(c.peerMaxFrame) {
		whole := buf[headRoom-len(head):]
		copy(whole, head)
		binary.BigEndian.PutUint32(whole, uint32(len(whole))) // the frame's size, first in its header
		frames = []transferFrame{{buf: whole}}
	} else {
		// Too large for one frame: as many as it takes, each as full as
		// the client's max-frame-size allows.
		t.More = true
		for len(payload) > 0 {
			room := max(int(c.peerMaxFrame)-len(frame(s.channel, t, nil)), 1)
			n := min(len(payload), room)
			t.More = n < len(payload)
			frames = append(frames, transferFrame{buf: frame(s.channel, t, payload[:n])})
			payload = payload[n:]
			// Continuations repeat only the handle.
			t = &wire.Transfer{Handle: l.handle, Settled: l.presettled, More: true}
		}
	}
	if l.presettled {
		frames[len(frames)-1].ackTag = d.Tag
	} else {
		s.unsettled[id] = outDelivery{l: l, tag: d.Tag}
	}
	s.sendTransfers(frames)
}

// headRoom holds a transfer's frame header and performative: 8 bytes of
// header and at most about 40 of performative with an 8-byte tag.
const headRoom = 64

// flow takes the client's flow state for the link.
func (l *link) flow(f *wire.Flow) {
	c := l.s.c
	if l.receiving {
		if f.Echo {
			c.mu.Lock()
			c.send(l.s.channel, l.s.flowState(l.flowState(&wire.Flow{})))
			c.mu.Unlock()
		}
		return
	}
	c.mu.Lock()
	sub := l.sub
	// The client's delivery count, or, before it has one, the server's
	// initial one: 0.
	count := uint32(0)
	if f.DeliveryCount != nil {
		count = *f.DeliveryCount
	}
	credit := uint32(0)
	if f.LinkCredit != nil {
		credit = *f.LinkCredit
	}
	c.mu.Unlock()
	delivered := sub.SetCreditLimit(count+credit, f.Drain)
	if f.Drain || f.Echo {
		// The core counts the deliveries; what is left of the credit is
		// none after a drain.
		left := count + credit - delivered
		if f.Drain {
			left = 0
		}
		h := l.handle
		c.mu.Lock()
		c.send(l.s.channel, l.s.flowState(&wire.Flow{Handle: &h, DeliveryCount: &delivered, LinkCredit: &left, Drain: f.Drain}))
		c.mu.Unlock()
	}
}

// receive takes one transfer of a delivery the client sends.
func (l *link) receive(t *wire.Transfer, payload []byte) {
	c := l.s.c
	c.mu.Lock()
	if l.detached {
		// Detached by the server; the client's detach is on its way.
		c.mu.Unlock()
		return
	}
	if !l.receiving {
		c.mu.Unlock()
		l.detachWith(&wire.Error{Condition: wire.CondNotAllowed, Description: "the client cannot send on a link it receives from"})
		return
	}
	if l.current == nil {
		if l.credit == 0 {
			c.mu.Unlock()
			l.detachWith(&wire.Error{Condition: wire.CondTransferLimitExceeded, Description: "transfer without link credit"})
			return
		}
		if t.DeliveryID == nil {
			c.mu.Unlock()
			l.detachWith(&wire.Error{Condition: wire.CondInvalidField, Description: "the first transfer of a delivery has no delivery-id"})
			return
		}
		l.credit--
		l.deliveryCount++
		l.current = &incoming{id: *t.DeliveryID, payload: payload}
	} else {
		l.current.payload = append(l.current.payload, payload...)
	}
	in := l.current
	in.settled = in.settled || t.Settled
	if t.State != nil {
		in.state = t.State
	}
	if t.Aborted || !t.More {
		l.current = nil
	}
	c.mu.Unlock()
	switch {
	case t.Aborted:
	case uint64(len(in.payload)) > c.srv.opts.MaxMessageSize:
		l.detachWith(&wire.Error{Condition: wire.CondMessageSizeExceeded,
			Description: fmt.Sprintf("message larger than the link's max-message-size of %d bytes", c.srv.opts.MaxMessageSize)})
	case !t.More && l.txns != nil:
		l.coordinate(in)
	case !t.More:
		l.deliver(in)
	}
}

// deliver hands a complete message to the core; its outcome goes back
// through confirmLoop once it is durable.
func (l *link) deliver(in *incoming) {
	c := l.s.c
	cm, err := l.message(in.payload)
	if ts, ok := in.state.(*wire.TransactionalState); ok && err == nil {
		if err = l.sendInTxn(in, ts, cm); err == nil {
			return
		}
	}
	var conf core.Confirmation
	if err == nil {
		conf, err = c.sess.SendAsync(c.ctx, cm)
	}
	if err != nil {
		c.srv.log.Info("message refused", "remote", c.nc.RemoteAddr(), "link", l.name, "err", err)
		c.mu.Lock()
		if !in.settled {
			c.send(l.s.channel, &wire.Disposition{Role: wire.RoleReceiver, First: in.id, Settled: true,
				State: &wire.Rejected{Error: rejection(err)}})
		}
		l.topUp()
		c.mu.Unlock()
		return
	}
	c.mu.Lock()
	l.unconfirmed++
	c.mu.Unlock()
	c.confirm(confirmItem{conf: conf, l: l, id: in.id, settled: in.settled, dest: cm.Dest})
}

// message builds the core message of a delivery's payload.
func (l *link) message(payload []byte) (*core.Message, error) {
	m, err := wire.DecodeMessage(payload)
	if err != nil {
		return nil, &wire.Error{Condition: wire.CondDecodeError, Description: err.Error()}
	}
	dest := l.dest
	if dest.IsZero() {
		to := ""
		if m.Properties != nil {
			to = m.Properties.To
		}
		if to == "" {
			return nil, &wire.Error{Condition: wire.CondInvalidField, Description: "a message on an anonymous relay link needs a to address"}
		}
		if dest, err = l.s.c.destination(to, nil); err != nil {
			return nil, &wire.Error{Condition: wire.CondInvalidField, Description: err.Error()}
		}
	}
	return toCore(m, dest)
}

func rejection(err error) *wire.Error {
	var we *wire.Error
	if errors.As(err, &we) {
		return we
	}
	return &wire.Error{Condition: condition(err), Description: err.Error()}
}

// topUp gives a link the client sends on its credit back once half of it is
// used and confirmed; c.mu is held.
func (l *link) topUp() {
	full := l.s.c.srv.opts.Credit
	if l.detached || l.credit+l.unconfirmed > full/2 {
		return
	}
	l.credit = full - l.unconfirmed
	l.s.c.send(l.s.channel, l.s.flowState(l.flowState(&wire.Flow{})))
}

// detach answers the client's detach.
func (s *session) detach(d *wire.Detach) {
	c := s.c
	c.mu.Lock()
	l := s.links[d.Handle]
	c.mu.Unlock()
	if l == nil {
		s.end(&wire.Error{Condition: wire.CondUnattachedHandle, Description: fmt.Sprintf("detach of handle %d, which is not attached", d.Handle)})
		return
	}
	c.mu.Lock()
	answered := l.detached
	c.mu.Unlock()
	l.close(d.Closed)
	if !answered {
		c.send(s.channel, &wire.Detach{Handle: l.handle, Closed: d.Closed})
	}
	c.mu.Lock()
	delete(s.links, l.remoteHandle)
	delete(s.handles, l.handle)
	c.mu.Unlock()
}

// detachWith detaches a link with an error; the client's detach follows.
func (l *link) detachWith(err *wire.Error) {
	c := l.s.c
	l.close(false)
	c.mu.Lock()
	c.send(l.s.channel, &wire.Detach{Handle: l.handle, Closed: true, Error: err})
	c.mu.Unlock()
	c.srv.log.Info("link detached", "remote", c.nc.RemoteAddr(), "link", l.name, "condition", err.Condition, "err", err.Description)
}

// close ends what the link holds in the core: its subscription, whose
// unsettled deliveries go back to the queue, and, when the client closes a
// durable subscription's link, the subscription itself (how AMQP clients
// unsubscribe).
func (l *link) close(closed bool) {
	c := l.s.c
	c.mu.Lock()
	if l.detached {
		c.mu.Unlock()
		return
	}
	l.detached = true
	l.current = nil
	sub := l.sub
	for id, od := range l.s.unsettled {
		if od.l == l {
			delete(l.s.unsettled, id)
		}
	}
	c.mu.Unlock()
	if l.txns != nil {
		l.abortOpen()
	}
	if sub == nil {
		return
	}
	c.sess.Unsubscribe(sub)
	if closed && l.durable != "" {
		if err := c.srv.b.DeleteDurable(context.Background(), c.container, l.durable); err != nil {
			c.srv.log.Warn("unsubscribe", "remote", c.nc.RemoteAddr(), "subscription", l.durable, "err", err)
		}
	}
}
