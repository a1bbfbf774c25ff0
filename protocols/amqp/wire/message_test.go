package wire

import (
	"errors"
	"reflect"
	"strings"
	"testing"
)

func fullMessage() *Message {
	return &Message{
		Header:              &Header{Durable: true, Priority: 7, TTL: ptr(uint32(60000)), DeliveryCount: 1},
		DeliveryAnnotations: Annotations{Symbol("x-opt-d"): "d"},
		MessageAnnotations:  Annotations{Symbol("x-opt-jms-dest"): int8(0), uint64(42): "numeric key"},
		Properties: &Properties{
			MessageID: "ID:1", UserID: []byte("alice"), To: "queue://orders", Subject: "new",
			ReplyTo: "temp-queue://r", CorrelationID: uint64(7), ContentType: "application/json",
			ContentEncoding: "gzip", AbsoluteExpiryTime: ptr(Timestamp(1700000000000)),
			CreationTime: ptr(Timestamp(1600000000000)), GroupID: "g", GroupSequence: ptr(uint32(3)),
			ReplyToGroupID: "rg",
		},
		ApplicationProperties: map[string]any{"color": "red", "weight": int32(5), "ok": true},
		Data:                  [][]byte{[]byte(`{"a":1}`), {}},
		Footer:                Annotations{Symbol("x-opt-sig"): []byte{1}},
	}
}

func TestMessageRoundTrip(t *testing.T) {
	messages := map[string]*Message{
		"full":           fullMessage(),
		"empty":          {},
		"sequence":       {Sequence: [][]any{{uint32(1), "two"}, {}}},
		"value":          {HasValue: true, Value: Map{{"k", []any{nil}}}},
		"null value":     {HasValue: true},
		"only header":    {Header: &Header{Priority: 4}},
		"uuid id":        {Properties: &Properties{MessageID: UUID{1}, CorrelationID: []byte("c")}},
		"described body": {HasValue: true, Value: Described{uint64(0x31), []any{}}},
	}
	for name, m := range messages {
		t.Run(name, func(t *testing.T) {
			b, err := AppendMessage(nil, m)
			if err != nil {
				t.Fatal(err)
			}
			got, err := DecodeMessage(b)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, m) {
				t.Fatalf("decoded\n%#v\nwant\n%#v", got, m)
			}
		})
	}
}

func TestMessageSectionBytes(t *testing.T) {
	b, err := AppendMessage(nil, &Message{
		Properties: &Properties{MessageID: uint64(1)},
		Data:       [][]byte{[]byte("hi")},
	})
	if err != nil {
		t.Fatal(err)
	}
	if want := hexb(t, "00 53 73 c0 03 01 53 01 00 53 75 a0 02 68 69"); string(b) != string(want) {
		t.Fatalf("% x\nwant % x", b, want)
	}
}

func TestMalformedMessages(t *testing.T) {
	header := "00 53 70 45 "
	props := "00 53 73 45 "
	data := "00 53 75 a0 00 "
	value := "00 53 77 40 "
	seq := "00 53 76 45 "
	tests := []struct {
		name   string
		hex    string
		offset int
		want   string
	}{
		{"properties before header", props + header, 4, "header section after properties"},
		{"two headers", header + header, 4, "header section after header"},
		{"data then value", data + value, 5, "amqp-value section after data"},
		{"sequence then data", seq + data, 4, "data section after amqp-sequence"},
		{"two values", value + value, 4, "amqp-value section after amqp-value"},
		{"footer then data", "00 53 78 c1 01 00 " + data, 6, "data section after footer"},
		{"not a section", "00 53 10 45", 0, "open is not a message section"},
		{"not described", "a0 00", 0, "expected message section, found binary"},
		{"data not binary", "00 53 75 a1 00", 3, "expected binary, found string"},
		{"annotation key", "00 53 72 c1 03 02 a1 00 40", 6, "expected symbol or ulong annotation key, found string"},
		{"app property key", "00 53 74 c1 03 02 a3 00 40", 6, "expected string, found symbol"},
		{"truncated section", "00 53 75 a0 05 00", 5, "truncated binary"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := DecodeMessage(hexb(t, tc.hex))
			var de *DecodeError
			if !errors.As(err, &de) {
				t.Fatalf("err = %v, want a DecodeError", err)
			}
			if !strings.Contains(de.Reason, tc.want) {
				t.Errorf("reason %q, want it to contain %q", de.Reason, tc.want)
			}
			if de.Offset != tc.offset {
				t.Errorf("offset %d, want %d", de.Offset, tc.offset)
			}
		})
	}
	if _, err := AppendMessage(nil, &Message{Data: [][]byte{{}}, HasValue: true}); !errors.Is(err, ErrEncode) {
		t.Errorf("two bodies: %v", err)
	}
}
