package core

import (
	"github.com/hamq/hamq/core/store"
)

// This file holds the types of the contract with front-ends and the admin
// API; Broker (broker.go, admin.go) and Session (session.go) carry the
// methods.

// Store is what the core needs of persistence; core/store implements it.
type Store interface {
	// Submit queues ops to be written atomically, in submission order, as
	// one record of the log. It blocks only when the commit queue is full.
	Submit(ops []store.Op) *store.Commit
	// SubmitThen is Submit with then called once the commit is done, with
	// Wait's error, on the goroutine that finishes it (the committer's, a
	// Confirmer's, or the caller's when it fails at once). then must not
	// block: the committer waits for it.
	SubmitThen(ops []store.Op, then func(error)) *store.Commit
	// SubmitLazy is Submit for what nobody waits to be durable: it needs
	// no fsync of its own, and a crash may lose it.
	SubmitLazy(ops []store.Op) *store.Commit
	// SubmitHeld is SubmitThen for a caller that calls Flush right after:
	// no committer is woken for it.
	SubmitHeld(ops []store.Op, then func(error)) *store.Commit
	// Flush writes what is queued from the calling goroutine, unless a
	// group is being written (the committer then writes it next).
	Flush()
	// Scan calls fn for every key with the prefix, in key order.
	Scan(prefix []byte, fn func(key, value []byte) error) error
	// Get reads one key; found is false when it is not there (yet).
	Get(key []byte) (value []byte, found bool, err error)
}

// ConnInfo describes a client connection for the admin API and durable
// subscriptions.
type ConnInfo struct {
	Protocol   string // "stomp", "mqtt", "amqp"
	RemoteAddr string
	ClientID   string // empty unless the client gave one
	User       string
}

// SubSpec says what a subscription receives.
type SubSpec struct {
	Dest Destination // queue, topic or temporary; topic names may hold * and >
	// Durable names a durable topic subscription, identified by the
	// session's client id and this name; it keeps messages while offline.
	Durable string
	// ClientID, when set, stands for the session's client id in a durable
	// subscription's identity: an AMQP container may hold several
	// connections, so its id cannot be a connection's.
	ClientID string
	// Shared names a group of topic subscribers that compete for each
	// message instead of each getting a copy (MQTT 5 $share/GROUP/filter):
	// subscriptions with the same group and pattern share one queue, which
	// lives while it has a member.
	Shared   string
	Selector string // JMS message selector; empty matches everything
	Prefetch int    // credit: most unacknowledged deliveries; 0 means default
	NoLocal  bool   // skip messages sent by this session
	// LinkCredit makes the front-end the only source of credit, as AMQP's
	// link credit is: the subscription starts with none, SetCreditLimit
	// grants it, and acknowledgements give none back. Prefetch is then unused.
	LinkCredit bool
}

// Delivery hands one message to a consumer. Msg is shared: read it, never
// change it.
type Delivery struct {
	Tag uint64 // unique within the session; name it in Ack and Nack
	Sub *Subscription
	Msg *Message
}

// Consumer receives deliveries. Deliver must not block and must not call
// back into the core (it runs under a queue's lock): the core never has more
// than the subscription's prefetch unacknowledged with a consumer, so a
// buffer of that size always has room.
type Consumer interface {
	Deliver(d Delivery)
}

// DestStats are a destination's counters, as the admin API shows them.
type DestStats struct {
	Dest         Destination
	Size         int64 // messages held (pending and unacknowledged)
	Enqueued     int64
	Dequeued     int64
	Consumers    int64
	DeadLettered int64
	Expired      int64
	Dropped      int64 // slow-consumer drops (topics)
	Duplicates   int64 // resends the duplicate window dropped (dedup.go)
	MemoryBytes  int64
	MemoryLimit  int64 // producers wait beyond it
}

// ConnStats describes one open session for the admin API.
type ConnStats struct {
	ID            uint64
	Info          ConnInfo
	Subscriptions int
	Unacked       int
}
