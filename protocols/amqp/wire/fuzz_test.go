package wire

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"testing"
)

// FuzzDecode feeds arbitrary bytes to every decoder: as a stream of values,
// as a stream of frames (and their performatives and transfer payloads), as
// an AMQP and a SASL frame body, and as a message. Nothing may panic,
// decoding may allocate only in proportion to its input, and whatever
// decodes must encode, decode again, and encode to the same bytes.
//
// Its seeds are the files in testdata/fuzz/FuzzDecode, written by
// TestWriteFuzzCorpus from fuzzSeeds, plus any crashers found since.
func FuzzDecode(f *testing.F) {
	f.Fuzz(func(t *testing.T, data []byte) {
		r := decodeAll(data)
		if used := allocatedWithin(r.limit, func() { decodeAll(data) }); used > r.limit {
			t.Fatalf("decoding %d bytes allocated %d bytes, over %d", len(data), used, r.limit)
		}
		r.check(t)
	})
}

// allocBound is what one decoder may allocate for n bytes of input. Every
// element takes at least one input byte, and the costliest per byte are
// 16-byte interface slots, boxed Described values and Go map entries; 64
// bytes per input byte is loose for those and far below what trusting a
// length field would cost.
func allocBound(n int) uint64 { return 64*uint64(n) + 4096 }

// allocatedWithin returns the fewest bytes fn allocated in up to three
// calls, stopping at the first within limit. The count is process-wide:
// another goroutine (the fuzz worker's, the test runner's, the GC's) can
// allocate meanwhile, so one call over the limit is not yet proof; fn is
// deterministic, so an excess it causes itself repeats. ReadMemStats is
// exact, unlike runtime/metrics, because it flushes the per-P caches.
func allocatedWithin(limit uint64, fn func()) uint64 {
	least := uint64(math.MaxUint64)
	for range 3 {
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		fn()
		runtime.ReadMemStats(&after)
		least = min(least, after.TotalAlloc-before.TotalAlloc)
		if least <= limit {
			break
		}
	}
	return least
}

const fuzzMaxFrame = 4096

type perfResult struct {
	f       Frame
	p       Performative
	payload []byte
	err     error
}

type msgResult struct {
	data []byte
	m    *Message
	err  error
}

// decodeResults holds everything decodeAll decoded, so that the checks,
// which allocate freely, run outside the measured window.
type decodeResults struct {
	limit    uint64
	values   []any
	valueErr error
	frameErr error
	perfs    []perfResult
	messages []msgResult
}

func decodeAll(data []byte) decodeResults {
	var r decodeResults
	// Values, frames, the two frame bodies and the message each read all
	// of data; the frame reader may also allocate one frame it was
	// promised, up to the maximum, before finding the input short.
	r.limit = 5*allocBound(len(data)) + fuzzMaxFrame
	for rest := data; len(rest) > 0; {
		v, n, err := DecodeValue(rest)
		if err != nil {
			r.valueErr = err
			break
		}
		r.values = append(r.values, v)
		rest = rest[n:]
	}
	perf := func(f Frame) {
		p, payload, err := DecodePerformative(f)
		r.perfs = append(r.perfs, perfResult{f, p, payload, err})
		if _, ok := p.(*Transfer); ok && len(payload) > 0 {
			m, err := DecodeMessage(payload)
			r.messages = append(r.messages, msgResult{payload, m, err})
		}
	}
	fr := NewFrameReader(bytes.NewReader(data), fuzzMaxFrame)
	for {
		f, err := fr.ReadFrame()
		if err != nil {
			r.frameErr = err
			break
		}
		if !f.IsEmpty() {
			perf(f)
		}
	}
	perf(Frame{Type: FrameAMQP, Body: data})
	perf(Frame{Type: FrameSASL, Body: data})
	m, err := DecodeMessage(data)
	r.messages = append(r.messages, msgResult{data, m, err})
	return r
}

func (r *decodeResults) check(t *testing.T) {
	if r.valueErr != nil {
		wantDecodeError(t, "DecodeValue", r.valueErr)
	}
	for _, v := range r.values {
		checkValue(t, v)
	}
	var fe *FrameError
	if err := r.frameErr; err != io.EOF && err != io.ErrUnexpectedEOF && !errors.As(err, &fe) {
		t.Fatalf("ReadFrame: unexpected error %v", err)
	}
	for _, p := range r.perfs {
		if p.err != nil {
			wantDecodeError(t, "DecodePerformative", p.err)
			continue
		}
		checkPerformative(t, p)
	}
	for _, m := range r.messages {
		if m.err != nil {
			wantDecodeError(t, "DecodeMessage", m.err)
			continue
		}
		checkMessage(t, m.m)
	}
}

func wantDecodeError(t *testing.T, what string, err error) {
	t.Helper()
	var de *DecodeError
	if !errors.As(err, &de) {
		t.Fatalf("%s: error %v (%T) is not a *DecodeError", what, err, err)
	}
	if de.Offset < 0 {
		t.Fatalf("%s: negative error offset: %v", what, err)
	}
}

func checkValue(t *testing.T, v any) {
	b1, err := AppendValue(nil, v)
	if err != nil {
		t.Fatalf("decoded value %#v does not encode: %v", v, err)
	}
	v2, n2, err := DecodeValue(b1)
	if err != nil || n2 != len(b1) {
		t.Fatalf("re-encoded value % x does not decode: %d bytes, %v", b1, n2, err)
	}
	b2, err := AppendValue(nil, v2)
	if err != nil || !bytes.Equal(b1, b2) {
		t.Fatalf("value re-encodes differently:\n% x\n% x (%v)", b1, b2, err)
	}
}

func checkPerformative(t *testing.T, r perfResult) {
	b1, err := AppendPerformativeFrame(nil, r.f.Channel, r.p, r.payload)
	if err != nil {
		t.Fatalf("decoded %#v does not encode: %v", r.p, err)
	}
	f2, err := NewFrameReader(bytes.NewReader(b1), math.MaxUint32).ReadFrame()
	if err != nil {
		t.Fatalf("re-encoded frame does not read: %v", err)
	}
	p2, payload2, err := DecodePerformative(f2)
	if err != nil {
		t.Fatalf("re-encoded %#v does not decode: %v\n% x", r.p, err, b1)
	}
	b2, err := AppendPerformativeFrame(nil, f2.Channel, p2, payload2)
	if err != nil || !bytes.Equal(b1, b2) {
		t.Fatalf("%T re-encodes differently:\n% x\n% x (%v)", r.p, b1, b2, err)
	}
}

func checkMessage(t *testing.T, m *Message) {
	b1, err := AppendMessage(nil, m)
	if err != nil {
		t.Fatalf("decoded message %#v does not encode: %v", m, err)
	}
	m2, err := DecodeMessage(b1)
	if err != nil {
		t.Fatalf("re-encoded message does not decode: %v\n% x", err, b1)
	}
	b2, err := AppendMessage(nil, m2)
	if err != nil || !bytes.Equal(b1, b2) {
		t.Fatalf("message re-encodes differently:\n% x\n% x (%v)", b1, b2, err)
	}
}

// Hostile lengths fail before allocating what they claim.
func TestHostileLengthsDoNotAllocate(t *testing.T) {
	tests := []struct {
		name  string
		in    []byte
		limit uint64
	}{
		{"list8 of 200 in 3 bytes", []byte{0xc0, 3, 200, 0x40, 0x40}, 512},
		{"list32 of 4G", []byte{0xd0, 0, 0, 0, 8, 0xff, 0xff, 0xff, 0xff, 0x40, 0x40, 0x40, 0x40}, 512},
		{"map32 of 4G", []byte{0xd1, 0, 0, 0, 8, 0xff, 0xff, 0xff, 0xfe, 0x40, 0x40, 0x40, 0x40}, 512},
		{"array32 of 4G nulls", []byte{0xf0, 0, 0, 0, 5, 0xff, 0xff, 0xff, 0xff, 0x40}, 512},
		{"array32 of 4G ulongs", []byte{0xf0, 0, 0, 0, 13, 0xff, 0xff, 0xff, 0xff, 0x80, 0, 0, 0, 0, 0, 0, 0, 0}, 512},
		{"vbin32 of 4G", []byte{0xb0, 0xff, 0xff, 0xff, 0xff, 0}, 512},
		{"str32 of 4G", []byte{0xb1, 0xff, 0xff, 0xff, 0xff, 0}, 512},
		{"described 1000 deep", bytes.Repeat([]byte{0}, 1000), 512},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, _, err := DecodeValue(tc.in); err == nil {
				t.Fatal("decoded")
			}
			if got := allocatedWithin(tc.limit, func() { DecodeValue(tc.in) }); got > tc.limit {
				t.Fatalf("allocated %d bytes, over %d", got, tc.limit)
			}
		})
	}
	t.Run("frame claiming 4 GiB", func(t *testing.T) {
		in := append([]byte{0xff, 0xff, 0xff, 0xff, 2, 0, 0, 0}, make([]byte, 100)...)
		read := func() error {
			_, err := NewFrameReader(bytes.NewReader(in), math.MaxUint32).ReadFrame()
			return err
		}
		if err := read(); err != io.ErrUnexpectedEOF {
			t.Fatalf("err = %v", err)
		}
		if got := allocatedWithin(2*frameChunk, func() { read() }); got > 2*frameChunk {
			t.Fatalf("allocated %d bytes for a 100-byte frame", got)
		}
	})
}

var writeCorpus = flag.Bool("write-fuzz-corpus", false, "rewrite testdata/fuzz/FuzzDecode from fuzzSeeds")

// TestWriteFuzzCorpus regenerates the checked-in seed corpus:
// go test -run TestWriteFuzzCorpus ./protocols/amqp/wire/ -args -write-fuzz-corpus
// It leaves alone files it did not write, such as crashers the fuzzer found.
func TestWriteFuzzCorpus(t *testing.T) {
	if !*writeCorpus {
		t.Skip("run with -write-fuzz-corpus")
	}
	dir := filepath.Join("testdata", "fuzz", "FuzzDecode")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, s := range fuzzSeeds(t) {
		body := fmt.Sprintf("go test fuzz v1\n[]byte(%s)\n", strconv.Quote(string(s.data)))
		if err := os.WriteFile(filepath.Join(dir, "seed-"+s.name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

type fuzzSeed struct {
	name string
	data []byte
}

func fuzzSeeds(t testing.TB) []fuzzSeed {
	frames := func(ch uint16, ps ...Performative) []byte {
		var b []byte
		for _, p := range ps {
			var payload []byte
			if _, ok := p.(*Transfer); ok {
				var err error
				if payload, err = AppendMessage(nil, fullMessage()); err != nil {
					t.Fatal(err)
				}
			}
			var err error
			if b, err = AppendPerformativeFrame(b, ch, p, payload); err != nil {
				t.Fatal(err)
			}
		}
		return b
	}
	must := func(b []byte, err error) []byte {
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	var primitives []byte
	for _, v := range canonicalVectors {
		primitives = append(primitives, hexb(t, v.hex)...)
	}
	heartbeat := must(AppendFrame(nil, Frame{}))
	connection := frames(0, fullPerformatives[0], fullPerformatives[1], fullPerformatives[2],
		fullPerformatives[4], fullPerformatives[5], fullPerformatives[7], fullPerformatives[12],
		fullPerformatives[13], fullPerformatives[15])
	return []fuzzSeed{
		{"connection", append(connection, heartbeat...)},
		{"sasl", frames(0, &SASLMechanisms{Mechanisms: []Symbol{"PLAIN", "ANONYMOUS"}},
			&SASLInit{Mechanism: "PLAIN", InitialResponse: []byte("\x00u\x00p")}, &SASLOutcome{})},
		{"transfer-body", must(AppendComposite(nil, &Transfer{Handle: 1, DeliveryID: ptr(uint32(0)),
			DeliveryTag: []byte{0}, MessageFormat: ptr(uint32(0))}))},
		{"attach-body", must(AppendComposite(nil, fullPerformatives[2]))},
		{"coordinator", frames(1, fullPerformatives[3], fullPerformatives[6], fullPerformatives[11])},
		{"disposition-rejected", must(AppendComposite(nil, fullPerformatives[8]))},
		{"message", must(AppendMessage(nil, fullMessage()))},
		{"message-sequence", must(AppendMessage(nil, &Message{Sequence: [][]any{{uint32(1)}, {"x"}}}))},
		{"primitives", primitives},
		{"compounds", must(AppendValue(nil, []any{
			Map{{Symbol("k"), Array{Type: TypeList, Values: []any{[]any{int64(-1)}}}}},
			Array{Type: TypeString, Descriptor: Symbol("d"), Values: []any{"a", "b"}},
			Described{uint64(0x77), Array{Type: TypeArray, Values: []any{Array{Type: TypeUUID, Values: []any{UUID{}}}}}},
		}))},
		{"symbolic-open", hexb(t, "00 a3 0e 616d71703a6f70656e3a6c697374 c0 04 01 a1 01 63")},
		{"list-count-lies", []byte{0xc0, 3, 200, 0x40, 0x40}},
		{"array-of-nulls", []byte{0xf0, 0, 0, 0, 5, 0xff, 0xff, 0xff, 0xff, 0x40}},
		{"deep", append(bytes.Repeat([]byte{0x00}, 70), nestedLists(70)...)},
		{"huge-frame", append([]byte{0x7f, 0xff, 0xff, 0xff, 2, 0, 0, 0}, connection[8:40]...)},
	}
}
