package ha

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/hamq/hamq/core/store"
)

// ErrNotMaster fails the commits still waiting when a master steps down:
// they were never confirmed, and may or may not survive.
var ErrNotMaster = errors.New("ha: this node is no longer the master")

// ErrNoQuorum fails a commit that no quorum acknowledged in time.
var ErrNoQuorum = errors.New("ha: no quorum holds the message")

// replicator is a master's (or candidate's) side of replication: one peer
// per other member, dialling it, fencing it with the epoch and streaming
// the log to it; and the store's Confirmer, which lets a commit through
// once a quorum holds its record, while the master's lease holds.
type replicator struct {
	st      *store.Store
	epoch   uint64
	id      string
	secret  []byte
	quorum  int
	memory  bool          // quorum_mem: the store writes records without an fsync
	timeout time.Duration // how long a commit may wait for a quorum
	lease   time.Duration // how long a ZooKeeper answer lets the master confirm
	log     *slog.Logger
	// lostCh is closed, with lostWhy, when the master must step down: a
	// member is fenced by a newer epoch, or a record could not be
	// confirmed in time. Closing it takes no lock of the node's: Confirm
	// runs in the store's confirm loop, which stepping down waits for.
	lostCh   chan struct{}
	lostOnce sync.Once
	lostWhy  string

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	fenced chan fencedPeer // peers that answered HELLO, until the gate opens
	gate   chan struct{}   // closed once the candidate holds the longest log

	mu        sync.Mutex
	recent    map[uint64][]byte // encoded records just written, by index (Written)
	oldest    uint64            // the lowest index in recent
	recentLen int               // bytes in recent
	peers     map[string]*peer
	changed   chan struct{} // closed and replaced when an ack reaches want or the state changes
	want      uint64        // the index the one waiter for acks (fence, then Confirm, one at a time) waits for
	suspended bool          // ZooKeeper is unreachable: confirm nothing
	leaseEnd  time.Time     // confirm nothing from then on (see renew)
	closed    bool
	closedWhy string // why the term ended, for the commits it fails
}

type peer struct {
	id, addr string
	wake     chan struct{} // new records to send
	acked    uint64        // under replicator.mu; 0 when not in a session
	sent     uint64
	live     bool      // streaming: caught up to where the stream began
	session  bool      // authenticated and fenced, perhaps still catching up
	lastAck  time.Time // when it last acknowledged anything, kept across sessions
	lastErr  error     // why its last session or dial failed
	failures int       // sessions failed in a row, for the log
}

type fencedPeer struct {
	p     *peer
	state logState
	l     *link
}

func newReplicator(st *store.Store, id string, secret []byte, epoch uint64, quorum int, timeout, lease time.Duration, log *slog.Logger) *replicator {
	ctx, cancel := context.WithCancel(context.Background())
	return &replicator{
		st: st, id: id, secret: secret, epoch: epoch, quorum: quorum, timeout: timeout, lease: lease, log: log,
		lostCh: make(chan struct{}), ctx: ctx, cancel: cancel,
		fenced: make(chan fencedPeer), gate: make(chan struct{}),
		peers: map[string]*peer{}, changed: make(chan struct{}), recent: map[uint64][]byte{},
	}
}

// setPeer adds a member to replicate to, or moves it to a new address.
func (r *replicator) setPeer(id, addr string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed || id == r.id {
		return
	}
	if p := r.peers[id]; p != nil && p.addr == addr {
		return
	}
	p := &peer{id: id, addr: addr, wake: make(chan struct{}, 1)}
	r.peers[id] = p
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		r.runPeer(p)
	}()
}

// lost asks the node to step down, once, for why.
func (r *replicator) lost(why string) {
	r.lostOnce.Do(func() {
		r.lostWhy = why
		close(r.lostCh)
	})
}

func (r *replicator) current(p *peer) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return !r.closed && r.peers[p.id] == p
}

// signalLocked wakes everything waiting on a change. r.mu is held.
func (r *replicator) signalLocked() {
	close(r.changed)
	r.changed = make(chan struct{})
}

func (r *replicator) runPeer(p *peer) {
	backoff := 100 * time.Millisecond
	for r.current(p) {
		err := r.session(p)
		r.mu.Lock()
		p.acked, p.live, p.session = 0, false, false
		if err != nil && r.ctx.Err() == nil {
			p.lastErr = err
			p.failures++
		}
		failures := p.failures
		r.signalLocked()
		r.mu.Unlock()
		if errors.Is(err, errRefused) {
			return
		}
		// The first failure and then every twentieth go to the log at
		// WARN: a member that cannot be reached is what an operator
		// looks for when no master gets elected.
		if err != nil && r.ctx.Err() == nil && (failures == 1 || failures%20 == 0) {
			r.log.Warn("cannot replicate to a member", "member", p.id, "addr", p.addr, "err", err, "failures", failures)
		}
		select {
		case <-r.ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 2*time.Second)
	}
}

// session is one connection to a member: authenticate, fence it, wait
// for the gate, then stream.
func (r *replicator) session(p *peer) error {
	d := net.Dialer{Timeout: 2 * time.Second}
	conn, err := d.DialContext(r.ctx, "tcp", p.addr)
	if err != nil {
		return err
	}
	defer conn.Close()
	stop := context.AfterFunc(r.ctx, func() { conn.Close() })
	defer stop()
	l := newLink(conn, 64<<10, 256<<10)
	if err := authMaster(l, r.secret, r.epoch, r.id); err != nil {
		if errors.Is(err, ErrAuth) {
			r.log.Error("a member failed authentication", "member", p.id, "addr", p.addr, "err", err)
		}
		return err
	}
	if err := l.flush(); err != nil {
		return err
	}
	typ, msg, err := l.read()
	if err != nil {
		return err
	}
	switch typ {
	case msgRefuse:
		d := decoder{b: msg}
		epoch, why := d.uint(), string(d.bytes())
		if epoch > r.epoch {
			r.log.Warn("a member is fenced by a newer master", "member", p.id, "epoch", epoch)
			r.lost(fmt.Sprintf("member %s is fenced by the newer epoch %d", p.id, epoch))
			return errRefused
		}
		return fmt.Errorf("refused: %s", why)
	case msgState:
	default:
		return fmt.Errorf("%w: answer %d to HELLO", errProtocol, typ)
	}
	state, err := decodeState(msg)
	if err != nil {
		return err
	}
	r.mu.Lock()
	p.session, p.failures, p.lastErr = true, 0, nil
	r.signalLocked()
	r.mu.Unlock()
	select {
	case r.fenced <- fencedPeer{p, state, l}:
	case <-r.gate:
	case <-r.ctx.Done():
		return r.ctx.Err()
	}
	select {
	case <-r.gate:
	case <-r.ctx.Done():
		return r.ctx.Err()
	}
	return r.stream(p, l, state)
}

func (r *replicator) stream(p *peer, l *link, state logState) error {
	sent, err := sendStart(l, r.st, state)
	if err != nil {
		return err
	}
	if err := l.write(msgSynced, binary.AppendUvarint(nil, r.st.End().Index)); err != nil {
		return err
	}
	r.mu.Lock()
	p.live, p.lastAck = true, time.Now()
	r.signalLocked()
	r.mu.Unlock()
	acks := make(chan error, 1)
	go func() { acks <- r.readAcks(p, l) }()
	tick := time.NewTicker(heartbeat)
	defer tick.Stop()
	for {
		last, err := r.sendFrom(l, sent)
		if err != nil {
			return err
		}
		idle := last == sent
		sent = last
		if idle {
			if err := l.write(msgSynced, binary.AppendUvarint(nil, sent)); err != nil {
				return err
			}
		}
		if err := l.flush(); err != nil {
			return err
		}
		r.mu.Lock()
		p.sent = sent
		r.mu.Unlock()
		select {
		case <-p.wake:
		case <-tick.C:
		case err := <-acks:
			return err
		case <-r.ctx.Done():
			return r.ctx.Err()
		}
	}
}

// recentBytes bounds the just-written records the replicator keeps
// encoded: slaves that keep up are fed from them, without reading the
// log back from LevelDB and encoding each record once per slave. A count
// would not do: records of large messages are megabytes each.
const recentBytes = 32 << 20

// Written is the store's Tap: it keeps the encoded record and wakes the
// peers while the record is being written locally, ahead of the serial
// Confirm calls. The bytes kept alive are counted by capacity, which
// takes in the rest of the record's log entry.
func (r *replicator) Written(index uint64, enc []byte) {
	r.mu.Lock()
	if len(r.recent) == 0 {
		r.oldest = index
	}
	r.recent[index] = enc
	r.recentLen += cap(enc)
	for r.recentLen > recentBytes && r.oldest < index {
		r.recentLen -= cap(r.recent[r.oldest])
		delete(r.recent, r.oldest)
		r.oldest++
	}
	for _, p := range r.peers {
		select {
		case p.wake <- struct{}{}:
		default:
		}
	}
	r.mu.Unlock()
}

// sendFrom writes the records after index after, from the recent ones
// while they last, and returns the last index written. Only a slave
// behind them all is sent records read back from the log: a record past
// the newest recent one is not written yet, and its Written wakes the
// peer. Asking the store's end instead would wait for the local write
// that may be under way, and then read back a record that Written is
// about to keep.
func (r *replicator) sendFrom(l *link, after uint64) (uint64, error) {
	for {
		r.mu.Lock()
		b, ok := r.recent[after+1]
		behind := !ok && (len(r.recent) == 0 || after+1 < r.oldest)
		r.mu.Unlock()
		if behind {
			last, err := sendRecords(l, r.st, after)
			if err != nil || last == after {
				return last, err
			}
			after = last
			continue
		}
		if !ok {
			return after, nil
		}
		if err := l.write(msgRecord, b); err != nil {
			return after, err
		}
		after++
	}
}

func (r *replicator) readAcks(p *peer, l *link) error {
	for {
		typ, msg, err := l.read()
		if err != nil {
			l.conn.Close()
			return err
		}
		if typ != msgAck {
			l.conn.Close()
			return fmt.Errorf("%w: message %d from a slave", errProtocol, typ)
		}
		d := decoder{b: msg}
		at := d.uint()
		if d.err != nil {
			l.conn.Close()
			return d.err
		}
		r.mu.Lock()
		// Only an ack that makes this peer count for the index awaited
		// wakes the waiter; acks below it, or from a peer counted
		// already, would wake it for nothing.
		if p.acked < r.want && at >= r.want {
			r.signalLocked()
		}
		p.acked, p.lastAck = at, time.Now()
		r.mu.Unlock()
	}
}

// fence collects the answers of a quorum within answerWithin and makes
// sure this store holds the longest log among them, fetching it from the
// member that has it, then lets every peer stream. It returns once a
// quorum has caught up, or fails once fewer than a quorum has been in a
// session with it for answerWithin: catching up may take minutes, and
// only the loss of the quorum ends it.
func (r *replicator) fence(ctx context.Context, answerWithin time.Duration) error {
	got := map[string]fencedPeer{}
	deadline := time.NewTimer(answerWithin)
	defer deadline.Stop()
	for len(got) < r.quorum-1 {
		select {
		case f := <-r.fenced:
			got[f.p.id] = f
		case <-deadline.C:
			return fmt.Errorf("fencing a quorum: %d of %d members answered within %v; %s", len(got)+1, r.quorum, answerWithin, r.silent(got))
		case <-ctx.Done():
			return fmt.Errorf("fencing a quorum: %d of %d members answered: %w", len(got)+1, r.quorum, ctx.Err())
		}
	}
	var best *fencedPeer
	end := r.st.End()
	for _, f := range got {
		if !f.state.Restoring && end.Less(f.state.End) {
			best, end = &f, f.state.End
		}
	}
	if best != nil {
		if err := r.fetch(*best); err != nil {
			return fmt.Errorf("fetching the longer log of %s: %w", best.p.id, err)
		}
	}
	close(r.gate)
	target := r.st.End().Index
	tick := time.NewTicker(heartbeat)
	defer tick.Stop()
	inSession := time.Now()
	for {
		r.mu.Lock()
		r.want = target
		n, ch := r.countLocked(target), r.changed
		sessions := 1
		for _, p := range r.peers {
			if p.session {
				sessions++
			}
		}
		r.mu.Unlock()
		if n >= r.quorum {
			return nil
		}
		if sessions >= r.quorum {
			inSession = time.Now()
		} else if time.Since(inSession) > answerWithin {
			return fmt.Errorf("waiting for a quorum to catch up: only %d of %d nodes in session for %v", sessions, r.quorum, answerWithin)
		}
		select {
		case <-ch:
		case <-tick.C:
		case <-ctx.Done():
			return fmt.Errorf("waiting for a quorum to catch up: %w", ctx.Err())
		}
	}
}

// silent names the members that have not answered and why.
func (r *replicator) silent(answered map[string]fencedPeer) string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for id, p := range r.peers {
		if _, ok := answered[id]; ok {
			continue
		}
		why := "no answer yet"
		if p.lastErr != nil {
			why = p.lastErr.Error()
		}
		out = append(out, fmt.Sprintf("%s (%s): %s", id, p.addr, why))
	}
	if len(out) == 0 {
		return "no other member is registered"
	}
	slices.Sort(out)
	return "silent: " + strings.Join(out, "; ")
}

// fetch copies f's log into this store, over f's connection, while f's
// own goroutine waits at the gate.
func (r *replicator) fetch(f fencedPeer) error {
	r.log.Info("fetching the longer log of a member", "member", f.p.id, "its_end", f.state.End, "own_end", r.st.End())
	mine, err := stateOf(r.st)
	if err != nil {
		return err
	}
	if err := f.l.write(msgFetch, mine.encode()); err != nil {
		return err
	}
	if err := f.l.flush(); err != nil {
		return err
	}
	var prog progress
	prog.start("fetch", 0, r.st.End().Index, f.state.End.Index)
	rc := &receiver{l: f.l, st: r.st, sync: true, log: r.log, prog: &prog}
	for {
		typ, p, err := f.l.read()
		if err != nil {
			return err
		}
		handled, err := rc.handle(typ, p)
		if err != nil {
			return err
		}
		if !handled {
			if typ != msgSynced {
				return fmt.Errorf("%w: message %d in a fetch", errProtocol, typ)
			}
			r.log.Info("fetched the longer log", "end", r.st.End())
			return nil
		}
	}
}

// countLocked is how many nodes, this one included, hold index.
func (r *replicator) countLocked(index uint64) int {
	n := 1
	for _, p := range r.peers {
		if p.live && p.acked >= index {
			n++
		}
	}
	return n
}

// Confirm is the store's Confirmer: it waits until a quorum acknowledges
// rec, while ZooKeeper is reachable and the lease holds, for at most the
// confirm timeout from since, and returns the lease's end, past which the
// confirmation must not reach a client. Written has woken the peers
// already. A record that cannot be confirmed in time makes the master
// step down: its memory holds what may never be confirmed.
func (r *replicator) Confirm(ctx context.Context, rec store.Record, since time.Time) (time.Time, error) {
	timer := time.NewTimer(time.Until(since.Add(r.timeout)))
	defer timer.Stop()
	for {
		r.mu.Lock()
		if r.closed {
			why := r.closedWhy
			r.mu.Unlock()
			return time.Time{}, fmt.Errorf("%w: %s", ErrNotMaster, why)
		}
		r.want = rec.Index
		n, leased, ok := r.confirmableLocked(rec.Index)
		suspended, ch, lease := r.suspended, r.changed, r.leaseEnd
		r.mu.Unlock()
		if ok {
			return lease, nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return time.Time{}, ctx.Err()
		case <-timer.C:
			why := fmt.Sprintf("record %d is held by %d of the %d nodes needed", rec.Index, n, r.quorum)
			if !leased || suspended {
				why = fmt.Sprintf("record %d waited for ZooKeeper to confirm this node's leadership", rec.Index)
			}
			r.lost(fmt.Sprintf("%s after %v", why, r.timeout))
			return time.Time{}, fmt.Errorf("%w: %s", ErrNoQuorum, why)
		}
	}
}

// MemoryQuorum reports whether the master's records need no fsync of
// their own (quorum_mem with other nodes in the quorum: see Config.Sync).
func (r *replicator) MemoryQuorum() bool { return r.memory }

// Confirmed is Confirm without the wait: the store's writer asks it
// first, and answers the record's commits itself when a quorum holds it
// already (the slaves' acks can come back while the local write runs, and
// do while an fsync runs), instead of handing them to the goroutine that
// waits.
func (r *replicator) Confirmed(rec store.Record) (time.Time, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return time.Time{}, false
	}
	_, _, ok := r.confirmableLocked(rec.Index)
	return r.leaseEnd, ok
}

// confirmableLocked reports how many nodes hold index, whether the lease
// runs, and whether index may be confirmed now. r.mu is held.
func (r *replicator) confirmableLocked(index uint64) (n int, leased, ok bool) {
	n = r.countLocked(index)
	leased = time.Now().Before(r.leaseEnd)
	return n, leased, !r.suspended && leased && n >= r.quorum
}

// renew extends the master's lease to sent plus the lease duration: sent
// is when a request left for ZooKeeper that found this master's znode
// still there after a sync. ZooKeeper expires the session no sooner than
// a session timeout after it, and no other master exists before that, so
// confirming inside the shorter lease never overlaps a newer master.
func (r *replicator) renew(sent time.Time) {
	r.mu.Lock()
	if end := sent.Add(r.lease); end.After(r.leaseEnd) {
		r.leaseEnd = end
		r.signalLocked()
	}
	r.mu.Unlock()
}

// quorumSeen is the last time a quorum, this node included, was heard
// from: the (quorum-1)-th most recent acknowledgement among the peers.
func (r *replicator) quorumSeen() time.Time {
	if r.quorum <= 1 {
		return time.Now()
	}
	r.mu.Lock()
	var times []time.Time
	for _, p := range r.peers {
		times = append(times, p.lastAck)
	}
	r.mu.Unlock()
	if len(times) < r.quorum-1 {
		return time.Time{}
	}
	slices.SortFunc(times, func(a, b time.Time) int { return b.Compare(a) })
	return times[r.quorum-2]
}

// suspend stops or resumes confirming, as ZooKeeper goes and comes back.
func (r *replicator) suspend(on bool) {
	r.mu.Lock()
	r.suspended = on
	r.signalLocked()
	r.mu.Unlock()
}

// lag reports each member's position behind this store's end.
func (r *replicator) lag() map[string]PeerStatus {
	end := r.st.End().Index
	r.mu.Lock()
	defer r.mu.Unlock()
	out := map[string]PeerStatus{}
	for id, p := range r.peers {
		ps := PeerStatus{Addr: p.addr, Attached: p.live, Acked: p.acked}
		if p.live {
			ps.Lag = end - min(end, p.acked)
		}
		if p.lastErr != nil && !p.session {
			ps.Error = p.lastErr.Error()
		}
		out[id] = ps
	}
	return out
}

// close ends the term: what waits for confirmation fails with why, and
// the peers' sessions end.
func (r *replicator) close(why string) {
	r.mu.Lock()
	r.closed, r.closedWhy = true, why
	r.signalLocked()
	r.mu.Unlock()
	r.cancel()
	r.wg.Wait()
}
