package wire

import (
	"bytes"
	"testing"
)

// transferFrame is a typical transfer: a durable message with properties,
// two application properties and a 1 KiB data section.
func transferFrame(b *testing.B) []byte {
	m := &Message{
		Header: &Header{Durable: true, Priority: 4},
		Properties: &Properties{
			MessageID: "ID:hamq-1:1:1:42", To: "queue://orders", ContentType: "application/octet-stream",
			CreationTime: ptr(Timestamp(1700000000000)),
		},
		ApplicationProperties: map[string]any{"region": "eu-west", "attempt": int32(1)},
		Data:                  [][]byte{bytes.Repeat([]byte{0xa5}, 1024)},
	}
	payload, err := AppendMessage(nil, m)
	if err != nil {
		b.Fatal(err)
	}
	t := &Transfer{Handle: 0, DeliveryID: ptr(uint32(42)), DeliveryTag: []byte{0, 0, 0, 0, 0, 0, 0, 42},
		MessageFormat: ptr(uint32(0))}
	frame, err := AppendPerformativeFrame(nil, 1, t, payload)
	if err != nil {
		b.Fatal(err)
	}
	return frame
}

func BenchmarkDecodeTransfer(b *testing.B) {
	frame := transferFrame(b)
	for _, withMessage := range []bool{false, true} {
		name := "frame+performative"
		if withMessage {
			name += "+message"
		}
		b.Run(name, func(b *testing.B) {
			r := bytes.NewReader(frame)
			fr := NewFrameReader(r, 1<<20)
			b.SetBytes(int64(len(frame)))
			b.ReportAllocs()
			for b.Loop() {
				r.Reset(frame)
				f, err := fr.ReadFrame()
				if err != nil {
					b.Fatal(err)
				}
				_, payload, err := DecodePerformative(f)
				if err != nil {
					b.Fatal(err)
				}
				if withMessage {
					if _, err := DecodeMessage(payload); err != nil {
						b.Fatal(err)
					}
				}
			}
		})
	}
}

func BenchmarkEncodeTransfer(b *testing.B) {
	frame := transferFrame(b)
	f, err := NewFrameReader(bytes.NewReader(frame), 1<<20).ReadFrame()
	if err != nil {
		b.Fatal(err)
	}
	p, payload, err := DecodePerformative(f)
	if err != nil {
		b.Fatal(err)
	}
	m, err := DecodeMessage(payload)
	if err != nil {
		b.Fatal(err)
	}
	buf := make([]byte, 0, 2*len(frame))
	b.SetBytes(int64(len(frame)))
	b.ReportAllocs()
	for b.Loop() {
		body, err := AppendMessage(buf[len(frame):len(frame)], m)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := AppendPerformativeFrame(buf[:0], 1, p, body); err != nil {
			b.Fatal(err)
		}
	}
}
