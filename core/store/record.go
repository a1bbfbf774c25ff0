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
	Epoch uint64 `json:"epoch"`
	Index uint64 `json:"index"`
}

// Less orders positions by epoch, then index (Raft's up-to-date rule).
func (p Position) Less(q Position) bool {
	return p.Epoch < q.Epoch || p.Epoch == q.Epoch && p.Index < q.Index
}

// Record is one group commit as the log keeps it and the HA layer ships it:
// replication needs nothing else to reproduce the state.
type Record struct {
	Epoch, Index uint64
	Ops          []Op
}

var errCorrupt = errors.New("store: corrupt record")

func appendBytes(b, v []byte) []byte {
	b = binary.AppendUvarint(b, uint64(len(v)))
	return AppendPieces(b, v)
}

// AppendPieces appends v a MiB at a time. One append of a large value is
// one memmove, which the Go runtime cannot preempt: a collection that
// stops the world waits for it with every other goroutine stopped. A
// 90 MiB message copied into fresh memory held a node still for over a
// second here, longer than its ZooKeeper session can go unanswered.
func AppendPieces(b, v []byte) []byte {
	const piece = 1 << 20
	for len(v) > piece {
		b, v = append(b, v[:piece]...), v[piece:]
	}
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

func opsSize(ops []Op) int {
	n := 0
	for _, op := range ops {
		n += len(op.Key) + len(op.Value) + 11
	}
	return n
}

// Encode gives the record as bytes for the wire: uvarint epoch, uvarint
// index, uvarint op count, then per op a flag byte (1 delete, 0 put), the
// uvarint-prefixed key and, for a put, the uvarint-prefixed value.
func (r Record) Encode() []byte {
	return r.appendTo(make([]byte, 0, 20+opsSize(r.Ops)))
}

func (r Record) appendTo(b []byte) []byte {
	b = binary.AppendUvarint(b, r.Epoch)
	b = binary.AppendUvarint(b, r.Index)
	return appendOps(b, r.Ops)
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

// bytes aliases the input: records are decoded only from bytes the store
// owns (a Get's copy, a record handed to Apply) or reads in place.
func (r *reader) bytes() []byte {
	n := r.uvarint()
	if r.err != nil || n > uint64(len(r.b)) {
		r.err = errCorrupt
		return nil
	}
	v := r.b[:n:n]
	r.b = r.b[n:]
	return v
}

// count reads an op count, which cannot exceed the bytes left.
func (r *reader) count() uint64 {
	n := r.uvarint()
	if r.err == nil && n > uint64(len(r.b)) {
		r.err = errCorrupt
	}
	return n
}

func (r *reader) op() Op {
	if r.err != nil {
		return Op{}
	}
	if len(r.b) == 0 || r.b[0] > 1 {
		r.err = errCorrupt
		return Op{}
	}
	del := r.b[0] == 1
	r.b = r.b[1:]
	op := Op{Key: r.bytes(), Delete: del}
	if !del {
		op.Value = r.bytes()
	}
	return op
}

func (r *reader) ops() []Op {
	n := r.count()
	if r.err != nil {
		return nil
	}
	ops := make([]Op, 0, n)
	for range n {
		ops = append(ops, r.op())
	}
	if r.err != nil {
		return nil
	}
	return ops
}

func (r *reader) record() Record {
	rec := Record{Epoch: r.uvarint(), Index: r.uvarint()}
	rec.Ops = r.ops()
	return rec
}

// decodeRecord reads what Encode wrote; the ops alias b.
func decodeRecord(b []byte) (Record, error) {
	r := reader{b: b}
	rec := r.record()
	if r.err == nil && len(r.b) != 0 {
		r.err = errCorrupt
	}
	return rec, r.err
}

var (
	logPrefix = []byte("\x00log/")
	keyEnd    = []byte("\x00meta/end")
	keyEpoch  = []byte("\x00meta/epoch")
	keyBase   = []byte("\x00meta/base")
	// keyRestoring marks a Restore under way: a store holding it is half
	// replaced and must be restored again, never served.
	keyRestoring = []byte("\x00meta/restoring")
	// firstDataKey is where the core's keys begin: everything below is the
	// store's own, so whole-state iterations start here.
	firstDataKey = []byte{1}
)

func reserved(key []byte) bool { return len(key) > 0 && key[0] == 0 }

func logKey(index uint64) []byte {
	return binary.BigEndian.AppendUint64(append([]byte(nil), logPrefix...), index)
}

// mark is a place in the log with the log's size in bytes up to and
// including that record, which lets the committer trim by size without
// reading what it keeps.
type mark struct {
	Position
	bytes uint64
}

func (m mark) encode() []byte {
	b := binary.BigEndian.AppendUint64(nil, m.Epoch)
	b = binary.BigEndian.AppendUint64(b, m.Index)
	return binary.BigEndian.AppendUint64(b, m.bytes)
}

func decodeMark(b []byte) (mark, error) {
	if len(b) != 24 {
		return mark{}, errCorrupt
	}
	return mark{Position{binary.BigEndian.Uint64(b), binary.BigEndian.Uint64(b[8:])}, binary.BigEndian.Uint64(b[16:])}, nil
}

// A log entry is the log's size in bytes through this record (8 bytes, big
// endian), the encoded record, then, when it has one, its undo image: per
// key the record touched, the value before it (a put) or its absence (a
// delete). An entry without an image ends after the record; an empty
// image still has its count, so the two never look alike. The undo image
// is local to each store and never shipped. The size is filled in by
// write, once it is known; entryHead is the room left for it.
const entryHead = 8

func decodeLogEntry(v []byte) (logBytes uint64, rec Record, undo []Op, withUndo bool, err error) {
	if len(v) < entryHead {
		return 0, Record{}, nil, false, errCorrupt
	}
	r := reader{b: v[entryHead:]}
	rec = r.record()
	if withUndo = len(r.b) > 0; withUndo {
		undo = r.ops()
	}
	if r.err == nil && len(r.b) != 0 {
		r.err = errCorrupt
	}
	return binary.BigEndian.Uint64(v), rec, undo, withUndo, r.err
}

// entryRecord finds a log entry's encoded record in place, without
// copying or decoding its ops.
func entryRecord(v []byte) (enc []byte, index uint64, err error) {
	if len(v) < entryHead {
		return nil, 0, errCorrupt
	}
	r := reader{b: v[entryHead:]}
	r.uvarint()
	index = r.uvarint()
	for n := r.count(); n > 0 && r.err == nil; n-- {
		r.op()
	}
	return v[entryHead : len(v)-len(r.b)], index, r.err
}

// decodeLogHead reads a log entry's position and size only, without
// copying its ops.
func decodeLogHead(v []byte) (mark, error) {
	if len(v) < entryHead {
		return mark{}, errCorrupt
	}
	r := reader{b: v[entryHead:]}
	m := mark{Position{r.uvarint(), r.uvarint()}, binary.BigEndian.Uint64(v)}
	return m, r.err
}
