package mqtt

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	mochi "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/hooks/storage"
	"github.com/mochi-mqtt/server/v2/packets"

	"github.com/hamq/hamq/core"
)

// hook is hamq inside mochi: every event that matters to the core.
type hook struct {
	mochi.HookBase
	s *Server
}

func (h *hook) ID() string { return "hamq" }

func (h *hook) Provides(b byte) bool {
	return bytes.Contains([]byte{
		mochi.OnConnectAuthenticate, mochi.OnACLCheck, mochi.OnSessionEstablished, mochi.OnDisconnect,
		mochi.OnPublish, mochi.OnSubscribe, mochi.OnPacketProcessed, mochi.OnUnsubscribed, mochi.OnPacketRead, mochi.OnWill,
		mochi.OnClientExpired, mochi.StoredClients, mochi.StoredSubscriptions, mochi.StoredRetainedMessages,
		mochi.OnPacketEncode, mochi.OnRetainedExpired,
	}, []byte{b})
}

// OnConnectAuthenticate checks the client against the broker's user store;
// mochi answers a false with CONNACK "not authorized" (0x87; 5 in 3.1.1).
func (h *hook) OnConnectAuthenticate(cl *mochi.Client, pk packets.Packet) bool {
	if err := h.s.b.Authenticate(string(pk.Connect.Username), string(pk.Connect.Password)); err != nil {
		h.s.log.Warn("authentication failed", "client", cl.ID, "remote", cl.Net.Remote, "err", err)
		return false
	}
	return true
}

// internalTopic is where mochi's own copy of a will goes, since hamq sends
// wills through the core; nobody may subscribe to it.
const internalTopic = "$hamq/internal"

func (h *hook) OnACLCheck(cl *mochi.Client, topic string, write bool) bool {
	return !strings.HasPrefix(topic, "$hamq/") && h.authorized(cl, topic, write)
}

// OnSessionEstablished gives the connection its session: the one it
// resumes, whose deliveries go on in order from where they were, or a new
// one, which a persistent session's stored subscriptions are restored to.
func (h *hook) OnSessionEstablished(cl *mochi.Client, pk packets.Packet) {
	s := h.s
	persistent := persistentSession(cl)
	s.mu.Lock()
	sess := s.sessions[cl.ID]
	if sess != nil && (pk.Connect.Clean || !persistent) {
		delete(s.sessions, cl.ID)
	} else if sess != nil {
		s.mu.Unlock()
		sess.cs.SetPeer(peer(cl))
		sess.attach(cl)
		return
	}
	s.mu.Unlock()
	if sess != nil {
		sess.fireWill(h) // the old session ends here
		sess.close()
	}
	s.mu.Lock()
	ended := s.ending[cl.ID]
	s.mu.Unlock()
	if ended != nil {
		<-ended
	}
	if pk.Connect.Clean {
		s.forgetStored(cl.ID)
	}
	sess, err := s.newSession(cl.ID, persistent)
	if err != nil {
		s.log.Error("session refused by the core", "client", cl.ID, "err", err)
		s.m.DisconnectClient(cl, packets.ErrServerUnavailable)
		return
	}
	sess.cs.SetPeer(peer(cl))
	if persistent {
		if err := s.storeClient(cl); err != nil {
			s.log.Error("persistent session not stored", "client", cl.ID, "err", err)
		}
		if err := sess.restore(); err != nil {
			s.log.Error("restoring subscriptions", "client", cl.ID, "err", err)
		}
	}
	s.mu.Lock()
	s.sessions[cl.ID] = sess
	s.mu.Unlock()
	sess.attach(cl)
}

func (s *Server) storeClient(cl *mochi.Client) error {
	rec := storage.Client{ID: cl.ID, T: "client", Listener: cl.Net.Listener, ProtocolVersion: cl.Properties.ProtocolVersion,
		Clean: cl.Properties.Clean, Properties: storage.ClientProperties{
			SessionExpiryInterval: cl.Properties.Props.SessionExpiryInterval, SessionExpiryIntervalFlag: cl.Properties.Props.SessionExpiryIntervalFlag,
			ReceiveMaximum: cl.Properties.Props.ReceiveMaximum, MaximumPacketSize: cl.Properties.Props.MaximumPacketSize,
		}}
	v, err := json.Marshal(rec)
	if err != nil {
		return err
	}
	return s.b.PutState(context.Background(), keyClient+cl.ID, v)
}

func (h *hook) session(id string) *session {
	h.s.mu.Lock()
	defer h.s.mu.Unlock()
	return h.s.sessions[id]
}

// OnDisconnect ends a session that does not outlive its connection; a
// persistent one waits for the client without its connection.
func (h *hook) OnDisconnect(cl *mochi.Client, _ error, expire bool) {
	if cl.IsTakenOver() {
		return
	}
	if !expire {
		if sess := h.session(cl.ID); sess != nil {
			sess.detach(cl)
		}
		return
	}
	h.endSession(cl.ID)
}

// OnClientExpired ends a persistent session that stayed away too long.
func (h *hook) OnClientExpired(cl *mochi.Client) {
	h.endSession(cl.ID)
	h.s.forgetStored(cl.ID)
}

// endSession ends a session, sending a will that was waiting for its delay.
// A client connecting with its id meanwhile waits for the end (Server.ending).
func (h *hook) endSession(id string) {
	s := h.s
	s.mu.Lock()
	sess := s.sessions[id]
	delete(s.sessions, id)
	ended := make(chan struct{})
	if sess != nil {
		s.ending[id] = ended
	}
	s.mu.Unlock()
	if sess == nil {
		return
	}
	sess.fireWill(h)
	sess.close()
	s.mu.Lock()
	if s.ending[id] == ended {
		delete(s.ending, id)
	}
	s.mu.Unlock()
	close(ended)
}

// OnPublish sends the message to the core before the client hears back.
// A QoS 1 PUBLISH is acknowledged by the session's acker once durable,
// while the client's next packets are read: mochi is told to leave it
// (ErrRejectPacket, no PUBACK of its own). QoS 0 and 2 go the synchronous
// way, mochi answering after the hook returns, since mochi's PUBREC/PUBREL
// state is what makes QoS 2 exactly once.
func (h *hook) OnPublish(cl *mochi.Client, pk packets.Packet) (packets.Packet, error) {
	if strings.HasPrefix(pk.TopicName, "$") {
		return pk, packets.CodeSuccessIgnore
	}
	sess := h.session(cl.ID)
	if sess == nil {
		return pk, packets.ErrUnspecifiedError
	}
	if pk.FixedHeader.Qos != 1 {
		if err := h.send(sess.cs, pk); errors.Is(err, errStale) {
			// mochi answers as soon as this returns: no answer at all.
			h.s.log.Warn("a confirmation went stale before it was sent: closing the connection", "client", cl.ID)
			cl.Stop(packets.ErrServerUnavailable)
			return pk, packets.ErrRejectPacket
		} else if err != nil {
			return pk, h.refuse(cl, pk, err)
		}
		return pk, packets.CodeSuccessIgnore
	}
	conf, err := h.sendAsync(sess.cs, pk)
	if err != nil {
		return pk, h.refuse(cl, pk, err)
	}
	if conf == core.Confirmed && sess.outstanding.Load() == 0 {
		// Nothing to wait for and no PUBACK before it: mochi's own
		// PUBACK, written now, keeps the order.
		return pk, packets.CodeSuccessIgnore
	}
	sess.confirm(pendingAck{cl: cl, id: pk.PacketID, conf: conf})
	return pk, packets.ErrRejectPacket
}

// refuse tells a publisher its message was not taken: MQTT 5 by the
// acknowledgement's reason code, 3.1.1 (which has none) by closing.
func (h *hook) refuse(cl *mochi.Client, pk packets.Packet, err error) error {
	h.s.log.Warn("publish refused", "client", cl.ID, "topic", pk.TopicName, "err", err)
	code := reasonFor(err)
	if cl.Properties.ProtocolVersion < 5 {
		cl.Stop(code)
		return packets.ErrRejectPacket
	}
	return code
}

func reasonFor(err error) packets.Code {
	switch {
	case errors.Is(err, core.ErrInvalidDestination):
		return packets.ErrTopicNameInvalid
	case errors.Is(err, core.ErrDestinationFull):
		return packets.ErrQuotaExceeded
	case errors.Is(err, core.ErrForbidden):
		return packets.ErrNotAuthorized
	}
	return packets.ErrImplementationSpecificError
}

// errStale is a send confirmed too late to say so (core.Stale).
var errStale = errors.New("mqtt: the confirmation went stale")

// send puts a PUBLISH (or a will) into the core and returns once it is
// durable.
func (h *hook) send(cs *core.Session, pk packets.Packet) error {
	conf, err := h.sendAsync(cs, pk)
	if err != nil {
		return err
	}
	if err := conf.Wait(context.Background()); err != nil {
		return err
	}
	if core.Stale(conf) {
		return errStale
	}
	return nil
}

// sendAsync puts a PUBLISH into the core, and a retained one into the
// retained store first; the confirmation says when the message is durable.
func (h *hook) sendAsync(cs *core.Session, pk packets.Packet) (core.Confirmation, error) {
	if pk.FixedHeader.Retain {
		if err := h.retain(pk); err != nil {
			return nil, err
		}
		if len(pk.Payload) == 0 {
			return core.Confirmed, nil // clears the retained message; nothing to deliver
		}
	}
	return cs.SendAsync(context.Background(), message(pk))
}

func (h *hook) retain(pk packets.Packet) error {
	ctx := context.Background()
	key := keyRetained + pk.TopicName
	if len(pk.Payload) == 0 {
		if err := h.s.b.DeleteState(ctx, key); err != nil {
			return err
		}
	} else {
		v, err := json.Marshal(storedMessage(pk))
		if err != nil {
			return err
		}
		if err := h.s.b.PutState(ctx, key, v); err != nil {
			return err
		}
	}
	h.s.m.Topics.RetainMessage(pk.Copy(false))
	return nil
}

func storedMessage(pk packets.Packet) storage.Message {
	return storage.Message{T: "retained", ID: pk.TopicName, TopicName: pk.TopicName, Payload: pk.Payload,
		FixedHeader: pk.FixedHeader, Origin: pk.Origin, Created: pk.Created,
		Properties: storage.MessageProperties{ContentType: pk.Properties.ContentType, ResponseTopic: pk.Properties.ResponseTopic,
			CorrelationData: pk.Properties.CorrelationData, User: pk.Properties.User, MessageExpiryInterval: pk.Properties.MessageExpiryInterval,
			PayloadFormat: pk.Properties.PayloadFormat, PayloadFormatFlag: pk.Properties.PayloadFormatFlag}}
}

// OnRetainedExpired forgets a retained message whose expiry passed
// [MQTT-3.3.2-5]; mochi has dropped its copy.
func (h *hook) OnRetainedExpired(topic string) {
	if err := h.s.b.DeleteState(context.Background(), keyRetained+topic); err != nil {
		h.s.log.Warn("expired retained message not removed from the store", "topic", topic, "err", err)
	}
}

// OnWill sends the will through the core, at once or after its delay
// (will.go); mochi's own copy goes where no one listens.
func (h *hook) OnWill(cl *mochi.Client, will mochi.Will) (mochi.Will, error) {
	if sess := h.session(cl.ID); sess != nil && will.TopicName != internalTopic {
		pk := willPacket(cl, will)
		if d := willDelay(cl, will, h.s.opts.SessionExpiry); d > 0 {
			sess.delayWill(h, pk, d)
		} else {
			h.sendWill(sess, pk)
		}
	}
	will.TopicName, will.Retain = internalTopic, false
	return will, nil
}

// OnSubscribe attaches each valid filter in the core before mochi answers
// SUBACK, so nothing published after the SUBACK is missed. mochi would send
// the retained messages through its outbound queue, which drops what does
// not fit; the session's writer sends them instead, waiting for a slow
// client as it does for deliveries, so mochi is told each filter wants none.
func (h *hook) OnSubscribe(cl *mochi.Client, pk packets.Packet) packets.Packet {
	sess := h.session(cl.ID)
	if sess == nil {
		return pk
	}
	for i, f := range pk.Filters {
		if !mochi.IsValidFilter(f.Filter, false) {
			continue
		}
		if !mochi.IsSharedFilter(f.Filter) && (f.RetainHandling == 0 || f.RetainHandling == 1 && !subscribed(cl, f.Filter)) {
			sess.askRetained(f)
		}
		pk.Filters[i].RetainHandling = 2 // hamq sends them: see sendRetained
		if strings.HasPrefix(f.Filter, "$") && !mochi.IsSharedFilter(f.Filter) {
			continue
		}
		if err := sess.subscribe(f); err != nil {
			h.s.log.Warn("subscribe refused by the core", "client", cl.ID, "filter", f.Filter, "err", err)
			continue
		}
		if sess.persistent && f.Qos > 0 {
			sub := storage.Subscription{T: "subscription", ID: cl.ID + ":" + f.Filter, Client: cl.ID, Filter: f.Filter,
				Qos: f.Qos, NoLocal: f.NoLocal, RetainAsPublished: f.RetainAsPublished, RetainHandling: f.RetainHandling, Identifier: f.Identifier}
			v, _ := json.Marshal(sub)
			if err := h.s.b.PutState(context.Background(), subKey(cl.ID, f.Filter), v); err != nil {
				h.s.log.Error("subscription not stored", "client", cl.ID, "filter", f.Filter, "err", err)
			}
		}
	}
	return pk
}

func subscribed(cl *mochi.Client, filter string) bool {
	_, ok := cl.State.Subscriptions.Get(filter)
	return ok
}

// OnPacketProcessed follows mochi's SUBACK with the retained messages the
// new subscriptions get, and closes the connection of a client that sent
// an invalid filter once the SUBACK has told it which: a malformed filter
// is a protocol violation, and MQTT closes the connection for those (5 with
// DISCONNECT "topic filter invalid").
func (h *hook) OnPacketProcessed(cl *mochi.Client, pk packets.Packet, _ error) {
	if pk.FixedHeader.Type != packets.Subscribe {
		return
	}
	if sess := h.session(cl.ID); sess != nil {
		sess.sendRetained(cl)
	}
	for _, f := range pk.Filters {
		if !mochi.IsValidFilter(f.Filter, false) {
			h.s.log.Info("invalid topic filter; closing", "client", cl.ID, "filter", f.Filter)
			if cl.Properties.ProtocolVersion == 5 {
				h.s.m.DisconnectClient(cl, packets.ErrTopicFilterInvalid)
			} else {
				cl.Stop(packets.ErrTopicFilterInvalid)
			}
			return
		}
	}
}

func (h *hook) OnUnsubscribed(cl *mochi.Client, pk packets.Packet) {
	if sess := h.session(cl.ID); sess != nil {
		for _, f := range pk.Filters {
			sess.unsubscribe(f.Filter, true)
		}
	}
}

// OnPacketRead sees the client's PUBACK, PUBREC and PUBCOMP before mochi
// does. Those for hamq's deliveries are hamq's (outbound.go): mochi gets a
// PUBACK for packet id 0 instead, which names nothing in its table, so it
// can neither answer with an error nor take one of the client's own QoS 2
// flows, which share that table, for it.
func (h *hook) OnPacketRead(cl *mochi.Client, pk packets.Packet) (packets.Packet, error) {
	switch pk.FixedHeader.Type {
	case packets.Puback, packets.Pubrec, packets.Pubcomp:
		if sess := h.session(cl.ID); sess != nil && sess.acknowledged(cl, pk) {
			return packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Puback}, ProtocolVersion: pk.ProtocolVersion}, nil
		}
	}
	return pk, nil
}

// OnPacketEncode corrects what mochi v2.7.9 writes in its own PUBACK of a
// QoS 1 PUBLISH: reason code 0x01 ("granted QoS 1", a SUBACK code), which
// is no PUBACK reason code [MQTT-3.4.2-1] and which mqtt.js and Paho refuse
// (mochi issue 474). 0x00 is success. Its echo of the publisher's user
// properties is off (Compatibilities.NoInheritedPropertiesOnAck).
func (h *hook) OnPacketEncode(_ *mochi.Client, pk packets.Packet) packets.Packet {
	if pk.FixedHeader.Type == packets.Puback && pk.ReasonCode == packets.CodeGrantedQos1.Code {
		pk.ReasonCode = packets.CodeSuccess.Code
	}
	return pk
}

// StoredClients gives mochi the persistent sessions kept in the store.
func (h *hook) StoredClients() ([]storage.Client, error) {
	return stored[storage.Client](h.s.b, keyClient)
}

func (h *hook) StoredSubscriptions() ([]storage.Subscription, error) {
	return stored[storage.Subscription](h.s.b, keySub)
}

func (h *hook) StoredRetainedMessages() ([]storage.Message, error) {
	return stored[storage.Message](h.s.b, keyRetained)
}

// stored decodes every state value under prefix, each a mochi storage
// record in JSON.
func stored[T any](b *core.Broker, prefix string) ([]T, error) {
	var out []T
	err := b.State(prefix, func(_ string, v []byte) error {
		var x T
		if err := json.Unmarshal(v, &x); err != nil {
			return fmt.Errorf("mqtt: stored %s: %w", prefix, err)
		}
		out = append(out, x)
		return nil
	})
	return out, err
}
