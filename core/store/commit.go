package store

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
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

	mu    sync.Mutex
	ended bool     // done is closed and after taken
	after []func() // OnDone's
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

// OnDone calls f once Wait returns at once: from the goroutine that
// finishes the commit (the committer, or the Confirmer's loop), or from
// this one when it is done already. A front-end answers its client from
// there, with no goroutine of its own woken between the fsync and the
// answer; f must not block.
func (c *Commit) OnDone(f func()) {
	c.mu.Lock()
	if c.ended {
		c.mu.Unlock()
		f()
		return
	}
	c.after = append(c.after, f)
	c.mu.Unlock()
}

// end closes done, then calls what OnDone queued.
func (c *Commit) end() {
	close(c.done)
	c.mu.Lock()
	c.ended = true
	after := c.after
	c.after = nil
	c.mu.Unlock()
	for _, f := range after {
		f()
	}
}

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
	if c.then != nil {
		go c.then(err)
	}
	c.end()
	return c
}

// finish ends the commit: then first (a send's dispatch: a client told
// its message is stored finds it queued), and the waiters after. The
// runtime runs the goroutine readied last first, once this one blocks; a
// producer's waiter, which answers its client, goes before what then
// readied (the consumers' writers, for a send).
func (c *Commit) finish(pos Position, err error) {
	c.pos, c.err = pos, err
	if c.then != nil {
		c.then(err)
	}
	c.end()
}

// Submit queues ops to be written atomically, after everything submitted
// before, as part of one log record. It blocks only while the commit queue
// is full. The store keeps ops (a master, for a while after they are
// written: recentOps): callers must not change them.
func (s *Store) Submit(ops []Op) *Commit { return s.SubmitThen(ops, nil) }

// SubmitLazy is Submit for what nobody waits to be durable (an
// acknowledgement no client asked a receipt for, a delivered mark): lazy
// commits alone are held back and written with the next group that is
// not, in its record and fsync, or alone lazySync later at the latest. A
// crash meanwhile loses it, which the caller accepts (a lost
// acknowledgement redelivers); its Wait returns once it is durable.
func (s *Store) SubmitLazy(ops []Op) *Commit {
	c := &Commit{ops: ops, done: make(chan struct{}), submitted: time.Now(), lazy: true}
	return s.submit(c, wakeLazy)
}

// SubmitThen is Submit with then called once the commit is done, with
// Wait's error, from the goroutine that finishes it: the committer, a
// Flush, or the Confirmer's loop, which wait for it, so then must not
// block; or, for a commit refused at once, a goroutine of its own, since
// the caller may hold locks that then takes.
func (s *Store) SubmitThen(ops []Op, then func(error)) *Commit {
	return s.submit(&Commit{ops: ops, done: make(chan struct{}), submitted: time.Now(), then: then}, wakeCommitter)
}

// SubmitHeld is SubmitThen for a caller that calls Flush right after,
// once it holds no lock then takes: the caller then writes the group
// itself when no group is being written, and no committer is woken for
// it. A front-end's reader does so when it has read all its client sent,
// so that a stop-and-wait producer's send goes from its socket to the disk
// and its answer back with no goroutine woken in between; a reader with
// more to read submits with SubmitThen, and its sends share the
// committer's groups.
func (s *Store) SubmitHeld(ops []Op, then func(error)) *Commit {
	return s.submit(&Commit{ops: ops, done: make(chan struct{}), submitted: time.Now(), then: then}, wakeNone)
}

// Flush writes what is queued, from the calling goroutine, unless a group
// is being written: then the committer writes it after that one.
func (s *Store) Flush() {
	if !s.writeMu.TryLock() {
		s.signal()
		return
	}
	s.writeQueued(false, false)
	s.writeMu.Unlock()
}

type wakeMode uint8

const (
	wakeCommitter wakeMode = iota
	wakeLazy               // within lazySync at the latest
	wakeNone               // the caller flushes
)

func (s *Store) submit(c *Commit, wake wakeMode) *Commit {
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
	if !c.lazy {
		s.room <- struct{}{}
	}
	s.qmu.Lock()
	s.queued = append(s.queued, c)
	if !c.lazy {
		s.queuedSynced++
	} else {
		s.lazyOps, s.lazyBytes = s.lazyOps+len(c.ops), s.lazyBytes+opsSize(c.ops)
		if s.lazyOps >= s.opts.MaxGroupOps || s.lazyBytes >= s.opts.MaxGroupBytes {
			// A group's worth: no reason to wait for more.
			s.lazyForced.Store(true)
			wake = wakeCommitter
		} else if !s.lazyArmed {
			s.lazyArmed = true
			s.lazyTimer.Reset(lazySync)
		}
	}
	s.qmu.Unlock()
	if wake == wakeCommitter {
		s.signal()
	}
	return c
}

// signal wakes the committer.
func (s *Store) signal() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
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

// lazyDue is the lazy timer's: the committer writes lazy commits alone.
func (s *Store) lazyDue() {
	s.qmu.Lock()
	s.lazyArmed = false
	s.qmu.Unlock()
	s.lazyForced.Store(true)
	s.signal()
}

// commitLoop is the committer: woken by a submission, it writes what is
// queued, unless a Flush is at it. It ends when Close closes stop, after
// writing everything queued.
func (s *Store) commitLoop() {
	defer close(s.done)
	for {
		select {
		case <-s.wake:
		case <-s.stop:
			s.writeMu.Lock()
			s.writeQueued(true, true)
			s.writeMu.Unlock()
			return
		}
		// Writers woken by the previous group are resubmitting: a yield
		// lets them join this group rather than wait for the next fsync.
		runtime.Gosched()
		s.writeMu.Lock()
		for {
			start := time.Now()
			expect := s.writeQueued(s.lazyForced.Swap(false), false)
			if !s.gather(expect, time.Since(start)) {
				break
			}
		}
		s.writeMu.Unlock()
		if s.lazyForced.Load() {
			s.signal() // the lazy timer's wake-up went to gather
		}
	}
}

// maxGather bounds gather's wait.
const maxGather = time.Millisecond

// gather waits, with the write lock held, for the stop-and-wait producers
// the group just written answered to send again, so that they share the
// next group with those already queued. Without it, several such
// producers settle into halves that take turns, each half paying an fsync
// while the other's answers travel: four producers made groups of two.
// It waits while fewer sends are queued than the group's writer expects
// (writeQueued), but no longer than the group's write took (waiting
// longer costs more than the fsync it saves), and never for a lone
// producer, whose next send is the next group anyway and is better
// written by its own reader (Flush). It reports whether a send is queued.
func (s *Store) gather(want int, took time.Duration) bool {
	s.qmu.Lock()
	queued := s.queuedSynced
	s.qmu.Unlock()
	if want < 2 || queued >= want {
		return queued > 0
	}
	deadline := time.Now().Add(min(took, maxGather))
	for {
		wait := time.Until(deadline)
		if wait <= 0 {
			return queued > 0
		}
		s.gatherTimer.Reset(wait)
		closing := false
		select {
		case <-s.wake:
		case <-s.gatherTimer.C:
		case <-s.stop:
			closing = true
		}
		s.gatherTimer.Stop()
		s.qmu.Lock()
		queued = s.queuedSynced
		s.qmu.Unlock()
		if queued >= want || closing {
			return queued > 0
		}
	}
}

// writeQueued takes everything queued, in order, and writes it as groups of
// one record each (writeGroup). Lazy commits alone stay queued until the
// oldest has waited lazySync, when the lazy timer forces them out (end:
// the store is closing). s.writeMu is held, which keeps groups in
// submission order. It returns how many sends the next group can expect:
// one from each commit not lazy it has answered (finished, with no
// Confirmer to wait for), plus those queued before its first answer went
// out, from producers it did not hold. Sends queued while the answers go
// out are the answered producers' own: counting them as well held each
// group of W1 for gather's whole wait.
func (s *Store) writeQueued(force, end bool) (expect int) {
	s.qmu.Lock()
	if s.queuedSynced == 0 && !end {
		if len(s.queued) == 0 || !force {
			s.qmu.Unlock()
			return 0
		}
		if wait := lazySync - time.Since(s.queued[0].submitted); wait > 0 && s.lazyOps < s.opts.MaxGroupOps && s.lazyBytes < s.opts.MaxGroupBytes {
			// The timer ran for lazy commits a synced group took since.
			s.lazyArmed = true
			s.lazyTimer.Reset(wait)
			s.qmu.Unlock()
			return 0
		}
	}
	taken, synced := s.queued, s.queuedSynced
	s.queued, s.queuedSynced, s.lazyOps, s.lazyBytes = nil, 0, 0, 0
	if s.lazyArmed {
		s.lazyTimer.Stop()
		s.lazyArmed = false
	}
	s.qmu.Unlock()
	for range synced {
		<-s.room
	}
	answering := false
	for len(taken) > 0 {
		n, size, i := 0, 0, 0
		for i < len(taken) && n < s.opts.MaxGroupOps && size < s.opts.MaxGroupBytes {
			n, size = n+len(taken[i].ops), size+opsSize(taken[i].ops)
			i++
		}
		if at, until, queued, err := s.writeGroup(taken[:i]); !queued {
			if !answering {
				answering = true
				s.qmu.Lock()
				expect += s.queuedSynced
				s.qmu.Unlock()
			}
			for _, c := range taken[:i] {
				c.until = until
				c.finish(at, err)
				if !c.lazy {
					expect++
				}
			}
		}
		taken = taken[i:]
	}
	return expect
}

// writeGroup writes a group's ops as one record (synced, unless for a
// MemoryQuorum Confirmer) and hands it to the Confirmer's loop (then it
// reports queued), or else reports where it was written (and until when
// a Confirmer's confirmation holds) or why not, for the caller to finish
// the group's commits.
func (s *Store) writeGroup(group []*Commit) (at Position, until time.Time, queued bool, err error) {
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
	synced, err := s.writeOwn(rec)
	s.mu.Unlock()
	if err == nil {
		var how handOff
		until, how = s.handToConfirmer(confirmation{rec: rec, commits: group, since: group[0].submitted})
		queued = how == handed
		if how == noConfirmer && !synced {
			// Written for a memory quorum that has gone since (a master
			// stepping down): durable nowhere that it can be told of.
			err = ErrUnconfirmed
		}
	}
	return Position{rec.Epoch, rec.Index}, until, queued, err
}

// writeOwn writes a record this store made (a master's, or a standalone
// store's). The Tap is shown the record's bytes in its log entry, so that
// nothing is encoded twice. A master's entry carries the undo image a
// Truncate needs; a standalone store's none, since no master can ask it
// to drop what it wrote: reading back the prior state of every key was
// most of what an acknowledgement cost, the whole message for each (see
// the package doc, Truncate). s.mu is held.
//
// It is written with an fsync unless the Confirmer confirms on other
// nodes' memory (MemoryQuorum); synced reports which.
func (s *Store) writeOwn(rec Record) (synced bool, err error) {
	if s.failed != nil {
		return false, s.failed
	}
	confirming, memory := s.confirming()
	var undo []Op
	if confirming {
		if undo, err = s.undoFor(rec.Ops); err != nil {
			return false, s.fail(fmt.Errorf("read undo image: %w", err))
		}
	}
	entry := rec.appendTo(make([]byte, entryHead, 30+opsSize(rec.Ops)+opsSize(undo)))
	s.tap(rec.Index, entry[entryHead:])
	if undo != nil {
		entry = appendOps(entry, undo)
	}
	if err := s.write(rec, entry, !memory); err != nil {
		return false, err
	}
	if confirming {
		s.recent.note(rec.Ops)
	} else {
		s.recent.clear()
	}
	return !memory, nil
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
// so the live database is the state just before this record; a key a
// recent record touched is read from s.recent instead (see recentOps).
func (s *Store) undoFor(ops []Op) ([]Op, error) {
	undo := make([]Op, 0, len(ops))
	seen := make(map[string]bool, len(ops))
	for _, op := range ops {
		if seen[string(op.Key)] {
			continue
		}
		seen[string(op.Key)] = true
		if last, ok := s.recent.get(op.Key); ok {
			undo = append(undo, last)
			continue
		}
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

// confirming reports whether a Confirmer is set (this store is a
// master's), and whether it confirms on other nodes' memory.
func (s *Store) confirming() (confirming, memory bool) {
	s.confMu.Lock()
	defer s.confMu.Unlock()
	return s.confirmer != nil, s.confirmer != nil && s.confirmer.memory
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
// It reports confirmedNow, with the confirmation's until, when the
// Confirmer has confirmed it already and nothing handed before waits.
func (s *Store) handToConfirmer(cf confirmation) (until time.Time, how handOff) {
	s.confMu.Lock()
	defer s.confMu.Unlock()
	cl := s.confirmer
	if cl == nil {
		return time.Time{}, noConfirmer
	}
	if cl.now != nil && cl.waiting.Load() == 0 {
		if until, ok := cl.now.Confirmed(cf.rec); ok {
			return until, confirmedNow
		}
	}
	cl.waiting.Add(1)
	cl.in <- cf
	return time.Time{}, handed
}

// handOff is what became of a record handed to the Confirmer.
type handOff uint8

const (
	noConfirmer  handOff = iota // none is set: the local write is all
	confirmedNow                // confirmed already: the writer finishes it
	handed                      // the confirm loop finishes it
)

type confirmation struct {
	rec     Record
	commits []*Commit
	since   time.Time // when the record's first commit was submitted
}

// confirmLoop hands records to a Confirmer in log order, apart from the
// committer so that the next group is written meanwhile.
type confirmLoop struct {
	tap     Tap
	now     ConfirmedNow
	memory  bool         // records need no local fsync (MemoryQuorum)
	waiting atomic.Int64 // handed in and not yet finished
	in      chan confirmation
	done    chan struct{}
	cancel  context.CancelFunc
}

func startConfirmLoop(c Confirmer) *confirmLoop {
	ctx, cancel := context.WithCancel(context.Background())
	cl := &confirmLoop{in: make(chan confirmation, 1024), done: make(chan struct{}), cancel: cancel}
	cl.tap, _ = c.(Tap)
	cl.now, _ = c.(ConfirmedNow)
	if m, ok := c.(MemoryQuorum); ok {
		cl.memory = m.MemoryQuorum()
	}
	go func() {
		defer close(cl.done)
		for cf := range cl.in {
			until, err := c.Confirm(ctx, cf.rec, cf.since)
			for _, cm := range cf.commits {
				cm.until = until
				cm.finish(Position{cf.rec.Epoch, cf.rec.Index}, err)
			}
			cl.waiting.Add(-1)
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
