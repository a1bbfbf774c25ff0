// Package ha makes a group of hamq nodes one highly-available broker: it
// elects a master through ZooKeeper, replicates the store's log from the
// master to the slaves, and runs the client-facing Services only on the
// master. It knows nothing of wire protocols.
//
// # Election (ZooKeeper)
//
// Under zkPath/brokerName each node registers an ephemeral sequential
// znode (members/n-...) holding its id, replication address, admin URL,
// log end and whether it stands aside; a node counts once, by its newest
// registration. When no master znode exists and a quorum has registered,
// the registered node with the greatest log end (epoch first, then index,
// then the earliest registration) that does not stand aside creates the
// ephemeral master znode, naming itself and the new epoch, and moves the
// epoch counter znode with a versioned write, both in one Multi: an epoch
// is therefore unique and only ever grows. The registrations' log ends
// only choose who tries first; correctness comes from fencing. Each node
// keeps one watch on the master znode and one on the members, armed again
// only once fired.
//
// # Authentication, fencing and sync (replication protocol)
//
// The new master dials every member's bind address. Before anything else
// both prove the cluster secret in a challenge-response over fresh nonces
// and the HELLO (auth.go), and every later message of the connection
// carries a MAC keyed from the secret and both nonces. The member then
// checks the HELLO's master id and epoch against the master znode (after
// a ZooKeeper sync if they disagree), and only then durably records the
// epoch (store.SetEpoch), ends any session of an older master, refuses
// older epochs from then on (also after a restart), and answers STATE: its
// fenced epoch, log end and epoch boundaries. A member that leads an
// older epoch steps down first. Once a quorum (counting itself) has
// answered within a session timeout, the master fetches the log of the
// fenced member with the greatest end, if that is not its own (FETCH). Any
// record a quorum acknowledged under an older epoch is on at least one
// fenced member, so it survives. Then every member is brought to the
// master's log: the two logs part where their epoch boundaries first
// disagree (Raft's log matching, found as in Kafka's leader-epoch
// truncation); the member drops its suffix after that point (TRUNCATE),
// or gets a snapshot (SNAPSHOT, SNAPDATA, SNAPEND) when the master's log
// no longer reaches back there or its own restore was broken off, and
// then the records (RECORD). Client listeners open only once a quorum
// holds the master's whole log. Every read and write of a connection has
// a deadline of its own, so a snapshot of gigabytes takes as long as it
// needs while each step must make progress; the receiving node reports
// the transfer's progress (CatchUp in its Status) and a restore broken
// off is redone from the start in the next session.
//
// # Confirmation and leadership
//
// The replicator is the store's Confirmer: a commit is confirmed once the
// master and quorum-1 slaves hold it, and while the master's lease holds.
// Under quorum_mem they have written it, fsynced or not, as ActiveMQ's
// quorum_mem means (its local_mem and remote_mem): the master writes
// records without an fsync (store.MemoryQuorum), since the kernel keeps a
// write through a crash of any process and a confirmed record is lost
// only if every node holding it loses power at once; the fsync had been
// most of a stop-and-wait send's time and of the master's CPU. Under
// quorum_disk, and when the master is the whole quorum, they have
// fsynced it. The lease runs from when a request left for ZooKeeper that,
// after a sync, still found this term's master znode, for three quarters
// of the session timeout: ZooKeeper expires the session no sooner than a
// full timeout after that request, and no newer master can exist before,
// so no confirmation leaves an old master (a paused one, say) after a new
// one is promoted. A master checks its authority on its own clock: no
// ZooKeeper answer for a session timeout, or no acknowledgement from a
// quorum for a session timeout (Raft's CheckQuorum), and it steps down by
// itself, without waiting for the ZooKeeper client to notice; so do a
// failed store, a member fenced by a newer epoch, a record not confirmed
// within confirmTimeout of its submission, and an expired or replaced
// session. Stepping down fails what waits (with ErrNotMaster and why),
// stops the Services, reopens the store, and only then gives up the
// master znode; a master that lost its quorum or failed to lead first
// says in its registration that it stands aside, so that the nodes it
// cannot reach elect one among themselves though its log may be longer.
//
// A store that fails (a full disk, an I/O error) is closed and reopened
// once its disk has room; until then the node is out of the cluster and
// reports itself unhealthy.
//
// Messages are length-prefixed (4 bytes) with a type byte; fields are
// uvarints. A master sends SYNCED with its end when idle (every 500 ms),
// and a slave acknowledges every message, so both hear from each other.
package ha
