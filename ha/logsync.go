package ha

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
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
func sendStart(w *bufio.Writer, st *store.Store, peer logState) (uint64, error) {
	mine, err := stateOf(st)
	if err != nil {
		return 0, err
	}
	if at, ok := diverge(mine, peer); ok {
		if peer.End.Index > at {
			if err := writeMsg(w, msgTruncate, binary.AppendUvarint(nil, at)); err != nil {
				return 0, err
			}
		}
		return at, nil
	}
	return sendSnapshot(w, st)
}

func sendSnapshot(w *bufio.Writer, st *store.Store) (uint64, error) {
	sn, err := st.Snapshot()
	if err != nil {
		return 0, err
	}
	defer sn.Release()
	size, err := st.SizeOf()
	if err != nil {
		return 0, err
	}
	if err := writeMsg(w, msgSnapshot, binary.AppendUvarint(appendPos(nil, sn.Position), size)); err != nil {
		return 0, err
	}
	var chunk []byte
	err = sn.Each(func(k, v []byte) error {
		chunk = appendBytes(appendBytes(chunk, k), v)
		if len(chunk) < snapChunk {
			return nil
		}
		err := writeMsg(w, msgSnapData, chunk)
		chunk = chunk[:0]
		return err
	})
	if err != nil {
		return 0, err
	}
	if len(chunk) > 0 {
		if err := writeMsg(w, msgSnapData, chunk); err != nil {
			return 0, err
		}
	}
	return sn.Position.Index, writeMsg(w, msgSnapEnd, nil)
}

// sendRecords writes the records after index after, up to the end at the
// time of the call, and returns the last index written.
func sendRecords(w *bufio.Writer, st *store.Store, after uint64) (uint64, error) {
	err := st.ReadFrom(after, func(index uint64, enc []byte) error {
		after = index
		return writeMsg(w, msgRecord, enc)
	})
	return after, err
}

// receiver applies what a sender streams into a store: truncations,
// snapshots, records. One receiver serves a slave's whole session with its
// master, or a candidate fetching a longer log from a fenced member.
type receiver struct {
	r    *bufio.Reader
	buf  []byte // the last payload read, whose array the next read reuses
	st   *store.Store
	sync bool // fsync each record (quorum_disk)
	log  *slog.Logger

	// progress of a catch-up, logged once a second
	from, target uint64
	bytes        int64
	lastLog      time.Time
}

// read reads the next message; its payload is valid until the next read.
// A slave gets every record through it, and a fresh buffer for each was
// most of what a slave allocated.
func (rc *receiver) read() (byte, []byte, error) {
	typ, p, err := readMsg(rc.r, rc.buf)
	if err == nil {
		rc.buf = p
	}
	return typ, p, err
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
		rc.bytes += int64(len(p))
		rc.progress(rc.st.End().Index)
		return true, nil
	}
	return false, nil
}

func (rc *receiver) restore(pos store.Position, size uint64) error {
	rc.log.Info("attaching: receiving a snapshot", "epoch", pos.Epoch, "index", pos.Index, "MiB", mib(int64(size)))
	var got int64
	var pending []byte
	last := time.Now()
	next := func() (k, v []byte, ok bool, err error) {
		for len(pending) == 0 {
			typ, p, err := rc.read()
			if err != nil {
				return nil, nil, false, err
			}
			switch typ {
			case msgSnapEnd:
				return nil, nil, false, nil
			case msgSnapData:
				pending = p
				got += int64(len(p))
				if time.Since(last) >= time.Second {
					last = time.Now()
					rc.log.Info(fmt.Sprintf("attaching: downloaded %s MiB of the snapshot (%s MiB compressed on the master's disk)", mib(got), mib(int64(size))))
				}
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
	rc.log.Info(fmt.Sprintf("attaching: snapshot of %s MiB restored", mib(got)), "epoch", pos.Epoch, "index", pos.Index)
	return nil
}

// expect sets what a catch-up is heading for, for the progress log.
func (rc *receiver) expect(target uint64) {
	rc.from, rc.target, rc.bytes, rc.lastLog = rc.st.End().Index, target, 0, time.Now()
}

func (rc *receiver) progress(at uint64) {
	if rc.target <= rc.from || time.Since(rc.lastLog) < time.Second {
		return
	}
	rc.lastLog = time.Now()
	done := min(at, rc.target) - rc.from
	rc.log.Info(fmt.Sprintf("attaching: received %d/%d records, %s MiB", done, rc.target-rc.from, mib(rc.bytes)))
}

func mib(n int64) string { return fmt.Sprintf("%.1f", float64(n)/(1<<20)) }

var errRefused = errors.New("ha: refused")
