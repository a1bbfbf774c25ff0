package ha

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"net"
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
// once a quorum holds its record.
type replicator struct {
	st      *store.Store
	epoch   uint64
	id      string
	quorum  int
	timeout time.Duration // how long a commit may wait for a quorum
	log     *slog.Logger
	onNewer func(epoch uint64) // a member is fenced at a newer epoch: step down

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
	closed    bool
}

type peer struct {
	id, addr string
	wake     chan struct{} // new records to send
	acked    uint64        // under replicator.mu; 0 when not in a session
	sent     uint64
	live     bool
}

type fencedPeer struct {
	p     *peer
	state logState
	br    *bufio.Reader
	bw    *bufio.Writer
}

func newReplicator(st *store.Store, id string, epoch uint64, quorum int, timeout time.Duration, log *slog.Logger, onNewer func(uint64)) *replicator {
	ctx, cancel := context.WithCancel(context.Background())
	return &replicator{
		st: st, id: id, epoch: epoch, quorum: quorum, timeout: timeout, log: log, onNewer: onNewer,
		ctx: ctx, cancel: cancel,
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
		p.acked, p.live = 0, false
		r.signalLocked()
		r.mu.Unlock()
		if errors.Is(err, errRefused) {
			return
		}
		if err != nil && r.ctx.Err() == nil {
			r.log.Debug("replication to a member interrupted", "member", p.id, "addr", p.addr, "err", err)
		}
		select {
		case <-r.ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 2*time.Second)
	}
}

// session is one connection to a member: fence it, wait for the gate,
// then stream.
func (r *replicator) session(p *peer) error {
	d := net.Dialer{Timeout: 2 * time.Second}
	conn, err := d.DialContext(r.ctx, "tcp", p.addr)
	if err != nil {
		return err
	}
	defer conn.Close()
	stop := context.AfterFunc(r.ctx, func() { conn.Close() })
	defer stop()
	br, bw := bufio.NewReaderSize(conn, 64<<10), bufio.NewWriterSize(conn, 256<<10)
	hello := appendBytes(binary.AppendUvarint(nil, r.epoch), []byte(r.id))
	if err := writeMsg(bw, msgHello, hello); err != nil {
		return err
	}
	if err := bw.Flush(); err != nil {
		return err
	}
	conn.SetReadDeadline(time.Now().Add(idleTimeout))
	typ, msg, err := readMsg(br, nil)
	if err != nil {
		return err
	}
	switch typ {
	case msgRefuse:
		d := decoder{b: msg}
		epoch, why := d.uint(), string(d.bytes())
		if epoch > r.epoch {
			r.log.Warn("a member is fenced by a newer master", "member", p.id, "epoch", epoch)
			r.onNewer(epoch)
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
	select {
	case r.fenced <- fencedPeer{p, state, br, bw}:
	case <-r.gate:
	case <-r.ctx.Done():
		return r.ctx.Err()
	}
	select {
	case <-r.gate:
	case <-r.ctx.Done():
		return r.ctx.Err()
	}
	return r.stream(p, conn, state, br, bw)
}

func (r *replicator) stream(p *peer, conn net.Conn, state logState, br *bufio.Reader, bw *bufio.Writer) error {
	sent, err := sendStart(bw, r.st, state)
	if err != nil {
		return err
	}
	if err := writeMsg(bw, msgSynced, binary.AppendUvarint(nil, r.st.End().Index)); err != nil {
		return err
	}
	r.mu.Lock()
	p.live = true
	r.signalLocked()
	r.mu.Unlock()
	acks := make(chan error, 1)
	go func() { acks <- r.readAcks(p, conn, br) }()
	tick := time.NewTicker(heartbeat)
	defer tick.Stop()
	for {
		last, err := r.sendFrom(bw, sent)
		if err != nil {
			return err
		}
		idle := last == sent
		sent = last
		if idle {
			if err := writeMsg(bw, msgSynced, binary.AppendUvarint(nil, sent)); err != nil {
				return err
			}
		}
		if err := bw.Flush(); err != nil {
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
func (r *replicator) sendFrom(bw *bufio.Writer, after uint64) (uint64, error) {
	for {
		r.mu.Lock()
		b, ok := r.recent[after+1]
		behind := !ok && (len(r.recent) == 0 || after+1 < r.oldest)
		r.mu.Unlock()
		if behind {
			last, err := sendRecords(bw, r.st, after)
			if err != nil || last == after {
				return last, err
			}
			after = last
			continue
		}
		if !ok {
			return after, nil
		}
		if err := writeMsg(bw, msgRecord, b); err != nil {
			return after, err
		}
		after++
	}
}

func (r *replicator) readAcks(p *peer, conn net.Conn, br *bufio.Reader) error {
	for {
		conn.SetReadDeadline(time.Now().Add(idleTimeout))
		typ, msg, err := readMsg(br, nil)
		if err != nil {
			conn.Close()
			return err
		}
		if typ != msgAck {
			conn.Close()
			return fmt.Errorf("%w: message %d from a slave", errProtocol, typ)
		}
		d := decoder{b: msg}
		at := d.uint()
		if d.err != nil {
			conn.Close()
			return d.err
		}
		r.mu.Lock()
		// Only an ack that makes this peer count for the index awaited
		// wakes the waiter; acks below it, or from a peer counted
		// already, would wake it for nothing.
		if p.acked < r.want && at >= r.want {
			r.signalLocked()
		}
		p.acked = at
		r.mu.Unlock()
	}
}

// fence collects the answers of a quorum and makes sure this store holds
// the longest log among them, fetching it from the member that has it,
// then lets every peer stream. It returns once a quorum has caught up.
func (r *replicator) fence(ctx context.Context) error {
	got := map[string]fencedPeer{}
	for len(got) < r.quorum-1 {
		select {
		case f := <-r.fenced:
			got[f.p.id] = f
		case <-ctx.Done():
			return fmt.Errorf("fencing a quorum: %d of %d members answered: %w", len(got)+1, r.quorum, ctx.Err())
		}
	}
	var best *fencedPeer
	end := r.st.End()
	for _, f := range got {
		if end.Less(f.state.End) {
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
	for {
		r.mu.Lock()
		r.want = target
		n, ch := r.countLocked(target), r.changed
		r.mu.Unlock()
		if n >= r.quorum {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return fmt.Errorf("waiting for a quorum to catch up: %w", ctx.Err())
		}
	}
}

// fetch copies f's log into this store, over f's connection, while f's
// own goroutine waits at the gate.
func (r *replicator) fetch(f fencedPeer) error {
	r.log.Info("fetching the longer log of a member", "member", f.p.id, "its_end", f.state.End, "own_end", r.st.End())
	mine, err := stateOf(r.st)
	if err != nil {
		return err
	}
	if err := writeMsg(f.bw, msgFetch, mine.encode()); err != nil {
		return err
	}
	if err := f.bw.Flush(); err != nil {
		return err
	}
	rc := &receiver{r: f.br, st: r.st, sync: true, log: r.log}
	rc.expect(f.state.End.Index)
	for {
		typ, p, err := rc.read()
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
// rec, while ZooKeeper is reachable. Written has woken the peers already.
func (r *replicator) Confirm(ctx context.Context, rec store.Record) error {
	timer := time.NewTimer(r.timeout)
	defer timer.Stop()
	for {
		r.mu.Lock()
		if r.closed {
			r.mu.Unlock()
			return ErrNotMaster
		}
		r.want = rec.Index
		n, suspended, ch := r.countLocked(rec.Index), r.suspended, r.changed
		r.mu.Unlock()
		if !suspended && n >= r.quorum {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		case <-timer.C:
			return fmt.Errorf("%w: record %d is held by %d of the %d nodes needed", ErrNoQuorum, rec.Index, n, r.quorum)
		}
	}
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
		out[id] = ps
	}
	return out
}

func (r *replicator) close() {
	r.mu.Lock()
	r.closed = true
	r.signalLocked()
	r.mu.Unlock()
	r.cancel()
	r.wg.Wait()
}
