package store

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"runtime"
	"time"

	"github.com/syndtr/goleveldb/leveldb"
	"github.com/syndtr/goleveldb/leveldb/opt"
)

// maxTrimPerGroup bounds the reads one group commit spends on trimming;
// trimming more than one record per group still catches up with the
// one record each group adds.
const maxTrimPerGroup = 8

// Commit is a submission on its way to the disk.
type Commit struct {
	ops  []Op
	done chan struct{}
	err  error
	pos  Position
	// submitted is when Submit took it: a Confirmer's deadline runs from
	// there, not from when the record's turn comes.
	submitted time.Time
	then      func(error)
	until     time.Time
	lazy      bool // SubmitLazy's: needs no fsync of its own
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

// Done is closed once Wait returns at once.
func (c *Commit) Done() <-chan struct{} { return c.done }

// ValidUntil is, once Wait has returned nil, when the confirmation goes
// stale: a cluster master confirms only under a lease, and a process
// paused between confirming and telling its client could otherwise tell
// it after a newer master has taken over. Whoever passes the confirmation
// on checks it right before (and closes the client's connection instead,
// leaving the commit unconfirmed to it). The zero time: no limit.
func (c *Commit) ValidUntil() time.Time { return c.until }

// Position is where the commit landed in the log; valid once Wait has
// returned nil.
func (c *Commit) Position() Position { return c.pos }

// refuse finishes a commit that never reached the committer.
func (c *Commit) refuse(err error) *Commit {
	c.err = err
	close(c.done)
	if c.then != nil {
		go c.then(err)
	}
	return c
}

// finish ends the commit: then first, and the waiters after. The runtime
// runs the goroutine readied last first, once this one blocks; a
// producer's waiter, which answers its client, goes before what then
// readied (the consumers' writers, for a send).
func (c *Commit) finish(pos Position, err error) {
	c.pos, c.err = pos, err
	if c.then != nil {
		c.then(err)
	}
	close(c.done)
}

// Submit queues ops to be written atomically, after everything submitted
// before, as part of one log record. It blocks only while the commit queue
// is full. The store keeps ops until written: callers must not change them.
func (s *Store) Submit(ops []Op) *Commit { return s.SubmitThen(ops, nil) }

// SubmitLazy is Submit for what nobody waits to be durable (an
// acknowledgement no client asked a receipt for, a delivered mark): lazy
// commits alone are held back and written with the next group that is
// not, in its record and fsync, or alone lazySync later at the latest. A
// crash meanwhile loses it, which the caller accepts (a lost
// acknowledgement redelivers); its Wait returns once it is durable.
func (s *Store) SubmitLazy(ops []Op) *Commit {
	c := &Commit{ops: ops, done: make(chan struct{}), submitted: time.Now(), lazy: true}
	return s.submit(c)
}

// SubmitThen is Submit with then called once the commit is done, with
// Wait's error, from the goroutine that finishes it: the committer or the
// Confirmer's loop, which wait for it, so then must not block; or, for a
// commit refused at once, a goroutine of its own, since the caller may
// hold locks that then takes.
func (s *Store) SubmitThen(ops []Op, then func(error)) *Commit {
	return s.submit(&Commit{ops: ops, done: make(chan struct{}), submitted: time.Now(), then: then})
}

func (s *Store) submit(c *Commit) *Commit {
	ops := c.ops
	if err := checkKeys(ops); err != nil {
		return c.refuse(err)
	}
	if n := opsSize(ops); n > s.opts.MaxRecordBytes {
		return c.refuse(fmt.Errorf("%w: %d MiB in one commit, at most %d MiB", ErrTooLarge, n>>20, s.opts.MaxRecordBytes>>20))
	}
	s.submitMu.RLock()
	defer s.submitMu.RUnlock()
	if s.closed {
		return c.refuse(ErrClosed)
	}
	s.queue <- c
	return c
}

// checkKeys refuses keys in the store's own range, which would corrupt its
// log and metadata.
func checkKeys(ops []Op) error {
	for _, op := range ops {
		if reserved(op.Key) {
			return fmt.Errorf("store: key %q is in the store's reserved range", op.Key)
		}
	}
	return nil
}

// lazySync bounds how long lazy commits wait for a synced one to ride
// with: an acknowledgement rides on the next send's record and fsync, and
// when no send comes this soon, it is written and synced alone.
const lazySync = 5 * time.Millisecond

// commitLoop is the single committer: it gathers what is queued into one
// batch, one record and one fsync. Lazy commits alone are held back for
// the next group (see lazySync). It ends when Close closes the queue,
// after writing everything in it.
func (s *Store) commitLoop() {
	defer close(s.done)
	idle := time.NewTimer(lazySync)
	idle.Stop()
	var held []*Commit // lazy commits waiting for a synced group to join
	for {
		var first *Commit
		ok := true
		if len(held) > 0 {
			select {
			case first, ok = <-s.queue:
			case <-idle.C:
				s.writeGroup(held)
				held = nil
				continue
			}
		} else {
			first, ok = <-s.queue
		}
		if !ok {
			if len(held) > 0 {
				s.writeGroup(held)
			}
			return
		}
		// Writers woken by the previous group are resubmitting: a yield
		// lets them join this group rather than wait for the next fsync.
		runtime.Gosched()
		group := append(held, first)
		n, size, lazy := 0, 0, true
		for _, c := range group {
			n, size, lazy = n+len(c.ops), size+opsSize(c.ops), lazy && c.lazy
		}
	gather:
		for n < s.opts.MaxGroupOps && size < s.opts.MaxGroupBytes {
			select {
			case c, ok := <-s.queue:
				if !ok {
					break gather
				}
				group = append(group, c)
				n, size, lazy = n+len(c.ops), size+opsSize(c.ops), lazy && c.lazy
			default:
				break gather
			}
		}
		if lazy && n < s.opts.MaxGroupOps && size < s.opts.MaxGroupBytes {
			if len(held) == 0 {
				idle.Reset(lazySync)
			}
			held = group
			continue
		}
		idle.Stop()
		held = nil
		s.writeGroup(group)
	}
}

// writeGroup writes a group's ops as one synced record and hands it to
// the Confirmer, or finishes its commits.
func (s *Store) writeGroup(group []*Commit) {
	var n int
	for _, c := range group {
		n += len(c.ops)
	}
	ops := make([]Op, 0, n)
	for _, c := range group {
		ops = append(ops, c.ops...)
	}
	s.mu.Lock()
	rec := Record{Epoch: s.epoch, Index: s.end.Index + 1, Ops: ops}
	err := s.writeOwn(rec)
	s.mu.Unlock()
	if err == nil && s.handToConfirmer(confirmation{rec: rec, commits: group, since: group[0].submitted}) {
		return
	}
	for _, c := range group {
		c.finish(Position{rec.Epoch, rec.Index}, err)
	}
}

// writeOwn writes a record this store made (a master's, or a standalone
// store's). The Tap is shown the record's bytes in its log entry, so that
// nothing is encoded twice. A master's entry carries the undo image a
// Truncate needs; a standalone store's none, since no master can ask it
// to drop what it wrote: reading back the prior state of every key was
// most of what an acknowledgement cost, the whole message for each (see
// the package doc, Truncate). s.mu is held.
func (s *Store) writeOwn(rec Record) error {
	if s.failed != nil {
		return s.failed
	}
	var undo []Op
	if s.confirming() {
		var err error
		if undo, err = s.undoFor(rec.Ops); err != nil {
			return s.fail(fmt.Errorf("read undo image: %w", err))
		}
	}
	entry := rec.appendTo(make([]byte, entryHead, 30+opsSize(rec.Ops)+opsSize(undo)))
	s.tap(rec.Index, entry[entryHead:])
	if undo != nil {
		entry = appendOps(entry, undo)
	}
	return s.write(rec, entry, true)
}

// write applies a record locally: data, log entry (entryHead bytes for
// the log size, then the encoded record and any undo image), log end and
// any trimming in one batch, synced when sync is set. s.mu is held.
func (s *Store) write(rec Record, entry []byte, sync bool) error {
	if s.failed != nil {
		return s.failed
	}
	b := &s.batch
	b.Reset()
	for _, op := range rec.Ops {
		if op.Delete {
			b.Delete(op.Key)
		} else {
			b.Put(op.Key, op.Value)
		}
	}
	end := mark{Position{rec.Epoch, rec.Index}, s.end.bytes + uint64(len(entry))}
	binary.BigEndian.PutUint64(entry, end.bytes)
	b.Put(logKey(rec.Index), entry)
	b.Put(keyEnd, end.encode())
	if rec.Epoch > s.epoch {
		// A record from a newer master fences this store as SetEpoch does;
		// kept apart from the log end, which Truncate may lower.
		b.Put(keyEpoch, binary.BigEndian.AppendUint64(nil, rec.Epoch))
	}
	base, marks, err := s.trim(b, end)
	if err != nil {
		return s.fail(fmt.Errorf("trim the log: %w", err))
	}
	if err := s.db.Write(b, &opt.WriteOptions{Sync: sync}); err != nil {
		return s.fail(fmt.Errorf("write record %d: %w", rec.Index, err))
	}
	s.end, s.base, s.epoch = end, base, max(s.epoch, rec.Epoch)
	s.marks = append(marks, end)
	return nil
}

// trim adds to b the deletion of the oldest records while the log, ending
// at end, is over its retention; it returns the new base and the marks
// left after it.
func (s *Store) trim(b *leveldb.Batch, end mark) (mark, []mark, error) {
	base, marks := s.base, s.marks
	for range maxTrimPerGroup {
		over := end.Index-base.Index > s.opts.RetainRecords || end.bytes-base.bytes > s.opts.RetainBytes
		if !over || base.Index+1 >= end.Index {
			break
		}
		key := logKey(base.Index + 1)
		if len(marks) > 0 && marks[0].Index == base.Index+1 {
			b.Delete(key)
			base, marks = marks[0], marks[1:]
			continue
		}
		v, err := s.db.Get(key, nil)
		if err != nil {
			return base, nil, fmt.Errorf("record %d: %w", base.Index+1, err)
		}
		next, err := decodeLogHead(v)
		if err != nil {
			return base, nil, fmt.Errorf("record %d: %w", base.Index+1, err)
		}
		b.Delete(key)
		base = next
	}
	if base != s.base {
		b.Put(keyBase, base.encode())
	}
	return base, marks, nil
}

// undoFor captures the prior state of every key ops touch; for a key
// touched twice, the state before the first touch. Every write holds s.mu,
// so the live database is the state just before this record.
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

// fail puts the store in the failed state: after a write error LevelDB may
// hold part of a batch, so nothing more is written until it is reopened.
// s.mu is held.
func (s *Store) fail(err error) error {
	s.failed = fmt.Errorf("%w: %w", ErrFailed, err)
	s.log.Error("write failed; refusing writes until reopened", "err", err)
	s.failOnce.Do(func() { close(s.failedCh) })
	return s.failed
}

// confirming reports whether a Confirmer is set: this store is a master's.
func (s *Store) confirming() bool {
	s.confMu.Lock()
	defer s.confMu.Unlock()
	return s.confirmer != nil
}

// tap shows a record to the Confirmer's Tap, if it has one, before the
// local write: replication then overlaps the local fsync. A record whose
// local write fails leaves the store failed; a slave holding it holds an
// unconfirmed record, which is allowed.
//
// The Tap wakes the goroutines that ship the record, which the runtime
// queues to run next on this one's processor: the committer then yields,
// or they would wait for it through the local write and its fsync, until
// the runtime takes the processor from the blocked system call (a cluster
// master's stop-and-wait producer got half the standalone rate).
func (s *Store) tap(index uint64, enc []byte) {
	s.confMu.Lock()
	tapped := s.confirmer != nil && s.confirmer.tap != nil
	if tapped {
		s.confirmer.tap.Written(index, enc)
	}
	s.confMu.Unlock()
	if tapped {
		runtime.Gosched()
	}
}

// handToConfirmer queues a written record for the Confirmer, if one is
// set. Only the committer calls it, so records reach it in log order; when
// its queue is full the committer waits: back-pressure from replication.
func (s *Store) handToConfirmer(cf confirmation) bool {
	s.confMu.Lock()
	defer s.confMu.Unlock()
	if s.confirmer == nil {
		return false
	}
	s.confirmer.in <- cf
	return true
}

type confirmation struct {
	rec     Record
	commits []*Commit
	since   time.Time // when the record's first commit was submitted
}

// confirmLoop hands records to a Confirmer in log order, apart from the
// committer so that the next group is written meanwhile.
type confirmLoop struct {
	tap    Tap
	in     chan confirmation
	done   chan struct{}
	cancel context.CancelFunc
}

func startConfirmLoop(c Confirmer) *confirmLoop {
	ctx, cancel := context.WithCancel(context.Background())
	cl := &confirmLoop{in: make(chan confirmation, 1024), done: make(chan struct{}), cancel: cancel}
	cl.tap, _ = c.(Tap)
	go func() {
		defer close(cl.done)
		for cf := range cl.in {
			until, err := c.Confirm(ctx, cf.rec, cf.since)
			for _, cm := range cf.commits {
				cm.until = until
				cm.finish(Position{cf.rec.Epoch, cf.rec.Index}, err)
			}
		}
	}()
	return cl
}

// stop waits for what was handed over to be confirmed, then ends the loop.
func (cl *confirmLoop) stop() {
	close(cl.in)
	<-cl.done
	cl.cancel()
}
