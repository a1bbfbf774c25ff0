package ha

import (
	"bufio"
	"crypto/hmac"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"io"
	"net"
	"time"

	"github.com/hamq/hamq/core/store"
)

// Message types of the replication protocol; see the package doc.
const (
	msgHello     byte = iota + 1 // master -> node: version, epoch, master id, nonce
	msgChallenge                 // node -> master: nonce, proof of the secret
	msgAuth                      // master -> node: proof of the secret
	msgRefuse                    // node -> master: its fenced epoch, why
	msgState                     // node -> master: its log (base, end, epoch boundaries)
	msgFetch                     // master -> node: send me your log; carries the master's state
	msgTruncate                  // sender -> receiver: drop records after this index
	msgSnapshot                  // sender -> receiver: a snapshot at a position follows, of about n bytes
	msgSnapData                  // key/value pairs of the snapshot
	msgSnapEnd                   // the snapshot is complete
	msgRecord                    // one log record (store.Record.Encode)
	msgSynced                    // sender -> receiver: the log is sent up to here (fetch's end, or a heartbeat)
	msgAck                       // receiver -> sender: records written up to this index
)

// protocolVersion is the first field of HELLO: a node of another version
// is refused with a message that says so.
const protocolVersion = 2

// maxMessage bounds what a peer may make us allocate. Records are group
// commits, bounded by the store's MaxGroupBytes plus one submission of at
// most store.MaxRecordBytes; snapshot chunks by snapChunk.
const maxMessage = 256 << 20

// macLen is the bytes of each message's MAC once a session is keyed: a
// truncated HMAC-SHA256, as TLS's and IPsec's truncated MACs.
const macLen = 16

var (
	errProtocol = errors.New("ha: replication protocol error")
	errBadMAC   = errors.New("ha: a replication message failed its integrity check")
)

// Timeouts of a replication connection. Each bounds one step, never a
// whole transfer: a slave restoring a snapshot of gigabytes reads and
// writes for minutes, and each read or write must merely make progress.
const (
	// heartbeat is how often an idle master sends SYNCED; every message
	// is acknowledged, so both sides hear from each other at least this
	// often.
	heartbeat = 500 * time.Millisecond
	// idleTimeout is how long a read waits for the next message.
	idleTimeout = 5 * time.Second
	// writeTimeout is how long one write may wait for the peer to take
	// bytes: a slave applying a snapshot chunk reads nothing meanwhile.
	writeTimeout = 30 * time.Second
)

// link is one replication connection: length-prefixed messages over
// buffered I/O, each read and write bounded by its own deadline, and,
// once the handshake has keyed it (see auth.go), a MAC on every message
// with a sequence number per direction, so that nothing can be injected,
// dropped, reordered or replayed into an authenticated session.
type link struct {
	conn net.Conn
	br   *bufio.Reader
	bw   *bufio.Writer
	buf  []byte // the last payload read, whose array the next read reuses

	// A master writes records and reads acks on two goroutines at once,
	// so each direction has its own MAC state: a shared sum buffer let
	// one direction's MAC overwrite the other's before it was written or
	// compared, and sessions ended on integrity failures under load.
	out, in macState
}

type macState struct {
	h   hash.Hash
	seq uint64
	sum []byte
}

// next returns the MAC of the direction's next message.
func (m *macState) next(typ byte, payload []byte) []byte {
	m.seq++
	m.h.Reset()
	var head [9]byte
	binary.BigEndian.PutUint64(head[:8], m.seq)
	head[8] = typ
	m.h.Write(head[:])
	m.h.Write(payload)
	m.sum = m.h.Sum(m.sum[:0])
	return m.sum[:macLen]
}

func newLink(conn net.Conn, readBuf, writeBuf int) *link {
	dc := deadlineConn{Conn: conn}
	return &link{conn: conn, br: bufio.NewReaderSize(&dc, readBuf), bw: bufio.NewWriterSize(&dc, writeBuf)}
}

// deadlineConn sets a fresh deadline before each read and write, so that
// a deadline measures progress rather than a whole snapshot.
type deadlineConn struct{ net.Conn }

func (c *deadlineConn) Read(p []byte) (int, error) {
	c.Conn.SetReadDeadline(time.Now().Add(idleTimeout))
	return c.Conn.Read(p)
}

func (c *deadlineConn) Write(p []byte) (int, error) {
	c.Conn.SetWriteDeadline(time.Now().Add(writeTimeout))
	return c.Conn.Write(p)
}

// key starts authenticating messages: from here on every message sent
// carries a MAC under out, and every message read must carry one under in.
func (l *link) key(out, in hash.Hash) { l.out.h, l.in.h = out, in }

func (l *link) write(typ byte, payload []byte) error {
	n := len(payload) + 1
	if l.out.h != nil {
		n += macLen
	}
	var h [5]byte
	binary.BigEndian.PutUint32(h[:], uint32(n))
	h[4] = typ
	if _, err := l.bw.Write(h[:]); err != nil {
		return err
	}
	if _, err := l.bw.Write(payload); err != nil {
		return err
	}
	if l.out.h == nil {
		return nil
	}
	_, err := l.bw.Write(l.out.next(typ, payload))
	return err
}

func (l *link) flush() error { return l.bw.Flush() }

// read reads one message. Its payload is valid until the next read: a
// slave gets every record through it, and a fresh buffer for each was
// most of what a slave allocated.
func (l *link) read() (byte, []byte, error) {
	var h [5]byte
	if _, err := io.ReadFull(l.br, h[:]); err != nil {
		return 0, nil, err
	}
	n := binary.BigEndian.Uint32(h[:])
	tail := uint32(1)
	if l.in.h != nil {
		tail += macLen
	}
	if n < tail || n > maxMessage {
		return 0, nil, fmt.Errorf("%w: message of %d bytes", errProtocol, n)
	}
	if uint32(cap(l.buf)) < n-1 {
		l.buf = make([]byte, n-1)
	}
	body := l.buf[:n-1]
	if _, err := io.ReadFull(l.br, body); err != nil {
		return 0, nil, err
	}
	if l.in.h == nil {
		return h[4], body, nil
	}
	payload, sum := body[:len(body)-macLen], body[len(body)-macLen:]
	if !hmac.Equal(sum, l.in.next(h[4], payload)) {
		return 0, nil, errBadMAC
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
	// Restoring: a snapshot restore was broken off, the log is partial,
	// and only a snapshot mends it.
	Restoring bool
}

func stateOf(st *store.Store) (logState, error) {
	if st.Restoring() {
		return logState{Epoch: st.Epoch(), Bounds: []store.Position{{}}, Restoring: true}, nil
	}
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
	restoring := uint64(0)
	if s.Restoring {
		restoring = 1
	}
	return binary.AppendUvarint(b, restoring)
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
	s.Restoring = d.uint() == 1
	return s, d.err
}
