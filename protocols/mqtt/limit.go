package mqtt

import (
	"io"
	"net"
	"runtime"
	"sync"
	"sync/atomic"
	"time"
)

// limitConn is what mochi gets for a client connection. It watches the
// packets a client sends for one over the size limit: mochi refuses such a
// packet by closing the connection, MQTT 5 asks for a DISCONNECT with
// reason 0x95 (packet too large) first, which this writes, and the close
// then lingers so the client reads it rather than a reset.
//
// It also coalesces writes: mochi writes every packet (each PUBACK, each
// PUBLISH) with a syscall of its own, which was a third of the broker's
// CPU under load. Writes are appended to a buffer that a short-lived
// flusher goroutine empties; what arrives while it is in a syscall goes
// out with the next one, so an idle connection adds no latency and a busy
// one batches.
//
// And it batches reads (see Read).
type limitConn struct {
	net.Conn
	limit int

	wmu      sync.Mutex
	wbuf     []byte
	flushing bool
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

	tooLarge atomic.Bool

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
	lc := &limitConn{Conn: c, limit: int(opts.MaxPacketSize)}
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
	c.wbuf = append(c.wbuf, p...)
	if !c.flushing {
		c.flushing = true
		go c.flush()
	}
	return len(p), nil
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
		c.scan(p[:n])
		c.release()
		return n, nil
	}
	c.release()
	if err := c.rerr; err != nil {
		c.rerr = nil
		return 0, err
	}
	n, err := c.Conn.Read(p)
	c.busy = n == len(p)
	c.scan(p[:n])
	return n, err
}

// release hands the pooled buffer back once it is drained.
func (c *limitConn) release() {
	if len(c.rbuf) == 0 && c.pooled != nil {
		readPool.Put(c.pooled)
		c.pooled, c.rbuf = nil, nil
	}
}

func (c *limitConn) scan(b []byte) {
	for len(b) > 0 {
		switch c.state {
		case 0:
			c.state, c.length, c.mul = 1, 0, 1
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
				c.refuse()
			}
			c.state, c.left = 2, c.length
			c.packets++
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
			c.left -= k
			b = b[k:]
			if c.left == 0 {
				c.state = 0
			}
		}
	}
}

func (c *limitConn) refuse() {
	if c.tooLarge.Swap(true) {
		return
	}
	if c.version == 5 {
		c.Write([]byte{0xE0, 0x02, 0x95, 0x00}) // DISCONNECT, packet too large, no properties
	}
}

// Close lingers after a refusal: half-close, read what the client still
// sends for a moment, then close.
func (c *limitConn) Close() error {
	c.drain()
	if c.tooLarge.Load() {
		if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
			cw.CloseWrite()
		}
		c.Conn.SetReadDeadline(time.Now().Add(time.Second))
		io.Copy(io.Discard, io.LimitReader(c.Conn, int64(c.limit)+1<<20))
	}
	return c.Conn.Close()
}
