// Package mqtt is hamq's MQTT 3.1.1 and 5 front-end. mochi-mqtt runs the
// wire protocol, the connections and the QoS flows; every message goes
// through the destination core, so MQTT, STOMP and the other front-ends
// meet in the same topics.
//
// Naming: MQTT topic a/b is core topic a.b, and the mapping swaps the two
// separators both ways, so an MQTT name holding a dot keeps it (a.b/c is
// core a/b.c, STOMP /topic/a/b.c); + is *, # is >. An MQTT name holding
// * or > cannot be sent to and is refused; topics starting with $ ($SYS)
// stay inside the MQTT front-end.
//
// In: a PUBLISH is sent to the core from mochi's OnPublish hook, on the
// client's read goroutine, and only then does mochi send PUBACK (PUBREC):
// confirmation follows durability. QoS 1 and 2 messages are persistent.
// The hook answers CodeSuccessIgnore, so mochi never fans out by itself.
//
// Out: each MQTT subscription is a core subscription. In a persistent
// session (clean session false, or MQTT 5 session expiry) a QoS 1 or 2
// subscription is a durable core subscription named by the filter under
// client id "mqtt:<client id>", so messages for an offline client are kept
// in the store. The core delivers to a per-session writer that hands the
// PUBLISH to mochi's client with a packet id in mochi's inflight table
// (resent on reconnect); PUBACK, or PUBREC for QoS 2, acknowledges it in
// the core. $share/GROUP/filter maps to the core's shared subscriptions.
//
// State: MQTT sessions, their subscriptions and retained messages are kept
// through the core's front-end state (keys mqtt/...), so they are in the
// store's log with everything else, never in a second database.
//
// It imports core and mochi-mqtt, never the store or ZooKeeper.
package mqtt
