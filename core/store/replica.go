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
	return s.end
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
	if epoch < s.epoch {
		return fmt.Errorf("store: epoch %d is older than the current %d", epoch, s.epoch)
	}
	if err := s.db.Put(keyEpoch, binary.BigEndian.AppendUint64(nil, epoch), &opt.WriteOptions{Sync: true}); err != nil {
		return s.fail(err)
	}
	s.epoch = epoch
	return nil
}

// ReadFrom calls fn for each record after index after, in order, up to the
// end at the time of the call. ErrTrimmed means a snapshot is needed.
func (s *Store) ReadFrom(after uint64, fn func(Record) error) error {
	s.mu.Lock()
	trim, end := s.trim, s.end.Index
	s.mu.Unlock()
	if after+1 < trim {
		return fmt.Errorf("%w: asked from %d, log starts at %d", ErrTrimmed, after+1, trim)
	}
	it := s.db.NewIterator(&util.Range{Start: logKey(after + 1), Limit: logKey(end + 1)}, nil)
	defer it.Release()
	next := after + 1
	for it.Next() {
		rec, err := DecodeRecord(it.Value())
		if err != nil {
			return err
		}
		if rec.Index != next {
			return fmt.Errorf("%w: record %d is missing", ErrTrimmed, next)
		}
		if err := fn(rec); err != nil {
			return err
		}
		next++
	}
	return it.Error()
}

// Apply writes a record received from the master: its data, its log entry
// and the new end in one synced batch. It must follow the end directly and
// carry at least the current epoch.
func (s *Store) Apply(rec Record) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if rec.Index != s.end.Index+1 {
		return fmt.Errorf("store: record %d does not follow the end %d", rec.Index, s.end.Index)
	}
	if rec.Epoch < s.epoch || rec.Epoch < s.end.Epoch {
		return fmt.Errorf("store: record %d of epoch %d is older than epoch %d", rec.Index, rec.Epoch, s.epoch)
	}
	rec.Undo = nil // recomputed against this store's own state
	if _, err := s.write(rec); err != nil {
		return err
	}
	s.epoch = max(s.epoch, rec.Epoch)
	return nil
}

// Truncate drops the records after index after, restoring the state they
// changed, as a rejoining node must for a suffix the master never had.
func (s *Store) Truncate(after uint64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.failed != nil {
		return s.failed
	}
	if after >= s.end.Index {
		return nil
	}
	if after+1 < s.trim {
		return fmt.Errorf("%w: cannot truncate to %d, log starts at %d", ErrTrimmed, after, s.trim)
	}
	var b leveldb.Batch
	for i := s.end.Index; i > after; i-- {
		v, err := s.db.Get(logKey(i), nil)
		if err != nil {
			return fmt.Errorf("store: truncate: record %d: %w", i, err)
		}
		rec, err := DecodeRecord(v)
		if err != nil {
			return err
		}
		for _, op := range rec.Undo {
			if op.Delete {
				b.Delete(op.Key)
			} else {
				b.Put(op.Key, op.Value)
			}
		}
		b.Delete(logKey(i))
	}
	end := Position{}
	if after > 0 {
		v, err := s.db.Get(logKey(after), nil)
		if err != nil {
			return fmt.Errorf("store: truncate: record %d: %w", after, err)
		}
		rec, err := DecodeRecord(v)
		if err != nil {
			return err
		}
		end = Position{rec.Epoch, rec.Index}
	}
	b.Put(keyEnd, encodePosition(end))
	if err := s.db.Write(&b, &opt.WriteOptions{Sync: true}); err != nil {
		return s.fail(err)
	}
	s.log.Info("truncated the log", "from", s.end.Index, "to", after)
	s.end = end
	return nil
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
	return &Snapshot{Position: s.end, snap: snap}, nil
}

// Each calls fn for every key of the state (not the log), in key order.
func (sn *Snapshot) Each(fn func(key, value []byte) error) error {
	return eachState(sn.snap.NewIterator(nil, nil), fn)
}

// Release lets the snapshot's files go.
func (sn *Snapshot) Release() { sn.snap.Release() }

// Restore replaces the whole state and log by a snapshot taken at pos,
// streamed by next until it reports ok false.
func (s *Store) Restore(pos Position, next func() (key, value []byte, ok bool, err error)) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.failed != nil {
		return s.failed
	}
	// A crash part way must not leave a store that looks whole.
	if err := s.db.Put(keyRestoring, []byte{1}, &opt.WriteOptions{Sync: true}); err != nil {
		return s.fail(err)
	}
	it := s.db.NewIterator(nil, nil)
	var b leveldb.Batch
	for it.Next() {
		if string(it.Key()) == string(keyRestoring) {
			continue
		}
		b.Delete(append([]byte(nil), it.Key()...))
		if b.Len() >= 10_000 {
			if err := s.db.Write(&b, nil); err != nil {
				it.Release()
				return s.fail(err)
			}
			b.Reset()
		}
	}
	it.Release()
	if err := it.Error(); err != nil {
		return err
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
		if b.Len() >= 10_000 {
			if err := s.db.Write(&b, nil); err != nil {
				return s.fail(err)
			}
			b.Reset()
		}
	}
	trim := pos.Index + 1
	b.Put(keyEnd, encodePosition(pos))
	b.Put(keyTrim, binary.BigEndian.AppendUint64(nil, trim))
	epoch := max(s.epoch, pos.Epoch)
	b.Put(keyEpoch, binary.BigEndian.AppendUint64(nil, epoch))
	b.Delete(keyRestoring)
	if err := s.db.Write(&b, &opt.WriteOptions{Sync: true}); err != nil {
		return s.fail(err)
	}
	s.end, s.trim, s.epoch = pos, trim, epoch
	return nil
}
