package conns

import (
	"net"
	"sync/atomic"
	"time"
)

// TimedReader reads a connection with a deadline renewed before every read,
// so that a client silent for longer than the current timeout (no CONNECT
// or open in time, no heart-beat it promised) is cut off. Once the outbox
// drains the connection, the deadline its writer set stays.
type TimedReader struct {
	nc       net.Conn
	draining func() bool
	timeout  atomic.Int64 // nanoseconds; 0 none
}

// NewTimedReader reads nc with timeout until draining reports true.
func NewTimedReader(nc net.Conn, draining func() bool, timeout time.Duration) *TimedReader {
	r := &TimedReader{nc: nc, draining: draining}
	r.SetTimeout(timeout)
	return r
}

// SetTimeout changes the timeout of the reads to come; 0 waits forever.
func (r *TimedReader) SetTimeout(d time.Duration) { r.timeout.Store(int64(d)) }

// Timeout is the current timeout.
func (r *TimedReader) Timeout() time.Duration { return time.Duration(r.timeout.Load()) }

func (r *TimedReader) Read(p []byte) (int, error) {
	if !r.draining() {
		var t time.Time
		if d := r.Timeout(); d > 0 {
			t = time.Now().Add(d)
		}
		r.nc.SetReadDeadline(t)
	}
	return r.nc.Read(p)
}
