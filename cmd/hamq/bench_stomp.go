package main

import (
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-stomp/stomp/v3/frame"
)

// The STOMP bench clients speak through go-stomp's frame codec rather
// than its Conn: Conn's Send waits for each receipt before the next frame,
// so a producer could never pipeline, and Conn deadlocks when a consumer
// ACKs each message of a full prefetch (its one I/O goroutine blocks
// handing a MESSAGE to the subscription while the subscriber blocks
// handing its ACK to that goroutine).

// stompProducer sends through a stompPipe.
type stompProducer struct {
	p          *stompPipe
	dest       string
	persistent bool
}

// stompConsumer reads each MESSAGE, hands it on and writes its ACK on one
// goroutine, as stomp.py's listener thread does.
type stompConsumer struct {
	url, dest string
	ack       string
	prefetch  int
	login     creds

	mu      sync.Mutex // guards the connection, which a failover replaces
	nc      net.Conn
	r       *frame.Reader
	w       *frame.Writer
	version string
	early   *frame.Frame // a MESSAGE read before the SUBSCRIBE's receipt

	closing atomic.Bool
	started atomic.Bool   // subscribe started the read loop
	done    chan struct{} // closed when the read loop ends
}

func dialSTOMPBench(cfg benchConfig, role string) (benchConn, error) {
	if strings.HasPrefix(role, "producer") {
		p, err := dialPipe(cfg.url, cfg.login)
		if err != nil {
			return nil, err
		}
		return &stompProducer{p: p, dest: cfg.dest, persistent: cfg.persistent}, nil
	}
	c := &stompConsumer{url: cfg.url, dest: cfg.dest, ack: cfg.ack, prefetch: cfg.prefetch, login: cfg.login, done: make(chan struct{})}
	if err := c.connect(); err != nil {
		return nil, err
	}
	return c, nil
}

func (p *stompProducer) publish(body []byte, done func(error)) error {
	return p.p.send(p.dest, body, p.persistent, done)
}

func (p *stompProducer) subscribe(func([]byte)) error {
	return errors.New("stomp: a bench producer does not subscribe")
}

func (p *stompProducer) close() { p.p.close() }

// connect connects through the list and subscribes, waiting for the
// SUBSCRIBE's receipt so that the consumer is in place before the
// producers start.
func (c *stompConsumer) connect() error {
	type conn struct {
		nc      net.Conn
		r       *frame.Reader
		version string
	}
	cn, err := connectAny(c.url, failoverTimeout, func(addr string) (conn, error) {
		nc, r, v, err := stompConnect(addr, c.login)
		return conn{nc, r, v}, err
	})
	if err != nil {
		return err
	}
	sub := frame.New(frame.SUBSCRIBE, frame.Id, "1", frame.Destination, c.dest, frame.Ack, c.ack, frame.Receipt, "subscribed")
	if c.prefetch > 0 {
		sub.Header.Add("activemq.prefetchSize", strconv.Itoa(c.prefetch))
	}
	w := frame.NewWriter(cn.nc)
	cn.nc.SetDeadline(time.Now().Add(30 * time.Second))
	err = w.Write(sub)
	var f *frame.Frame
	for err == nil && f == nil { // nil: a heart-beat, or the newline ActiveMQ puts after a frame
		f, err = cn.r.Read()
	}
	var early *frame.Frame
	switch {
	case err != nil || f.Command == frame.RECEIPT:
	case f.Command == frame.MESSAGE:
		// The subscription is in place, and the broker dispatched what
		// the queue held (after a failover, what was not acknowledged)
		// ahead of the receipt, which consume passes over.
		early = f
	default:
		err = fmt.Errorf("%s %s", f.Command, f.Header.Get(frame.Message))
	}
	if err != nil {
		cn.nc.Close()
		return fmt.Errorf("stomp: subscribe %s: %w", c.dest, err)
	}
	cn.nc.SetDeadline(time.Time{})
	c.mu.Lock()
	c.nc, c.r, c.w, c.version, c.early = cn.nc, cn.r, w, cn.version, early
	c.mu.Unlock()
	return nil
}

// subscribe hands every message's body to fn until close, connecting and
// subscribing again when the connection drops (a failover); what was not
// acknowledged comes again then.
func (c *stompConsumer) subscribe(fn func([]byte)) error {
	c.started.Store(true)
	go func() {
		defer close(c.done)
		for {
			err := c.consume(fn)
			if c.closing.Load() {
				return
			}
			c.mu.Lock()
			c.nc.Close()
			c.mu.Unlock()
			if errors.Is(err, errDisconnected) {
				return
			}
			if err := c.connect(); err != nil {
				fmt.Fprintf(os.Stderr, "hamq bench: a consumer stopped: %v\n", err)
				return
			}
			if c.closing.Load() {
				c.mu.Lock()
				c.nc.Close()
				c.mu.Unlock()
				return
			}
		}
	}()
	return nil
}

var errDisconnected = errors.New("stomp: disconnected")

// consume reads the connection until it fails or the broker confirms the
// DISCONNECT of close.
func (c *stompConsumer) consume(fn func([]byte)) error {
	c.mu.Lock()
	r, f := c.r, c.early
	c.early = nil
	c.mu.Unlock()
	for ; ; f = nil {
		if f == nil {
			var err error
			if f, err = r.Read(); err != nil {
				return err
			}
			if f == nil {
				continue // a heart-beat
			}
		}
		switch f.Command {
		case frame.MESSAGE:
			fn(f.Body)
			if c.ack == "auto" {
				continue
			}
			ack := frame.New(frame.ACK)
			if c.version == "1.2" {
				ack.Header.Add(frame.Id, f.Header.Get(frame.Ack))
			} else {
				ack.Header.Add(frame.Subscription, "1")
				ack.Header.Add(frame.MessageId, f.Header.Get(frame.MessageId))
			}
			c.mu.Lock()
			err := c.w.Write(ack)
			c.mu.Unlock()
			if err != nil {
				return err
			}
		case frame.RECEIPT:
			if f.Header.Get(frame.ReceiptId) == "disconnected" {
				return errDisconnected
			}
		case frame.ERROR:
			return fmt.Errorf("stomp: broker: %s", f.Header.Get(frame.Message))
		}
	}
}

func (c *stompConsumer) publish([]byte, func(error)) error {
	return errors.New("stomp: a bench consumer does not publish")
}

// close disconnects, waiting a while for the broker's receipt so that
// every ACK written was read.
func (c *stompConsumer) close() {
	c.closing.Store(true)
	c.mu.Lock()
	c.w.Write(frame.New(frame.DISCONNECT, frame.Receipt, "disconnected"))
	nc := c.nc
	c.mu.Unlock()
	if c.started.Load() {
		select {
		case <-c.done:
		case <-time.After(5 * time.Second):
		}
	}
	nc.Close()
}
