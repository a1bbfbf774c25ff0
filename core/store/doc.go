// Package store is hamq's persistence: a LevelDB database holding the
// materialised state (keys chosen by the core) and an ordered log of the
// changes that produced it, for the HA layer to replicate.
//
// It imports nothing of hamq; core and ha import it.
//
// # Group commit
//
// Submit queues a submission (at most Options.QueueLen wait; Submit
// blocks beyond) and returns a Commit. Whoever writes takes everything
// queued at that instant, in submission order, under one write lock, and
// writes it as records of up to Options.MaxGroupOps / MaxGroupBytes each:
// one leveldb.Batch holding every op of the group in submission order,
// the log entry and the new log end, written with Sync (without, for a
// Confirmer that confirms on other nodes' memory: MemoryQuorum). While
// that fsync runs the next submissions pile up and share the next one.
//
// The writer is the committer goroutine, woken by Submit, which yields
// once before taking the queue so that writers just woken by the previous
// group can resubmit and join (with 8 waiting writers this about doubles
// the ops per fsync); or a submitter itself: SubmitHeld queues without
// waking anyone, and the Flush that follows writes the queue from the
// caller's goroutine when no group is being written (else the committer
// writes it next). A front-end's reader does so for a client that waits
// for its answer, whose send then goes to the disk, and its commit's
// callbacks run, with no goroutine woken in between. LevelDB's own write
// merging is not used for this: it merges concurrent writes in no defined
// order, and positions must follow submission order.
//
// Lazy commits (SubmitLazy: acknowledgements nobody waits on) wait in the
// queue, outside its bound, for the next group that is not lazy, and are
// written in its record and fsync; alone once the oldest has waited
// lazySync, or once they make a group of their own. A stop-and-wait
// producer's next send carries its consumer's acknowledgement to disk:
// one write and one fsync a message, where each acknowledgement had both
// of its own.
//
// # Journal
//
// Open hands LevelDB journals that keep 256 KiB of zeros written and
// synced ahead of their end (zeroAheadStorage): a sync that follows an
// overwrite of such blocks flushes data alone, where one that follows an
// append also commits the file's growth. On the reference VM a 10 KiB
// write and its fsync took 133 µs instead of 227. A journal left by a
// crash ends in those zeros, which LevelDB's reader drops block by block
// (logged in its LOG) and reads past.
//
// # Key layout
//
// Keys starting with 0x00 are reserved to the store (a record writing one
// is refused); the core's keys start with printable characters, and Scan
// and snapshots never show reserved ones:
//
//	\x00log/<index: 8 bytes big endian>  a log entry
//	\x00meta/end        the last record: epoch, index, log bytes (8 bytes each)
//	\x00meta/base       the last record trimmed away, same encoding
//	\x00meta/epoch      the fenced epoch (8 bytes); never goes back
//	\x00meta/restoring  present while a snapshot restore is under way
//
// # Records
//
// A record is (epoch, index, ops). Record.Encode is its wire form: uvarint
// epoch, uvarint index, uvarint op count, then per op a flag byte (0 put,
// 1 delete), the uvarint-length-prefixed key and, for a put, value. A log
// entry is the size of the log in bytes through this record (8 bytes big
// endian), the encoded record, then its undo image in the same op encoding.
// Indexes start at 1 and increase by one; the epoch is the store's at
// write time (SetEpoch; raised by Apply).
//
// # Trimming
//
// The log keeps Options.RetainRecords records and RetainBytes bytes (100,000
// and 64 MiB by default). The committer deletes the oldest records in the
// same batch that writes a new one, at most 8 per group; the epoch and
// cumulative size of the last one deleted become the base. The cumulative
// size stored in each entry is what lets the committer bound the log's
// bytes without reading the records it keeps. The store keeps these
// (24 bytes a record) for the records written since it was opened, and
// reads back only older ones: a record is a whole group of messages,
// which was read back in full just to be deleted.
//
// # Truncate
//
// A record a master's committer writes (one with a Confirmer set)
// carries an undo image in its log entry: for every key it touches, the
// value before (a put) or its absence (a delete), read from the live
// database under the write lock, which is exactly the state before the
// record. Truncate applies the images of the dropped records, newest
// first, in one synced batch with the new end, so the state is exactly
// what it was at the kept end, as a rejoining old master needs for the
// suffix it wrote and no slave got. The cost is log space for the
// images (an ack's image is the whole message) and a Get per op of a key
// no recent record touched: the last op on each key of the last few MiB
// written is its next image, kept in memory (recentOps), which also
// keeps goleveldb from leaking its memtables.
//
// A standalone store's records carry none: nothing asks it to drop what
// it wrote, and reading back what an acknowledgement deletes (the whole
// message) was most of its cost. Should the directory later join a
// cluster, a Truncate over them drops the log, as below.
//
// A record a slave applies (Apply) carries none: slaves did that work
// for every record and needed it only when a master died holding records
// that a later master never had, which a fenced quorum makes rare (the
// new master fetches the longest log among those it fences). Leaving
// them out raised a 3-node cluster on one 2-core machine from 13.7k to
// 15.3k persistent msgs/s (median of five). Truncating over such a
// record drops the whole log, keeping the state at the old end
// (ErrNoUndo); the store then shares no record with any master's log,
// and the master sends it a snapshot.
//
// # Replication seam
//
// End, SetEpoch, ReadFrom, Apply, Snapshot, Restore, Truncate and an
// optional Confirmer. Records cross it in their Encode form: a Tap is
// shown the bytes of the log entry just made, ReadFrom hands out those in
// LevelDB and Apply takes a record as received, so a record is encoded
// once, by the master that writes it. With a Confirmer set, each record
// goes to Confirm after its local write, in order, from a goroutine of
// its own so the committer writes the next group meanwhile, and
// Commit.Wait returns once both are done; unless the Confirmer says it
// is confirmed already (ConfirmedNow) and none before it waits, when the
// writer finishes it at once. Confirm gets a context that Close cancels;
// it must return in bounded time, since past 1024 records awaiting it the
// committer waits.
//
// # Failures
//
// A failed write fails every commit of its group and puts the store in a
// failed state (ErrFailed, logged) that refuses all writes until it is
// reopened: LevelDB may hold part of what failed, and reopening replays its
// journal to a consistent state. A restore broken off leaves the restoring
// mark: the store then refuses writes (ErrRestoreInterrupted), across
// restarts, until a restore completes.
package store
