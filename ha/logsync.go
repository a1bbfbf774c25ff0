package ha

import (
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/hamq/hamq/core/store"
)

// epochAt is the epoch of record i in a log with these epoch boundaries,
// and the index where that epoch's run starts; ok is false below the base.
func epochAt(bounds []store.Position, i uint64) (epoch, start uint64, ok bool) {
	for j := len(bounds) - 1; j >= 0; j-- {
		if bounds[j].Index <= i {
			return bounds[j].Epoch, bounds[j].Index, true
		}
	}
	return 0, 0, false
}

// diverge finds the last index at which logs a and b hold the same record.
// Every record is written by the one master of its epoch, so equal
// (epoch, index) means equal records and equal logs up to there (Raft's
// log matching); runs of different epochs are skipped whole, as in Kafka's
// leader-epoch truncation. ok is false when the logs share nothing that
// both still keep: the one behind then needs a snapshot.
func diverge(a, b logState) (uint64, bool) {
	low := max(a.Bounds[0].Index, b.Bounds[0].Index)
	i := min(a.End.Index, b.End.Index)
	for i >= low {
		ea, sa, _ := epochAt(a.Bounds, i)
		eb, sb, _ := epochAt(b.Bounds, i)
		if ea == eb {
			return i, true
		}
		next := max(sa, sb)
		if next == 0 || next <= low {
			break
		}
		i = next - 1
	}
	return 0, false
}

// snapChunk is the size of the key/value batches a snapshot is sent in.
const snapChunk = 1 << 20

// sendStart brings a receiver whose log is peer to a point from which this
// store's records follow: a truncation of what the receiver holds and we
// do not, or a whole snapshot when our logs share nothing we still keep.
// It returns the index after which records are to be sent.
func sendStart(w *link, st *store.Store, peer logState) (uint64, error) {
	mine, err := stateOf(st)
	if err != nil {
		return 0, err
	}
	if at, ok := diverge(mine, peer); ok && !peer.Restoring {
		if peer.End.Index > at {
			if err := w.write(msgTruncate, binary.AppendUvarint(nil, at)); err != nil {
				return 0, err
			}
		}
		return at, nil
	}
	return sendSnapshot(w, st)
}

func sendSnapshot(w *link, st *store.Store) (uint64, error) {
	sn, err := st.Snapshot()
	if err != nil {
		return 0, err
	}
	defer sn.Release()
	size, err := st.SizeOf()
	if err != nil {
		return 0, err
	}
	if err := w.write(msgSnapshot, binary.AppendUvarint(appendPos(nil, sn.Position), size)); err != nil {
		return 0, err
	}
	var chunk []byte
	err = sn.Each(func(k, v []byte) error {
		chunk = appendBytes(appendBytes(chunk, k), v)
		if len(chunk) < snapChunk {
			return nil
		}
		err := w.write(msgSnapData, chunk)
		chunk = chunk[:0]
		return err
	})
	if err != nil {
		return 0, err
	}
	if len(chunk) > 0 {
		if err := w.write(msgSnapData, chunk); err != nil {
			return 0, err
		}
	}
	return sn.Position.Index, w.write(msgSnapEnd, nil)
}

// sendRecords writes the records after index after, up to the end at the
// time of the call, and returns the last index written.
func sendRecords(w *link, st *store.Store, after uint64) (uint64, error) {
	err := st.ReadFrom(after, func(index uint64, enc []byte) error {
		after = index
		return w.write(msgRecord, enc)
	})
	return after, err
}

// receiver applies what a sender streams into a store: truncations,
// snapshots, records. One receiver serves a slave's whole session with its
// master, or a candidate fetching a longer log from a fenced member.
type receiver struct {
	l    *link
	st   *store.Store
	sync bool // fsync each record (quorum_disk)
	log  *slog.Logger
	prog *progress
}

// handle applies one message of the types a sender sends; handled is
// false for any other type, which the caller deals with.
func (rc *receiver) handle(typ byte, p []byte) (handled bool, err error) {
	switch typ {
	case msgTruncate:
		d := decoder{b: p}
		at := d.uint()
		if d.err != nil {
			return true, d.err
		}
		rc.log.Info("dropping a log suffix the master never had", "from", rc.st.End().Index, "to", at)
		return true, rc.st.Truncate(at)
	case msgSnapshot:
		d := decoder{b: p}
		pos, size := d.pos(), d.uint()
		if d.err != nil {
			return true, d.err
		}
		return true, rc.restore(pos, size)
	case msgRecord:
		if err := rc.st.Apply(p, rc.sync); err != nil {
			return true, err
		}
		rc.prog.record(rc.st.End().Index, len(p), rc.log)
		return true, nil
	}
	return false, nil
}

func (rc *receiver) restore(pos store.Position, size uint64) error {
	rc.log.Info("attaching: receiving a snapshot", "epoch", pos.Epoch, "index", pos.Index, "MiB", mib(int64(size)))
	rc.prog.start("snapshot", int64(size), 0, 0)
	var pending []byte
	next := func() (k, v []byte, ok bool, err error) {
		for len(pending) == 0 {
			typ, p, err := rc.l.read()
			if err != nil {
				return nil, nil, false, err
			}
			switch typ {
			case msgSnapEnd:
				return nil, nil, false, nil
			case msgSnapData:
				pending = p
				rc.prog.snapshot(len(p), rc.log)
			default:
				return nil, nil, false, fmt.Errorf("%w: message %d inside a snapshot", errProtocol, typ)
			}
		}
		d := decoder{b: pending}
		k, v = d.bytes(), d.bytes()
		if d.err != nil {
			return nil, nil, false, d.err
		}
		pending = d.b
		return k, v, true, nil
	}
	if err := rc.st.Restore(pos, next); err != nil {
		return err
	}
	var got int64
	if c := rc.prog.current(); c != nil {
		got = c.DoneBytes
	}
	rc.prog.done()
	rc.log.Info(fmt.Sprintf("attaching: snapshot of %s MiB restored", mib(got)), "epoch", pos.Epoch, "index", pos.Index)
	return nil
}

func mib(n int64) string { return fmt.Sprintf("%.1f", float64(n)/(1<<20)) }

// CatchUp is a node's progress towards a log it is receiving: a
// snapshot, or the records from where its log parts from the sender's.
type CatchUp struct {
	Phase string `json:"phase"` // snapshot, records or fetch
	// DoneBytes of TotalBytes: a snapshot's total is the size of its
	// state on the sender's disk, compressed, so done may pass it.
	DoneBytes  int64 `json:"doneBytes"`
	TotalBytes int64 `json:"totalBytes,omitempty"`
	// Records received of RecordsTotal, while receiving records.
	Records        uint64    `json:"records,omitempty"`
	RecordsTotal   uint64    `json:"recordsTotal,omitempty"`
	BytesPerSecond float64   `json:"bytesPerSecond"`
	Since          time.Time `json:"since"`
}

// progress is a node's CatchUp, shared with its status, logged once a
// second while it lasts.
type progress struct {
	mu       sync.Mutex
	cur      *CatchUp
	from     uint64 // records: the index the catch-up started after
	lastLog  time.Time
	lastByte int64
}

func (p *progress) start(phase string, totalBytes int64, from, target uint64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	now := time.Now()
	p.cur = &CatchUp{Phase: phase, TotalBytes: totalBytes, RecordsTotal: target - min(from, target), Since: now}
	p.from, p.lastLog, p.lastByte = from, now, 0
}

func (p *progress) done() {
	p.mu.Lock()
	p.cur = nil
	p.mu.Unlock()
}

func (p *progress) snapshot(n int, log *slog.Logger) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cur == nil {
		return
	}
	p.cur.DoneBytes += int64(n)
	p.report(log)
}

func (p *progress) record(at uint64, n int, log *slog.Logger) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cur == nil || p.cur.Phase == "snapshot" {
		return
	}
	p.cur.DoneBytes += int64(n)
	p.cur.Records = min(at-min(p.from, at), p.cur.RecordsTotal)
	p.report(log)
}

// report logs and updates the rate once a second; p.mu is held.
func (p *progress) report(log *slog.Logger) {
	now := time.Now()
	if now.Sub(p.lastLog) < time.Second {
		return
	}
	c := p.cur
	c.BytesPerSecond = float64(c.DoneBytes-p.lastByte) / now.Sub(p.lastLog).Seconds()
	p.lastLog, p.lastByte = now, c.DoneBytes
	if c.Phase == "snapshot" {
		log.Info(fmt.Sprintf("attaching: downloaded %s of the snapshot's %s MiB (compressed on the master's disk), %s MiB/s",
			mib(c.DoneBytes), mib(c.TotalBytes), mib(int64(c.BytesPerSecond))))
		return
	}
	log.Info(fmt.Sprintf("attaching: received %d/%d records, %s MiB, %s MiB/s", c.Records, c.RecordsTotal, mib(c.DoneBytes), mib(int64(c.BytesPerSecond))))
}

// current is a copy of the catch-up under way, or nil.
func (p *progress) current() *CatchUp {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cur == nil {
		return nil
	}
	c := *p.cur
	return &c
}

var errRefused = errors.New("ha: refused")
