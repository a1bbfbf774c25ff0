package wire

import (
	"encoding/binary"
	"fmt"
	"io"
	"math"
)

// ProtocolID tells which layer a protocol header starts (part 2.2, 5.2, 5.3).
type ProtocolID uint8

const (
	ProtocolAMQP ProtocolID = 0
	ProtocolTLS  ProtocolID = 2
	ProtocolSASL ProtocolID = 3
)

// ProtocolHeader is the 8 bytes each peer sends before its frames: "AMQP",
// the protocol id and the version.
type ProtocolHeader struct {
	ID                     ProtocolID
	Major, Minor, Revision uint8
}

// The headers of AMQP 1.0 itself and of its SASL layer.
var (
	AMQPHeader = ProtocolHeader{ID: ProtocolAMQP, Major: 1}
	SASLHeader = ProtocolHeader{ID: ProtocolSASL, Major: 1}
)

// Append appends the 8 header bytes to b.
func (h ProtocolHeader) Append(b []byte) []byte {
	return append(b, 'A', 'M', 'Q', 'P', byte(h.ID), h.Major, h.Minor, h.Revision)
}

func (h ProtocolHeader) String() string {
	return fmt.Sprintf("AMQP %d %d.%d.%d", h.ID, h.Major, h.Minor, h.Revision)
}

// ReadProtocolHeader reads a protocol header. It fails only when the bytes
// do not begin with "AMQP": an unsupported id or version is returned for
// the caller to answer with the header it does support, as the spec asks.
func ReadProtocolHeader(r io.Reader) (ProtocolHeader, error) {
	var b [8]byte
	if _, err := io.ReadFull(r, b[:]); err != nil {
		return ProtocolHeader{}, err
	}
	if string(b[:4]) != "AMQP" {
		return ProtocolHeader{}, &FrameError{Reason: fmt.Sprintf("protocol header %q does not start with AMQP", b[:])}
	}
	return ProtocolHeader{ID: ProtocolID(b[4]), Major: b[5], Minor: b[6], Revision: b[7]}, nil
}

// FrameType is the type of a frame: AMQP or SASL.
type FrameType uint8

const (
	FrameAMQP FrameType = 0
	FrameSASL FrameType = 1
)

func (t FrameType) String() string {
	switch t {
	case FrameAMQP:
		return "AMQP"
	case FrameSASL:
		return "SASL"
	}
	return fmt.Sprintf("frame type %d", uint8(t))
}

// Frame is one frame. An empty body is a heartbeat.
type Frame struct {
	Type FrameType
	// Channel is the AMQP channel; SASL frames have none and read as 0.
	Channel uint16
	Body    []byte
}

// IsEmpty reports whether f has no body: a heartbeat, which only resets the
// peer's idle timer.
func (f Frame) IsEmpty() bool { return len(f.Body) == 0 }

// FrameError reports a frame that breaks the framing rules; the spec's
// answer is to close the connection with amqp:connection:framing-error.
type FrameError struct {
	Reason string
}

func (e *FrameError) Error() string { return "amqp: framing: " + e.Reason }

const frameHeaderSize = 8

// frameChunk bounds the memory a frame costs before its bytes arrive: a
// peer that announces a large frame and sends it slowly gets a buffer that
// grows with what it has sent, not one of the announced size.
const frameChunk = 64 << 10

// FrameReader reads frames from a byte stream. It does no buffering of its
// own; give it a bufio.Reader, or it makes two reads per frame.
type FrameReader struct {
	r   io.Reader
	max uint32
	hdr [frameHeaderSize]byte
}

// NewFrameReader reads frames of at most maxFrameSize bytes, header
// included, from r. A maximum below MinMaxFrameSize is raised to it, since a
// peer may always send that much.
func NewFrameReader(r io.Reader, maxFrameSize uint32) *FrameReader {
	fr := &FrameReader{r: r}
	fr.SetMaxFrameSize(maxFrameSize)
	return fr
}

// SetMaxFrameSize changes the maximum, as when open has been exchanged.
func (fr *FrameReader) SetMaxFrameSize(n uint32) {
	fr.max = max(n, MinMaxFrameSize)
}

// ReadFrame reads the next frame. Its body is newly allocated and belongs to
// the caller. At the end of the stream between frames it returns io.EOF; in
// the middle of one, io.ErrUnexpectedEOF. A frame breaking the framing rules
// gives a *FrameError, and the stream cannot be read further.
func (fr *FrameReader) ReadFrame() (Frame, error) {
	if _, err := io.ReadFull(fr.r, fr.hdr[:]); err != nil {
		return Frame{}, err
	}
	size := binary.BigEndian.Uint32(fr.hdr[0:4])
	doff := fr.hdr[4]
	typ := FrameType(fr.hdr[5])
	switch {
	case size < frameHeaderSize:
		return Frame{}, &FrameError{Reason: fmt.Sprintf("frame size %d is smaller than the frame header", size)}
	case size > fr.max:
		return Frame{}, &FrameError{Reason: fmt.Sprintf("frame size %d exceeds the maximum %d", size, fr.max)}
	case doff < 2:
		return Frame{}, &FrameError{Reason: fmt.Sprintf("data offset %d is below 2", doff)}
	case uint32(doff)*4 > size:
		return Frame{}, &FrameError{Reason: fmt.Sprintf("data offset %d points past the frame's %d bytes", doff, size)}
	case typ != FrameAMQP && typ != FrameSASL:
		return Frame{}, &FrameError{Reason: fmt.Sprintf("unknown frame type %d", uint8(typ))}
	}
	f := Frame{Type: typ}
	if typ == FrameAMQP {
		f.Channel = binary.BigEndian.Uint16(fr.hdr[6:8])
	}
	// The extended header, which no part of AMQP 1.0 defines, is read with
	// the body and skipped.
	rest, err := readBody(fr.r, int(size-frameHeaderSize))
	if err != nil {
		return Frame{}, err
	}
	f.Body = rest[int(doff)*4-frameHeaderSize:]
	return f, nil
}

func readBody(r io.Reader, n int) ([]byte, error) {
	buf := make([]byte, 0, min(n, frameChunk))
	for len(buf) < n {
		if len(buf) == cap(buf) {
			grown := make([]byte, len(buf), min(2*cap(buf), n))
			copy(grown, buf)
			buf = grown
		}
		k, err := io.ReadFull(r, buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+k]
		if err != nil {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return nil, err
		}
	}
	return buf, nil
}

// AppendFrame appends f, with its body, to b. AppendFrame(b, Frame{}) is a
// heartbeat.
func AppendFrame(b []byte, f Frame) ([]byte, error) {
	if uint64(len(f.Body))+frameHeaderSize > math.MaxUint32 {
		return b, encodeErrorf("frame body of %d bytes exceeds AMQP's 4 GiB limit", len(f.Body))
	}
	b = binary.BigEndian.AppendUint32(b, uint32(len(f.Body)+frameHeaderSize))
	b = append(b, 2, byte(f.Type))
	b = binary.BigEndian.AppendUint16(b, f.Channel)
	return append(b, f.Body...), nil
}

// AppendPerformativeFrame appends a frame carrying p, and for a transfer the
// message bytes payload, to b, without building the body separately. The
// caller keeps frames within the peer's max-frame-size, splitting large
// messages over several transfers.
func AppendPerformativeFrame(b []byte, channel uint16, p Performative, payload []byte) ([]byte, error) {
	if _, ok := p.(*Transfer); !ok && len(payload) > 0 {
		return b, encodeErrorf("%s frame cannot carry a payload", descriptorName(p.Descriptor()))
	}
	start := len(b)
	b = append(b, 0, 0, 0, 0, 2, byte(p.FrameType()))
	if p.FrameType() == FrameAMQP {
		b = binary.BigEndian.AppendUint16(b, channel)
	} else {
		b = append(b, 0, 0)
	}
	b, err := AppendComposite(b, p)
	if err != nil {
		return b[:start], err
	}
	b = append(b, payload...)
	if uint64(len(b)-start) > math.MaxUint32 {
		return b[:start], encodeErrorf("frame of %d bytes exceeds AMQP's 4 GiB limit", len(b)-start)
	}
	binary.BigEndian.PutUint32(b[start:], uint32(len(b)-start))
	return b, nil
}

// DecodePerformative decodes the performative of f. For a transfer it also
// returns the payload that follows, aliasing f.Body; other performatives
// carry none, and bytes after them are an error. An empty frame has no
// performative: check IsEmpty first.
func DecodePerformative(f Frame) (Performative, []byte, error) {
	d := newDecoder(f.Body)
	code, err := d.u8("performative")
	if err != nil {
		return nil, nil, d.errorf(0, "empty frame has no performative")
	}
	got, err := d.describedHeader(code, 0, "performative")
	if err != nil {
		return nil, nil, err
	}
	p := newPerformative(got, f.Type)
	if p == nil {
		return nil, nil, d.errorf(0, "%s is not a performative of a %s frame", descriptorName(got), f.Type)
	}
	if err := d.fields(p); err != nil {
		return nil, nil, err
	}
	payload := f.Body[d.off:]
	if _, ok := p.(*Transfer); !ok && len(payload) > 0 {
		return nil, nil, d.errorf(d.off, "%d bytes follow the %s performative", len(payload), descriptorName(got))
	}
	return p, payload, nil
}

func newPerformative(code uint64, t FrameType) Performative {
	if t == FrameSASL {
		switch code {
		case descSASLMechanisms:
			return new(SASLMechanisms)
		case descSASLInit:
			return new(SASLInit)
		case descSASLChallenge:
			return new(SASLChallenge)
		case descSASLResponse:
			return new(SASLResponse)
		case descSASLOutcome:
			return new(SASLOutcome)
		}
		return nil
	}
	switch code {
	case descOpen:
		return new(Open)
	case descBegin:
		return new(Begin)
	case descAttach:
		return new(Attach)
	case descFlow:
		return new(Flow)
	case descTransfer:
		return new(Transfer)
	case descDisposition:
		return new(Disposition)
	case descDetach:
		return new(Detach)
	case descEnd:
		return new(End)
	case descClose:
		return new(Close)
	}
	return nil
}
