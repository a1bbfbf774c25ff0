package ha

import (
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/hamq/hamq/core/store"
)

// follower is the side of replication every node serves on its bind
// address: a master (or a candidate) dials in, proves the cluster secret,
// fences this node with its epoch, and streams its log; a candidate may
// first fetch this node's log. One master session at a time: a newer
// epoch's HELLO ends the older.
type follower struct {
	n   *Node
	log *slog.Logger

	mu  sync.Mutex // serialises fencing: one HELLO decided at a time
	cur *followSession

	refusals refusalLog
}

type followSession struct {
	conn net.Conn
	done chan struct{}
}

func (f *follower) serve(ln net.Listener) {
	for {
		conn, err := ln.Accept()
		if err != nil {
			return
		}
		go f.handle(conn)
	}
}

// drop ends the current master session, if any, and waits for it.
func (f *follower) drop() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.dropLocked()
}

func (f *follower) dropLocked() {
	if f.cur != nil {
		f.cur.conn.Close()
		<-f.cur.done
		f.cur = nil
	}
}

// attach fences this node for a master of epoch, ending any session of an
// older master first, and returns the store to apply to.
func (f *follower) attach(epoch uint64, s *followSession) (*store.Store, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	st, err := f.n.fence(epoch)
	if err != nil {
		return nil, err
	}
	f.dropLocked()
	// SetEpoch is the durable fence: from here on no session of an older
	// epoch is accepted, even after a restart.
	if err := st.SetEpoch(epoch); err != nil {
		return nil, err
	}
	f.cur = s
	return st, nil
}

// detach ends a session: done first, since a drop may hold mu waiting
// for it.
func (f *follower) detach(s *followSession) {
	close(s.done)
	f.mu.Lock()
	if f.cur == s {
		f.cur = nil
	}
	f.mu.Unlock()
}

func (f *follower) handle(conn net.Conn) {
	defer conn.Close()
	l := newLink(conn, 64<<10, 64<<10)
	h, err := authNode(l, f.n.secret)
	if err != nil {
		f.refusals.warn(f.log, "refused a replication peer", "remote", conn.RemoteAddr().String(), "err", err)
		return
	}
	refuse := func(err error) {
		reason := binary.AppendUvarint(nil, f.n.epoch())
		l.write(msgRefuse, appendBytes(reason, []byte(err.Error())))
		l.flush()
	}
	// The secret says the peer is a member; ZooKeeper says whether it is
	// the master it claims to be, of the epoch it claims. A member that
	// lags (a paused old master) or lies never fences this node.
	if err := f.n.verify(h.epoch, h.id); err != nil {
		f.refusals.warn(f.log, "refused a master ZooKeeper does not name", "master", h.id, "epoch", h.epoch, "remote", conn.RemoteAddr().String(), "err", err)
		refuse(err)
		return
	}
	s := &followSession{conn: conn, done: make(chan struct{})}
	st, err := f.attach(h.epoch, s)
	if err != nil {
		f.log.Info("refused a master", "master", h.id, "epoch", h.epoch, "reason", err)
		refuse(err)
		return
	}
	defer f.detach(s)
	log := f.log.With("master", h.id, "epoch", h.epoch)
	log.Info("fenced by a master")
	err = f.session(st, l, log)
	f.n.prog.done()
	switch {
	case err == nil || errors.Is(err, net.ErrClosed):
	case st.Err() != nil:
		// The node's watchStore reopens it.
		log.Error("replication session ended: the store failed", "err", err)
	default:
		log.Warn("replication session ended", "err", err)
	}
}

// session answers the master until the connection ends.
func (f *follower) session(st *store.Store, l *link, log *slog.Logger) error {
	state, err := stateOf(st)
	if err != nil {
		return err
	}
	if err := l.write(msgState, state.encode()); err != nil {
		return err
	}
	if err := l.flush(); err != nil {
		return err
	}
	rc := &receiver{l: l, st: st, sync: f.n.cfg.Sync == SyncQuorumDisk, log: log, prog: &f.n.prog}
	caughtUp, target := false, uint64(0)
	for {
		typ, p, err := l.read()
		if err != nil {
			return err
		}
		handled, err := rc.handle(typ, p)
		if err != nil {
			return err
		}
		if !handled {
			switch typ {
			case msgSynced:
				d := decoder{b: p}
				to := d.uint()
				if d.err != nil {
					return d.err
				}
				if !caughtUp && st.End().Index >= to {
					caughtUp = true
					f.n.prog.done()
					log.Info("attached: caught up with the master", "index", to)
				} else if !caughtUp && to != target {
					target = to
					f.n.prog.start("records", 0, st.End().Index, to)
				}
			case msgFetch:
				peer, err := decodeState(p)
				if err != nil {
					return err
				}
				if err := serveFetch(l, st, peer); err != nil {
					return fmt.Errorf("serve a fetch: %w", err)
				}
				continue
			default:
				return fmt.Errorf("%w: unexpected message %d", errProtocol, typ)
			}
		}
		if l.br.Buffered() == 0 {
			if err := l.write(msgAck, binary.AppendUvarint(nil, st.End().Index)); err != nil {
				return err
			}
			if err := l.flush(); err != nil {
				return err
			}
		}
	}
}

// serveFetch sends a candidate this node's log from where theirs parts,
// ending with msgSynced at the last record sent.
func serveFetch(l *link, st *store.Store, peer logState) error {
	from, err := sendStart(l, st, peer)
	if err != nil {
		return err
	}
	last, err := sendRecords(l, st, from)
	if err != nil {
		return err
	}
	if err := l.write(msgSynced, binary.AppendUvarint(nil, last)); err != nil {
		return err
	}
	return l.flush()
}

// refusalLog writes refusals at WARN, at most one a second with a count
// of those left out: a peer knocking in a loop must not flood the log.
type refusalLog struct {
	mu      sync.Mutex
	last    time.Time
	skipped int
}

func (r *refusalLog) warn(log *slog.Logger, msg string, args ...any) {
	r.mu.Lock()
	now := time.Now()
	if now.Sub(r.last) < time.Second {
		r.skipped++
		r.mu.Unlock()
		return
	}
	skipped := r.skipped
	r.last, r.skipped = now, 0
	r.mu.Unlock()
	if skipped > 0 {
		args = append(args, "more_refused_since_last", skipped)
	}
	log.Warn(msg, args...)
}
