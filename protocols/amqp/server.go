package amqp

import (
	"context"
	"log/slog"
	"net"
	"time"

	"github.com/hamq/hamq/core"
	"github.com/hamq/hamq/protocols/amqp/wire"
	"github.com/hamq/hamq/protocols/internal/conns"
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
var ErrServerClosed = conns.ErrServerClosed

// Server is an AMQP 1.0 front-end on the destination core.
type Server struct {
	b    *core.Broker
	opts Options
	log  *slog.Logger

	conns conns.Registry[*conn]
}

// NewServer makes a server; Serve starts it on a listener.
func NewServer(b *core.Broker, opts Options, log *slog.Logger) *Server {
	return &Server{b: b, opts: opts, log: log.With("component", "amqp")}
}

// Serve accepts connections on ln until Shutdown or Close.
func (s *Server) Serve(ln net.Listener) error { return s.conns.Serve(ln, s.serveConn) }

func (s *Server) serveConn(nc net.Conn) {
	c := newConn(s, nc)
	open, ok := s.conns.Add(c)
	if !ok {
		nc.Close()
		return
	}
	defer s.conns.Remove(c)
	// A connection over the limit still goes through the protocol headers
	// and SASL, so that its open can be answered with a close saying why.
	c.overLimit = open >= s.opts.MaxConnections
	c.run()
}

// Shutdown stops accepting, closes every connection with
// amqp:connection:forced and why as its description, and waits for them to
// end, or for ctx, when it closes what is left.
func (s *Server) Shutdown(ctx context.Context, why string) error {
	return s.conns.Shutdown(ctx, func(c *conn) {
		c.closeWith(&wire.Error{Condition: wire.CondConnectionForced, Description: why})
	}, closeConn)
}

// Close stops accepting and closes every connection at once.
func (s *Server) Close() error {
	s.conns.Close(closeConn)
	return nil
}

func closeConn(c *conn) { c.nc.Close() }
