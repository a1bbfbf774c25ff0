package ha

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"github.com/hamq/hamq/core/store"
)

// Message types of the replication protocol; see the package doc.
const (
	msgHello    byte = iota + 1 // master -> node: epoch, master id
	msgRefuse                   // node -> master: its fenced epoch, why
	msgState                    // node -> master: its log (base, end, epoch boundaries)
	msgFetch                    // master -> node: send me your log; carries the master's state
	msgTruncate                 // sender -> receiver: drop records after this index
	msgSnapshot                 // sender -> receiver: a snapshot at a position follows, of about n bytes
	msgSnapData                 // key/value pairs of the snapshot
	msgSnapEnd                  // the snapshot is complete
	msgRecord                   // one log record (store.Record.Encode)
	msgSynced                   // sender -> receiver: the log is sent up to here (fetch's end, or a heartbeat)
	msgAck                      // receiver -> sender: records written up to this index
)

// maxMessage bounds what a peer may make us allocate. Records are group
// commits, bounded by the store's MaxGroupBytes; snapshot chunks by
// snapChunk.
const maxMessage = 256 << 20

var errProtocol = errors.New("ha: replication protocol error")

func writeMsg(w *bufio.Writer, typ byte, payload []byte) error {
	var h [5]byte
	binary.BigEndian.PutUint32(h[:], uint32(len(payload)+1))
	h[4] = typ
	if _, err := w.Write(h[:]); err != nil {
		return err
	}
	_, err := w.Write(payload)
	return err
}

// readMsg reads one message, into buf when it has the room: a loop that
// hands back the payload it was last given allocates nothing per message.
func readMsg(r *bufio.Reader, buf []byte) (byte, []byte, error) {
	var h [5]byte
	if _, err := io.ReadFull(r, h[:]); err != nil {
		return 0, nil, err
	}
	n := binary.BigEndian.Uint32(h[:])
	if n == 0 || n > maxMessage {
		return 0, nil, fmt.Errorf("%w: message of %d bytes", errProtocol, n)
	}
	if uint32(cap(buf)) < n-1 {
		buf = make([]byte, n-1)
	}
	payload := buf[:n-1]
	if _, err := io.ReadFull(r, payload); err != nil {
		return 0, nil, err
	}
	return h[4], payload, nil
}

// decoder reads the uvarint-framed fields of a payload; the first error
// sticks, so a message is decoded straight through and checked once.
type decoder struct {
	b   []byte
	err error
}

func (d *decoder) uint() uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.err = errProtocol
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) bytes() []byte {
	n := d.uint()
	if d.err != nil || n > uint64(len(d.b)) {
		d.err = errProtocol
		return nil
	}
	v := d.b[:n:n]
	d.b = d.b[n:]
	return v
}

func (d *decoder) pos() store.Position { return store.Position{Epoch: d.uint(), Index: d.uint()} }

func appendPos(b []byte, p store.Position) []byte {
	return binary.AppendUvarint(binary.AppendUvarint(b, p.Epoch), p.Index)
}

func appendBytes(b, v []byte) []byte {
	return append(binary.AppendUvarint(b, uint64(len(v))), v...)
}

// logState is what a node says of its log: enough for another to find
// where their logs part (see diverge).
type logState struct {
	Epoch  uint64           // the fenced epoch
	End    store.Position   // the last record
	Bounds []store.Position // store.Epochs: the base, then each epoch's first record
}

func stateOf(st *store.Store) (logState, error) {
	bounds, end, err := st.Epochs()
	if err != nil {
		return logState{}, err
	}
	return logState{Epoch: st.Epoch(), End: end, Bounds: bounds}, nil
}

func (s logState) encode() []byte {
	b := binary.AppendUvarint(nil, s.Epoch)
	b = appendPos(b, s.End)
	b = binary.AppendUvarint(b, uint64(len(s.Bounds)))
	for _, p := range s.Bounds {
		b = appendPos(b, p)
	}
	return b
}

func decodeState(b []byte) (logState, error) {
	d := decoder{b: b}
	s := logState{Epoch: d.uint(), End: d.pos()}
	n := d.uint()
	if n == 0 || n > uint64(len(d.b)) {
		return logState{}, fmt.Errorf("%w: state with %d epoch boundaries", errProtocol, n)
	}
	for range n {
		s.Bounds = append(s.Bounds, d.pos())
	}
	return s, d.err
}
