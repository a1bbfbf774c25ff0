package main

import (
	"bufio"
	"fmt"
	"net"
	"strconv"
	"sync"
	"time"

	"github.com/go-stomp/stomp/v3/frame"
)

// stompPipe is a STOMP producer that writes SEND frames without waiting
// and matches RECEIPTs as they come back, go-stomp's frame codec on both
// sides.
type stompPipe struct {
	nc  net.Conn
	w   *frame.Writer
	wmu sync.Mutex

	mu      sync.Mutex
	next    uint64
	waiting map[string]func(error)
	err     error
	done    chan struct{}
}

func dialPipe(url string, login creds) (*stompPipe, error) {
	return connectAny(url, failoverTimeout, func(addr string) (*stompPipe, error) { return dialPipeTo(addr, login) })
}

func dialPipeTo(addr string, login creds) (*stompPipe, error) {
	nc, r, _, err := stompConnect(addr, login)
	if err != nil {
		return nil, err
	}
	p := &stompPipe{nc: nc, w: frame.NewWriter(nc), waiting: map[string]func(error){}, done: make(chan struct{})}
	go p.readLoop(r)
	return p, nil
}

// stompConnect opens a STOMP connection without heart-beats and returns
// its frame reader and the version the broker chose.
func stompConnect(addr string, login creds) (net.Conn, *frame.Reader, string, error) {
	nc, err := net.DialTimeout("tcp", addr, 10*time.Second)
	if err != nil {
		return nil, nil, "", err
	}
	r := frame.NewReader(bufio.NewReader(nc))
	nc.SetDeadline(time.Now().Add(30 * time.Second))
	if err := frame.NewWriter(nc).Write(frame.New(frame.CONNECT, append([]string{frame.AcceptVersion, "1.1,1.2", frame.Host, "hamq", frame.HeartBeat, "0,0"}, login.stompHeaders()...)...)); err != nil {
		nc.Close()
		return nil, nil, "", err
	}
	f, err := r.Read()
	for err == nil && f == nil { // a heart-beat, or a newline after a frame
		f, err = r.Read()
	}
	if err == nil && f.Command == frame.ERROR {
		nc.Close()
		return nil, nil, "", stompRefusal(f)
	}
	if err != nil || f.Command != frame.CONNECTED {
		nc.Close()
		return nil, nil, "", fmt.Errorf("stomp connect: %v %v", f, err)
	}
	nc.SetDeadline(time.Time{})
	return nc, r, f.Header.Get(frame.Version), nil
}

func (p *stompPipe) send(dest string, body []byte, persistent bool, done func(error)) error {
	f := frame.New(frame.SEND, frame.Destination, dest, "persistent", strconv.FormatBool(persistent),
		frame.ContentLength, strconv.Itoa(len(body))) // the body holds binary bytes, NULs among them
	f.Body = body
	if persistent {
		p.mu.Lock()
		if p.err != nil {
			p.mu.Unlock()
			return p.err
		}
		p.next++
		id := strconv.FormatUint(p.next, 10)
		p.waiting[id] = done
		p.mu.Unlock()
		f.Header.Add(frame.Receipt, id)
	}
	p.wmu.Lock()
	err := p.w.Write(f)
	p.wmu.Unlock()
	// On an error done is not called, as benchConn.publish promises; the
	// read loop may have failed the receipt meanwhile, and then it was.
	if persistent && err != nil {
		p.mu.Lock()
		_, pending := p.waiting[f.Header.Get(frame.Receipt)]
		delete(p.waiting, f.Header.Get(frame.Receipt))
		p.mu.Unlock()
		if !pending {
			return nil
		}
	}
	if err == nil && !persistent {
		done(nil)
	}
	return err
}

func (p *stompPipe) readLoop(r *frame.Reader) {
	defer close(p.done)
	for {
		f, err := r.Read()
		if err == nil && f != nil && f.Command == frame.ERROR {
			err = fmt.Errorf("broker: %s", f.Header.Get(frame.Message))
		}
		if err != nil {
			p.mu.Lock()
			p.err = err
			for id, done := range p.waiting {
				delete(p.waiting, id)
				done(err)
			}
			p.mu.Unlock()
			return
		}
		if f == nil || f.Command != frame.RECEIPT {
			continue
		}
		p.mu.Lock()
		done := p.waiting[f.Header.Get(frame.ReceiptId)]
		delete(p.waiting, f.Header.Get(frame.ReceiptId))
		p.mu.Unlock()
		if done != nil {
			done(nil)
		}
	}
}

func (p *stompPipe) close() {
	p.wmu.Lock()
	p.w.Write(frame.New(frame.DISCONNECT))
	p.wmu.Unlock()
	p.nc.Close()
	<-p.done
}
