package main

import (
	"errors"
	"net"
	"sync"
	"syscall"
	"time"
)

// connTracker knows the client connections' sockets by remote address,
// so that the admin API can say since when a connection is open and close
// it: the front-ends own their connections, and closing the socket ends
// one the way a client leaving does, whatever its protocol.
type connTracker struct {
	mu    sync.Mutex
	conns map[string]*trackedConn
}

func newConnTracker() *connTracker { return &connTracker{conns: map[string]*trackedConn{}} }

// listener wraps ln so that every connection it accepts is tracked until
// it is closed. TLS and WebSocket wrap what it returns: the remote
// address stays the same.
func (t *connTracker) listener(ln net.Listener) net.Listener {
	return &trackedListener{Listener: ln, t: t}
}

func (t *connTracker) Since(remote string) (time.Time, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	c := t.conns[remote]
	if c == nil {
		return time.Time{}, false
	}
	return c.since, true
}

func (t *connTracker) Close(remote string) bool {
	t.mu.Lock()
	c := t.conns[remote]
	t.mu.Unlock()
	if c == nil {
		return false
	}
	c.Close()
	return true
}

type trackedListener struct {
	net.Listener
	t *connTracker
}

func (l *trackedListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	tc := &trackedConn{Conn: c, t: l.t, key: c.RemoteAddr().String(), since: time.Now()}
	l.t.mu.Lock()
	l.t.conns[tc.key] = tc
	l.t.mu.Unlock()
	return tc, nil
}

type trackedConn struct {
	net.Conn
	t     *connTracker
	key   string
	since time.Time
	once  sync.Once
}

func (c *trackedConn) Close() error {
	c.once.Do(func() {
		c.t.mu.Lock()
		if c.t.conns[c.key] == c {
			delete(c.t.conns, c.key)
		}
		c.t.mu.Unlock()
	})
	return c.Conn.Close()
}

// CloseWrite keeps the half-close the front-ends use after their last
// frame (it lets the client read that frame before the reset).
func (c *trackedConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return c.Close()
}

// SyscallConn keeps the descriptor reachable: the front-ends write a
// confirmation straight to it from the goroutine that confirms
// (conns.Outbox.SendUntil).
func (c *trackedConn) SyscallConn() (syscall.RawConn, error) {
	if sc, ok := c.Conn.(syscall.Conn); ok {
		return sc.SyscallConn()
	}
	return nil, errors.ErrUnsupported
}
