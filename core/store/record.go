package store

import (
	"encoding/binary"
	"errors"
)

// Op is one mutation: a put, or a delete when Delete is set.
type Op struct {
	Key, Value []byte
	Delete     bool
}

// Position is a place in the log.
type Position struct {
	Epoch, Index uint64
}

// Less orders positions by epoch, then index (Raft's up-to-date rule).
func (p Position) Less(q Position) bool {
	return p.Epoch < q.Epoch || p.Epoch == q.Epoch && p.Index < q.Index
}

// Record is one group commit as the log keeps it and the HA layer ships it.
type Record struct {
	Epoch, Index uint64
	Ops          []Op
	// Undo restores what Ops changed: per key, its prior value or a delete.
	Undo []Op
}

var errCorrupt = errors.New("store: corrupt record")

func appendBytes(b, v []byte) []byte {
	b = binary.AppendUvarint(b, uint64(len(v)))
	return append(b, v...)
}

func appendOps(b []byte, ops []Op) []byte {
	b = binary.AppendUvarint(b, uint64(len(ops)))
	for _, op := range ops {
		if op.Delete {
			b = append(b, 1)
			b = appendBytes(b, op.Key)
			continue
		}
		b = append(b, 0)
		b = appendBytes(b, op.Key)
		b = appendBytes(b, op.Value)
	}
	return b
}

// Encode gives the record as bytes, for the log and the wire.
func (r Record) Encode() []byte {
	n := 32
	for _, op := range r.Ops {
		n += len(op.Key) + len(op.Value) + 12
	}
	b := make([]byte, 0, n)
	b = binary.AppendUvarint(b, r.Epoch)
	b = binary.AppendUvarint(b, r.Index)
	b = appendOps(b, r.Ops)
	return appendOps(b, r.Undo)
}

type reader struct {
	b   []byte
	err error
}

func (r *reader) uvarint() uint64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Uvarint(r.b)
	if n <= 0 {
		r.err = errCorrupt
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *reader) bytes() []byte {
	n := r.uvarint()
	if r.err != nil || n > uint64(len(r.b)) {
		r.err = errCorrupt
		return nil
	}
	v := append([]byte(nil), r.b[:n]...)
	r.b = r.b[n:]
	return v
}

func (r *reader) ops() []Op {
	n := r.uvarint()
	if r.err != nil || n > uint64(len(r.b)) {
		r.err = errCorrupt
		return nil
	}
	ops := make([]Op, 0, n)
	for range n {
		if len(r.b) == 0 {
			r.err = errCorrupt
			return nil
		}
		del := r.b[0] == 1
		r.b = r.b[1:]
		op := Op{Key: r.bytes(), Delete: del}
		if !del {
			op.Value = r.bytes()
		}
		ops = append(ops, op)
	}
	return ops
}

// DecodeRecord reads what Encode wrote.
func DecodeRecord(b []byte) (Record, error) {
	r := reader{b: b}
	rec := Record{Epoch: r.uvarint(), Index: r.uvarint()}
	rec.Ops = r.ops()
	rec.Undo = r.ops()
	if r.err == nil && len(r.b) != 0 {
		r.err = errCorrupt
	}
	return rec, r.err
}

var (
	logPrefix = []byte("\x00log/")
	keyEnd    = []byte("\x00meta/end")
	keyEpoch  = []byte("\x00meta/epoch")
	keyTrim   = []byte("\x00meta/trim")
	// keyRestoring marks a Restore under way: a store holding it is half
	// replaced and must be restored again, never served.
	keyRestoring = []byte("\x00meta/restoring")
)

func logKey(index uint64) []byte {
	return binary.BigEndian.AppendUint64(append([]byte(nil), logPrefix...), index)
}

func encodePosition(p Position) []byte {
	return binary.BigEndian.AppendUint64(binary.BigEndian.AppendUint64(nil, p.Epoch), p.Index)
}

func decodePosition(b []byte) (Position, error) {
	if len(b) != 16 {
		return Position{}, errCorrupt
	}
	return Position{binary.BigEndian.Uint64(b), binary.BigEndian.Uint64(b[8:])}, nil
}

func reserved(key []byte) bool { return len(key) > 0 && key[0] == 0 }
