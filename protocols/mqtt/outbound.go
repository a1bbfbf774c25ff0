package mqtt

import (
	"context"
	"errors"
	"time"

	mochi "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"

	"github.com/hamq/hamq/core"
)

// The server-to-client half of a session's QoS flows is hamq's, not
// mochi's: mochi's inflight table resends on reconnect in an order of its
// own (sorted by the second each message was made, then at random), with
// DUP=1 on what was never sent, ignores the client's Receive Maximum, and
// shares one packet id space with the client's own QoS 2 flows. So a
// session keeps:
//
//   - out: core deliveries (and retained messages for a new subscription)
//     not yet written, in the order they came;
//   - flight: the QoS 1 and 2 PUBLISHes written and not yet completed
//     (PUBACK; PUBREC then PUBCOMP), in the order they were written, by
//     packet ids of hamq's own.
//
// One writer goroutine writes them while a client is connected: first, on
// a resumed session, flight again (DUP=1, the same packet ids, PUBREL for
// what was PUBRECed [MQTT-4.4.0-1]), then out in order, never more than
// the client's Receive Maximum in flight [MQTT-3.3.4-9]. The core gives a
// subscription only as many messages as the session can hold (LinkCredit),
// none while the client is away: a backlog waits in the core, where
// expiry, order and counters are, so a message that expires before its
// session comes back is never sent [MQTT-3.3.2-5].
//
// hook.OnPacketRead consumes the client's PUBACK, PUBREC and PUBCOMP for
// hamq's packet ids and hands mochi a PUBACK for id 0, which names nothing
// in its table.

// flight is a QoS 1 or 2 PUBLISH written and not yet completed.
type flight struct {
	id  uint16
	pk  packets.Packet // as written, for a resend
	st  *subscription  // nil for a retained message
	tag uint64         // core delivery; 0 once acknowledged in the core
	// rel: a QoS 2 PUBLISH the client has PUBRECed; what is resent is
	// the PUBREL.
	rel  bool
	done bool // completed; sess.order drops it in passing
}

// attach makes cl the session's connection: what is in flight is written
// again before anything new, and the core may deliver again.
func (sess *session) attach(cl *mochi.Client) {
	sess.mu.Lock()
	sess.cl = cl
	sess.window = receiveMaximum(cl, sess.s.opts.MaxInflight)
	sess.resend = len(sess.flight) > 0
	sess.cancelWill()
	sess.spawn(&sess.writing, sess.deliver)
	sess.mu.Unlock()
	sess.grant()
}

// detach notes that cl is gone: the core stops delivering and takes back
// what was not written, to give it again in order when the client is back.
// A retained message waiting for its first write stays (QoS 0 ones go).
func (sess *session) detach(cl *mochi.Client) {
	sess.mu.Lock()
	if sess.cl != cl || cl == nil {
		sess.mu.Unlock()
		return
	}
	sess.cl = nil
	sess.mu.Unlock()
	sess.grant() // to none
	sess.mu.Lock()
	var back []outgoing
	keep := sess.out[:0]
	for _, o := range sess.out {
		switch {
		case o.retained == nil:
			back = append(back, o)
			o.st.buffered--
		case o.retained.FixedHeader.Qos > 0:
			keep = append(keep, o)
		}
	}
	clear(sess.out[len(keep):])
	sess.out = keep
	sess.mu.Unlock()
	for _, o := range back {
		sess.cs.Release(o.d.Tag)
	}
}

// receiveMaximum is how many QoS 1 and 2 PUBLISHes cl may have
// unacknowledged: its Receive Maximum (MQTT 5; 65,535 when absent), at most
// the listener's MaxInflight.
func receiveMaximum(cl *mochi.Client, maxInflight int) int {
	w := 65535
	if cl.Properties.ProtocolVersion == 5 && cl.Properties.Props.ReceiveMaximum > 0 {
		w = int(cl.Properties.Props.ReceiveMaximum)
	}
	return max(min(w, maxInflight), 1)
}

// grant gives each subscription credit for what the session can take:
// while connected, up to the window of messages held (unwritten or in
// flight) per subscription; none while away. The core delivers on this
// goroutine, into Deliver, so sess.mu is not held.
func (sess *session) grant() {
	type limit struct {
		sub   *core.Subscription
		limit uint32
	}
	sess.mu.Lock()
	limits := make([]limit, 0, len(sess.subs))
	for _, st := range sess.subs {
		room := 0
		if sess.cl != nil && !sess.closed {
			room = sess.window
			if st.qos == 0 {
				room = sess.s.opts.MaxInflight
			}
			room = max(room-st.buffered, 0)
		}
		limits = append(limits, limit{st.sub, st.delivered + uint32(room)})
	}
	sess.mu.Unlock()
	for _, l := range limits {
		l.sub.SetCreditLimit(l.limit, false)
	}
}

// deliver writes to the client until there is nothing it may be given:
// flight again after a reconnect, then out in order within the window.
func (sess *session) deliver() {
	for {
		sess.mu.Lock()
		cl := sess.cl
		if sess.closed || cl == nil {
			sess.writing = false
			sess.mu.Unlock()
			return
		}
		if sess.resend {
			sess.resend = false
			again := make([]packets.Packet, 0, len(sess.flight))
			for _, f := range sess.order {
				if f.done {
					continue
				}
				pk := f.pk
				if f.rel {
					pk = packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Pubrel, Qos: 1}, PacketID: f.id}
				} else {
					pk.FixedHeader.Dup = true // [MQTT-3.3.1-1]
				}
				again = append(again, pk)
			}
			sess.mu.Unlock()
			for _, pk := range again {
				sess.writeTo(cl, pk, false)
			}
			continue
		}
		o, ok := sess.nextOut()
		if !ok {
			sess.writing = false
			sess.mu.Unlock()
			return
		}
		pk, send := sess.prepare(o)
		sess.mu.Unlock()
		if send {
			sess.writeTo(cl, pk, false)
		}
		if pk.FixedHeader.Qos == 0 && o.retained == nil {
			sess.cs.Ack(context.Background(), "", o.d.Tag, false, false)
		}
		if !send && o.retained == nil {
			sess.cs.Release(o.d.Tag) // expired: the core's sweep takes it
		}
		if o.retained == nil && (!send || pk.FixedHeader.Qos == 0) {
			sess.grant()
		}
	}
}

// writeNow writes the one message out holds from the calling goroutine,
// the core's (Deliver), when that can neither block nor call back into
// the core: a QoS 1 or 2 PUBLISH, unexpired, that the window lets go, to
// a connection with nothing else being written. A writer goroutine
// spawned for it, as for everything else, cost a goroutine start (and
// its stack's growth) per message to a subscriber that keeps up. It
// reports whether it wrote; sess.mu is held, and is again on return.
func (sess *session) writeNow() bool {
	cl := sess.cl
	if sess.writing || sess.closed || sess.resend || len(sess.out) != 1 {
		return false
	}
	o := sess.out[0]
	lc, _ := cl.Net.Conn.(*limitConn)
	if o.retained != nil || o.qos() == 0 || o.d.Msg.Expired(time.Now().UnixMilli()) || lc == nil || !lc.idle() {
		return false
	}
	if _, ok := sess.nextOut(); !ok {
		return false // the window is full
	}
	sess.writing = true
	pk, _ := sess.prepare(o)
	sess.mu.Unlock()
	sess.writeTo(cl, pk, true)
	sess.mu.Lock()
	sess.writing = false
	if len(sess.out) > 0 {
		sess.spawn(&sess.writing, sess.deliver)
	}
	return true
}

// nextOut takes the first of out that the window lets go; sess.mu is held.
// A QoS 1 or 2 message waits for room, and so does everything after it.
func (sess *session) nextOut() (outgoing, bool) {
	if len(sess.out) == 0 {
		return outgoing{}, false
	}
	o := sess.out[0]
	if o.qos() > 0 && len(sess.flight) >= sess.window {
		return outgoing{}, false
	}
	sess.out[0] = outgoing{}
	sess.out = sess.out[1:]
	return o, true
}

// prepare builds o's PUBLISH and, at QoS 1 or 2, puts it in flight under a
// packet id; send is false for a message that expired before its first
// write, which is not sent at all [MQTT-3.3.2-5]. sess.mu is held.
func (sess *session) prepare(o outgoing) (pk packets.Packet, send bool) {
	if o.retained != nil {
		pk = *o.retained
		if pk.Expiry > 0 && pk.Expiry < time.Now().Unix() {
			return pk, false
		}
	} else {
		now := time.Now().UnixMilli()
		if o.d.Msg.Expired(now) {
			o.st.buffered--
			return pk, false
		}
		pk = publish(o.d.Msg, o.st.qos, o.st.rap, o.st.identifier, now)
	}
	if pk.FixedHeader.Qos == 0 {
		if o.st != nil {
			o.st.buffered--
		}
		return pk, true
	}
	pk.PacketID = sess.nextPacketID()
	f := &flight{id: pk.PacketID, pk: pk, st: o.st}
	if o.retained == nil {
		f.tag = o.d.Tag
	}
	if sess.flight == nil {
		sess.flight = map[uint16]*flight{}
	}
	sess.flight[pk.PacketID] = f
	sess.order = append(sess.order, f)
	return pk, true
}

// nextPacketID is the next id no PUBLISH of the session's has in flight;
// the window (at most 65,535) leaves one free. sess.mu is held.
func (sess *session) nextPacketID() uint16 {
	for {
		sess.lastID++
		if sess.lastID == 0 {
			sess.lastID = 1
		}
		if _, used := sess.flight[sess.lastID]; !used {
			return sess.lastID
		}
	}
}

// writeTo writes pk to cl; a connection that has gone fails the write,
// and what was in flight is written again on the next one. A PUBLISH
// larger than the client's Maximum Packet Size is discarded as if it had
// been delivered [MQTT-3.1.2-25]: kept in flight, it would hold a place
// in the window for ever and be refused again on every reconnect. The
// core's caller (inCore: under a queue's lock) has the discard done on a
// goroutine of the session's, since it calls back into the core.
func (sess *session) writeTo(cl *mochi.Client, pk packets.Packet, inCore bool) {
	err := cl.WritePacket(pk)
	switch {
	case errors.Is(err, packets.ErrPacketTooLarge) && pk.FixedHeader.Type == packets.Publish:
		sess.s.log.Warn("message larger than the client's maximum packet size: discarded", "client", sess.id,
			"topic", pk.TopicName, "size", len(pk.Payload))
		switch {
		case pk.FixedHeader.Qos == 0:
		case inCore:
			sess.mu.Lock()
			sess.spawn(nil, func() { sess.discard(pk.PacketID) })
			sess.mu.Unlock()
		default:
			sess.discard(pk.PacketID)
		}
	case err != nil:
		sess.s.log.Debug("write to client failed", "client", sess.id, "err", err)
	}
}

// discard completes the flow of a PUBLISH that cannot be sent, and its
// message in the core.
func (sess *session) discard(id uint16) {
	sess.mu.Lock()
	f := sess.flight[id]
	if f == nil {
		sess.mu.Unlock()
		return
	}
	tag := f.tag
	sess.complete(id, f)
	sess.mu.Unlock()
	if tag != 0 {
		sess.cs.Ack(context.Background(), "", tag, false, false)
	}
	sess.grant()
}

// acknowledged handles the client's answer to a PUBLISH of hamq's: PUBACK
// and PUBCOMP complete it, PUBREC acknowledges its message in the core
// (exactly once is the packet id's job from there) and is answered with
// PUBREL. It reports whether the id was hamq's.
func (sess *session) acknowledged(cl *mochi.Client, pk packets.Packet) bool {
	sess.mu.Lock()
	f := sess.flight[pk.PacketID]
	if f == nil {
		sess.mu.Unlock()
		return false
	}
	// PUBACK and PUBCOMP end the flow, and so does a PUBREC with a
	// reason code of 0x80 or more [MQTT-4.3.3-4]; a successful PUBREC
	// leaves it waiting for PUBCOMP.
	tag, done := f.tag, true
	if pk.FixedHeader.Type == packets.Pubrec && pk.ReasonCode < packets.ErrUnspecifiedError.Code {
		f.tag, f.rel, done = 0, true, false
	}
	if done {
		sess.complete(pk.PacketID, f)
	}
	if len(sess.out) > 0 {
		// The window this frees may let the next go; with nothing
		// waiting, a writer would only start to end (one per PUBACK).
		sess.spawn(&sess.writing, sess.deliver)
	}
	sess.mu.Unlock()
	if tag != 0 {
		sess.cs.Ack(context.Background(), "", tag, false, false)
	}
	if !done {
		sess.writeTo(cl, packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Pubrel, Qos: 1}, PacketID: pk.PacketID}, false)
	} else {
		sess.grant()
	}
	return true
}

// complete takes a finished flow out of flight; sess.mu is held. Flows
// mostly complete in the order they began, so the head of order is
// trimmed at once and the rest compacted now and then.
func (sess *session) complete(id uint16, f *flight) {
	delete(sess.flight, id)
	f.done = true
	if f.st != nil {
		f.st.buffered--
	}
	for len(sess.order) > 0 && sess.order[0].done {
		sess.order[0] = nil
		sess.order = sess.order[1:]
	}
	if len(sess.order) > 64 && len(sess.order) > 2*len(sess.flight) {
		live := make([]*flight, 0, len(sess.flight))
		for _, x := range sess.order {
			if !x.done {
				live = append(live, x)
			}
		}
		sess.order = live
	}
}
