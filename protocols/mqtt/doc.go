// Package mqtt is hamq's MQTT 3.1.1 and 5 front-end. mochi-mqtt runs the
// wire protocol, the connections and the client's QoS flows; every message
// goes through the destination core, so MQTT, STOMP and the other
// front-ends meet in the same topics.
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
// What MQTT 5 says of a message beyond the core's fields travels as core
// properties (mapping.go): user properties (all of them, in order, with
// repeated keys, in the message's PropertyList), the Payload Format
// Indicator, RETAIN and the publisher's QoS.
//
// Out: each MQTT subscription is a core subscription. In a persistent
// session (clean session false, or MQTT 5 session expiry) a QoS 1 or 2
// subscription is a durable core subscription named by the filter under
// client id "mqtt:<client id>", so messages for an offline client are kept
// in the store. The session, not mochi, runs the server-to-client QoS
// flows (outbound.go): packet ids of its own, the client's Receive
// Maximum, and a backlog that waits in the core, in order and subject to
// expiry, while the client is away. $share/GROUP/filter maps to the core's
// shared subscriptions. Wills with a Will Delay Interval wait in the
// session (will.go).
//
// State: MQTT sessions, their subscriptions and retained messages are kept
// through the core's front-end state (keys mqtt/...), so they are in the
// store's log with everything else, never in a second database.
//
// It imports core and mochi-mqtt, never the store or ZooKeeper.
//
// # What hamq does where MQTT 5 (OASIS, 2019) leaves a choice or hamq deviates
//
//	clause                          what hamq does
//	------------------------------  --------------------------------------------------------------
//	3.2.2.3.14 Server Keep Alive    never sent: the client's Keep Alive stands, and a client with
//	  [MQTT-3.2.2-21]               Keep Alive 0 is never timed out by the server
//	3.2.2.3.5 Maximum QoS           2, so not sent in CONNACK; QoS 0, 1 and 2 all accepted
//	3.3.2.3.4 Topic Alias           accepted from clients (up to 65,535); never used towards a
//	                                client, which the server may choose
//	3.3.1.3 RETAIN                  a retained message is kept in the store (replicated) and, once
//	                                its Message Expiry passes, dropped, across restarts too
//	3.3.2.3.2 Payload Format        passed on; the payload is not checked for UTF-8, which the
//	  Indicator [MQTT-3.3.2-4]      server may do (reason 0x99)
//	3.3.2.3.7 Response Topic,       passed on; Request Response Information is not answered with
//	  3.1.2.11.6                    Response Information
//	3.3.4 Subscription Identifier   sent with each PUBLISH matching a subscription that has one;
//	  [MQTT-3.3.4-3]                one identifier per PUBLISH, since each subscription of a
//	                                session receives its own copy (3.3.4: "MAY send multiple
//	                                copies") rather than one carrying several
//	3.3.4 overlapping subscriptions a message matching several filters of one session is sent once
//	  [MQTT-3.3.4-2]                per filter, each at that filter's QoS
//	4.8.2 Shared Subscriptions      supported; retained messages are not sent to them; No Local on
//	  [MQTT-3.8.3-4]                one is refused (0x82); a shared subscription is not durable:
//	                                messages are kept for the group while some member is connected
//	4.3.1 QoS 0 to an offline       not stored: a persistent session's QoS 0 subscriptions (and
//	  persistent session            QoS 0 messages) are not kept while the client is away (the
//	                                server may choose, 3.1.2.4)
//	4.6 Message ordering            per topic and QoS, in the order published, also for a backlog
//	  [MQTT-4.6.0-6]                and after a restart or failover; what was in flight comes
//	                                again with DUP=1
//	3.1.2-24, 3.1.2-25 Maximum      a message larger than the client's Maximum Packet Size is
//	  Packet Size                   discarded for that client as if delivered
//	4.12 Enhanced authentication    not supported: an Authentication Method in CONNECT is ignored
//	  [MQTT-4.12.0-1]               and the user name and password decide; AUTH is never sent
//	4.11 Server redirection         not used: a slave refuses connections (the TCP port is closed)
//	                                rather than naming the master with Server Reference
//	4.7.1 Topic names               * and > cannot be in a topic name (they are core wildcards):
//	                                refused with 0x90 Topic Name invalid; a dot in a name maps to
//	                                a slash in the core (see Naming); $ topics are MQTT's own
//	3.1.2.5 Will Delay Interval     at most the session's expiry (and hamq's SessionExpiry); a will
//	  [MQTT-3.1.3-9]                whose session ends first is sent then
//	3.1.2.11.2 Session Expiry       capped at Options.SessionExpiry (7 days by default), which
//	                                CONNACK says when the client asked for more
//	4.13.1 Malformed Packet         a packet mochi cannot decode (a property running past its end,
//	                                QoS 3, ...) closes the connection without the DISCONNECT 0x81
//	                                the server SHOULD send; errors found once it is decoded (a
//	                                wildcard in a topic name, ...) get DISCONNECT with their code
//	MQTT 3.1.1 3.14 DISCONNECT      mochi sends DISCONNECT to a 3.1.1 client whose session another
//	                                connection takes over, a packet 3.1.1 servers never send; the
//	                                connection then closes, as 3.1.1 requires
package mqtt
