package mqtt

import (
	"errors"
	"io"
	"net"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hamq/hamq/protocols/internal/conns"
)

// limitConn is what mochi gets for a client connection. It watches the
// packets a client sends for one over the size limit: mochi refuses such a
// packet by closing the connection, MQTT 5 asks for a DISCONNECT with
// reason 0x95 (packet too large) first, which this writes, and the close
// then lingers so the client reads it rather than a reset.
//
// It also coalesces writes: mochi writes every packet (each PUBACK, each
// PUBLISH) with a syscall of its own, which was a third of the broker's
// CPU under load. A write to an idle connection goes to the socket at once
// from the writing goroutine, without blocking; what arrives meanwhile, or
// what the socket did not take, goes to a short-lived flusher goroutine,
// which writes everything that waits with one syscall. An idle connection
// adds no latency (nor a goroutine woken per packet), a busy one batches.
//
// And it batches reads (see Read).
//
// And it ends a connection, with DISCONNECT "malformed packet" in MQTT 5,
// at an MQTT 5 SUBSCRIBE whose body ends right after a topic filter, with
// no subscription options byte: mochi v2.7.9's SubscribeDecode reads past
// the packet there and panics, which would end the broker (found by
// FuzzConn). The packet never reaches mochi.
type limitConn struct {
	net.Conn
	limit int

	raw      *conns.RawWriter // nil: every write is the flusher's
	wmu      sync.Mutex
	wbuf     []byte
	flushing bool // a write is under way: the caller's at once, or the flusher's
	werr     error
	flushed  sync.Cond // signalled after each flush

	// Parsing state of the inbound stream, touched only by Read (mochi's
	// single reader goroutine).
	state   int // 0 first byte, 1 remaining length, 2 body
	length  int
	mul     int
	left    int
	packets int      // packets seen, to find the CONNECT's protocol level
	head    [10]byte // the first bytes of the CONNECT's body
	headLen int
	version byte
	typ     byte // the packet type being read
	sub     subscribeScan

	// refused: the connection is ending on a packet too large or
	// malformed; Close lingers so that the client reads why.
	refused atomic.Bool

	// Read's batching, touched only by mochi's reader goroutine.
	busy   bool    // the last read filled its buffer: more is likely waiting
	pooled *[]byte // held while rbuf is not empty
	rbuf   []byte
	rerr   error // the pooled read's error, returned once rbuf is drained
}

// readPool holds the buffers of connections in a burst of reads.
var readPool = sync.Pool{New: func() any { b := make([]byte, 16<<10); return &b }}

// newLimitConn wraps a client's connection as the listener's options say.
// A client silent before its CONNECT (or, on a TLS port, its handshake)
// would otherwise hold a connection that no limit counts, for ever: the
// connection starts with the connect timeout's deadline, which mochi's
// keep-alive deadline replaces after CONNECT.
func newLimitConn(c net.Conn, opts Options) *limitConn {
	c.SetDeadline(time.Now().Add(opts.ConnectTimeout))
	lc := &limitConn{Conn: c, limit: int(opts.MaxPacketSize), raw: conns.NewRawWriter(c)}
	lc.flushed.L = &lc.wmu
	return lc
}

// maxBuffered bounds what waits for a slow client: past it a writer waits
// for the socket, as it would without the buffer.
const maxBuffered = 1 << 20

func (c *limitConn) Write(p []byte) (int, error) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	for len(c.wbuf) > maxBuffered && c.werr == nil {
		c.flushed.Wait()
	}
	if c.werr != nil {
		return 0, c.werr
	}
	if c.flushing {
		c.wbuf = append(c.wbuf, p...)
		return len(p), nil
	}
	c.flushing = true
	if c.raw != nil && len(c.wbuf) == 0 {
		c.wmu.Unlock()
		n := c.raw.TryWrite(p)
		c.wmu.Lock()
		if n == len(p) && len(c.wbuf) == 0 {
			c.flushing = false
			c.flushed.Broadcast()
			return len(p), nil
		}
		// What came meanwhile goes after the rest of p (a copy: a Write
		// keeps nothing of its caller's).
		c.wbuf = append(append([]byte(nil), p[n:]...), c.wbuf...)
	} else {
		c.wbuf = append(c.wbuf, p...)
	}
	go c.flush()
	return len(p), nil
}

// idle reports whether nothing is being written or waits to be: a write
// now goes to the socket at once and cannot block.
func (c *limitConn) idle() bool {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	return !c.flushing && len(c.wbuf) == 0 && c.werr == nil
}

func (c *limitConn) flush() {
	// Let the goroutine that woke this one add what it is about to write:
	// one syscall for many packets is the point.
	runtime.Gosched()
	var out []byte
	c.wmu.Lock()
	for len(c.wbuf) > 0 && c.werr == nil {
		out, c.wbuf = c.wbuf, out[:0]
		c.wmu.Unlock()
		_, err := c.Conn.Write(out)
		c.wmu.Lock()
		if err != nil {
			c.werr = err
		}
		c.flushed.Broadcast()
	}
	c.flushing = false
	c.flushed.Broadcast()
	c.wmu.Unlock()
}

// drain waits until what was written has gone to the socket.
func (c *limitConn) drain() {
	c.wmu.Lock()
	for c.flushing {
		c.flushed.Wait()
	}
	c.wmu.Unlock()
}

// Read batches a busy client's reads: mochi reads through a 64-byte
// buffer, small for the sake of idle connections, which alone would take
// a syscall or two for every packet under load. When a read fills the caller's
// buffer, more is likely waiting, and the next syscall reads into a pooled
// 16 KiB buffer, handed back once drained: an idle connection blocked in a
// read holds none, unless its last burst ended exactly at a buffer's end.
func (c *limitConn) Read(p []byte) (int, error) {
	if len(c.rbuf) == 0 && c.busy && c.rerr == nil {
		b := readPool.Get().(*[]byte)
		n, err := c.Conn.Read(*b)
		c.pooled, c.rbuf, c.rerr = b, (*b)[:n], err
		c.busy = n == len(*b)
	}
	if len(c.rbuf) > 0 {
		n := copy(p, c.rbuf)
		c.rbuf = c.rbuf[n:]
		c.release()
		return c.scanned(p[:n], nil)
	}
	c.release()
	if err := c.rerr; err != nil {
		c.rerr = nil
		return 0, err
	}
	n, err := c.Conn.Read(p)
	c.busy = n == len(p)
	return c.scanned(p[:n], err)
}

// errMalformedSubscribe is Read's error for the SUBSCRIBE mochi would
// panic on.
var errMalformedSubscribe = errors.New("mqtt: malformed SUBSCRIBE: a topic filter without its subscription options")

// scanned returns what Read read, unless it ends a packet mochi must not
// decode.
func (c *limitConn) scanned(p []byte, err error) (int, error) {
	if !c.scan(p) {
		return 0, errMalformedSubscribe
	}
	return len(p), err
}

// release hands the pooled buffer back once it is drained.
func (c *limitConn) release() {
	if len(c.rbuf) == 0 && c.pooled != nil {
		readPool.Put(c.pooled)
		c.pooled, c.rbuf = nil, nil
	}
}

// scan follows the packets in b; it reports false at a malformed
// SUBSCRIBE.
func (c *limitConn) scan(b []byte) bool {
	for len(b) > 0 {
		switch c.state {
		case 0:
			c.state, c.length, c.mul, c.typ = 1, 0, 1, b[0]>>4
			b = b[1:]
		case 1:
			x := b[0]
			b = b[1:]
			c.length += int(x&127) * c.mul
			c.mul *= 128
			if x&128 != 0 && c.mul <= 128*128*128 {
				continue
			}
			if c.length+1 > c.limit {
				c.refuse(0x95) // packet too large
			}
			c.state, c.left = 2, c.length
			c.packets++
			c.sub = subscribeScan{need: 2}
			if c.left == 0 {
				c.state = 0
			}
		case 2:
			k := min(c.left, len(b))
			if c.packets == 1 && c.headLen < len(c.head) {
				c.headLen += copy(c.head[c.headLen:], b[:k])
				if c.headLen >= 3 {
					// Protocol name (2-byte length, name), then the level.
					if at := 2 + int(c.head[0])<<8 + int(c.head[1]); at < c.headLen {
						c.version = c.head[at]
					}
				}
			}
			if c.typ == subscribeType && c.version == 5 {
				c.sub.feed(b[:k])
			}
			c.left -= k
			b = b[k:]
			if c.left == 0 {
				c.state = 0
				if c.typ == subscribeType && c.version == 5 && c.sub.phase == subOptions {
					c.refuse(0x81) // malformed packet
					return false
				}
			}
		}
	}
	return true
}

// refuse tells an MQTT 5 client why its connection ends: DISCONNECT with
// the reason code, no properties.
func (c *limitConn) refuse(reason byte) {
	if c.refused.Swap(true) {
		return
	}
	if c.version == 5 {
		c.Write([]byte{0xE0, 0x02, reason, 0x00})
	}
}

const subscribeType = 8

// The parts of an MQTT 5 SUBSCRIBE's body, in order; filters and their
// options repeat.
const (
	subPacketID = iota
	subPropertyLength
	subProperties
	subFilterLength
	subFilter
	subOptions
	subDone // a property length that is no varint: mochi refuses it
)

// subscribeScan follows an MQTT 5 SUBSCRIBE's body as it streams by.
type subscribeScan struct {
	phase int
	need  int // bytes left in the phase; varint bytes left in subPropertyLength
	n     int // the property length or filter length being read
	mul   int
}

func (s *subscribeScan) feed(b []byte) {
	for len(b) > 0 && s.phase != subDone {
		switch s.phase {
		case subPropertyLength:
			x := b[0]
			b = b[1:]
			s.n += int(x&127) * s.mul
			s.mul *= 128
			if s.need--; x&128 == 0 {
				s.next(subProperties, s.n)
			} else if s.need == 0 {
				s.phase = subDone
			}
		case subFilterLength:
			s.n = s.n<<8 | int(b[0])
			b = b[1:]
			if s.need--; s.need == 0 {
				s.next(subFilter, s.n)
			}
		default:
			k := min(s.need, len(b))
			s.need -= k
			b = b[k:]
			if s.need == 0 && s.phase == subOptions {
				s.next(subFilterLength, 0) // the next filter
			} else if s.need == 0 {
				s.next(s.phase+1, 0)
			}
		}
	}
}

// next moves to phase, which takes need bytes; phases with nothing to
// read are passed.
func (s *subscribeScan) next(phase, need int) {
	for {
		s.phase, s.need = phase, need
		switch phase {
		case subPropertyLength:
			s.need, s.n, s.mul = 4, 0, 1
			return
		case subFilterLength:
			s.need, s.n = 2, 0
			return
		case subOptions:
			s.need = 1
			return
		}
		if need > 0 {
			return
		}
		phase, need = phase+1, 0
	}
}

// Close lingers after a refusal: half-close, read what the client still
// sends for a moment, then close.
func (c *limitConn) Close() error {
	c.drain()
	if c.refused.Load() {
		if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
			cw.CloseWrite()
		}
		c.Conn.SetReadDeadline(time.Now().Add(time.Second))
		io.Copy(io.Discard, io.LimitReader(c.Conn, int64(c.limit)+1<<20))
	}
	return c.Conn.Close()
}
