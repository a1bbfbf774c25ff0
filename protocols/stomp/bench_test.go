package stomp

import (
	"bufio"
	"bytes"
	"io"
	"strings"
	"testing"

	"github.com/go-stomp/stomp/v3/frame"
)

// The STOMP codec's hot paths, with their allocations: a broker reads a
// SEND and writes a MESSAGE for every message it carries.

func BenchmarkReadSend(b *testing.B) {
	body := strings.Repeat("x", 1024)
	raw := []byte("SEND\ndestination:/queue/bench\npersistent:true\nreceipt:r-123456\ncontent-type:text/plain\ncontent-length:1024\n\n" + body + "\x00")
	src := bytes.NewReader(nil)
	r := newReader(src, DefaultOptions())
	r.version = "1.2"
	b.SetBytes(int64(len(raw)))
	b.ReportAllocs()
	for b.Loop() {
		src.Reset(raw)
		r.r.Reset(src)
		if _, err := r.read(); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkWriteMessage(b *testing.B) {
	f := frame.New(frame.MESSAGE, frame.Subscription, "1", frame.MessageId, "ID:hamq-0a1b2c3d-1234", frame.Destination, "/queue/bench",
		"persistent", "true", "priority", "4", "timestamp", "1765000000000", "expires", "0", "redelivered", "false",
		frame.Ack, "123456", frame.ContentType, "text/plain")
	f.Body = bytes.Repeat([]byte("x"), 1024)
	w := bufio.NewWriterSize(io.Discard, 64<<10)
	b.ReportAllocs()
	for b.Loop() {
		if err := writeFrame(w, "1.2", f); err != nil {
			b.Fatal(err)
		}
	}
}
