package mqtt

import (
	"strings"

	mochi "github.com/mochi-mqtt/server/v2"

	"github.com/hamq/hamq/core"
)

// authorized is mochi's ACL check on the core's authorization map. mochi
// asks it before a PUBLISH is taken, and refuses one without a grant
// (MQTT 5: PUBACK or PUBREC 0x87; 3.1.1, which has no reason codes:
// closing the connection; QoS 0: dropped), so nothing of it is kept, not
// even its retained copy. For a SUBSCRIBE it asks after OnSubscribe, in
// which the core has already refused the filter (logged and counted
// there): it only asks again, quietly, and mochi answers SUBACK 0x87
// (3.1.1: 0x80). $-topics stay within MQTT and need no grant.
func (h *hook) authorized(cl *mochi.Client, topic string, write bool) bool {
	sess := h.session(cl.ID)
	if sess == nil || (strings.HasPrefix(topic, "$") && !mochi.IsSharedFilter(topic)) {
		return true
	}
	filter := topic
	if _, rest, ok := sharedFilter(topic); ok {
		filter = rest
	}
	d := coreTopic(filter)
	if write {
		return sess.cs.Authorize(d, core.Write) == nil
	}
	return sess.cs.Permitted(d, core.Read)
}

// peer is who a connection logged in as, and from where, for its core
// session: a persistent session outlives its connections.
func peer(cl *mochi.Client) (user, remote string) {
	return string(cl.Properties.Username), cl.Net.Remote
}
