package store

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"sync"

	"github.com/syndtr/goleveldb/leveldb"
	"github.com/syndtr/goleveldb/leveldb/filter"
	"github.com/syndtr/goleveldb/leveldb/iterator"
	"github.com/syndtr/goleveldb/leveldb/opt"
	"github.com/syndtr/goleveldb/leveldb/util"
)

// Options tune the store; the zero value is the production default.
type Options struct {
	// Retain is how many records the log keeps for slaves catching up;
	// older ones are trimmed. Default 100,000.
	Retain uint64
	// MaxGroupOps bounds the ops of one group commit. Default 10,000.
	MaxGroupOps int
}

// ErrFailed means an earlier write failed: the store refuses writes until
// it is reopened, since LevelDB may have applied part of what was asked.
var ErrFailed = errors.New("store: an earlier write failed; reopen the store")

// ErrClosed is returned for work submitted after Close.
var ErrClosed = errors.New("store: closed")

// ErrTrimmed means the records asked for are no longer in the log.
var ErrTrimmed = errors.New("store: records trimmed from the log")

// Confirmer is the HA layer's say in when a commit is confirmed: the store
// calls it for each record after writing it locally, in log order, and a
// Commit's Wait returns only once it has returned.
type Confirmer interface {
	Confirm(ctx context.Context, rec Record) error
}

// Store is the LevelDB database with its log. Its methods are safe for
// concurrent use.
type Store struct {
	db   *leveldb.DB
	log  *slog.Logger
	opts Options

	queue chan *Commit
	done  chan struct{}

	mu          sync.Mutex // guards what follows and serialises writes
	end         Position
	epoch       uint64
	trim        uint64
	failed      error
	confirmer   Confirmer
	confirms    chan confirmation // to confirmLoop; sent on under mu
	confirmDone chan struct{}

	submitMu sync.RWMutex // held shared while sending on queue, exclusively to close it
	closed   bool         // guarded by submitMu
}

type confirmation struct {
	rec     Record
	commits []*Commit
}

// Commit is a submission on its way to the disk.
type Commit struct {
	ops  []Op
	done chan struct{}
	err  error
	pos  Position
}

// Wait returns once the commit is durable (and confirmed, when a Confirmer
// is set), or with the error that stopped it, or ctx's.
func (c *Commit) Wait(ctx context.Context) error {
	select {
	case <-c.done:
		return c.err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Position is where the commit landed in the log; valid after Wait.
func (c *Commit) Position() Position { return c.pos }

func (c *Commit) finish(pos Position, err error) {
	c.pos, c.err = pos, err
	close(c.done)
}

// Open opens or creates the store in dir.
func Open(dir string, opts Options, log *slog.Logger) (*Store, error) {
	if opts.Retain == 0 {
		opts.Retain = 100_000
	}
	if opts.MaxGroupOps == 0 {
		opts.MaxGroupOps = 10_000
	}
	db, err := leveldb.OpenFile(dir, &opt.Options{
		WriteBuffer:                  32 * opt.MiB,
		BlockCacheCapacity:           64 * opt.MiB,
		CompactionTableSize:          16 * opt.MiB,
		Filter:                       filter.NewBloomFilter(10),
		DisableLargeBatchTransaction: true,
	})
	if err != nil {
		return nil, fmt.Errorf("store: open %s: %w", dir, err)
	}
	s := &Store{db: db, log: log.With("component", "store"), opts: opts,
		queue: make(chan *Commit, 4096), done: make(chan struct{}), trim: 1}
	if err := s.loadMeta(); err != nil {
		db.Close()
		return nil, fmt.Errorf("store: open %s: %w", dir, err)
	}
	go s.commitLoop()
	s.log.Info("opened", "dir", dir, "epoch", s.epoch, "end", s.end.Index)
	return s, nil
}

// ErrRestoreInterrupted means the store was being replaced by a snapshot
// when the process stopped; only a new Restore makes it whole.
var ErrRestoreInterrupted = errors.New("store: a snapshot restore was interrupted; the node must fetch a snapshot again")

func (s *Store) loadMeta() error {
	if _, err := s.db.Get(keyRestoring, nil); err == nil {
		return ErrRestoreInterrupted
	}
	if v, err := s.db.Get(keyEnd, nil); err == nil {
		if s.end, err = decodePosition(v); err != nil {
			return err
		}
	} else if !errors.Is(err, leveldb.ErrNotFound) {
		return err
	}
	if v, err := s.db.Get(keyEpoch, nil); err == nil && len(v) == 8 {
		s.epoch = binary.BigEndian.Uint64(v)
	} else if err != nil && !errors.Is(err, leveldb.ErrNotFound) {
		return err
	}
	if v, err := s.db.Get(keyTrim, nil); err == nil && len(v) == 8 {
		s.trim = binary.BigEndian.Uint64(v)
	} else if err != nil && !errors.Is(err, leveldb.ErrNotFound) {
		return err
	}
	s.epoch = max(s.epoch, s.end.Epoch)
	return nil
}

// Submit queues ops to be written atomically, after everything submitted
// before, as part of one log record. It blocks only while the commit queue
// is full.
func (s *Store) Submit(ops []Op) *Commit {
	c := &Commit{ops: ops, done: make(chan struct{})}
	s.submitMu.RLock()
	defer s.submitMu.RUnlock()
	if s.closed {
		c.finish(Position{}, ErrClosed)
		return c
	}
	s.queue <- c
	return c
}

// commitLoop is the single committer: it gathers what is queued into one
// batch, one record and one fsync.
func (s *Store) commitLoop() {
	defer close(s.done)
	for first := range s.queue {
		group := []*Commit{first}
		n := len(first.ops)
	gather:
		for n < s.opts.MaxGroupOps {
			select {
			case c, ok := <-s.queue:
				if !ok {
					break gather
				}
				group = append(group, c)
				n += len(c.ops)
			default:
				break gather
			}
		}
		ops := make([]Op, 0, n)
		for _, c := range group {
			ops = append(ops, c.ops...)
		}
		s.mu.Lock()
		rec, err := s.write(Record{Epoch: s.epoch, Index: s.end.Index + 1, Ops: ops})
		if err == nil && s.confirms != nil {
			s.confirms <- confirmation{rec: rec, commits: group}
			s.mu.Unlock()
			continue
		}
		s.mu.Unlock()
		for _, c := range group {
			c.finish(Position{rec.Epoch, rec.Index}, err)
		}
	}
}

// write applies a record locally: data, undo image, log entry and log end in
// one synced batch; s.mu is held.
func (s *Store) write(rec Record) (Record, error) {
	if s.failed != nil {
		return rec, s.failed
	}
	if rec.Undo == nil {
		undo, err := s.undoFor(rec.Ops)
		if err != nil {
			return rec, s.fail(err)
		}
		rec.Undo = undo
	}
	var b leveldb.Batch
	for _, op := range rec.Ops {
		if op.Delete {
			b.Delete(op.Key)
		} else {
			b.Put(op.Key, op.Value)
		}
	}
	pos := Position{rec.Epoch, rec.Index}
	b.Put(logKey(rec.Index), rec.Encode())
	b.Put(keyEnd, encodePosition(pos))
	trim := s.trim
	for trim+s.opts.Retain <= rec.Index && trim < s.trim+2 {
		b.Delete(logKey(trim))
		trim++
	}
	if trim != s.trim {
		b.Put(keyTrim, binary.BigEndian.AppendUint64(nil, trim))
	}
	if err := s.db.Write(&b, &opt.WriteOptions{Sync: true}); err != nil {
		return rec, s.fail(err)
	}
	s.end, s.trim = pos, trim
	return rec, nil
}

// undoFor captures the prior state of every key ops touch; for a key touched
// twice, the state before the first touch.
func (s *Store) undoFor(ops []Op) ([]Op, error) {
	undo := make([]Op, 0, len(ops))
	seen := make(map[string]bool, len(ops))
	for _, op := range ops {
		if seen[string(op.Key)] {
			continue
		}
		seen[string(op.Key)] = true
		v, err := s.db.Get(op.Key, nil)
		switch {
		case errors.Is(err, leveldb.ErrNotFound):
			undo = append(undo, Op{Key: op.Key, Delete: true})
		case err != nil:
			return nil, err
		default:
			undo = append(undo, Op{Key: op.Key, Value: v})
		}
	}
	return undo, nil
}

func (s *Store) fail(err error) error {
	s.failed = fmt.Errorf("%w: %v", ErrFailed, err)
	s.log.Error("write failed; refusing writes until reopened", "err", err)
	return s.failed
}

// confirmLoop hands records to the Confirmer in log order, apart from the
// committer so that the next group is written meanwhile.
func (s *Store) confirmLoop(c Confirmer, in <-chan confirmation, done chan<- struct{}) {
	defer close(done)
	for cf := range in {
		err := c.Confirm(context.Background(), cf.rec)
		for _, cm := range cf.commits {
			cm.finish(Position{cf.rec.Epoch, cf.rec.Index}, err)
		}
	}
}

// SetConfirmer makes commits wait for c as well as the local fsync; nil
// goes back to local durability alone. It returns once records already
// handed to the previous Confirmer are through.
func (s *Store) SetConfirmer(c Confirmer) {
	s.mu.Lock()
	old, oldDone := s.confirms, s.confirmDone
	s.confirmer, s.confirms, s.confirmDone = c, nil, nil
	if c != nil {
		s.confirms = make(chan confirmation, 1024)
		s.confirmDone = make(chan struct{})
		go s.confirmLoop(c, s.confirms, s.confirmDone)
	}
	s.mu.Unlock()
	if old != nil {
		close(old)
		<-oldDone
	}
}

// Scan calls fn for every key with the prefix, in key order; key and value
// are valid only during the call.
func (s *Store) Scan(prefix []byte, fn func(key, value []byte) error) error {
	return eachState(s.db.NewIterator(util.BytesPrefix(prefix), nil), fn)
}

// eachState walks an iterator past the store's own keys and releases it.
func eachState(it iterator.Iterator, fn func(key, value []byte) error) error {
	defer it.Release()
	for it.Next() {
		if reserved(it.Key()) {
			continue
		}
		if err := fn(it.Key(), it.Value()); err != nil {
			return err
		}
	}
	return it.Error()
}

// Get reads one key.
func (s *Store) Get(key []byte) ([]byte, bool, error) {
	v, err := s.db.Get(key, nil)
	if errors.Is(err, leveldb.ErrNotFound) {
		return nil, false, nil
	}
	return v, err == nil, err
}

// Close writes what was submitted, stops the committer and closes the
// database.
func (s *Store) Close() error {
	s.submitMu.Lock()
	if s.closed {
		s.submitMu.Unlock()
		return ErrClosed
	}
	s.closed = true
	close(s.queue)
	s.submitMu.Unlock()
	<-s.done
	s.SetConfirmer(nil)
	if err := s.db.Close(); err != nil {
		return fmt.Errorf("store: close: %w", err)
	}
	return nil
}
