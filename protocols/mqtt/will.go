package mqtt

import (
	"time"

	mochi "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"
)

// Wills go through the core like any PUBLISH. One with a Will Delay
// Interval waits in its session: it goes when the delay has passed or the
// session ends, whichever is first, and not at all when the client
// connects to the session again before [MQTT-3.1.3-9]. mochi keeps a
// delayed copy of its own too, for a topic nobody may subscribe to
// (internalTopic).

// delayedWill is a will waiting for its delay.
type delayedWill struct {
	pk    packets.Packet
	timer *time.Timer
}

// willPacket is the PUBLISH of cl's will.
func willPacket(cl *mochi.Client, will mochi.Will) packets.Packet {
	pk := packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Publish, Qos: will.Qos, Retain: will.Retain},
		TopicName: will.TopicName, Payload: will.Payload, Origin: cl.ID, ProtocolVersion: cl.Properties.ProtocolVersion}
	pk.Properties.User = will.User
	return pk
}

// willDelay is how long cl's will waits: its Will Delay Interval, at most
// the session's expiry (mochi's ParseConnect caps it only when the client
// sent a Session Expiry Interval), and none for a session that ends with
// its connection.
func willDelay(cl *mochi.Client, will mochi.Will, maxExpiry uint32) time.Duration {
	if cl.Properties.ProtocolVersion < 5 || will.WillDelayInterval == 0 || !persistentSession(cl) {
		return 0
	}
	d := min(will.WillDelayInterval, cl.Properties.Props.SessionExpiryInterval, maxExpiry)
	return time.Duration(d) * time.Second
}

// delayWill holds pk for d, then sends it unless the session was resumed
// or has sent it on ending.
func (sess *session) delayWill(h *hook, pk packets.Packet, d time.Duration) {
	w := &delayedWill{pk: pk}
	sess.mu.Lock()
	if old := sess.will; old != nil {
		old.timer.Stop()
	}
	sess.will = w
	w.timer = time.AfterFunc(d, func() {
		sess.mu.Lock()
		mine := sess.will == w && !sess.closed
		if mine {
			sess.will = nil
		}
		sess.mu.Unlock()
		if mine {
			h.sendWill(sess, w.pk)
		}
	})
	sess.mu.Unlock()
}

// cancelWill drops a will still waiting: the client is back. sess.mu is
// held.
func (sess *session) cancelWill() {
	if sess.will != nil {
		sess.will.timer.Stop()
		sess.will = nil
	}
}

// fireWill sends a will still waiting at once: its session is ending.
func (sess *session) fireWill(h *hook) {
	sess.mu.Lock()
	w := sess.will
	sess.will = nil
	sess.mu.Unlock()
	if w != nil {
		w.timer.Stop()
		h.sendWill(sess, w.pk)
	}
}

func (h *hook) sendWill(sess *session, pk packets.Packet) {
	if err := h.send(sess.cs, pk); err != nil {
		h.s.log.Warn("will not sent", "client", sess.id, "topic", pk.TopicName, "err", err)
	}
}
