package mqtt

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	mochi "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/listeners"

	"github.com/hamq/hamq/core"
)

// Options are an MQTT listener's limits.
type Options struct {
	MaxConnections int64  // beyond it CONNACK says server unavailable (3.1.1) or busy (5)
	MaxPacketSize  uint32 // bytes; a larger packet ends the connection (5: reason "packet too large")
	// MaxInflight bounds the QoS 1 and 2 messages on their way to one
	// subscription, the core's prefetch for it.
	MaxInflight int
	// SessionExpiry caps how long a disconnected persistent session is
	// kept, in seconds.
	SessionExpiry uint32
	// ConnectTimeout is how long a client has to send CONNECT (and, on a
	// TLS port, to finish its handshake).
	ConnectTimeout time.Duration
}

// DefaultOptions mirror the STOMP listener's limits.
func DefaultOptions() Options {
	return Options{MaxConnections: 1000, MaxPacketSize: 100 << 20, MaxInflight: 1000, SessionExpiry: 7 * 24 * 3600,
		ConnectTimeout: 10 * time.Second}
}

// ErrServerClosed is what Serve returns after Shutdown or Close.
var ErrServerClosed = errors.New("mqtt: server closed")

// Server is the MQTT front-end. Each term as master gets a new one, since
// a mochi server cannot be started twice.
type Server struct {
	b    *core.Broker
	opts Options
	log  *slog.Logger
	m    *mochi.Server

	mu       sync.Mutex
	sessions map[string]*session
	// ending holds, by client id, sessions taken out of sessions and not
	// yet closed: the core holds a client id for one session at a time,
	// so a client connecting again waits for its old session's end.
	ending map[string]chan struct{}
	closed bool
	conns  *listener // for ServeConn's connections

	listenerSeq atomic.Uint64
}

// NewServer starts mochi with hamq's hook; its stored sessions and retained
// messages come back from the core's state.
func NewServer(b *core.Broker, opts Options, log *slog.Logger) (*Server, error) {
	log = log.With("component", "mqtt")
	caps := mochi.NewDefaultServerCapabilities()
	caps.MaximumClients = opts.MaxConnections
	caps.MaximumPacketSize = opts.MaxPacketSize
	caps.MaximumSessionExpiryInterval = opts.SessionExpiry
	// mochi's own outbound queue, which drops what does not fit, carries
	// only $SYS messages here: hamq writes deliveries and retained
	// messages itself. Its default of 8192 slots was 64 KiB of every
	// connection; 32 hold one $SYS tick's 20 topics.
	caps.MaximumClientWritesPending = 32
	// mochi's PUBACK echoes the publisher's user properties; an
	// acknowledgement has no use for them and a client may not expect a
	// packet that large.
	caps.Compatibilities.NoInheritedPropertiesOnAck = true
	// Expiry is the message's own: mochi's default also drops retained
	// messages a day old, and its inflights, whatever they said.
	caps.MaximumMessageExpiryInterval = 0
	s := &Server{b: b, opts: opts, log: log, sessions: map[string]*session{}, ending: map[string]chan struct{}{}}
	s.m = mochi.New(&mochi.Options{Capabilities: caps, Logger: log,
		// What of a packet does not fit the read buffer is read straight
		// into the packet's own slice, and a busy client's reads are
		// batched below it (limitConn.Read), so the buffer need only hold
		// a fixed header and a small packet or two; mochi's 2 KiB were a
		// fifth of an idle connection's heap.
		ClientNetReadBufferSize: 64})
	if err := s.m.AddHook(&hook{s: s}, nil); err != nil {
		return nil, fmt.Errorf("mqtt: %w", err)
	}
	if err := s.m.Serve(); err != nil {
		return nil, fmt.Errorf("mqtt: %w", err)
	}
	s.expireRetained()
	return s, nil
}

// expireRetained gives the retained messages loaded from the store their
// expiry time again, which mochi's storage record does not keep: from
// when each was published and its Message Expiry Interval. mochi's sweep
// then drops them when it passes, and sends what is left of the interval.
func (s *Server) expireRetained() {
	now := time.Now().Unix()
	for topic, pk := range s.m.Topics.Retained.GetAll() {
		e := int64(pk.Properties.MessageExpiryInterval)
		if e == 0 || pk.Expiry > 0 || pk.Created == 0 {
			continue
		}
		pk.Expiry, pk.ProtocolVersion = pk.Created+e, 5
		if pk.Expiry < now {
			s.m.Topics.Retained.Delete(topic)
			(&hook{s: s}).OnRetainedExpired(topic)
			continue
		}
		s.m.Topics.RetainMessage(pk)
	}
}

// Serve accepts MQTT connections on ln until Shutdown or Close.
func (s *Server) Serve(ln net.Listener) error {
	l := &listener{id: fmt.Sprintf("tcp-%d", s.listenerSeq.Add(1)), ln: ln, opts: s.opts, done: make(chan struct{})}
	s.mu.Lock()
	closed := s.closed
	s.mu.Unlock()
	if closed {
		return ErrServerClosed
	}
	if err := s.m.AddListener(l); err != nil {
		return fmt.Errorf("mqtt: %w", err)
	}
	s.m.Listeners.Serve(l.id, s.m.EstablishConnection)
	<-l.done
	return ErrServerClosed
}

// ServeConn runs one MQTT connection that arrived some other way (the
// WebSocket listener) to its end.
func (s *Server) ServeConn(c net.Conn) {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		c.Close()
		return
	}
	if s.conns == nil {
		// A listener without an accept loop, so that mochi's Close
		// disconnects these clients as well.
		s.conns = &listener{id: "conn", done: make(chan struct{})}
		if err := s.m.AddListener(s.conns); err != nil {
			s.mu.Unlock()
			s.log.Error("cannot serve a handed-over connection", "err", err)
			c.Close()
			return
		}
	}
	s.mu.Unlock()
	if err := s.m.EstablishConnection(s.conns.id, newLimitConn(c, s.opts)); err != nil {
		s.log.Debug("connection ended", "remote", c.RemoteAddr(), "err", err)
	}
}

// Shutdown disconnects every client (reason: server shutting down) and
// ends the core sessions; persistent sessions stay in the store.
func (s *Server) Shutdown(ctx context.Context) error {
	done := make(chan error, 1)
	go func() { done <- s.Close() }()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Close stops the listeners, disconnects the clients and ends the sessions.
func (s *Server) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	s.mu.Unlock()
	s.m.Close()
	s.mu.Lock()
	sessions := s.sessions
	s.sessions = map[string]*session{}
	s.mu.Unlock()
	for _, sess := range sessions {
		sess.close()
	}
	return nil
}

// listener hands mochi the connections of a net.Listener the caller opened,
// so that hamq decides where and when MQTT listens.
type listener struct {
	id   string
	ln   net.Listener
	opts Options
	once sync.Once
	done chan struct{}
}

func (l *listener) Init(*slog.Logger) error { return nil }
func (l *listener) ID() string              { return l.id }
func (l *listener) Address() string {
	if l.ln == nil {
		return "handed over"
	}
	return l.ln.Addr().String()
}
func (l *listener) Protocol() string { return "tcp" }

func (l *listener) Serve(establish listeners.EstablishFn) {
	for l.ln != nil {
		c, err := l.ln.Accept()
		if err != nil {
			return
		}
		go establish(l.id, newLimitConn(c, l.opts))
	}
}

func (l *listener) Close(closeClients listeners.CloseFn) {
	l.once.Do(func() {
		if l.ln != nil {
			l.ln.Close()
		}
		closeClients(l.id)
		close(l.done)
	})
}
