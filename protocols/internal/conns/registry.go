// Package conns is what the STOMP and AMQP front-ends share about holding
// connections: the registry of a server's listeners and connections
// (Serve, Shutdown, Close in net/http's manner) and a connection's outbox,
// the queue its writer goroutine drains. It knows no protocol.
package conns

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
)

// ErrServerClosed is what Serve returns once the registry was stopped.
var ErrServerClosed = errors.New("server closed")

// Registry tracks a server's listeners and open connections.
type Registry[C comparable] struct {
	mu        sync.Mutex
	listeners map[net.Listener]struct{}
	conns     map[C]struct{}
	closed    bool
	wg        sync.WaitGroup
}

// Serve accepts connections on ln, handing each to serve on a goroutine of
// its own, until Stop.
func (r *Registry[C]) Serve(ln net.Listener, serve func(net.Conn)) error {
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return ErrServerClosed
	}
	if r.listeners == nil {
		r.listeners = map[net.Listener]struct{}{}
	}
	r.listeners[ln] = struct{}{}
	r.mu.Unlock()
	for {
		nc, err := ln.Accept()
		if err != nil {
			r.mu.Lock()
			closed := r.closed
			delete(r.listeners, ln)
			r.mu.Unlock()
			if closed {
				return ErrServerClosed
			}
			return fmt.Errorf("accept: %w", err)
		}
		go serve(nc)
	}
}

// Add registers c, unless the registry is stopped (ok false); open is how
// many connections were open before it, for a connection limit.
func (r *Registry[C]) Add(c C) (open int, ok bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return 0, false
	}
	if r.conns == nil {
		r.conns = map[C]struct{}{}
	}
	open = len(r.conns)
	r.conns[c] = struct{}{}
	r.wg.Add(1)
	return open, true
}

// Remove forgets c once it has ended.
func (r *Registry[C]) Remove(c C) {
	r.mu.Lock()
	delete(r.conns, c)
	r.mu.Unlock()
	r.wg.Done()
}

// Stop closes the listeners, refuses new connections, and returns the open
// ones.
func (r *Registry[C]) Stop() []C {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.closed = true
	for ln := range r.listeners {
		ln.Close()
	}
	cs := make([]C, 0, len(r.conns))
	for c := range r.conns {
		cs = append(cs, c)
	}
	return cs
}

// Shutdown stops, asks every connection to end with tell, and waits for
// them, or for ctx, when it ends those left with kill.
func (r *Registry[C]) Shutdown(ctx context.Context, tell, kill func(C)) error {
	for _, c := range r.Stop() {
		tell(c)
	}
	done := make(chan struct{})
	go func() { r.wg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		r.Close(kill)
		<-done
		return ctx.Err()
	}
}

// Close stops and ends every connection at once with kill.
func (r *Registry[C]) Close(kill func(C)) {
	for _, c := range r.Stop() {
		kill(c)
	}
	r.wg.Wait()
}
