package chaos

import (
	"errors"
	"fmt"
	"net"
	"os"
	"slices"
	"sync"
	"time"

	"github.com/go-stomp/stomp/v3/frame"
)

// The STOMP clients speak frames through go-stomp's codec over a socket
// of their own: every read has a deadline (a paused master answers
// nothing, and the server's heart-beats are 10 s apart at best), and the
// pipelined producer writes while it reads.

const (
	dialTimeout    = time.Second
	connectTimeout = 2 * time.Second
	// idHeader carries a message's id beside its body.
	idHeader = "chaos-id"
)

type stompConn struct {
	nc net.Conn
	r  *frame.Reader
	wm sync.Mutex
	w  *frame.Writer
}

// dialSTOMP connects and sends CONNECT with the extra headers (name,
// value, ...); an ERROR or no answer in time is an error.
func dialSTOMP(addr string, headers ...string) (*stompConn, error) {
	nc, err := net.DialTimeout("tcp", addr, dialTimeout)
	if err != nil {
		return nil, err
	}
	c := &stompConn{nc: nc, r: frame.NewReader(nc), w: frame.NewWriter(nc)}
	h := append([]string{frame.AcceptVersion, "1.2", frame.Host, "chaos", frame.HeartBeat, "0,0"}, headers...)
	if err := c.write(frame.New(frame.CONNECT, h...)); err != nil {
		nc.Close()
		return nil, err
	}
	f, err := c.read(time.Now().Add(connectTimeout))
	switch {
	case err != nil:
	case f.Command == frame.ERROR:
		err = fmt.Errorf("CONNECT: %s", f.Header.Get(frame.Message))
	case f.Command != frame.CONNECTED:
		err = fmt.Errorf("CONNECT answered with %s", f.Command)
	}
	if err != nil {
		nc.Close()
		return nil, err
	}
	return c, nil
}

func (c *stompConn) write(f *frame.Frame) error {
	c.wm.Lock()
	defer c.wm.Unlock()
	c.nc.SetWriteDeadline(time.Now().Add(2 * time.Second))
	return c.w.Write(f)
}

// read returns the next frame (heart-beats skipped) before deadline.
func (c *stompConn) read(deadline time.Time) (*frame.Frame, error) {
	c.nc.SetReadDeadline(deadline)
	for {
		f, err := c.r.Read()
		if err != nil || f != nil {
			return f, err
		}
	}
}

func (c *stompConn) close() { c.nc.Close() }

func timedOut(err error) bool {
	var ne net.Error
	return errors.Is(err, os.ErrDeadlineExceeded) || errors.As(err, &ne) && ne.Timeout()
}

func sendFrame(dest, id string, attempt int, body []byte, headers ...string) *frame.Frame {
	f := frame.New(frame.SEND, append([]string{frame.Destination, dest, "persistent", "true",
		frame.Receipt, fmt.Sprintf("%s#%d", id, attempt), idHeader, id, frame.ContentType, "text/plain"}, headers...)...)
	f.Body = body
	return f
}

// stompSender is a stop-and-wait producer's STOMP connection; headers go
// on every SEND, and with dedup the message's name as _HQ_DUPL_ID.
type stompSender struct {
	c       *stompConn
	dest    string
	dedup   bool
	headers []string
}

func stompDialer(dest string, dedup bool, headers ...string) func(endpoint) (sender, error) {
	return func(ep endpoint) (sender, error) {
		c, err := dialSTOMP(ep.addr)
		if err != nil {
			return nil, err
		}
		return &stompSender{c: c, dest: dest, dedup: dedup, headers: headers}, nil
	}
}

func (s *stompSender) send(id string, attempt int, body []byte, timeout time.Duration) (Kind, string, bool) {
	h := s.headers
	if s.dedup {
		h = append(slices.Clip(h), "_HQ_DUPL_ID", id)
	}
	if err := s.c.write(sendFrame(s.dest, id, attempt, body, h...)); err != nil {
		return Unknown, err.Error(), false
	}
	receipt := fmt.Sprintf("%s#%d", id, attempt)
	deadline := time.Now().Add(timeout)
	for {
		f, err := s.c.read(deadline)
		switch {
		case err != nil:
			return Unknown, err.Error(), timedOut(err)
		case f.Command == frame.RECEIPT && f.Header.Get(frame.ReceiptId) == receipt:
			return Confirm, "", false
		case f.Command == frame.ERROR:
			return Fail, f.Header.Get(frame.Message), false
		}
	}
}

func (s *stompSender) close() { s.c.close() }

// pipeliner is a STOMP producer that keeps up to window SENDs waiting for
// their receipts; after a reconnect it sends again first what had none.
type pipeliner struct {
	rec          *recorder
	flow, client string
	dest         string
	eps          []endpoint
	window       int
	// rate bounds the SENDs per second (0: as fast as receipts come).
	rate int
	// timeout: a connection whose oldest SEND has waited this long for
	// its receipt is given up.
	timeout time.Duration
	// dedup names each message in _HQ_DUPL_ID, so that what it sends
	// again after a failover, stored the first time, is not enqueued twice.
	dedup bool
}

type pending struct {
	id      string
	attempt int
	sent    time.Time
}

func (p *pipeliner) run(stop <-chan struct{}) {
	var resend []pending
	seq, next := 0, 0
	for !closed(stop) {
		c, ep, n := connect(stop, p.eps, next, func(ep endpoint) (*stompConn, error) { return dialSTOMP(ep.addr) })
		if c == nil {
			return
		}
		next = n
		resend = p.session(c, ep, resend, &seq, stop)
		c.close()
		sleep(stop, 100*time.Millisecond) // a node that fails every send is not hammered
	}
}

// session sends on one connection until it ends, and returns what was
// left without an answer, to send again.
func (p *pipeliner) session(c *stompConn, ep endpoint, resend []pending, seq *int, stop <-chan struct{}) []pending {
	frames := make(chan *frame.Frame, p.window)
	readErr := make(chan error, 1)
	go func() {
		for {
			f, err := c.read(time.Time{})
			if err != nil {
				readErr <- err
				close(frames)
				return
			}
			frames <- f
		}
	}()
	var inflight []pending
	giveUp := func(why string, hung bool) []pending {
		c.close()
		for range frames {
		}
		for _, m := range inflight {
			p.rec.add(Event{Kind: Unknown, Flow: p.flow, Client: p.client, ID: m.id, Attempt: m.attempt, Node: ep.name, Err: why, Hung: hung})
		}
		return append(inflight, resend...)
	}
	var interval time.Duration
	if p.rate > 0 {
		interval = time.Second / time.Duration(p.rate)
	}
	nextSend := time.Now()
	stopping := false
	for {
		if !stopping && closed(stop) {
			stopping, resend = true, nil
		}
		if stopping && len(inflight) == 0 {
			return nil
		}
		// Send while the window has room and the rate allows.
		for !stopping && len(inflight) < p.window && !time.Now().Before(nextSend) {
			var m pending
			if len(resend) > 0 {
				m, resend = resend[0], resend[1:]
			} else {
				*seq++
				m = pending{id: MessageID(p.rec.run, p.client, *seq)}
			}
			m.attempt++
			m.sent = time.Now()
			p.rec.add(Event{Kind: Send, Flow: p.flow, Client: p.client, ID: m.id, Attempt: m.attempt, Node: ep.name})
			inflight = append(inflight, m)
			var dedup []string
			if p.dedup {
				dedup = []string{"_HQ_DUPL_ID", m.id}
			}
			if err := c.write(sendFrame(p.dest, m.id, m.attempt, Body(m.id, m.attempt), dedup...)); err != nil {
				return giveUp(err.Error(), false)
			}
			nextSend = nextSend.Add(interval)
			if now := time.Now(); nextSend.Before(now.Add(-time.Second)) {
				nextSend = now // no burst to make up for a stall
			}
		}
		wait := 50 * time.Millisecond
		if len(inflight) > 0 {
			wait = min(wait, time.Until(inflight[0].sent.Add(p.timeout)))
			if wait <= 0 {
				return giveUp(fmt.Sprintf("no receipt within %v", p.timeout), true)
			}
		}
		if !stopping && len(inflight) < p.window {
			wait = max(0, min(wait, time.Until(nextSend)))
		}
		timer := time.NewTimer(wait)
		select {
		case f, ok := <-frames:
			timer.Stop()
			if !ok {
				return giveUp((<-readErr).Error(), false)
			}
			switch f.Command {
			case frame.RECEIPT:
				r := f.Header.Get(frame.ReceiptId)
				for i, m := range inflight {
					if fmt.Sprintf("%s#%d", m.id, m.attempt) == r {
						p.rec.add(Event{Kind: Confirm, Flow: p.flow, Client: p.client, ID: m.id, Attempt: m.attempt, Node: ep.name})
						inflight = append(inflight[:i], inflight[i+1:]...)
						break
					}
				}
			case frame.ERROR:
				r := f.Header.Get(frame.ReceiptId)
				for i, m := range inflight {
					if fmt.Sprintf("%s#%d", m.id, m.attempt) == r {
						p.rec.add(Event{Kind: Fail, Flow: p.flow, Client: p.client, ID: m.id, Attempt: m.attempt, Node: ep.name, Err: f.Header.Get(frame.Message)})
						inflight = append(inflight[:i], inflight[i+1:]...)
						resend = append(resend, m)
						break
					}
				}
				return giveUp("connection ended after ERROR: "+f.Header.Get(frame.Message), false)
			}
		case <-timer.C:
		}
	}
}

// stompSession consumes dest with ack client-individual, as a durable
// subscriber named durable of client-id clientID when those are set.
func stompSession(rec *recorder, flow, client, dest, clientID, durable string) session {
	return func(ep endpoint, got func(copyOf), idle time.Duration, stop <-chan struct{}) error {
		var h []string
		if clientID != "" {
			h = []string{"client-id", clientID}
		}
		c, err := dialSTOMP(ep.addr, h...)
		if err != nil {
			return err
		}
		defer c.close()
		done := make(chan struct{})
		defer close(done)
		go func() {
			select {
			case <-stop:
				c.close()
			case <-done:
			}
		}()
		sub := frame.New(frame.SUBSCRIBE, frame.Id, "1", frame.Destination, dest, frame.Ack, "client-individual",
			"activemq.prefetchSize", "200")
		if durable != "" {
			sub.Header.Add("activemq.subscriptionName", durable)
		}
		if err := c.write(sub); err != nil {
			return err
		}
		for {
			f, err := c.read(time.Now().Add(idle))
			switch {
			case timedOut(err):
				return errIdle
			case err != nil:
				return err
			case f.Command == frame.ERROR:
				return fmt.Errorf("ERROR: %s", f.Header.Get(frame.Message))
			case f.Command != frame.MESSAGE:
				continue
			}
			got(copyOf{header: f.Header.Get(idHeader), body: f.Body, redelivered: f.Header.Get("redelivered") == "true"})
			if err := c.write(frame.New(frame.ACK, frame.Id, f.Header.Get(frame.Ack))); err != nil {
				return err
			}
			rec.add(Event{Kind: Ack, Flow: flow, Client: client, ID: f.Header.Get(idHeader), Node: ep.name})
		}
	}
}

// stompDurable creates a durable subscription and goes away, leaving it
// to collect: a witness.
func stompDurable(eps []endpoint, dest, clientID, name string, timeout time.Duration) error {
	var last error
	for deadline := time.Now().Add(timeout); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		for _, ep := range eps {
			c, err := dialSTOMP(ep.addr, "client-id", clientID)
			if err != nil {
				last = err
				continue
			}
			err = c.write(frame.New(frame.SUBSCRIBE, frame.Id, "1", frame.Destination, dest, frame.Ack, "client-individual",
				"activemq.subscriptionName", name, frame.Receipt, "sub"))
			if err == nil {
				var f *frame.Frame
				if f, err = c.read(time.Now().Add(5 * time.Second)); err == nil && f.Command != frame.RECEIPT {
					err = fmt.Errorf("SUBSCRIBE answered %s %s", f.Command, f.Header.Get(frame.Message))
				}
			}
			if err == nil {
				c.write(frame.New(frame.DISCONNECT, frame.Receipt, "bye"))
				c.read(time.Now().Add(2 * time.Second))
			}
			c.close()
			if err == nil {
				return nil
			}
			last = err
		}
	}
	return fmt.Errorf("durable subscription %s of %s: %w", name, clientID, last)
}

// stompEndpoints are the nodes' STOMP addresses.
func stompEndpoints(c *cluster) []endpoint {
	var out []endpoint
	for _, n := range c.nodes {
		out = append(out, endpoint{n.name, n.stomp()})
	}
	return out
}
