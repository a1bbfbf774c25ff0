package ha

import (
	"bufio"
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
// address: a master (or a candidate) dials in, fences this node with its
// epoch, and streams its log; a candidate may first fetch this node's log.
// One master session at a time: a newer epoch's HELLO ends the older.
type follower struct {
	n   *Node
	log *slog.Logger

	mu  sync.Mutex // serialises fencing: one HELLO decided at a time
	cur *followSession
}

type followSession struct {
	conn net.Conn
	done chan struct{}
}

// idleTimeout is how long a slave waits for a word from its master (which
// sends one every heartbeat) before it drops the session.
const (
	heartbeat   = 500 * time.Millisecond
	idleTimeout = 5 * time.Second
)

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
	br, bw := bufio.NewReaderSize(conn, 64<<10), bufio.NewWriterSize(conn, 64<<10)
	conn.SetReadDeadline(time.Now().Add(idleTimeout))
	typ, p, err := readMsg(br, nil)
	if err != nil || typ != msgHello {
		return
	}
	d := decoder{b: p}
	epoch, master := d.uint(), string(d.bytes())
	if d.err != nil {
		return
	}
	s := &followSession{conn: conn, done: make(chan struct{})}
	st, err := f.attach(epoch, s)
	if err != nil {
		f.log.Info("refused a master", "master", master, "epoch", epoch, "reason", err)
		reason := binary.AppendUvarint(nil, f.n.epoch())
		writeMsg(bw, msgRefuse, appendBytes(reason, []byte(err.Error())))
		bw.Flush()
		return
	}
	defer f.detach(s)
	log := f.log.With("master", master, "epoch", epoch)
	log.Info("fenced by a master")
	if err := f.session(st, conn, br, bw, log); err != nil && !errors.Is(err, net.ErrClosed) {
		log.Warn("replication session ended", "err", err)
	}
}

// session answers the master until the connection ends.
func (f *follower) session(st *store.Store, conn net.Conn, br *bufio.Reader, bw *bufio.Writer, log *slog.Logger) error {
	state, err := stateOf(st)
	if err != nil {
		return err
	}
	if err := writeMsg(bw, msgState, state.encode()); err != nil {
		return err
	}
	if err := bw.Flush(); err != nil {
		return err
	}
	rc := &receiver{r: br, st: st, sync: f.n.cfg.Sync == SyncQuorumDisk, log: log}
	caughtUp := false
	for {
		conn.SetReadDeadline(time.Now().Add(idleTimeout))
		typ, p, err := rc.read()
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
				target := d.uint()
				if d.err != nil {
					return d.err
				}
				if !caughtUp && st.End().Index >= target {
					caughtUp = true
					rc.target = 0 // from here on records are the live stream, not a catch-up to report
					log.Info("attached: caught up with the master", "index", target)
				} else if !caughtUp && rc.target != target {
					rc.expect(target)
				}
			case msgFetch:
				peer, err := decodeState(p)
				if err != nil {
					return err
				}
				if err := serveFetch(bw, st, peer); err != nil {
					return fmt.Errorf("serve a fetch: %w", err)
				}
				continue
			default:
				return fmt.Errorf("%w: unexpected message %d", errProtocol, typ)
			}
		}
		if br.Buffered() == 0 {
			if err := writeMsg(bw, msgAck, binary.AppendUvarint(nil, st.End().Index)); err != nil {
				return err
			}
			if err := bw.Flush(); err != nil {
				return err
			}
		}
	}
}

// serveFetch sends a candidate this node's log from where theirs parts,
// ending with msgSynced at the last record sent.
func serveFetch(bw *bufio.Writer, st *store.Store, peer logState) error {
	from, err := sendStart(bw, st, peer)
	if err != nil {
		return err
	}
	last, err := sendRecords(bw, st, from)
	if err != nil {
		return err
	}
	if err := writeMsg(bw, msgSynced, binary.AppendUvarint(nil, last)); err != nil {
		return err
	}
	return bw.Flush()
}
