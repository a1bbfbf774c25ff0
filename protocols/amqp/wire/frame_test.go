package wire

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
	"testing/iotest"
)

func TestProtocolHeaders(t *testing.T) {
	if got := AMQPHeader.Append(nil); string(got) != "AMQP\x00\x01\x00\x00" {
		t.Errorf("AMQP header % x", got)
	}
	if got := SASLHeader.Append(nil); string(got) != "AMQP\x03\x01\x00\x00" {
		t.Errorf("SASL header % x", got)
	}
	for in, want := range map[string]ProtocolHeader{
		"AMQP\x00\x01\x00\x00": AMQPHeader,
		"AMQP\x03\x01\x00\x00": SASLHeader,
		"AMQP\x02\x01\x00\x00": {ID: ProtocolTLS, Major: 1},
		"AMQP\x00\x00\x09\x01": {Minor: 9, Revision: 1}, // AMQP 0-9-1: the caller answers with its own
	} {
		got, err := ReadProtocolHeader(strings.NewReader(in))
		if err != nil || got != want {
			t.Errorf("%q: %v, %v", in, got, err)
		}
	}
	var fe *FrameError
	if _, err := ReadProtocolHeader(strings.NewReader("GET / HTTP/1.1\r\n")); !errors.As(err, &fe) {
		t.Errorf("HTTP request: %v", err)
	}
	if _, err := ReadProtocolHeader(strings.NewReader("AMQ")); err != io.ErrUnexpectedEOF {
		t.Errorf("short header: %v", err)
	}
}

func TestFrameRoundTrip(t *testing.T) {
	frames := []Frame{
		{},
		{Type: FrameAMQP, Channel: 65535, Body: []byte{0x00, 0x53, 0x18, 0x45}},
		{Type: FrameSASL, Body: []byte("sasl")},
		{Type: FrameAMQP, Channel: 1, Body: bytes.Repeat([]byte{7}, 300<<10)},
	}
	var stream []byte
	for _, f := range frames {
		var err error
		if stream, err = AppendFrame(stream, f); err != nil {
			t.Fatal(err)
		}
	}
	if want := "\x00\x00\x00\x08\x02\x00\x00\x00"; string(stream[:8]) != want {
		t.Fatalf("heartbeat % x", stream[:8])
	}
	// One byte at a time, to exercise every partial read.
	fr := NewFrameReader(iotest.OneByteReader(bytes.NewReader(stream)), 1<<20)
	for i, want := range frames {
		got, err := fr.ReadFrame()
		if err != nil {
			t.Fatalf("frame %d: %v", i, err)
		}
		if got.Type != want.Type || got.Channel != want.Channel || !bytes.Equal(got.Body, want.Body) {
			t.Fatalf("frame %d: type %v channel %d body %d bytes", i, got.Type, got.Channel, len(got.Body))
		}
		if got.IsEmpty() != (len(want.Body) == 0) {
			t.Fatalf("frame %d: IsEmpty %v", i, got.IsEmpty())
		}
	}
	if _, err := fr.ReadFrame(); err != io.EOF {
		t.Fatalf("after last frame: %v, want io.EOF", err)
	}
}

func TestFrameExtendedHeaderSkipped(t *testing.T) {
	in := []byte{0, 0, 0, 14, 3, 0, 0, 9, 0xee, 0xee, 0xee, 0xee, 0x00, 0x01}
	f, err := NewFrameReader(bytes.NewReader(in), 512).ReadFrame()
	if err != nil {
		t.Fatal(err)
	}
	if f.Channel != 9 || !bytes.Equal(f.Body, []byte{0x00, 0x01}) {
		t.Fatalf("frame %+v", f)
	}
}

func TestSASLFrameIgnoresChannel(t *testing.T) {
	f, err := NewFrameReader(bytes.NewReader([]byte{0, 0, 0, 9, 2, 1, 0xab, 0xcd, 0x45}), 512).ReadFrame()
	if err != nil || f.Type != FrameSASL || f.Channel != 0 {
		t.Fatalf("%+v, %v", f, err)
	}
}

// limitedReader fails the test if more than n bytes are read.
type limitedReader struct {
	t *testing.T
	r io.Reader
	n int
}

func (l *limitedReader) Read(p []byte) (int, error) {
	n, err := l.r.Read(p)
	l.n -= n
	if l.n < 0 {
		l.t.Fatalf("read %d bytes past the frame header", -l.n)
	}
	return n, err
}

func TestBadFrameHeaders(t *testing.T) {
	tests := []struct {
		name string
		hdr  []byte
		max  uint32
		want string
	}{
		{"too large", []byte{0, 0x10, 0, 0, 2, 0, 0, 0}, 4096, "frame size 1048576 exceeds the maximum 4096"},
		{"over 4 GiB claim", []byte{0xff, 0xff, 0xff, 0xff, 2, 0, 0, 0}, 1 << 20, "exceeds the maximum"},
		{"just over minimum", []byte{0, 0, 2, 1, 2, 0, 0, 0}, 0, "frame size 513 exceeds the maximum 512"},
		{"smaller than header", []byte{0, 0, 0, 7, 2, 0, 0, 0}, 512, "smaller than the frame header"},
		{"doff 0", []byte{0, 0, 0, 8, 0, 0, 0, 0}, 512, "data offset 0 is below 2"},
		{"doff 1", []byte{0, 0, 0, 8, 1, 0, 0, 0}, 512, "data offset 1 is below 2"},
		{"doff past frame", []byte{0, 0, 0, 12, 4, 0, 0, 0}, 512, "data offset 4 points past the frame's 12 bytes"},
		{"unknown type", []byte{0, 0, 0, 8, 2, 7, 0, 0}, 512, "unknown frame type 7"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			// A body follows, which the reader must not touch.
			in := append(append([]byte{}, tc.hdr...), make([]byte, 64)...)
			r := &limitedReader{t: t, r: bytes.NewReader(in), n: 8}
			_, err := NewFrameReader(r, tc.max).ReadFrame()
			var fe *FrameError
			if !errors.As(err, &fe) || !strings.Contains(fe.Reason, tc.want) {
				t.Fatalf("err = %v, want a FrameError about %q", err, tc.want)
			}
		})
	}
}

func TestTruncatedFrames(t *testing.T) {
	for name, in := range map[string][]byte{
		"in header": {0, 0, 0},
		"in body":   {0, 0, 0, 12, 2, 0, 0, 0, 1, 2},
		"big body":  append([]byte{0, 2, 0, 0, 2, 0, 0, 0}, make([]byte, 70000)...),
	} {
		t.Run(name, func(t *testing.T) {
			_, err := NewFrameReader(bytes.NewReader(in), 1<<20).ReadFrame()
			if err != io.ErrUnexpectedEOF {
				t.Fatalf("err = %v, want io.ErrUnexpectedEOF", err)
			}
		})
	}
}

func TestSetMaxFrameSize(t *testing.T) {
	in := append([]byte{0, 0, 4, 0, 2, 0, 0, 0}, make([]byte, 1016)...)
	fr := NewFrameReader(bytes.NewReader(in), 512)
	fr.SetMaxFrameSize(1024)
	if f, err := fr.ReadFrame(); err != nil || len(f.Body) != 1016 {
		t.Fatalf("%d bytes, %v", len(f.Body), err)
	}
}

func TestDecodePerformativeErrors(t *testing.T) {
	close := []byte{0x00, 0x53, 0x18, 0x45}
	tests := []struct {
		name string
		f    Frame
		want string
	}{
		{"heartbeat", Frame{}, "empty frame has no performative"},
		{"flow in SASL frame", Frame{Type: FrameSASL, Body: []byte{0x00, 0x53, 0x13, 0x45}}, "flow is not a performative of a SASL frame"},
		{"sasl-init in AMQP frame", Frame{Body: []byte{0x00, 0x53, 0x41, 0x45}}, "sasl-init is not a performative of a AMQP frame"},
		{"not a performative", Frame{Body: []byte{0x00, 0x53, 0x24, 0x45}}, "accepted is not a performative"},
		{"not described", Frame{Body: []byte{0x45}}, "expected performative, found list"},
		{"payload after close", Frame{Body: append(close, 1)}, "1 bytes follow the close performative"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := DecodePerformative(tc.f)
			var de *DecodeError
			if !errors.As(err, &de) || !strings.Contains(de.Reason, tc.want) {
				t.Fatalf("err = %v, want a DecodeError about %q", err, tc.want)
			}
		})
	}
	if _, err := AppendPerformativeFrame(nil, 0, &Close{}, []byte{1}); err == nil {
		t.Error("close frame took a payload")
	}
	b := []byte("keep")
	if b2, err := AppendPerformativeFrame(b, 0, &Open{ContainerID: "\xff"}, nil); err == nil || string(b2) != "keep" {
		t.Errorf("failed append left %q, %v", b2, err)
	}
}
