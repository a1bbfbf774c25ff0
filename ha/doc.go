// Package ha makes a group of hamq nodes one highly-available broker: it
// elects a master through ZooKeeper, replicates the store's log from the
// master to the slaves, and runs the client-facing Services only on the
// master. It knows nothing of wire protocols.
//
// # Election (ZooKeeper)
//
// Under zkPath/brokerName each node registers an ephemeral sequential
// znode (members/n-...) holding its id, replication address, admin URL and
// log end. When no master znode exists and a quorum has registered, the
// registered node with the greatest log end (epoch first, then index, then
// the earliest registration) creates the ephemeral master znode and moves
// the epoch counter znode with a versioned write, both in one Multi: an
// epoch is therefore unique and only ever grows. The registrations' log
// ends only choose who tries first; correctness comes from fencing.
//
// # Fencing and sync (replication protocol)
//
// The new master dials every member's bind address and sends HELLO with
// its epoch. A member durably records the epoch (store.SetEpoch), ends any
// session of an older master, refuses older epochs from then on (also
// after a restart), and answers STATE: its fenced epoch, log end and epoch
// boundaries. A member that leads an older epoch steps down first. Once a
// quorum (counting itself) has answered, the master fetches the log of the
// fenced member with the greatest end, if that is not its own (FETCH). Any
// record a quorum acknowledged under an older epoch is on at least one
// fenced member, so it survives. Then every member is brought to the
// master's log: the two logs part where their epoch boundaries first
// disagree (Raft's log matching, found as in Kafka's leader-epoch
// truncation); the member drops its suffix after that point (TRUNCATE),
// or gets a snapshot (SNAPSHOT, SNAPDATA, SNAPEND) when the master's log
// no longer reaches back there, and then the records (RECORD). Client
// listeners open only once a quorum holds the master's whole log.
//
// # Confirmation
//
// The replicator is the store's Confirmer: a commit is confirmed once the
// master has fsynced it and quorum-1 slaves acknowledged (ACK) writing it
// (quorum_mem) or fsyncing it (quorum_disk), while ZooKeeper is
// reachable. StateDisconnected suspends confirming at once; an expired or
// replaced session, a member fenced by a newer epoch, or the master znode
// gone make the master step down: its Services stop, waiting commits fail
// with ErrNotMaster (never confirmed), and the store is reopened so that
// nothing of the old epoch is written after a newer master fences it. A
// master paused (SIGSTOP) past its session finds its slaves fenced when it
// wakes and can confirm nothing.
//
// Messages are length-prefixed (4 bytes) with a type byte; fields are
// uvarints. A master sends SYNCED with its end when idle (every 500 ms), a
// slave drops a master it has not heard from for 5 s.
package ha
