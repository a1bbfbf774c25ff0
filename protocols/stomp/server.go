package stomp

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/go-stomp/stomp/v3/frame"
	"github.com/hamq/hamq/core"
)

// Options are a STOMP listener's limits, with ActiveMQ's defaults.
type Options struct {
	MaxConnections int           // beyond it a client gets an ERROR and is closed
	MaxFrameSize   int64         // bytes, headers and body together
	MaxHeaders     int           // headers in one frame
	MaxHeaderLine  int           // bytes in one header line
	HeartBeat      time.Duration // the server's wish both ways; 0 disables
	ConnectTimeout time.Duration // how long a client has to send CONNECT
}

// DefaultOptions are ActiveMQ's maximumConnections and maxFrameSize, with
// header limits that no legitimate client reaches.
func DefaultOptions() Options {
	return Options{
		MaxConnections: 1000,
		MaxFrameSize:   100 << 20,
		MaxHeaders:     1000,
		MaxHeaderLine:  64 << 10,
		HeartBeat:      10 * time.Second,
		ConnectTimeout: 10 * time.Second,
	}
}

// ErrServerClosed is what Serve returns once Shutdown or Close was called.
var ErrServerClosed = errors.New("stomp: server closed")

// Version goes in the CONNECTED frame's server header.
const Version = "hamq/0.1"

// Server is a STOMP front-end on the destination core.
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
	return &Server{b: b, opts: opts, log: log.With("component", "stomp"),
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
			return fmt.Errorf("stomp: accept: %w", err)
		}
		go s.ServeConn(nc)
	}
}

// ServeConn runs one client connection to its end; the WebSocket listener
// hands its connections here.
func (s *Server) ServeConn(nc net.Conn) {
	c := newConn(s, nc)
	s.mu.Lock()
	switch {
	case s.closed:
		s.mu.Unlock()
		c.refuse("broker shutting down")
		return
	case len(s.conns) >= s.opts.MaxConnections:
		s.mu.Unlock()
		s.log.Warn("connection refused", "remote", nc.RemoteAddr(), "reason", "maximum connections")
		c.refuse(fmt.Sprintf("maximum connections (%d) reached", s.opts.MaxConnections))
		return
	}
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

// Shutdown stops accepting, tells every client the broker is going (an
// ERROR frame, as ActiveMQ does) and waits for their connections to end, or
// for ctx, when it closes what is left.
func (s *Server) Shutdown(ctx context.Context) error {
	for _, c := range s.stop() {
		c.fail(errShutdown)
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

var errShutdown = &limitError{"broker shutting down"}

// errorHeaders is the ERROR frame for err, naming the receipt it answers.
func errorFrame(err error, receipt string) *frame.Frame {
	f := frame.New(frame.ERROR, frame.Message, err.Error(), frame.ContentType, "text/plain")
	if receipt != "" {
		f.Header.Add(frame.ReceiptId, receipt)
	}
	f.Body = []byte(err.Error() + "\n")
	return f
}
