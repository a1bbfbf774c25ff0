package stomp

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"time"

	"github.com/go-stomp/stomp/v3/frame"
	"github.com/hamq/hamq/core"
	"github.com/hamq/hamq/protocols/internal/conns"
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
var ErrServerClosed = conns.ErrServerClosed

// Version goes in the CONNECTED frame's server header.
const Version = "hamq/0.1"

// Server is a STOMP front-end on the destination core.
type Server struct {
	b    *core.Broker
	opts Options
	log  *slog.Logger

	conns conns.Registry[*conn]
}

// NewServer makes a server; Serve starts it on a listener.
func NewServer(b *core.Broker, opts Options, log *slog.Logger) *Server {
	return &Server{b: b, opts: opts, log: log.With("component", "stomp")}
}

// Serve accepts connections on ln until Shutdown or Close.
func (s *Server) Serve(ln net.Listener) error { return s.conns.Serve(ln, s.ServeConn) }

// ServeConn runs one client connection to its end; the WebSocket listener
// hands its connections here.
func (s *Server) ServeConn(nc net.Conn) {
	c := newConn(s, nc)
	open, ok := s.conns.Add(c)
	if !ok {
		c.refuse("broker shutting down")
		return
	}
	defer s.conns.Remove(c)
	if open >= s.opts.MaxConnections {
		s.log.Warn("connection refused", "remote", nc.RemoteAddr(), "reason", "maximum connections")
		c.refuse(fmt.Sprintf("maximum connections (%d) reached", s.opts.MaxConnections))
		return
	}
	c.run()
}

// Shutdown stops accepting, tells every client why the broker is going (an
// ERROR frame, as ActiveMQ does) and waits for their connections to end, or
// for ctx, when it closes what is left.
func (s *Server) Shutdown(ctx context.Context, why string) error {
	return s.conns.Shutdown(ctx, func(c *conn) { c.fail(&limitError{why}) }, closeConn)
}

// Close stops accepting and closes every connection at once.
func (s *Server) Close() error {
	s.conns.Close(closeConn)
	return nil
}

func closeConn(c *conn) { c.nc.Close() }

// errorHeaders is the ERROR frame for err, naming the receipt it answers.
func errorFrame(err error, receipt string) *frame.Frame {
	f := frame.New(frame.ERROR, frame.Message, err.Error(), frame.ContentType, "text/plain")
	if receipt != "" {
		f.Header.Add(frame.ReceiptId, receipt)
	}
	f.Body = []byte(err.Error() + "\n")
	return f
}
