package mqtt

import (
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	mochi "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/hooks/storage"
	"github.com/mochi-mqtt/server/v2/packets"

	"github.com/hamq/hamq/core"
)

// State keys in the core's front-end state.
const (
	keyClient   = "mqtt/client/"   // + client id: storage.Client of a persistent session
	keySub      = "mqtt/sub/"      // + client id + NUL + filter: storage.Subscription kept in one
	keyRetained = "mqtt/retained/" // + topic: storage.Message
)

func subKey(clientID, filter string) string { return keySub + clientID + "\x00" + filter }

// coreClientID names an MQTT session's durable subscriptions in the core.
func coreClientID(clientID string) string { return "mqtt:" + clientID }

// session is an MQTT session as the core sees it: one core session for as
// long as mochi keeps the MQTT session, across the client's reconnects.
type session struct {
	s          *Server
	id         string
	cs         *core.Session
	persistent bool

	// What a session needs only once it subscribes, receives or publishes
	// at QoS 1 is made then: an idle connection's session is small.
	mu      sync.Mutex
	subs    map[string]*subscription // by filter
	pending map[uint16]uint64        // packet id of a QoS 1/2 PUBLISH -> core delivery tag
	out     []outgoing               // deliveries for the writer
	writing bool                     // a writer goroutine is running
	acks    []pendingAck             // QoS 1 publishes awaiting durability, in arrival order
	acking  bool                     // an acker goroutine is running
	closed  bool
	// The filters of the SUBSCRIBE being processed that get retained
	// messages once its SUBACK is out.
	retainAsks []packets.Subscription

	// room bounds the PUBACKs outstanding: a client with that many waits,
	// which stops its reads.
	room chan struct{}
	// outstanding counts PUBACKs queued and not yet written; only the
	// client's read goroutine adds to it.
	outstanding atomic.Int32
	ctx         context.Context // the acker's waits; ends with the session
	cancel      context.CancelFunc
	running     sync.WaitGroup // writer and acker goroutines
}

// pendingAck is a QoS 1 PUBLISH whose PUBACK waits for its confirmation.
type pendingAck struct {
	cl   *mochi.Client
	id   uint16
	conf core.Confirmation
}

type subscription struct {
	filter string
	qos    byte
	sub    *core.Subscription
}

// outgoing is a core delivery, or a retained message for a new
// subscription.
type outgoing struct {
	d        core.Delivery
	qos      byte
	retained *packets.Packet
}

func (s *Server) newSession(id string, persistent bool) (*session, error) {
	cs, err := s.b.Connect(core.ConnInfo{Protocol: "mqtt", ClientID: coreClientID(id)})
	if err != nil {
		return nil, err
	}
	return &session{s: s, id: id, cs: cs, persistent: persistent}, nil
}

// maxUnacked bounds the QoS 1 PUBACKs one client may have waiting for
// durability; enough for its publishes to share group commits.
const maxUnacked = 256

// subscribe attaches a filter: durable in a persistent session at QoS 1 or
// 2, shared for $share filters, else for as long as the session.
func (sess *session) subscribe(filter string, qos byte, noLocal bool) error {
	group, f, shared := sharedFilter(filter)
	spec := core.SubSpec{Dest: coreTopic(f), NoLocal: noLocal, Prefetch: sess.s.opts.MaxInflight, Shared: group}
	durable := sess.persistent && qos > 0 && !shared
	if durable {
		spec.Durable = filter
	}
	// Subscribing again replaces the subscription; one that stops being
	// durable (QoS 0 now) lets its stored messages go.
	sess.unsubscribe(filter, !durable)
	st := &subscription{filter: filter, qos: qos}
	sub, err := sess.cs.Subscribe(spec, consumer{sess, st})
	if err != nil {
		return err
	}
	st.sub = sub
	sess.mu.Lock()
	if sess.subs == nil {
		sess.subs = map[string]*subscription{}
	}
	sess.subs[filter] = st
	sess.mu.Unlock()
	return nil
}

// unsubscribe detaches a filter; forget also ends what a persistent session
// stored of it (a clean session stored nothing, and writes nothing here).
func (sess *session) unsubscribe(filter string, forget bool) {
	sess.mu.Lock()
	st := sess.subs[filter]
	delete(sess.subs, filter)
	sess.mu.Unlock()
	if st != nil {
		sess.cs.Unsubscribe(st.sub)
	}
	if forget && sess.persistent {
		ctx := context.Background()
		sess.s.b.DeleteDurable(ctx, coreClientID(sess.id), filter)
		sess.s.b.DeleteState(ctx, subKey(sess.id, filter))
	}
}

// restore re-attaches the subscriptions a persistent session kept in the
// store, after a restart or a failover.
func (sess *session) restore() error {
	subs, err := stored[storage.Subscription](sess.s.b, keySub+sess.id+"\x00")
	if err != nil {
		return err
	}
	for _, sub := range subs {
		sess.mu.Lock()
		_, attached := sess.subs[sub.Filter]
		sess.mu.Unlock()
		if attached {
			continue
		}
		if err := sess.subscribe(sub.Filter, sub.Qos, sub.NoLocal); err != nil {
			return err
		}
	}
	return nil
}

// close ends the core session: its unacknowledged messages go back to
// their queues (durable ones stay stored).
func (sess *session) close() {
	sess.mu.Lock()
	sess.closed = true
	cancel := sess.cancel
	sess.mu.Unlock()
	if cancel != nil {
		cancel()
	}
	sess.running.Wait()
	sess.cs.Close()
}

// spawn runs fn on a goroutine of the session's unless it is closed; the
// writer and the acker run only while they have work, so an idle session
// holds no goroutine. sess.mu is held.
func (sess *session) spawn(running *bool, fn func()) {
	if *running || sess.closed {
		return
	}
	*running = true
	sess.running.Add(1)
	go func() {
		defer sess.running.Done()
		fn()
	}()
}

// confirm queues a PUBACK for when its message is durable.
func (sess *session) confirm(a pendingAck) {
	sess.mu.Lock()
	if sess.closed {
		sess.mu.Unlock()
		return
	}
	if sess.room == nil {
		sess.room = make(chan struct{}, maxUnacked)
		sess.ctx, sess.cancel = context.WithCancel(context.Background())
	}
	room, ctx := sess.room, sess.ctx
	sess.mu.Unlock()
	select {
	case room <- struct{}{}:
	case <-ctx.Done():
		return
	}
	sess.outstanding.Add(1)
	sess.mu.Lock()
	sess.acks = append(sess.acks, a)
	sess.spawn(&sess.acking, sess.ack)
	sess.mu.Unlock()
}

// ack sends PUBACKs in the order the PUBLISHes came, as MQTT requires,
// each once its message is durable, until none is left.
func (sess *session) ack() {
	for {
		sess.mu.Lock()
		if len(sess.acks) == 0 || sess.ctx.Err() != nil {
			sess.acking = false
			sess.mu.Unlock()
			return
		}
		a := sess.acks[0]
		sess.acks = sess.acks[1:]
		sess.mu.Unlock()
		ack := packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Puback}, PacketID: a.id}
		err := a.conf.Wait(sess.ctx)
		switch {
		case err != nil && sess.ctx.Err() != nil:
		case err != nil && a.cl.Properties.ProtocolVersion < 5:
			sess.s.log.Warn("publish not durable", "client", sess.id, "err", err)
			a.cl.Stop(reasonFor(err))
		case err != nil:
			sess.s.log.Warn("publish not durable", "client", sess.id, "err", err)
			ack.ReasonCode = reasonFor(err).Code
			a.cl.WritePacket(ack)
		case core.Stale(a.conf):
			// Durable, but too late to say so: this node may no longer
			// be the master. The client sends it again elsewhere.
			sess.s.log.Warn("a confirmation went stale before it was sent: closing the connection", "client", sess.id)
			a.cl.Stop(packets.ErrServerUnavailable)
		default:
			a.cl.WritePacket(ack)
		}
		sess.outstanding.Add(-1)
		<-sess.room
	}
}

// consumer hands core deliveries to the session's writer.
type consumer struct {
	sess *session
	sub  *subscription
}

func (c consumer) Deliver(d core.Delivery) {
	sess := c.sess
	sess.mu.Lock()
	sess.out = append(sess.out, outgoing{d: d, qos: c.sub.qos})
	sess.spawn(&sess.writing, sess.deliver)
	sess.mu.Unlock()
}

// deliver gives deliveries to the MQTT client until none is left. A QoS 1
// or 2 PUBLISH goes into mochi's inflight table, which resends it when the
// client comes back; a QoS 0 one is acknowledged in the core once written
// (or lost with an absent client, as QoS 0 allows).
func (sess *session) deliver() {
	for {
		sess.mu.Lock()
		batch := sess.out
		sess.out = nil
		if len(batch) == 0 || sess.closed {
			sess.writing = false
			sess.mu.Unlock()
			return
		}
		sess.mu.Unlock()
		for _, o := range batch {
			sess.write(o)
		}
	}
}

func (sess *session) write(o outgoing) {
	pk := o.retained
	if pk == nil {
		p := publish(o.d.Msg, o.qos)
		pk = &p
	}
	cl, known := sess.s.m.Clients.Get(sess.id)
	if pk.FixedHeader.Qos == 0 {
		if known && !cl.Closed() {
			cl.WritePacket(*pk)
		}
		if o.retained == nil {
			sess.cs.Ack(context.Background(), "", o.d.Tag, false, false)
		}
		return
	}
	if !known {
		// mochi dropped the session; the core redelivers this when the
		// session is closed.
		return
	}
	id, err := cl.NextPacketID()
	if err != nil {
		sess.s.log.Warn("no free packet id; message goes back for redelivery", "client", sess.id)
		if o.retained == nil {
			sess.cs.Nack("", o.d.Tag, false)
		}
		return
	}
	pk.PacketID = uint16(id)
	if o.retained == nil {
		sess.mu.Lock()
		if sess.pending == nil {
			sess.pending = map[uint16]uint64{}
		}
		sess.pending[pk.PacketID] = o.d.Tag
		sess.mu.Unlock()
	}
	cl.State.Inflight.Set(*pk)
	if !cl.Closed() {
		cl.WritePacket(*pk)
	}
}

// askRetained notes a filter of the SUBSCRIBE being processed that gets
// the retained messages it matches.
func (sess *session) askRetained(f packets.Subscription) {
	sess.mu.Lock()
	sess.retainAsks = append(sess.retainAsks, f)
	sess.mu.Unlock()
}

// sendRetained queues, after a SUBACK, the retained messages its accepted
// filters match, as MQTT forwards them: retain flag set, at most the
// subscription's QoS, not to a no-local publisher, not once expired.
func (sess *session) sendRetained(cl *mochi.Client) {
	sess.mu.Lock()
	asks := sess.retainAsks
	sess.retainAsks = nil
	sess.mu.Unlock()
	now := time.Now().Unix()
	var out []outgoing
	for _, f := range asks {
		if !subscribed(cl, f.Filter) {
			continue // refused in the SUBACK
		}
		for _, m := range sess.s.m.Topics.Messages(f.Filter) {
			if f.NoLocal && m.Origin == cl.ID || m.Expiry > 0 && m.Expiry < now {
				continue
			}
			pk := m.Copy(false)
			pk.FixedHeader.Retain = true
			pk.FixedHeader.Qos = min(pk.FixedHeader.Qos, f.Qos)
			if f.Identifier > 0 {
				pk.Properties.SubscriptionIdentifier = []int{f.Identifier}
			}
			out = append(out, outgoing{retained: &pk})
		}
	}
	if len(out) == 0 {
		return
	}
	sess.mu.Lock()
	sess.out = append(sess.out, out...)
	sess.spawn(&sess.writing, sess.deliver)
	sess.mu.Unlock()
}

// acknowledged settles the delivery a PUBACK or PUBREC names.
func (sess *session) acknowledged(packetID uint16) {
	sess.mu.Lock()
	tag, ok := sess.pending[packetID]
	delete(sess.pending, packetID)
	sess.mu.Unlock()
	if ok {
		sess.cs.Ack(context.Background(), "", tag, false, false)
	}
}

// persistentSession reports whether the client asked for its session to
// outlive the connection.
func persistentSession(cl *mochi.Client) bool {
	if cl.Properties.ProtocolVersion == 5 {
		return cl.Properties.Props.SessionExpiryInterval > 0
	}
	return !cl.Properties.Clean
}

// forgetStored removes what the store kept of a session. It runs at every
// clean session's connect, when there is mostly nothing to remove, and a
// deletion is a durable, replicated write: only keys that exist are deleted.
func (s *Server) forgetStored(id string) {
	ctx := context.Background()
	var filters []string
	s.b.State(keySub+id+"\x00", func(k string, _ []byte) error {
		filters = append(filters, strings.TrimPrefix(k, keySub+id+"\x00"))
		return nil
	})
	for _, f := range filters {
		s.b.DeleteDurable(ctx, coreClientID(id), f)
		s.b.DeleteState(ctx, subKey(id, f))
	}
	if s.storedClient(id) {
		s.b.DeleteState(ctx, keyClient+id)
	}
}

// errScanned ends a scan of the state early.
var errScanned = errors.New("mqtt: scan ended")

// storedClient reports whether the store keeps a persistent session's
// record for id. The scan stops at the first key under the prefix, the
// record itself when it exists, since a key sorts before those it prefixes.
func (s *Server) storedClient(id string) bool {
	found := false
	s.b.State(keyClient+id, func(k string, _ []byte) error {
		found = k == keyClient+id
		return errScanned
	})
	return found
}
