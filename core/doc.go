// Package core is hamq's destination core: queues, topics, subscriptions,
// dispatch, acknowledgements, redelivery, dead letters, expiry, transactions
// and flow control, on top of a Store whose changes form an ordered log.
//
// Front-ends (protocols/...) open a Session per client connection and map
// their frames onto Session's methods; they never touch the store. The core
// does no network I/O and imports no protocol or ZooKeeper code.
//
// Every holder of messages is a msgQueue: a queue's, a durable topic
// subscription's (stored like a queue) or a non-durable subscription's
// (memory only, oldest dropped past TopicPendingLimit). A topic keeps no
// messages itself; a send to it puts a copy in every matching subscription's
// msgQueue, so a durable subscriber that is away misses nothing.
//
// Persistence: a send or an acknowledgement changes memory and submits its
// store ops while holding the locks of the queues it touches, so the log
// orders ops on one queue as memory did. Dispatch is read-committed: a
// message goes to consumers only once the store can no longer lose it;
// otherwise a master cut off from its slaves would hand out, and see
// acknowledged, messages it drops with its log's unconfirmed suffix when it
// rejoins. So while the commit of a send (or a transaction) stores
// anything, the copies it makes, in every queue and stored or not, wait in
// their queue's unconfirmed list; once the commit is confirmed (held by the
// quorum the sync policy names; standalone, synced) they become pending, or
// are dropped if it failed. A commit that stores nothing (non-persistent
// messages only) is dispatched at once, so such a message may overtake a
// persistent one sent before it, as JMS allows across delivery modes. Store
// keys are in codec.go.
//
// Locks: Broker.mu guards the registry and is never held while taking
// another lock. msgQueue.mu locks are taken in ascending queue id when an
// operation spans queues; Session.mu may be taken under a msgQueue.mu (to
// record a delivery), never the other way round. Consumer.Deliver runs under
// the queue's lock and must not call back into the core. A commit's end is
// reported on the store's goroutines, which must not block, so there queue
// locks are only tried (unconfirmed.go).
package core
