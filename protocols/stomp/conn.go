package stomp

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/go-stomp/stomp/v3/frame"
	"github.com/hamq/hamq/core"
	"github.com/hamq/hamq/protocols/internal/conns"
)

// subscription is a SUBSCRIBE as this connection knows it.
type subscription struct {
	id      string
	sub     *core.Subscription
	ack     string // auto, client or client-individual
	durable string
	order   []uint64 // ack mode client: unacknowledged tags, for a cumulative ACK; guarded by conn.ackMu
}

// conn is one client connection: a reader goroutine (run) that handles
// frames in order, and a writer goroutine fed through out.
type conn struct {
	srv    *Server
	nc     net.Conn
	r      *reader
	ctx    context.Context
	cancel context.CancelFunc
	lead   context.Context // ctx, core.Leading: see callCtx

	version  string
	sess     *core.Session
	clientID string
	subs     map[string]*subscription

	tempMu sync.Mutex
	temps  map[string]core.Destination // /temp-queue/NAME and /temp-topic/NAME of this connection

	// Deliveries awaiting an ACK, filled by the core's dispatch and read
	// by the reader: 1.2 acks by tag, 1.0 and 1.1 by message-id.
	ackMu   sync.Mutex
	byTag   map[uint64]ackRef
	byMsgID map[string]uint64

	in *conns.TimedReader

	answers *conns.Answers[confirmItem]

	out *conns.Outbox[*frame.Frame]
}

type ackRef struct {
	tag   uint64
	sub   string
	msgID string
}

// maxQueued bounds frames waiting for a slow socket beyond deliveries (which
// prefetch bounds): the reader waits rather than queue more receipts.
const maxQueued = 10_000

func newConn(s *Server, nc net.Conn) *conn {
	ctx, cancel := context.WithCancel(context.Background())
	c := &conn{srv: s, nc: nc, ctx: ctx, cancel: cancel, version: "1.0",
		subs: map[string]*subscription{}, temps: map[string]core.Destination{}, byTag: map[uint64]ackRef{}, byMsgID: map[string]uint64{}}
	c.lead = core.Leading(ctx)
	c.answers = conns.NewAnswers(maxUnconfirmed, c.answer)
	// The version is read when the frame is written: the CONNECTED frame
	// goes out before the negotiated version applies.
	c.out = conns.NewOutbox(nc, func(w *bufio.Writer, f *frame.Frame) error { return writeFrame(w, c.version, f) },
		func(tag uint64) { c.sess.Ack(c.ctx, "", tag, false, false) }, []byte{'\n'})
	c.in = conns.NewTimedReader(nc, c.out.Draining, s.opts.ConnectTimeout)
	c.r = newReader(c.in, s.opts)
	return c
}

// refuse answers a connection that may not be served and closes it.
func (c *conn) refuse(why string) {
	go c.out.Run()
	c.fail(&limitError{why})
	c.out.Finish()
}

func (c *conn) run() {
	go c.out.Run()
	defer func() {
		c.cancel()
		c.answers.Stop()
		if c.sess != nil {
			c.sess.Close()
		}
		c.out.End()
		c.out.Finish()
	}()
	for {
		f, err := c.r.read()
		if err != nil {
			c.readFailed(err)
			return
		}
		if err := c.handle(f); err != nil {
			c.fail(err, f.Header.Get(frame.Receipt))
			return
		}
		c.out.WaitRoom(maxQueued)
	}
}

func (c *conn) readFailed(err error) {
	if c.out.Draining() {
		return
	}
	var le *limitError
	var ne net.Error
	switch {
	case errors.As(err, &le):
		c.srv.log.Info("bad frame", "remote", c.nc.RemoteAddr(), "err", err)
		c.fail(err)
	case errors.As(err, &ne) && ne.Timeout():
		msg := "no CONNECT frame in time"
		if c.sess != nil {
			msg = "no heart-beat or frame from the client in time"
		}
		c.fail(&limitError{msg})
	case errors.Is(err, io.EOF), errors.Is(err, net.ErrClosed), errors.Is(err, io.ErrUnexpectedEOF):
	default:
		c.srv.log.Debug("read", "remote", c.nc.RemoteAddr(), "err", err)
	}
}

// fail sends an ERROR frame and closes the connection after it; once the
// last frame is queued, later ones are dropped.
func (c *conn) fail(err error, receipt ...string) {
	c.out.SendLast(errorFrame(err, strings.Join(receipt, "")))
}

func (c *conn) reply(f *frame.Frame) { c.out.Send(f) }

// receipt answers a frame's receipt header once everything before it is
// confirmed: receipts go out in the order of their frames.
func (c *conn) receipt(f *frame.Frame) {
	if r, ok := f.Header.Contains(frame.Receipt); ok {
		c.confirm(confirmItem{receipt: r})
	}
}

// confirmItem is a frame's outcome waiting its turn: the durability of a
// send, an ACK or a COMMIT, then its receipt, or the end of the
// connection after DISCONNECT.
type confirmItem struct {
	conf    core.Confirmation // nil: nothing to wait for
	what    string            // for the ERROR when it fails: "send to /queue/a", "COMMIT t1"
	receipt string
	last    bool
}

// maxUnconfirmed bounds the sends a client may have waiting for
// durability; past it the reader waits, which is the client's back-pressure.
const maxUnconfirmed = 1000

// confirm queues it's answer: the reader goes on while sends become
// durable (many of a client's sends then share one fsync), and the answers
// go out in order.
func (c *conn) confirm(it confirmItem) { c.answers.Add(it, it.conf) }

// answer sends a RECEIPT, or an ERROR when what it answers could not be
// made durable.
func (c *conn) answer(it confirmItem, conf core.Confirmation, err error) bool {
	if err != nil {
		c.fail(fmt.Errorf("%s failed: %w", it.what, err), it.receipt)
		return false
	}
	if it.receipt != "" {
		var until time.Time
		if conf != nil {
			until = conf.ValidUntil()
		}
		c.out.SendUntil(frame.New(frame.RECEIPT, frame.ReceiptId, it.receipt), until)
	}
	if it.last {
		c.out.End()
		return false
	}
	return true
}

// callCtx is the context of a call into the core for the frame just read:
// Leading when nothing more is buffered (a client waiting for the answer
// sends nothing more), so that the record is written from this goroutine;
// with more to read, the sends share the committer's groups instead.
func (c *conn) callCtx() context.Context {
	if c.r.r.Buffered() == 0 {
		return c.lead
	}
	return c.ctx
}

func (c *conn) handle(f *frame.Frame) error {
	if c.sess == nil {
		if f.Command != frame.CONNECT && f.Command != frame.STOMP {
			return protocolErrorf("expected a CONNECT or STOMP frame first, got %s", f.Command)
		}
		return c.connect(f)
	}
	switch f.Command {
	case frame.SEND:
		return c.send(f)
	case frame.SUBSCRIBE:
		return c.subscribe(f)
	case frame.UNSUBSCRIBE:
		return c.unsubscribe(f)
	case frame.ACK, frame.NACK:
		return c.ack(f)
	case frame.BEGIN, frame.COMMIT, frame.ABORT:
		return c.transaction(f)
	case frame.DISCONNECT:
		c.confirm(confirmItem{receipt: f.Header.Get(frame.Receipt), last: true})
		return nil
	case frame.CONNECT, frame.STOMP:
		return protocolErrorf("already connected")
	}
	return protocolErrorf("unknown command %q", f.Command)
}

var versions = []string{"1.2", "1.1", "1.0"}

func (c *conn) connect(f *frame.Frame) error {
	version := ""
	accept, ok := f.Header.Contains(frame.AcceptVersion)
	if !ok {
		version = "1.0"
	}
	for _, v := range versions {
		if version == "" && strings.Contains(","+strings.ReplaceAll(accept, " ", "")+",", ","+v+",") {
			version = v
		}
	}
	if version == "" {
		return protocolErrorf("supported protocol versions are 1.0 1.1 1.2, the client accepts %q", accept)
	}
	var cx, cy time.Duration
	if hb, ok := f.Header.Contains(frame.HeartBeat); ok && version != "1.0" {
		var err error
		if cx, cy, err = frame.ParseHeartBeat(hb); err != nil {
			return protocolErrorf("invalid heart-beat header %q", hb)
		}
	}
	if err := c.srv.b.Authenticate(f.Header.Get(frame.Login), f.Header.Get(frame.Passcode)); err != nil {
		c.srv.log.Warn("authentication failed", "remote", c.nc.RemoteAddr(), "err", err)
		return err
	}
	sess, err := c.srv.b.Connect(core.ConnInfo{Protocol: "stomp", RemoteAddr: c.nc.RemoteAddr().String(),
		ClientID: f.Header.Get("client-id"), User: f.Header.Get(frame.Login)})
	if err != nil {
		return err
	}
	c.sess = sess
	c.clientID = f.Header.Get("client-id")
	c.version = version
	c.r.version = version
	// The server sends heart-beats when the client wants them, and expects
	// them when the client offers them, each at the slower of the two wishes.
	hb := c.srv.opts.HeartBeat
	var send, recv time.Duration
	if cy > 0 && hb > 0 {
		send = max(cy, hb)
	}
	if cx > 0 && hb > 0 {
		recv = max(cx, hb)
	}
	c.out.SetIdle(send)
	c.in.SetTimeout(0)
	if recv > 0 {
		c.in.SetTimeout(2*recv + time.Second)
	}
	// CONNECTED says what was agreed, as ActiveMQ does, rather than the
	// server's wish: a client that takes the header as its timeouts
	// (go-stomp does) would otherwise expect heart-beats it never asked
	// for, and never get.
	resp := frame.New(frame.CONNECTED, frame.Version, version, frame.Server, Version,
		frame.Session, strconv.FormatUint(sess.ID(), 10),
		frame.HeartBeat, fmt.Sprintf("%d,%d", send.Milliseconds(), recv.Milliseconds()))
	if version == "1.0" {
		resp.Header.Del(frame.Version)
	}
	c.reply(resp)
	return nil
}
