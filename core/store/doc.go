// Package store is hamq's persistence: a LevelDB database holding the
// materialised state (keys chosen by the core) and an ordered log of the
// changes that produced it, for the HA layer to replicate.
//
// Every group commit is one record: the ops of all submissions gathered by
// the single committer goroutine, written in submission order together with
// the record itself and the log end, in one synced LevelDB batch. Positions
// are strictly increasing indexes tagged with the epoch in force.
//
// Keys beginning with 0x00 are the store's own and never the core's:
//
//	\x00log/<index:8>   a record: epoch, index, ops, and the undo image
//	\x00meta/end        epoch and index of the last record
//	\x00meta/epoch      the current epoch (fencing: never goes back)
//	\x00meta/trim       the first index still kept in the log
//	\x00meta/restoring  present while a snapshot restore is under way
//
// A record carries the prior value (or absence) of every key it touched, so
// Truncate can drop a suffix and restore the state exactly, as a rejoining
// old master must. Capturing it costs one Get per op, served mostly by the
// memtable and the bloom filter; the log is trimmed to Options.Retain
// records, so the space is bounded.
//
// This package imports nothing of hamq; core and ha import it.
package store
