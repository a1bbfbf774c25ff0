package conns

import (
	"net"
	"syscall"
)

// RawWriter writes to a connection's socket without blocking, from any
// goroutine: a front-end answers from the goroutine that has the answer
// (the one that made a message durable, or read a packet) when its writer
// is idle, instead of waking a writer goroutine for each packet, which on
// a stop-and-wait client's path was a hand-off per message.
type RawWriter struct{ rc syscall.RawConn }

// NewRawWriter returns nil when nc has no descriptor of its own (TLS,
// WebSocket): those are written by their writer goroutines only.
func NewRawWriter(nc net.Conn) *RawWriter {
	sc, ok := nc.(syscall.Conn)
	if !ok {
		return nil
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return nil
	}
	return &RawWriter{rc}
}

// TryWrite writes what the socket takes at once and returns how much
// that was (0 when it takes nothing, or the write fails: the writer
// goroutine that writes the rest meets the error and ends the connection).
// The caller keeps any other writer of the connection out meanwhile.
func (w *RawWriter) TryWrite(b []byte) int {
	var n int
	w.rc.Write(func(fd uintptr) bool {
		n, _ = syscall.Write(int(fd), b)
		return true // one attempt, whether or not it took all
	})
	return max(n, 0)
}
