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
	mu   sync.Mutex
	subs map[string]*subscription // by filter

	// Deliveries (outbound.go): the connection, nil while the client is
	// away, and its Receive Maximum; what waits to be written, and what
	// is in flight by packet id and in the order it was written.
	cl      *mochi.Client
	window  int
	out     []outgoing
	flight  map[uint16]*flight
	order   []*flight
	lastID  uint16
	resend  bool // flight is to be written again before out
	writing bool // a writer goroutine is running

	acks   []pendingAck // QoS 1 publishes awaiting durability, in arrival order
	acking bool         // an acker goroutine is running
	closed bool
	// The filters of the SUBSCRIBE being processed that get retained
	// messages once its SUBACK is out.
	retainAsks []packets.Subscription
	will       *delayedWill // a will waiting for its delay (will.go)

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

// subscription is one filter of the session's. Its core subscription
// takes credit from the session (grant): delivered counts what the core
// gave it, buffered what of that the session holds (unwritten, or in
// flight); both under sess.mu.
type subscription struct {
	filter     string
	qos        byte
	identifier int  // MQTT 5 subscription identifier; 0 none
	rap        bool // retain as published
	noLocal    bool
	durable    bool
	sub        *core.Subscription
	delivered  uint32
	buffered   int
}

// outgoing is a core delivery, or a retained message for a new
// subscription.
type outgoing struct {
	d        core.Delivery
	st       *subscription
	retained *packets.Packet
}

// qos is the QoS o goes out at.
func (o outgoing) qos() byte {
	if o.retained != nil {
		return o.retained.FixedHeader.Qos
	}
	return min(messageQoS(o.d.Msg), o.st.qos)
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
// 2, shared for $share filters, else for as long as the session. A filter
// the session has already is replaced [MQTT-3.8.4-3]; when it stays what
// it was in the core (durable or not, no-local or not) only its options
// change, so that nothing it holds is lost or sent twice (a client that
// subscribes again on every reconnect of its session).
func (sess *session) subscribe(f packets.Subscription) error {
	group, name, shared := sharedFilter(f.Filter)
	durable := sess.persistent && f.Qos > 0 && !shared
	sess.mu.Lock()
	if st := sess.subs[f.Filter]; st != nil && st.durable == durable && st.noLocal == f.NoLocal {
		st.qos, st.identifier, st.rap = f.Qos, f.Identifier, f.RetainAsPublished
		sess.mu.Unlock()
		sess.grant()
		return nil
	}
	sess.mu.Unlock()
	spec := core.SubSpec{Dest: coreTopic(name), NoLocal: f.NoLocal, Shared: group, LinkCredit: true}
	if durable {
		spec.Durable = f.Filter
	}
	// One that stops being durable (QoS 0 now) lets its stored messages go.
	sess.unsubscribe(f.Filter, !durable)
	st := &subscription{filter: f.Filter, qos: f.Qos, identifier: f.Identifier, rap: f.RetainAsPublished,
		noLocal: f.NoLocal, durable: durable}
	sub, err := sess.cs.Subscribe(spec, consumer{sess, st})
	if err != nil {
		return err
	}
	st.sub = sub
	sess.mu.Lock()
	if sess.subs == nil {
		sess.subs = map[string]*subscription{}
	}
	sess.subs[f.Filter] = st
	sess.mu.Unlock()
	sess.grant()
	return nil
}

// unsubscribe detaches a filter; forget also ends what a persistent session
// stored of it (a clean session stored nothing, and writes nothing here).
// What it had not written yet goes back to the core with it; what is in
// flight is completed [MQTT-3.10.4-3].
func (sess *session) unsubscribe(filter string, forget bool) {
	sess.mu.Lock()
	st := sess.subs[filter]
	delete(sess.subs, filter)
	if st != nil {
		keep := sess.out[:0]
		for _, o := range sess.out {
			if o.st != st {
				keep = append(keep, o)
			}
		}
		clear(sess.out[len(keep):])
		sess.out = keep
	}
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
		f := packets.Subscription{Filter: sub.Filter, Qos: sub.Qos, NoLocal: sub.NoLocal, Identifier: sub.Identifier,
			RetainAsPublished: sub.RetainAsPublished}
		if err := sess.subscribe(f); err != nil {
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

// spawn runs fn on a goroutine of the session's unless it is closed (or
// running, when given, says fn's goroutine runs already; fn clears it
// when done); the writer and the acker run only while they have work, so
// an idle session holds no goroutine. sess.mu is held.
func (sess *session) spawn(running *bool, fn func()) {
	if running != nil && *running || sess.closed {
		return
	}
	if running != nil {
		*running = true
	}
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
	c.sub.delivered++
	c.sub.buffered++
	sess.out = append(sess.out, outgoing{d: d, st: c.sub})
	if sess.cl != nil && !sess.writeNow() {
		sess.spawn(&sess.writing, sess.deliver)
	}
	sess.mu.Unlock()
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
	if sess.cl != nil {
		sess.spawn(&sess.writing, sess.deliver)
	}
	sess.mu.Unlock()
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
