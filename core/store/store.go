package store

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/syndtr/goleveldb/leveldb"
	"github.com/syndtr/goleveldb/leveldb/filter"
	"github.com/syndtr/goleveldb/leveldb/iterator"
	"github.com/syndtr/goleveldb/leveldb/opt"
	"github.com/syndtr/goleveldb/leveldb/storage"
	"github.com/syndtr/goleveldb/leveldb/util"
)

// Options tune the store; the zero value is the production default.
type Options struct {
	// RetainRecords and RetainBytes bound the log kept for slaves catching
	// up: older records are trimmed once either is exceeded. Defaults
	// 100,000 records and 64 MiB.
	RetainRecords uint64
	RetainBytes   uint64
	// MaxGroupOps and MaxGroupBytes bound one group commit; a group stops
	// growing once it reaches either, so one submission may overshoot.
	// Defaults 10,000 ops and 4 MiB (well under LevelDB's 32 MiB write
	// buffer, so a batch never forces a memtable of its own).
	MaxGroupOps   int
	MaxGroupBytes int
	// QueueLen is how many submissions may wait for a writer before
	// Submit blocks. Default 4096.
	QueueLen int
	// MaxRecordBytes lowers the bound on one submission below
	// MaxRecordBytes (the default).
	MaxRecordBytes int
}

// MaxRecordBytes bounds one submission (a transaction is one): a record
// must fit in a replication message (256 MiB) with the rest of its
// group, or every slave would stall on it at each reconnect.
const MaxRecordBytes = 192 << 20

func (o *Options) setDefaults() {
	if o.RetainRecords == 0 {
		o.RetainRecords = 100_000
	}
	if o.RetainBytes == 0 {
		o.RetainBytes = 64 << 20
	}
	if o.MaxGroupOps == 0 {
		o.MaxGroupOps = 10_000
	}
	if o.MaxGroupBytes == 0 {
		o.MaxGroupBytes = 4 << 20
	}
	if o.QueueLen == 0 {
		o.QueueLen = 4096
	}
	if o.MaxRecordBytes == 0 || o.MaxRecordBytes > MaxRecordBytes {
		o.MaxRecordBytes = MaxRecordBytes
	}
}

var (
	// ErrFailed means an earlier write failed: the store refuses writes
	// until it is reopened, since LevelDB may have applied part of it.
	ErrFailed = errors.New("store: an earlier write failed; reopen the store")
	// ErrClosed is returned for work submitted after Close.
	ErrClosed = errors.New("store: closed")
	// ErrNoUndo means a Truncate met a record applied without an undo
	// image: the log is gone, the state is unchanged, and only a snapshot
	// brings the store back in line with a master.
	ErrNoUndo = errors.New("store: the records to drop were applied without undo images; the log was dropped and a snapshot must replace the state")
	// ErrTrimmed means the records asked for are no longer in the log.
	ErrTrimmed = errors.New("store: records trimmed from the log")
	// ErrTooLarge refuses a submission over MaxRecordBytes.
	ErrTooLarge = errors.New("store: too large for one record")
	// ErrUnconfirmed fails a commit written without an fsync for a
	// MemoryQuorum Confirmer that was unset before it could confirm it.
	ErrUnconfirmed = errors.New("store: written for a quorum that is gone, and not synced")
	// ErrRestoreInterrupted means the store was being replaced by a
	// snapshot when the process stopped: it refuses writes until a new
	// Restore makes it whole.
	ErrRestoreInterrupted = errors.New("store: a snapshot restore was interrupted; restore a snapshot again")
)

// Store is the LevelDB database with its log. Its methods are safe for
// concurrent use.
type Store struct {
	db   *leveldb.DB
	stor storage.Storage
	log  *slog.Logger
	opts Options

	// Submissions wait in queued, in order, for a writer: the committer,
	// or a submitter's Flush. Whoever writes holds writeMu.
	qmu          sync.Mutex
	queued       []*Commit
	queuedSynced int // the commits in queued that are not lazy
	lazyOps      int // the ops of the lazy ones
	lazyBytes    int
	room         chan struct{} // a token per queued commit not lazy: Submit waits while QueueLen are
	wake         chan struct{} // the committer's
	writeMu      sync.Mutex
	lazyTimer    *time.Timer   // armed by the first lazy commit queued: lazyDue
	gatherTimer  *time.Timer   // the committer's (gather)
	lazyArmed    bool          // guarded by qmu
	lazyForced   atomic.Bool   // lazy commits are due: the committer writes them alone
	stop         chan struct{} // closed by Close: the committer writes what is queued and ends
	done         chan struct{} // closed when the committer has ended

	mu     sync.Mutex // serialises every write to db and guards what follows
	end    mark       // the last record
	base   mark       // the last record trimmed away; the log starts after it
	epoch  uint64
	failed error // set by a failed write, or a restore left half done
	// failedCh is closed when a write fails (not for an interrupted
	// restore, which a new restore mends without a reopen).
	failedCh chan struct{}
	failOnce sync.Once
	batch    leveldb.Batch // write's, reused: the records' batches were a large allocation each
	entry    []byte        // Apply's log entries, reused likewise: the batch holds a copy
	marks    []mark        // the records written since the open still in the log, oldest first (see the package doc, Trimming)
	recent   recentOps     // a master's last ops per key, for undo images

	confMu    sync.Mutex // held while handing a record to confirmer or replacing it
	confirmer *confirmLoop

	submitMu sync.RWMutex // held shared while sending on queue, exclusively to close it
	closed   bool         // guarded by submitMu
}

// Open opens or creates the store in dir.
func Open(dir string, opts Options, log *slog.Logger) (*Store, error) {
	stor, err := storage.OpenFile(dir, false)
	if err != nil {
		return nil, fmt.Errorf("store: open %s: %w", dir, err)
	}
	s, err := openStorage(zeroAheadStorage{stor}, opts, log)
	if err != nil {
		stor.Close()
		return nil, fmt.Errorf("store: open %s: %w", dir, err)
	}
	s.log.Info("opened", "dir", dir, "epoch", s.epoch, "end", s.end.Index, "base", s.base.Index)
	return s, nil
}

// minFreeToReopen is the free space a disk must have before a store
// that failed on it is reopened: LevelDB writes a manifest and a journal
// when it opens, and a full disk has corrupted them before.
const minFreeToReopen = 16 << 20

// Reopen opens a store again after a failed write (Failed), once its disk
// has room: a failed store refuses writes until reopened, since only
// LevelDB's replay of its journal makes it consistent again.
func Reopen(dir string, opts Options, log *slog.Logger) (*Store, error) {
	var fs syscall.Statfs_t
	if err := syscall.Statfs(dir, &fs); err == nil && fs.Bavail*uint64(fs.Bsize) < minFreeToReopen {
		return nil, fmt.Errorf("store: %d KiB free on the disk of %s; waiting for %d MiB before reopening",
			fs.Bavail*uint64(fs.Bsize)>>10, dir, minFreeToReopen>>20)
	}
	return Open(dir, opts, log)
}

// openStorage opens the store on any LevelDB storage, which lets tests
// inject disk faults; the store closes stor.
func openStorage(stor storage.Storage, opts Options, log *slog.Logger) (*Store, error) {
	opts.setDefaults()
	db, err := leveldb.Open(stor, &opt.Options{
		WriteBuffer:         32 * opt.MiB,
		BlockCacheCapacity:  32 * opt.MiB,
		CompactionTableSize: 16 * opt.MiB,
		Filter:              filter.NewBloomFilter(10),
		// Groups are bounded well under the write buffer, so the large
		// batch path (a memtable flush per batch) is never wanted.
		DisableLargeBatchTransaction: true,
	})
	if err != nil {
		return nil, err
	}
	s := &Store{db: db, stor: stor, log: log.With("component", "store"), opts: opts,
		room: make(chan struct{}, opts.QueueLen), wake: make(chan struct{}, 1), stop: make(chan struct{}),
		done: make(chan struct{}), failedCh: make(chan struct{})}
	s.lazyTimer = time.AfterFunc(time.Hour, s.lazyDue)
	s.lazyTimer.Stop()
	s.gatherTimer = time.NewTimer(time.Hour)
	s.gatherTimer.Stop()
	if err := s.loadMeta(); err != nil {
		db.Close()
		return nil, err
	}
	go s.commitLoop()
	return s, nil
}

func (s *Store) loadMeta() error {
	v, err := s.db.Get(keyEpoch, nil)
	switch {
	case err == nil && len(v) == 8:
		s.epoch = binary.BigEndian.Uint64(v)
	case err == nil:
		return fmt.Errorf("epoch: %w", errCorrupt)
	case !errors.Is(err, leveldb.ErrNotFound):
		return err
	}
	// A store left half restored keeps its fenced epoch, so that it
	// refuses older masters, and shows an empty log: any master sends it
	// a snapshot (see Restoring).
	if _, err := s.db.Get(keyRestoring, nil); err == nil {
		s.failed = ErrRestoreInterrupted
		s.log.Warn("a snapshot restore was interrupted; refusing writes until a master sends a snapshot again")
		return nil
	} else if !errors.Is(err, leveldb.ErrNotFound) {
		return err
	}
	for _, m := range []struct {
		key []byte
		to  *mark
	}{{keyEnd, &s.end}, {keyBase, &s.base}} {
		v, err := s.db.Get(m.key, nil)
		if errors.Is(err, leveldb.ErrNotFound) {
			continue
		}
		if err != nil {
			return err
		}
		if *m.to, err = decodeMark(v); err != nil {
			return fmt.Errorf("%s: %w", m.key[1:], err)
		}
	}
	s.epoch = max(s.epoch, s.end.Epoch)
	return nil
}

// Failed is closed once a write has failed: the store refuses writes
// until it is reopened (Err says why).
func (s *Store) Failed() <-chan struct{} { return s.failedCh }

// Closed is closed once Close has stopped the committer.
func (s *Store) Closed() <-chan struct{} { return s.done }

// Err is why the store refuses writes, or nil.
func (s *Store) Err() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.failed
}

// Restoring reports a store whose snapshot restore was broken off: its
// state and log are partial until a new Restore completes.
func (s *Store) Restoring() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.failed == ErrRestoreInterrupted
}

// Scan calls fn for every key with the prefix, in key order; key and value
// are valid only during the call. The store's own keys are never shown.
func (s *Store) Scan(prefix []byte, fn func(key, value []byte) error) error {
	r := util.BytesPrefix(prefix)
	if len(prefix) == 0 {
		r = &util.Range{Start: firstDataKey}
	}
	return eachState(s.db.NewIterator(r, nil), fn)
}

// eachState calls fn for every key it yields but the store's own, and
// releases it.
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
	if err := it.Error(); err != nil {
		return fmt.Errorf("store: iterate: %w", err)
	}
	return nil
}

// Get reads one key.
func (s *Store) Get(key []byte) ([]byte, bool, error) {
	v, err := s.db.Get(key, nil)
	switch {
	case errors.Is(err, leveldb.ErrNotFound):
		return nil, false, nil
	case err != nil:
		return nil, false, fmt.Errorf("store: get: %w", err)
	}
	return v, true, nil
}

// Close writes what was submitted, stops the committer and the confirmer
// and closes the database.
func (s *Store) Close() error {
	s.submitMu.Lock()
	if s.closed {
		s.submitMu.Unlock()
		return ErrClosed
	}
	s.closed = true
	close(s.stop)
	s.submitMu.Unlock()
	<-s.done
	s.lazyTimer.Stop()
	s.confMu.Lock()
	cl := s.confirmer
	s.confirmer = nil
	s.confMu.Unlock()
	if cl != nil {
		// Nothing more will be confirmed: a Confirm waiting for a quorum
		// is told to give up, and its commits fail with its error.
		cl.cancel()
		cl.stop()
	}
	err := s.db.Close()
	if cerr := s.stor.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("store: close: %w", err)
	}
	return nil
}

// Confirmer is the HA layer's say in when a commit is confirmed: the store
// calls it for each record after writing it locally, in log order, one at
// a time, and a Commit's Wait returns only once it has returned. Confirm
// must return in bounded time (give up without a quorum, or when ctx ends
// at Close): while 1024 records wait for it, the committer waits too.
type Confirmer interface {
	// since is when the first of the record's commits was submitted: the
	// Confirmer's time limit runs from there, so records waiting behind
	// one another do not add up their waits. until, when not zero, is when
	// the confirmation goes stale: past it, nobody may be told of it (see
	// Commit.ValidUntil).
	Confirm(ctx context.Context, rec Record, since time.Time) (until time.Time, err error)
}

// ConfirmedNow is an optional part of a Confirmer: Confirmed reports,
// without waiting, whether rec is confirmed already, and until when (as
// Confirm). When nothing handed to the Confirmer is still waiting, the
// writer asks it and answers the record's commits itself if so, saving
// the hand-off to the goroutine that waits.
type ConfirmedNow interface {
	Confirmed(rec Record) (until time.Time, ok bool)
}

// MemoryQuorum is an optional part of a Confirmer: when MemoryQuorum
// reports true, the store writes records without an fsync of their own.
// Such a Confirmer confirms a record only once other nodes hold it as
// well (a cluster's quorum_mem): no process's crash loses a write, which
// the kernel has, and a quorum of machines would have to lose power at
// once to lose a confirmed record. Records of the store's own (epochs,
// truncation) are synced regardless.
type MemoryQuorum interface {
	MemoryQuorum() bool
}

// Tap is an optional part of a Confirmer: Written sees each record, in
// log order, in its Encode form, as the committer is about to write it
// locally, so that replication ships it while the local write runs. It
// must not block. enc is the bytes of the record's log entry, never
// changed afterwards, so it may be kept; its capacity runs over the rest
// of the entry (the undo image), which stays in memory as long as enc.
type Tap interface {
	Written(index uint64, enc []byte)
}

// SetConfirmer makes commits wait for c as well as the local fsync; nil
// goes back to local durability alone. It returns once records handed to
// the previous Confirmer are through.
func (s *Store) SetConfirmer(c Confirmer) {
	s.confMu.Lock()
	old := s.confirmer
	s.confirmer = nil
	if c != nil {
		s.confirmer = startConfirmLoop(c)
	}
	s.confMu.Unlock()
	if old != nil {
		old.stop()
	}
}
