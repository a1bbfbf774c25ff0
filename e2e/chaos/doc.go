// Package chaos is a Jepsen-style fault suite for a three-node hamq
// cluster: real hamq and ZooKeeper processes, each in a network namespace
// of its own on one Linux bridge, real clients of every protocol, and real
// faults (kill -9, SIGSTOP, packets dropped with iptables, a full disk, a
// rogue replication peer). Every client records what it sent, what the
// cluster confirmed and what it delivered into one History; Check turns a
// History into a table per fault kind: messages lost, invented or read
// dirty, confirmations by a master after another was promoted, rogue
// peers obeyed, and how long the cluster confirmed nothing.
//
// The non-test files are that history and its checker, pure code with no
// I/O, unit-tested with hand-made histories. The test files run the rest:
// lab (namespaces, bridge, iptables, tmpfs), node and cluster (hamq and
// ZooKeeper processes), clients, stomp, mqtt and amqp (the producers and
// consumers), workload (which clients a test runs, the final drain),
// faults and scheduler. TestChaos injects faults a seeded generator
// chooses, one after another, each healed and recovered from before the
// next; the other tests each inject one fault, deterministically, and
// assert what the cluster must do about it.
//
// TestChaos's load also has a pipelined producer that names its messages
// for the broker's duplicate window (_HQ_DUPL_ID), so its resends after a
// failover should add nothing to the duplicates column, and a scheduled
// flow (AMQ_SCHEDULED_DELAY 3 s, longer than a failover) whose messages
// must all arrive, none before its time and none twice from one master
// (copies a later master delivers again are counted and logged).
//
// Dirty reads are seen through witnesses: every flow on a topic has a
// durable subscription nobody reads until the final drain. A message and
// its witness's copy are stored in one record, so a copy a live consumer
// got that the witness does not hold after the drain was never stored.
//
// The suite needs root (namespaces, iptables, tmpfs mounts), Debian's
// iproute2, iptables and zookeeper packages, and it fails, never skips,
// without them. It holds the file lock hamq-e2e.lock in the temporary
// directory while it runs, as the e2e package does, so that go test ./...
// never runs both packages' clusters at once. Environment:
//
//	HAMQ_CHAOS_DURATION  how long TestChaos injects faults (default 45s)
//	HAMQ_CHAOS_SEED      the seed of its choices (default: the time; always printed)
//	HAMQ_CHAOS_MIN       least faults per kind, e.g. master-kill=50,slave-cut=20,zk-cut=20,pause=20
//	HAMQ_CHAOS_FAULTS    the fault kinds to inject (default all), e.g. master-kill,pause
//	HAMQ_CHAOS_REPORT    a file to write the table to, as Markdown
//	HAMQ_CHAOS_BIN       a hamq binary to test instead of building ../../cmd/hamq
//	HAMQ_CHAOS_KEEP      keep every test's logs and history (history.jsonl), not only a failed one's
//
// Fault kinds: master-kill, slave-kill, zk-kill, all-kill, pause-short,
// pause-long (alias pause: around the session timeout), slave-cut, zk-cut,
// disk-full, rogue. A long run:
//
//	HAMQ_CHAOS_DURATION=35m HAMQ_CHAOS_MIN=master-kill=50,slave-cut=20,zk-cut=20,pause=20 \
//	HAMQ_CHAOS_REPORT=chaos.md go test ./e2e/chaos -run 'TestChaos$' -v -timeout 90m
package chaos
