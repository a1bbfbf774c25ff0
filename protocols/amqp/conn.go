package amqp

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"sync"
	"time"

	"github.com/hamq/hamq/core"
	"github.com/hamq/hamq/protocols/amqp/wire"
	"github.com/hamq/hamq/protocols/internal/conns"
)

// connectTimeout bounds the protocol headers, SASL and open.
const connectTimeout = 10 * time.Second

// transferFrame is a frame of a delivery; ackTag, when set, acknowledges a
// pre-settled delivery once the frame is written (at most once, as its link
// asked).
type transferFrame struct {
	buf    []byte
	ackTag uint64
}

// conn is one client connection: a reader goroutine (run) that handles
// frames in order, a writer goroutine fed through out, and confirmLoop,
// which answers sends as they become durable.
type conn struct {
	srv    *Server
	nc     net.Conn
	br     *bufio.Reader
	fr     *wire.FrameReader
	ctx    context.Context
	cancel context.CancelFunc

	overLimit bool
	sess      *core.Session
	txnSeq    uint64 // the last transaction declared; the reader's alone
	user      string
	container string

	// Set by open, read by every goroutine after.
	peerMaxFrame   uint32
	peerMaxChannel uint16

	// mu guards sessions and their links, which deliveries reach from the
	// core's goroutines. It is taken under a core queue's lock (in
	// Deliver), so it is never held while calling into the core.
	mu       sync.Mutex
	sessions map[uint16]*session // by the client's channel

	in *conns.TimedReader

	confirms  chan confirmItem
	confirmed chan struct{} // confirmLoop ended

	out *conns.Outbox[[]byte]
}

func newConn(s *Server, nc net.Conn) *conn {
	ctx, cancel := context.WithCancel(context.Background())
	c := &conn{srv: s, nc: nc, ctx: ctx, cancel: cancel, sessions: map[uint16]*session{},
		confirms: make(chan confirmItem, maxUnconfirmed), confirmed: make(chan struct{})}
	c.out = conns.NewOutbox(nc, writeBytes, func(tag uint64) { c.sess.Ack(c.ctx, "", tag, false, false) }, emptyFrame)
	c.in = conns.NewTimedReader(nc, c.out.Draining, connectTimeout)
	c.br = bufio.NewReaderSize(c.in, 16<<10)
	c.fr = wire.NewFrameReader(c.br, wire.MinMaxFrameSize)
	return c
}

func (c *conn) run() {
	go c.out.Run()
	defer func() {
		c.cancel()
		if c.sess != nil {
			<-c.confirmed
			c.sess.Close()
		}
		c.out.End()
		c.out.Finish()
	}()
	if err := c.open(); err != nil {
		c.handshakeFailed(err)
		return
	}
	go c.confirmLoop()
	for {
		f, err := c.fr.ReadFrame()
		if err != nil {
			c.readFailed(err)
			return
		}
		if f.IsEmpty() {
			continue
		}
		if f.Type != wire.FrameAMQP {
			c.closeWith(&wire.Error{Condition: wire.CondFramingError, Description: fmt.Sprintf("a %s frame after the SASL exchange", f.Type)})
			return
		}
		p, payload, err := wire.DecodePerformative(f)
		if err != nil {
			c.srv.log.Info("bad frame", "remote", c.nc.RemoteAddr(), "err", err)
			c.closeWith(&wire.Error{Condition: wire.CondDecodeError, Description: err.Error()})
			return
		}
		if _, ok := p.(*wire.Close); ok {
			c.send(0, &wire.Close{})
			return
		}
		if err := c.handle(f.Channel, p, payload); err != nil {
			c.srv.log.Info("connection error", "remote", c.nc.RemoteAddr(), "condition", err.Condition, "err", err.Description)
			c.closeWith(err)
			return
		}
		c.out.WaitRoom(maxQueued)
	}
}

// handshakeFailed answers what went wrong before open, where the protocol
// allows an answer.
func (c *conn) handshakeFailed(err error) {
	var we *wire.Error
	if errors.As(err, &we) {
		c.closeWith(we)
		return
	}
	if !errors.Is(err, io.EOF) && !errors.Is(err, net.ErrClosed) {
		c.srv.log.Info("connection refused", "remote", c.nc.RemoteAddr(), "err", err)
	}
}

func (c *conn) readFailed(err error) {
	if c.out.Draining() {
		return
	}
	var fe *wire.FrameError
	var ne net.Error
	switch {
	case errors.As(err, &fe):
		c.srv.log.Info("bad frame", "remote", c.nc.RemoteAddr(), "err", err)
		c.closeWith(&wire.Error{Condition: wire.CondFramingError, Description: fe.Reason})
	case errors.As(err, &ne) && ne.Timeout():
		c.closeWith(&wire.Error{Condition: wire.CondResourceLimitExceeded,
			Description: fmt.Sprintf("nothing received within the idle timeout of %v", c.in.Timeout())})
	case errors.Is(err, io.EOF), errors.Is(err, net.ErrClosed), errors.Is(err, io.ErrUnexpectedEOF):
	default:
		c.srv.log.Debug("read", "remote", c.nc.RemoteAddr(), "err", err)
	}
}

// soleConnection is the capability by which a client asks for its
// container id to be the only connection of that container, as Qpid JMS
// does for a client id set by the application.
const soleConnection wire.Symbol = "sole-connection-for-container"

// open runs the protocol headers, SASL when the client starts it, and the
// exchange of open frames.
func (c *conn) open() error {
	h, err := wire.ReadProtocolHeader(c.br)
	if err != nil {
		c.out.SendLast(wire.AMQPHeader.Append(nil))
		return fmt.Errorf("bad protocol header: %w", err)
	}
	if h == wire.SASLHeader {
		c.out.Send(wire.SASLHeader.Append(nil))
		if err := c.sasl(); err != nil {
			return err
		}
		if h, err = wire.ReadProtocolHeader(c.br); err != nil {
			return fmt.Errorf("bad protocol header after SASL: %w", err)
		}
		if h != wire.AMQPHeader {
			c.out.SendLast(wire.AMQPHeader.Append(nil))
			return fmt.Errorf("protocol header %s after SASL, want %s", h, wire.AMQPHeader)
		}
	} else if h == wire.AMQPHeader {
		// No SASL: the client is anonymous, if that is allowed; if not,
		// the SASL header says SASL is required.
		if err := c.srv.b.Authenticate("", ""); err != nil {
			c.out.SendLast(wire.SASLHeader.Append(nil))
			return fmt.Errorf("a client without SASL: %w", err)
		}
	} else {
		// The spec's answer: the header hamq speaks for that protocol id
		// (an AMQP 0-9-1 client hears 1.0), then the end.
		answer := wire.AMQPHeader
		if h.ID == wire.ProtocolSASL {
			answer = wire.SASLHeader
		}
		c.out.SendLast(answer.Append(nil))
		return fmt.Errorf("unsupported protocol header %s (hamq speaks %s and %s)", h, wire.SASLHeader, wire.AMQPHeader)
	}
	c.out.Send(wire.AMQPHeader.Append(nil))

	f, err := c.fr.ReadFrame()
	if err != nil {
		return err
	}
	o := c.srv.opts
	var p wire.Performative
	if f.Type == wire.FrameAMQP && !f.IsEmpty() {
		p, _, err = wire.DecodePerformative(f)
	}
	open, ok := p.(*wire.Open)
	reply := &wire.Open{ContainerID: o.ContainerID, MaxFrameSize: o.MaxFrameSize, ChannelMax: 1<<16 - 1,
		IdleTimeOut: uint32(o.IdleTimeout / time.Millisecond), OfferedCapabilities: []wire.Symbol{"ANONYMOUS-RELAY", soleConnection}}
	c.peerMaxFrame, c.peerMaxChannel = wire.MinMaxFrameSize, 0
	if ok {
		c.peerMaxFrame, c.peerMaxChannel = max(open.MaxFrameSize, wire.MinMaxFrameSize), open.ChannelMax
	}
	// A refused open is answered with an open, then the close saying why
	// (the spec's order). The session is made before that open goes out:
	// a client told it is connected is (its container id taken, for one).
	refusal := c.accept(open, err)
	c.send(0, reply)
	if refusal != nil {
		return refusal
	}
	c.fr.SetMaxFrameSize(o.MaxFrameSize)
	c.in.SetTimeout(o.IdleTimeout)
	if open.IdleTimeOut > 0 {
		// Half the client's timeout, as the spec advises, so that one late
		// empty frame does not end the connection.
		c.out.SetIdle(time.Duration(open.IdleTimeOut) * time.Millisecond / 2)
	}
	return nil
}

// accept opens the broker session for the client's open (nil when its
// first frame was not one, with err why it did not decode), or says why
// not.
func (c *conn) accept(open *wire.Open, err error) *wire.Error {
	switch {
	case err != nil:
		return &wire.Error{Condition: wire.CondDecodeError, Description: err.Error()}
	case open == nil:
		return &wire.Error{Condition: wire.CondIllegalState, Description: "the first frame must be open"}
	case c.overLimit:
		c.srv.log.Warn("connection refused", "remote", c.nc.RemoteAddr(), "reason", "maximum connections")
		return &wire.Error{Condition: wire.CondResourceLimitExceeded,
			Description: fmt.Sprintf("maximum connections (%d) reached", c.srv.opts.MaxConnections)}
	}
	c.container = open.ContainerID
	info := core.ConnInfo{Protocol: "amqp", RemoteAddr: c.nc.RemoteAddr().String(), User: c.user}
	if slices.Contains(open.DesiredCapabilities, soleConnection) {
		// The container id is the client's JMS client id, unique in the
		// broker as STOMP's client-id is.
		info.ClientID = open.ContainerID
	}
	sess, err := c.srv.b.Connect(info)
	if errors.Is(err, core.ErrClientIDInUse) {
		// What Qpid JMS reports as InvalidClientIDException.
		return &wire.Error{Condition: wire.CondInvalidField, Description: err.Error(),
			Info: wire.Fields{"invalid-field": wire.Symbol("container-id")}}
	}
	if err != nil {
		return &wire.Error{Condition: condition(err), Description: err.Error()}
	}
	c.sess = sess
	return nil
}

// sasl runs the SASL exchange: PLAIN and ANONYMOUS, against the broker's
// user store. A failed exchange ends with its outcome and the connection.
func (c *conn) sasl() error {
	c.send(0, &wire.SASLMechanisms{Mechanisms: []wire.Symbol{"PLAIN", "ANONYMOUS"}})
	f, err := c.fr.ReadFrame()
	if err != nil {
		return err
	}
	p, _, err := wire.DecodePerformative(f)
	init, ok := p.(*wire.SASLInit)
	if err != nil || !ok {
		c.sendLast(&wire.SASLOutcome{Code: wire.SASLSysPerm})
		return fmt.Errorf("SASL: expected sasl-init: %v", err)
	}
	var user, password string
	switch init.Mechanism {
	case "PLAIN":
		// authzid NUL authcid NUL password (RFC 4616)
		parts := bytes.Split(init.InitialResponse, []byte{0})
		if len(parts) != 3 {
			c.sendLast(&wire.SASLOutcome{Code: wire.SASLAuth})
			return fmt.Errorf("SASL PLAIN: malformed response")
		}
		user, password = string(parts[1]), string(parts[2])
	case "ANONYMOUS":
	default:
		c.sendLast(&wire.SASLOutcome{Code: wire.SASLAuth})
		return fmt.Errorf("SASL: unsupported mechanism %q", init.Mechanism)
	}
	if err := c.srv.b.Authenticate(user, password); err != nil {
		c.srv.log.Warn("authentication failed", "remote", c.nc.RemoteAddr(), "user", user, "err", err)
		c.sendLast(&wire.SASLOutcome{Code: wire.SASLAuth, AdditionalData: []byte(err.Error())})
		return err
	}
	c.user = user
	c.send(0, &wire.SASLOutcome{Code: wire.SASLOK})
	return nil
}

// frame encodes a performative for channel ch.
func frame(ch uint16, p wire.Performative, payload []byte) []byte {
	b, err := wire.AppendPerformativeFrame(nil, ch, p, payload)
	if err != nil {
		// Only values outside AMQP's model fail, and the server builds
		// every frame itself.
		panic(fmt.Sprintf("amqp: encoding a %T: %v", p, err))
	}
	return b
}

func (c *conn) send(ch uint16, p wire.Performative) { c.out.Send(frame(ch, p, nil)) }

// sendUntil sends an answer that confirms something, not after until
// (core.Confirmation.ValidUntil).
func (c *conn) sendUntil(ch uint16, p wire.Performative, until time.Time) {
	c.out.SendUntil(frame(ch, p, nil), until)
}

func (c *conn) sendLast(p wire.Performative) { c.out.SendLast(frame(0, p, nil)) }

// closeWith sends close with err and ends the connection after it.
func (c *conn) closeWith(err *wire.Error) { c.sendLast(&wire.Close{Error: err}) }

// maxQueued bounds frames waiting for a slow socket beyond deliveries (which
// link credit bounds): the reader waits rather than queue more answers.
const maxQueued = 10_000

// emptyFrame keeps an idle connection alive.
var emptyFrame, _ = wire.AppendFrame(nil, wire.Frame{})

func writeBytes(w *bufio.Writer, b []byte) error {
	_, err := w.Write(b)
	return err
}

// condition names the AMQP error condition of a core error.
func condition(err error) wire.Symbol {
	switch {
	case errors.Is(err, core.ErrUnauthorized), errors.Is(err, core.ErrForbidden), errors.Is(err, core.ErrTempNotOwned):
		return wire.CondUnauthorizedAccess
	case errors.Is(err, core.ErrNoSuchDestination):
		return wire.CondNotFound
	case errors.Is(err, core.ErrInvalidDestination), errors.Is(err, core.ErrInvalidSelector),
		errors.Is(err, core.ErrDurableNeedsTopic), errors.Is(err, core.ErrDurableNeedsID):
		return wire.CondInvalidField
	case errors.Is(err, core.ErrDurableInUse), errors.Is(err, core.ErrClientIDInUse):
		return wire.CondResourceLocked
	case errors.Is(err, core.ErrDestinationFull), errors.Is(err, core.ErrTransactionTooBig):
		return wire.CondResourceLimitExceeded
	case errors.Is(err, core.ErrClosed), errors.Is(err, core.ErrNotMaster):
		return wire.CondConnectionForced
	case errors.Is(err, core.ErrUnknownTransaction):
		return wire.CondTransactionUnknownID
	}
	return wire.CondInternalError
}
