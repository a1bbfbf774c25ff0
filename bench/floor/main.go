// Command floor is the stop-and-wait floor of a machine: a STOMP endpoint
// that does nothing but store. Each SEND's body is written into a journal
// of zeros written and synced ahead (as hamq's store keeps its journal)
// and flushed with fdatasync before the SEND's RECEIPT goes out. Nothing
// is routed, queued, delivered or acknowledged.
//
// bench/compare.sh runs hamq bench's W2 producer against it, next to hamq
// with no consumer, so that W2's figures come with what this machine's
// disk and loopback allow any broker that flushes each message once:
// a broker's rate over the floor's is how much of it the broker keeps.
package main

import (
	"bufio"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"sync"
	"syscall"

	"github.com/go-stomp/stomp/v3/frame"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:61619", "address to listen on")
	dir := flag.String("dir", os.TempDir(), "directory for the journal file, on the disk to measure")
	flag.Parse()
	j, err := openJournal(filepath.Join(*dir, "floor.journal"))
	if err != nil {
		fmt.Fprintln(os.Stderr, "floor:", err)
		os.Exit(1)
	}
	l, err := net.Listen("tcp", *listen)
	if err != nil {
		j.close()
		fmt.Fprintln(os.Stderr, "floor:", err)
		os.Exit(1)
	}
	// Stopped by a signal, it removes its 64 MiB journal.
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, os.Interrupt, syscall.SIGTERM)
	go func() {
		<-stop
		l.Close()
	}()
	serve(l, j)
	if err := j.close(); err != nil {
		fmt.Fprintln(os.Stderr, "floor:", err)
		os.Exit(1)
	}
}

// journalSize is the ring the bodies are written into. Every write
// overwrites blocks written and synced before, so that fdatasync flushes
// the data alone, with no size or block allocation to commit.
const journalSize = 64 << 20

type journal struct {
	mu  sync.Mutex
	f   *os.File
	off int64
}

func openJournal(path string) (*journal, error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR|os.O_TRUNC, 0o600)
	if err != nil {
		return nil, err
	}
	if _, err := f.Write(make([]byte, journalSize)); err != nil {
		f.Close()
		return nil, fmt.Errorf("write the zeros of %s: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return nil, fmt.Errorf("sync %s: %w", path, err)
	}
	return &journal{f: f}, nil
}

// store makes body durable, as a broker must before it confirms a
// persistent send.
func (j *journal) store(body []byte) error {
	if len(body) > journalSize {
		return fmt.Errorf("a body of %d bytes: at most %d", len(body), journalSize)
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.off+int64(len(body)) > journalSize {
		j.off = 0
	}
	if _, err := j.f.WriteAt(body, j.off); err != nil {
		return err
	}
	j.off += int64(len(body))
	return syscall.Fdatasync(int(j.f.Fd()))
}

func (j *journal) close() error {
	name := j.f.Name()
	return errors.Join(j.f.Close(), os.Remove(name))
}

// serve answers each connection on l until l is closed.
func serve(l net.Listener, j *journal) {
	for {
		c, err := l.Accept()
		if err != nil {
			return
		}
		go answer(c, j)
	}
}

// answer speaks as much STOMP as hamq bench's producers use: CONNECT,
// SEND with a receipt, DISCONNECT.
func answer(c net.Conn, j *journal) {
	defer c.Close()
	r, w := frame.NewReader(bufio.NewReader(c)), frame.NewWriter(c)
	for {
		f, err := r.Read()
		if err != nil {
			return
		}
		if f == nil { // a heart-beat
			continue
		}
		var reply *frame.Frame
		switch f.Command {
		case frame.CONNECT, frame.STOMP:
			reply = frame.New(frame.CONNECTED, frame.Version, "1.2")
		case frame.SEND:
			if err := j.store(f.Body); err != nil {
				w.Write(frame.New(frame.ERROR, frame.Message, "floor: "+err.Error()))
				return
			}
		case frame.DISCONNECT:
		default:
			w.Write(frame.New(frame.ERROR, frame.Message, "floor: only CONNECT, SEND and DISCONNECT, not "+f.Command))
			return
		}
		if id := f.Header.Get(frame.Receipt); id != "" && reply == nil { // a CONNECT is answered by CONNECTED alone
			reply = frame.New(frame.RECEIPT, frame.ReceiptId, id)
		}
		if reply != nil {
			if err := w.Write(reply); err != nil {
				return
			}
		}
		if f.Command == frame.DISCONNECT {
			return
		}
	}
}
