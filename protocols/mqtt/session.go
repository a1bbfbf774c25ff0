package mqtt

import (
	"context"
	"encoding/json"
	"strings"
	"sync"
	"sync/atomic"

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

	mu      sync.Mutex
	subs    map[string]*subscription // by filter
	pending map[uint16]uint64        // packet id of a QoS 1/2 PUBLISH -> core delivery tag
	out     []outgoing
	wake    chan struct{}
	acks    chan pendingAck // QoS 1 publishes awaiting durability, in arrival order
	// outstanding counts PUBACKs queued and not yet written; only the
	// client's read goroutine adds to it.
	outstanding atomic.Int32
	stop        chan struct{}
	done        sync.WaitGroup
}

// pendingAck is a QoS 1 PUBLISH whose PUBACK waits for its confirmation.
type pendingAck struct {
	cl   *mochi.Client
	id   uint16
	conf core.Confirmation
}

type subscription struct {
	filter  string
	qos     byte
	durable bool
	sub     *core.Subscription
}

type outgoing struct {
	d   core.Delivery
	qos byte
}

func (s *Server) newSession(id string, persistent bool) (*session, error) {
	cs, err := s.b.Connect(core.ConnInfo{Protocol: "mqtt", ClientID: coreClientID(id)})
	if err != nil {
		return nil, err
	}
	sess := &session{s: s, id: id, cs: cs, persistent: persistent, subs: map[string]*subscription{},
		pending: map[uint16]uint64{}, wake: make(chan struct{}, 1), acks: make(chan pendingAck, s.opts.MaxInflight),
		stop: make(chan struct{})}
	sess.done.Add(2)
	go sess.writeLoop()
	go sess.ackLoop()
	return sess, nil
}

// subscribe attaches a filter: durable in a persistent session at QoS 1 or
// 2, shared for $share filters, else for as long as the session.
func (sess *session) subscribe(filter string, qos byte, noLocal bool) error {
	sess.unsubscribe(filter, false)
	group, f, shared := sharedFilter(filter)
	spec := core.SubSpec{Dest: coreTopic(f), NoLocal: noLocal, Prefetch: sess.s.opts.MaxInflight, Shared: group}
	durable := sess.persistent && qos > 0 && !shared
	if durable {
		spec.Durable = filter
	}
	st := &subscription{filter: filter, qos: qos, durable: durable}
	sub, err := sess.cs.Subscribe(spec, consumer{sess, st})
	if err != nil {
		return err
	}
	st.sub = sub
	sess.mu.Lock()
	sess.subs[filter] = st
	sess.mu.Unlock()
	return nil
}

// unsubscribe detaches a filter; forget also ends its durable subscription.
func (sess *session) unsubscribe(filter string, forget bool) {
	sess.mu.Lock()
	st := sess.subs[filter]
	delete(sess.subs, filter)
	sess.mu.Unlock()
	if st != nil {
		sess.cs.Unsubscribe(st.sub)
	}
	if forget {
		ctx := context.Background()
		sess.s.b.DeleteDurable(ctx, coreClientID(sess.id), filter)
		sess.s.b.DeleteState(ctx, subKey(sess.id, filter))
	}
}

// restore re-attaches the subscriptions a persistent session kept in the
// store, after a restart or a failover.
func (sess *session) restore() error {
	return sess.s.b.State(keySub+sess.id+"\x00", func(_ string, v []byte) error {
		var sub storage.Subscription
		if err := json.Unmarshal(v, &sub); err != nil {
			return err
		}
		sess.mu.Lock()
		_, attached := sess.subs[sub.Filter]
		sess.mu.Unlock()
		if attached {
			return nil
		}
		return sess.subscribe(sub.Filter, sub.Qos, sub.NoLocal)
	})
}

// close ends the core session: its unacknowledged messages go back to
// their queues (durable ones stay stored).
func (sess *session) close() {
	close(sess.stop)
	sess.done.Wait()
	sess.cs.Close()
}

// confirm queues a PUBACK for when its message is durable; a client with
// MaxInflight of them outstanding waits here, which stops its reads.
func (sess *session) confirm(a pendingAck) {
	sess.outstanding.Add(1)
	select {
	case sess.acks <- a:
	case <-sess.stop:
	}
}

// ackLoop sends PUBACKs in the order the PUBLISHes came, as MQTT requires,
// each once its message is durable.
func (sess *session) ackLoop() {
	defer sess.done.Done()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		<-sess.stop
		cancel()
	}()
	for {
		var a pendingAck
		select {
		case a = <-sess.acks:
		case <-sess.stop:
			return
		}
		ack := packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Puback}, PacketID: a.id}
		if err := a.conf.Wait(ctx); err != nil {
			if ctx.Err() != nil {
				return
			}
			sess.s.log.Warn("publish not durable", "client", sess.id, "err", err)
			if a.cl.Properties.ProtocolVersion < 5 {
				a.cl.Stop(reasonFor(err))
				sess.outstanding.Add(-1)
				continue
			}
			ack.ReasonCode = reasonFor(err).Code
		}
		a.cl.WritePacket(ack)
		sess.outstanding.Add(-1)
	}
}

// consumer hands core deliveries to the session's writer.
type consumer struct {
	sess *session
	sub  *subscription
}

func (c consumer) Deliver(d core.Delivery) {
	c.sess.mu.Lock()
	c.sess.out = append(c.sess.out, outgoing{d, c.sub.qos})
	c.sess.mu.Unlock()
	select {
	case c.sess.wake <- struct{}{}:
	default:
	}
}

// writeLoop gives deliveries to the MQTT client. A QoS 1 or 2 PUBLISH goes
// into mochi's inflight table, which resends it when the client comes back;
// a QoS 0 one is acknowledged in the core once written (or lost with an
// absent client, as QoS 0 allows).
func (sess *session) writeLoop() {
	defer sess.done.Done()
	for {
		select {
		case <-sess.wake:
		case <-sess.stop:
			return
		}
		sess.mu.Lock()
		batch := sess.out
		sess.out = nil
		sess.mu.Unlock()
		for _, o := range batch {
			sess.write(o)
		}
	}
}

func (sess *session) write(o outgoing) {
	ctx := context.Background()
	pk := publish(o.d.Msg, o.qos)
	cl, known := sess.s.m.Clients.Get(sess.id)
	if pk.FixedHeader.Qos == 0 {
		if known && !cl.Closed() {
			cl.WritePacket(pk)
		}
		sess.cs.Ack(ctx, "", o.d.Tag, false, false)
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
		sess.cs.Nack("", o.d.Tag, false)
		return
	}
	pk.PacketID = uint16(id)
	sess.mu.Lock()
	sess.pending[pk.PacketID] = o.d.Tag
	sess.mu.Unlock()
	cl.State.Inflight.Set(pk)
	if !cl.Closed() {
		cl.WritePacket(pk)
	}
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

// forgetStored removes what the store kept of a session.
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
	s.b.DeleteState(ctx, keyClient+id)
}
