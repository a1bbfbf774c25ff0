package store

import (
	"encoding/binary"
	"fmt"

	"github.com/syndtr/goleveldb/leveldb"
	"github.com/syndtr/goleveldb/leveldb/opt"
	"github.com/syndtr/goleveldb/leveldb/util"
)

// This file is the seam the HA layer replicates through: the log end, the
// epoch, reading and applying records, snapshots and truncation.

// End is the epoch and index of the last record.
func (s *Store) End() Position {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.end.Position
}

// Base is the last record trimmed away (or the position a snapshot was
// restored at): ReadFrom and Truncate reach back to Base().Index, no further.
func (s *Store) Base() Position {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.base.Position
}

// Epoch is the epoch new records carry.
func (s *Store) Epoch() uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.epoch
}

// SetEpoch durably raises the epoch; records written from now on carry it
// and Apply refuses older ones. Lowering it is refused.
func (s *Store) SetEpoch(epoch uint64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	// A store whose restore was broken off is still fenced: the master
	// that fences it sends it a snapshot.
	if s.failed != nil && s.failed != ErrRestoreInterrupted {
		return s.failed
	}
	if epoch < s.epoch {
		return fmt.Errorf("store: epoch %d is older than the current %d", epoch, s.epoch)
	}
	if err := s.db.Put(keyEpoch, binary.BigEndian.AppendUint64(nil, epoch), &opt.WriteOptions{Sync: true}); err != nil {
		return s.fail(fmt.Errorf("set epoch %d: %w", epoch, err))
	}
	s.epoch = epoch
	return nil
}

// ReadFrom calls fn for each record after index after, in its Encode
// form, in order, up to the end at the time of the call; enc is valid
// only during the call. ErrTrimmed means a snapshot is needed.
func (s *Store) ReadFrom(after uint64, fn func(index uint64, enc []byte) error) error {
	s.mu.Lock()
	base, end := s.base.Index, s.end.Index
	s.mu.Unlock()
	if after >= end {
		return nil
	}
	if after < base {
		return fmt.Errorf("%w: asked from %d, log starts at %d", ErrTrimmed, after+1, base+1)
	}
	// The iterator reads a consistent view, so records trimmed meanwhile
	// show as a gap, never as a torn read.
	it := s.db.NewIterator(&util.Range{Start: logKey(after + 1), Limit: logKey(end + 1)}, nil)
	defer it.Release()
	next := after + 1
	for it.Next() {
		enc, index, err := entryRecord(it.Value())
		if err != nil {
			return fmt.Errorf("store: read record %d: %w", next, err)
		}
		if index != next {
			return fmt.Errorf("%w: record %d is gone", ErrTrimmed, next)
		}
		if err := fn(index, enc); err != nil {
			return err
		}
		next++
	}
	if err := it.Error(); err != nil {
		return fmt.Errorf("store: read records: %w", err)
	}
	if next != end+1 {
		return fmt.Errorf("%w: record %d is gone", ErrTrimmed, next)
	}
	return nil
}

// Apply writes a record received from the master, in its Encode form:
// its data, its log entry and the new end in one batch, synced when sync
// is set (a slave under quorum_mem acknowledges written records, fsynced
// or not; syncing the last of a run makes the journal durable up to
// it). It must follow the end directly, and a log's epochs never go
// back. Records of epochs older than the fenced one are fine: a
// catching-up node receives old epochs' records from the master of a
// newer one. Fencing is the replication session's job (SetEpoch), not
// the record's. The store keeps nothing of enc.
func (s *Store) Apply(enc []byte, sync bool) error {
	rec, err := decodeRecord(enc)
	if err != nil {
		return fmt.Errorf("store: apply: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if rec.Index != s.end.Index+1 {
		return fmt.Errorf("store: record %d does not follow the end %d", rec.Index, s.end.Index)
	}
	if rec.Epoch < s.end.Epoch {
		return fmt.Errorf("store: record %d of epoch %d follows one of epoch %d", rec.Index, rec.Epoch, s.end.Epoch)
	}
	if err := checkKeys(rec.Ops); err != nil {
		return fmt.Errorf("store: record %d: %w", rec.Index, err)
	}
	// The entry holds no undo image: see the package doc, Truncate.
	s.recent.clear()
	s.entry = append(append(s.entry[:0], make([]byte, entryHead)...), enc...)
	return s.write(rec, s.entry, sync)
}

// Epochs lists where each epoch of the log begins, oldest first, starting
// with the base (the last record trimmed away, or the zero position): the
// HA layer compares two logs by these boundaries to find where they part.
// It returns the end the boundaries describe: a master keeps writing, and
// an end read apart could hold a newer epoch's records that the boundaries
// miss, making two different records look the same.
func (s *Store) Epochs() ([]Position, Position, error) {
	s.mu.Lock()
	base, end := s.base, s.end
	s.mu.Unlock()
	bounds := []Position{base.Position}
	if end.Index == base.Index {
		return bounds, end.Position, nil
	}
	it := s.db.NewIterator(&util.Range{Start: logKey(base.Index + 1), Limit: logKey(end.Index + 1)}, nil)
	defer it.Release()
	for it.Next() {
		m, err := decodeLogHead(it.Value())
		if err != nil {
			return nil, Position{}, fmt.Errorf("store: epochs: %w", err)
		}
		if m.Epoch != bounds[len(bounds)-1].Epoch {
			bounds = append(bounds, m.Position)
		}
	}
	if err := it.Error(); err != nil {
		return nil, Position{}, fmt.Errorf("store: epochs: %w", err)
	}
	return bounds, end.Position, nil
}

// Truncate drops the records after index after, restoring the state they
// changed from their undo images, as a rejoining node must for a suffix
// the master never had. When one of them was applied without an undo
// image (as a slave, by Apply) the state cannot be rolled back: Truncate
// then drops the whole log, keeping the state at its end, and returns
// ErrNoUndo. The store shares no record with any other log any more, so
// a master sends it a snapshot.
func (s *Store) Truncate(after uint64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.failed != nil {
		return s.failed
	}
	if after >= s.end.Index {
		return nil
	}
	if after < s.base.Index {
		return fmt.Errorf("%w: cannot truncate to %d, log starts at %d", ErrTrimmed, after, s.base.Index+1)
	}
	s.recent.clear()
	var b leveldb.Batch
	end := s.base
	// Newest first: where records touched the same key, the oldest undo
	// image is put last in the batch and wins.
	for i := s.end.Index; i >= after && i > s.base.Index; i-- {
		v, err := s.db.Get(logKey(i), nil)
		if err != nil {
			return fmt.Errorf("store: truncate: record %d: %w", i, err)
		}
		logBytes, rec, undo, withUndo, err := decodeLogEntry(v)
		if err != nil {
			return fmt.Errorf("store: truncate: record %d: %w", i, err)
		}
		if !withUndo && i > after {
			return s.dropLog(i)
		}
		if i == after {
			end = mark{Position{rec.Epoch, rec.Index}, logBytes}
			break
		}
		for _, op := range undo {
			if op.Delete {
				b.Delete(op.Key)
			} else {
				b.Put(op.Key, op.Value)
			}
		}
		b.Delete(logKey(i))
	}
	b.Put(keyEnd, end.encode())
	if err := s.db.Write(&b, &opt.WriteOptions{Sync: true}); err != nil {
		return s.fail(fmt.Errorf("truncate to %d: %w", after, err))
	}
	s.log.Info("truncated the log", "from", s.end.Index, "to", after)
	s.end = end
	for len(s.marks) > 0 && s.marks[len(s.marks)-1].Index > end.Index {
		s.marks = s.marks[:len(s.marks)-1]
	}
	return nil
}

// dropLog deletes every record, leaving the state as it is at the end, for
// a Truncate that met record i without an undo image. s.mu is held.
func (s *Store) dropLog(i uint64) error {
	var b leveldb.Batch
	for j := s.base.Index + 1; j <= s.end.Index; j++ {
		b.Delete(logKey(j))
	}
	b.Put(keyBase, s.end.encode())
	if err := s.db.Write(&b, &opt.WriteOptions{Sync: true}); err != nil {
		return s.fail(fmt.Errorf("drop the log: %w", err))
	}
	s.log.Info("dropped the log: a record to undo was applied without an undo image", "record", i, "end", s.end.Index)
	s.base, s.marks = s.end, nil
	return fmt.Errorf("%w (record %d)", ErrNoUndo, i)
}

// Snapshot is a consistent view of the state at a position.
type Snapshot struct {
	Position Position
	snap     *leveldb.Snapshot
}

// Snapshot takes a view of the whole state and the position it reflects.
// Release it promptly: it pins LevelDB's files.
func (s *Store) Snapshot() (*Snapshot, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	snap, err := s.db.GetSnapshot()
	if err != nil {
		return nil, fmt.Errorf("store: snapshot: %w", err)
	}
	return &Snapshot{Position: s.end.Position, snap: snap}, nil
}

// Each calls fn for every key of the state (not the log), in key order;
// key and value are valid only during the call.
func (sn *Snapshot) Each(fn func(key, value []byte) error) error {
	return eachState(sn.snap.NewIterator(&util.Range{Start: firstDataKey}, nil), fn)
}

// SizeOf estimates the bytes the state takes on disk, to report the
// progress of a snapshot sent to a joining node.
func (s *Store) SizeOf() (uint64, error) {
	sizes, err := s.db.SizeOf([]util.Range{{Start: firstDataKey, Limit: []byte{0xff}}})
	if err != nil {
		return 0, fmt.Errorf("store: size: %w", err)
	}
	return uint64(sizes.Sum()), nil
}

// Release lets the snapshot's files go.
func (sn *Snapshot) Release() { sn.snap.Release() }

// restoreChunk bounds the batches of a restore, which need no atomicity
// of their own: the restoring mark covers them all.
const restoreChunk = 4 << 20

// Restore replaces the whole state and log by a snapshot taken at pos,
// streamed by next until it reports ok false. Until it succeeds, the store
// refuses writes, across restarts too, and shows an empty log; the fenced
// epoch stays. The store's lock is not held while the snapshot streams
// in, which takes minutes for gigabytes: End, Epoch and the rest answer
// meanwhile. One Restore at a time.
func (s *Store) Restore(pos Position, next func() (key, value []byte, ok bool, err error)) error {
	s.mu.Lock()
	if s.failed != nil && s.failed != ErrRestoreInterrupted {
		defer s.mu.Unlock()
		return s.failed
	}
	if err := s.db.Put(keyRestoring, []byte{1}, &opt.WriteOptions{Sync: true}); err != nil {
		defer s.mu.Unlock()
		return s.fail(fmt.Errorf("restore: %w", err))
	}
	s.failed = ErrRestoreInterrupted
	s.end, s.base, s.marks = mark{}, mark{}, nil
	s.recent.clear()
	s.mu.Unlock()

	var b leveldb.Batch
	flush := func(sync bool) error {
		if err := s.db.Write(&b, &opt.WriteOptions{Sync: sync}); err != nil {
			s.mu.Lock()
			defer s.mu.Unlock()
			return s.fail(fmt.Errorf("restore: %w", err))
		}
		b.Reset()
		return nil
	}
	it := s.db.NewIterator(nil, nil)
	for it.Next() {
		// The mark and the fence stay: a restart midway must still know
		// both.
		if k := string(it.Key()); k == string(keyRestoring) || k == string(keyEpoch) {
			continue
		}
		b.Delete(it.Key()) // Delete copies the key
		if len(b.Dump()) >= restoreChunk {
			if err := flush(false); err != nil {
				it.Release()
				return err
			}
		}
	}
	it.Release()
	if err := it.Error(); err != nil {
		return fmt.Errorf("store: restore: clear: %w", err)
	}
	for {
		k, v, ok, err := next()
		if err != nil {
			return fmt.Errorf("store: restore: %w", err)
		}
		if !ok {
			break
		}
		if reserved(k) {
			return fmt.Errorf("store: restore: snapshot holds a reserved key %q", k)
		}
		b.Put(k, v)
		if len(b.Dump()) >= restoreChunk {
			if err := flush(false); err != nil {
				return err
			}
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	at := mark{Position: pos}
	epoch := max(s.epoch, pos.Epoch)
	b.Put(keyEnd, at.encode())
	b.Put(keyBase, at.encode())
	b.Put(keyEpoch, binary.BigEndian.AppendUint64(nil, epoch))
	b.Delete(keyRestoring)
	if err := s.db.Write(&b, &opt.WriteOptions{Sync: true}); err != nil {
		return s.fail(fmt.Errorf("restore: %w", err))
	}
	s.end, s.base, s.epoch, s.failed, s.marks = at, at, epoch, nil, nil
	s.log.Info("restored a snapshot", "epoch", pos.Epoch, "index", pos.Index)
	return nil
}
