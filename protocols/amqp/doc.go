// Package amqp is hamq's AMQP 1.0 front-end: it speaks the protocol (with
// the codec of package wire) to clients such as Qpid Proton, Qpid JMS,
// rhea and go-amqp, and maps it onto the destination core. It holds
// sockets and protocol state only; it never touches the store.
//
// # Connections
//
// A client may start with SASL (PLAIN or ANONYMOUS, checked against the
// broker's user store) or, when anonymous clients are allowed, with AMQP
// directly. Each connection is one core session; a goroutine reads frames
// in order, one writes, and one answers sends as they become durable.
//
// # Addresses
//
// queue://NAME and topic://NAME name core destinations; temp-queue:// and
// temp-topic:// name temporary ones, which dynamic termini create. A bare
// NAME is a queue (Options.BareAddress), or a topic when the terminus has
// the "topic" capability, as Qpid JMS sends. A sender link with no target
// address is an anonymous relay: each message's to field names its
// destination (the server offers ANONYMOUS-RELAY).
//
// # Links
//
// A link the client sends on gets Options.Credit, topped up as messages
// become durable; an unsettled message is accepted only once it is durable
// (stored, or held by a quorum in a cluster), and rejected with the
// condition that names the fault otherwise. A link the client receives from
// is a core subscription whose credit is the link credit (drain included);
// outcomes map to the core: accepted acknowledges, released puts the message
// back as it was, modified with delivery-failed counts a redelivery, and
// rejected dead-letters it. A receiver settling first (pre-settled, at most
// once) has each message acknowledged once it is written.
//
// A source with a durability other than none on a topic is a durable
// subscription named by the container id and the link name, as in ActiveMQ
// and Artemis; detaching with closed=true deletes it, while detaching
// without closing or dropping the connection keeps it. A client asking for
// sole-connection-for-container (Qpid JMS with a client id) holds its
// container id alone, as STOMP's client-id is held. A JMS selector
// (apache.org:selector-filter:string) and no-local filter are applied and
// echoed; other filters are left out of the answer, as the spec asks.
//
// # Messages
//
// Header and properties map onto the core message (durable to persistent,
// priority, ttl and absolute-expiry-time to expiration, message-id,
// correlation-id, reply-to, subject to type, content-type, creation-time,
// application properties to properties, delivery-count to the redelivery
// count). Bodies: data sections become the core body; an amqp-value string
// becomes a UTF-8 body of type text/plain, and a text/* body goes to AMQP
// receivers as an amqp-value string, so STOMP and MQTT text meets Proton
// strings; any other amqp-value, or amqp-sequences, are kept as their
// encoding under content type application/x-amqp-sections, so AMQP
// receivers get them back as sent.
//
// Local transactions: see txn.go. Not yet: distributed transactions,
// transactional acquisition (a flow naming a transaction), link resumption,
// and distribution mode copy (browsing).
package amqp
