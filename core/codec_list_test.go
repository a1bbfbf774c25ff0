package core

import (
	"slices"
	"testing"
)

// A message with a property list (MQTT 5 user properties, a key repeated)
// is stored in format 2 and read back whole; one without is format 1 as
// before, byte for byte.
func TestMessageCodecPropertyList(t *testing.T) {
	m := &Message{ID: "ID:1", Dest: Destination{Kind: Topic, Name: "a.b"}, Body: []byte("body"),
		Properties:   map[string]any{"n": "1", "z": "x"},
		PropertyList: []Property{{"n", "1"}, {"z", "x"}, {"n", "2"}}}
	b := encodeMessage(m)
	if b[0] != messageFormatWithList {
		t.Fatalf("format %d", b[0])
	}
	got, err := decodeMessage(b)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got.PropertyList, m.PropertyList) || string(got.Body) != "body" || got.Properties["n"] != "1" {
		t.Fatalf("got %+v", got)
	}
	for i := range len(b) {
		if _, err := decodeMessage(b[:i]); err == nil {
			t.Fatalf("a record cut at %d of %d decoded", i, len(b))
		}
	}
	m.PropertyList = nil
	if b := encodeMessage(m); b[0] != messageFormat {
		t.Fatalf("format %d without a list", b[0])
	}
}
