package amqp

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/hamq/hamq/core"
	"github.com/hamq/hamq/protocols/amqp/wire"
)

// Options are an AMQP listener's limits and naming.
type Options struct {
	MaxConnections int // beyond it a client's open is answered with a close
	// MaxFrameSize is the largest frame the server takes, announced in its
	// open. Larger messages arrive in several transfers.
	MaxFrameSize uint32
	// MaxMessageSize bounds one message over all its transfers; a sender
	// link announces it and a larger message detaches the link.
	MaxMessageSize uint64
	// IdleTimeout is announced in the server's open: a client that sends
	// nothing for this long is closed. 0 disables it.
	IdleTimeout time.Duration
	// BareAddress is the kind of an address with no queue:// or topic://
	// and no terminus capability saying which.
	BareAddress core.Kind
	// Credit is the link credit of each link a client sends on; it bounds
	// the messages on their way to the store per link.
	Credit uint32
	// ContainerID is the server's container id.
	ContainerID string
}

// DefaultOptions are ActiveMQ's limits for its AMQP connector.
func DefaultOptions() Options {
	return Options{
		MaxConnections: 1000,
		MaxFrameSize:   1 << 20,
		MaxMessageSize: 100 << 20,
		IdleTimeout:    30 * time.Second,
		BareAddress:    core.Queue,
		Credit:         1000,
		ContainerID:    "hamq",
	}
}

// ErrServerClosed is what Serve returns once Shutdown or Close was called.
var ErrServerClosed = errors.New("amqp: server closed")

// Server is an AMQP 1.0 front-end on the destination core.
type Server struct {
	b    *core.Broker
	opts Options
	log  *slog.Logger

	mu        sync.Mutex
	listeners map[net.Listener]struct{}
	conns     map[*conn]struct{}
	closed    bool
	wg        sync.WaitGroup
}

// NewServer makes a server; Serve starts it on a listener.
func NewServer(b *core.Broker, opts Options, log *slog.Logger) *Server {
	return &Server{b: b, opts: opts, log: log.With("component", "amqp"),
		listeners: map[net.Listener]struct{}{}, conns: map[*conn]struct{}{}}
}

// Serve accepts connections on ln until Shutdown or Close.
func (s *Server) Serve(ln net.Listener) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return ErrServerClosed
	}
	s.listeners[ln] = struct{}{}
	s.mu.Unlock()
	for {
		nc, err := ln.Accept()
		if err != nil {
			s.mu.Lock()
			closed := s.closed
			delete(s.listeners, ln)
			s.mu.Unlock()
			if closed {
				return ErrServerClosed
			}
			return fmt.Errorf("amqp: accept: %w", err)
		}
		go s.serveConn(nc)
	}
}

func (s *Server) serveConn(nc net.Conn) {
	c := newConn(s, nc)
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		nc.Close()
		return
	}
	// A connection over the limit still goes through the protocol headers
	// and SASL, so that its open can be answered with a close saying why.
	c.overLimit = len(s.conns) >= s.opts.MaxConnections
	s.conns[c] = struct{}{}
	s.wg.Add(1)
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.conns, c)
		s.mu.Unlock()
		s.wg.Done()
	}()
	c.run()
}

func (s *Server) stop() []*conn {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	for ln := range s.listeners {
		ln.Close()
	}
	cs := make([]*conn, 0, len(s.conns))
	for c := range s.conns {
		cs = append(cs, c)
	}
	return cs
}

// Shutdown stops accepting, closes every connection with
// amqp:connection:forced, and waits for them to end, or for ctx, when it
// closes what is left.
func (s *Server) Shutdown(ctx context.Context) error {
	for _, c := range s.stop() {
		c.closeWith(&wire.Error{Condition: wire.CondConnectionForced, Description: "broker shutting down"})
	}
	done := make(chan struct{})
	go func() { s.wg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		s.Close()
		<-done
		return ctx.Err()
	}
}

// Close stops accepting and closes every connection at once.
func (s *Server) Close() error {
	for _, c := range s.stop() {
		c.nc.Close()
	}
	s.wg.Wait()
	return nil
}
