package stomp

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"runtime"
	"slices"
	"testing"
	"time"

	"github.com/go-stomp/stomp/v3/frame"

	"github.com/hamq/hamq/protocols/internal/rawconn"
)

// fuzzOptions are limits small enough for the fuzzer to cross them.
func fuzzOptions(o *Options) {
	o.MaxFrameSize, o.MaxHeaders, o.MaxHeaderLine = 4096, 16, 256
	o.HeartBeat, o.ConnectTimeout = 0, 5*time.Second
}

// FuzzReader feeds arbitrary bytes to the frame reader under each version's
// escaping rules. It may fail only with a protocol error (the client's
// ERROR frame) or an end of input, allocate only in proportion to its input
// and limits, and a frame it reads under STOMP 1.2 must read back the same
// once written.
//
// Its seeds are testdata/fuzz/FuzzReader, the same as FuzzConn's.
func FuzzReader(f *testing.F) {
	var o Options
	fuzzOptions(&o)
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, version := range versions {
			var frames []*frame.Frame
			var err error
			used := allocated(func() { frames, err = readAll(data, version, o) })
			if limit := 8*uint64(len(data)) + 8*uint64(o.MaxFrameSize) + 64<<10; used > limit {
				t.Fatalf("STOMP %s: reading %d bytes allocated %d, over %d", version, len(data), used, limit)
			}
			var le *limitError
			if err != io.EOF && err != io.ErrUnexpectedEOF && !errors.As(err, &le) {
				t.Fatalf("STOMP %s: error %v (%T) is neither a protocol error nor an end of input", version, err, err)
			}
			if version == "1.2" {
				for _, fr := range frames {
					checkRoundTrip(t, fr, o)
				}
			}
		}
	})
}

// readAll reads frames from data until the first error.
func readAll(data []byte, version string, o Options) ([]*frame.Frame, error) {
	r := newReader(bytes.NewReader(data), o)
	r.version = version
	var frames []*frame.Frame
	for {
		fr, err := r.read()
		if err != nil {
			return frames, err
		}
		frames = append(frames, fr)
	}
}

// allocated returns the bytes fn allocates.
func allocated(fn func()) uint64 {
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	fn()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

// checkRoundTrip writes fr as the server writes a frame to a STOMP 1.2
// client and reads it back. The frames whose headers STOMP never escapes
// (CONNECT, STOMP, CONNECTED) are left out: the reader takes them raw.
func checkRoundTrip(t *testing.T, fr *frame.Frame, o Options) {
	if fr.Command == frame.CONNECT || fr.Command == frame.STOMP || fr.Command == frame.CONNECTED {
		return
	}
	var b bytes.Buffer
	w := bufio.NewWriter(&b)
	writeFrame(w, "1.2", fr)
	w.Flush()
	o.MaxFrameSize, o.MaxHeaderLine = int64(b.Len())+1, b.Len()
	again, err := readAll(b.Bytes(), "1.2", o)
	if err != io.EOF || len(again) != 1 {
		t.Fatalf("%q written as %q reads back as %d frames, %v", fr.Command, b.Bytes(), len(again), err)
	}
	g := again[0]
	if g.Command != fr.Command || !bytes.Equal(g.Body, fr.Body) || !slices.Equal(headers(g), headers(fr)) {
		t.Fatalf("written as %q, %s %q %q reads back as %s %q %q", b.Bytes(), fr.Command, headers(fr), fr.Body,
			g.Command, headers(g), g.Body)
	}
}

func headers(f *frame.Frame) []string {
	var out []string
	for i := range f.Header.Len() {
		k, v := f.Header.GetAt(i)
		out = append(out, k, v)
	}
	return out
}

// FuzzConn sends arbitrary bytes to a STOMP server as one client's
// connection and half-closes it. The server must end the connection, with
// an ERROR frame last when the bytes hold a frame the reader refuses before
// any DISCONNECT; what it writes must be well-formed frames a server may
// send; and a client connecting next must be served.
//
// Its seeds are testdata/fuzz/FuzzConn.
func FuzzConn(f *testing.F) {
	srv := startServer(f, nil, fuzzOptions)
	f.Fuzz(func(t *testing.T, data []byte) {
		out := rawconn.Exchange(t, srv.addr, data, true)
		frames, err := readAll(out, "1.0", Options{MaxFrameSize: 1 << 30, MaxHeaders: 1 << 20, MaxHeaderLine: 1 << 30})
		if err != io.EOF {
			t.Fatalf("the server wrote %q, which does not read as frames: %v", out, err)
		}
		for _, fr := range frames {
			switch fr.Command {
			case frame.CONNECTED, frame.MESSAGE, frame.RECEIPT, frame.ERROR:
			default:
				t.Fatalf("the server wrote a %q frame", fr.Command)
			}
		}
		if refusedBeforeDisconnect(data) && (len(frames) == 0 || frames[len(frames)-1].Command != frame.ERROR) {
			t.Fatalf("a frame the reader refuses got no ERROR frame; the server wrote %q", out)
		}
		out = rawconn.Exchange(t, srv.addr, []byte("CONNECT\naccept-version:1.2\nhost:h\n\n\x00DISCONNECT\nreceipt:r\n\n\x00"), false)
		if !bytes.HasPrefix(out, []byte("CONNECTED\n")) || !bytes.Contains(out, []byte("RECEIPT\nreceipt-id:r\n")) {
			t.Fatalf("after that connection, a well-behaved client got %q", out)
		}
	})
}

// refusedBeforeDisconnect reports whether the reader refuses a frame of
// data before any DISCONNECT. It reads as STOMP 1.0, whose reader refuses
// nothing that 1.1's and 1.2's accept: those only add escaping errors.
func refusedBeforeDisconnect(data []byte) bool {
	var o Options
	fuzzOptions(&o)
	r := newReader(bytes.NewReader(data), o)
	for {
		fr, err := r.read()
		var le *limitError
		if err != nil {
			return errors.As(err, &le)
		}
		if fr.Command == frame.DISCONNECT {
			return false
		}
	}
}
