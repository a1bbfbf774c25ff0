package wire

import (
	"errors"
	"strings"
	"testing"
)

func nested(prefix []byte, n int, suffix []byte) []byte {
	var b []byte
	for range n {
		b = append(b, prefix...)
	}
	return append(b, suffix...)
}

// list32 wrappers, each claiming exactly the bytes of what it wraps.
func nestedLists(n int) []byte {
	b := []byte{codeNull}
	for range n {
		size := len(b) + 4
		b = append([]byte{codeList32, byte(size >> 24), byte(size >> 16), byte(size >> 8), byte(size), 0, 0, 0, 1}, b...)
	}
	return b
}

var malformedValues = []struct {
	name   string
	in     []byte
	offset int
	want   string
}{
	{"empty", nil, 0, "truncated format code"},
	{"unknown code", []byte{0xff}, 0, "unknown format code 0xff"},
	{"reserved code", []byte{0x57}, 0, "unknown format code 0x57"},
	{"truncated ushort", []byte{0x60, 1}, 1, "truncated ushort: need 2 bytes, 1 remain"},
	{"truncated uint", []byte{0x70, 0, 0}, 1, "truncated uint"},
	{"truncated smalluint", []byte{0x52}, 1, "truncated smalluint"},
	{"truncated ulong", []byte{0x80, 1, 2, 3}, 1, "truncated ulong"},
	{"truncated double", []byte{0x82, 0}, 1, "truncated double"},
	{"truncated uuid", []byte{0x98, 1, 2}, 1, "truncated uuid"},
	{"truncated decimal128", []byte{0x94}, 1, "truncated decimal128"},
	{"bad boolean", []byte{0x56, 2}, 0, "boolean byte is 0x02"},
	{"surrogate char", []byte{0x73, 0, 0, 0xd8, 0}, 0, "not a Unicode scalar value"},
	{"char beyond unicode", []byte{0x73, 0, 0x11, 0, 0}, 0, "not a Unicode scalar value"},
	{"vbin8 past end", []byte{0xa0, 5, 1, 2}, 2, "truncated binary: need 5 bytes, 2 remain"},
	{"vbin32 huge", []byte{0xb0, 0xff, 0xff, 0xff, 0xff, 1}, 5, "need 4294967295 bytes, 1 remain"},
	{"str8 bad utf8", []byte{0xa1, 2, 0xc3, 0x28}, 0, "not valid UTF-8"},
	{"str32 bad utf8", []byte{0xb1, 0, 0, 0, 1, 0xff}, 0, "not valid UTF-8"},
	{"str8 surrogate", []byte{0xa1, 3, 0xed, 0xa0, 0x80}, 0, "not valid UTF-8"},
	{"sym8 not ascii", []byte{0xa3, 2, 'a', 0xc3}, 0, "symbol byte 1 is 0xc3, not ASCII"},
	{"list8 size below count", []byte{0xc0, 0}, 1, "list size 0 cannot hold its 1-byte count"},
	{"list32 size below count", []byte{0xd0, 0, 0, 0, 3, 0, 0, 0}, 1, "list size 3 cannot hold its 4-byte count"},
	{"list8 size past end", []byte{0xc0, 3, 200, 0x40}, 1, "list size 3 exceeds the 2 bytes that remain"},
	{"list8 200 elements in 3 bytes", []byte{0xc0, 3, 200, 0x40, 0x40}, 3, "list of 200 elements cannot fit in 2 bytes"},
	{"list32 4G elements", []byte{0xd0, 0, 0, 0, 8, 0xff, 0xff, 0xff, 0xff, 0x40, 0x40, 0x40, 0x40}, 9, "list of 4294967295 elements cannot fit in 4 bytes"},
	{"list32 size past end", []byte{0xd0, 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0}, 1, "exceeds the 4 bytes that remain"},
	{"list element past list", []byte{0xc0, 2, 1, 0x52, 7}, 4, "truncated smalluint"},
	{"list with slack", []byte{0xc0, 3, 1, 0x40, 0x40}, 4, "list has 1 bytes after its last element"},
	{"list truncated element", []byte{0xc0, 3, 2, 0x40}, 1, "exceeds"},
	{"map odd count", []byte{0xc1, 2, 1, 0x40}, 0, "map has an odd element count 1"},
	{"map32 odd count", []byte{0xd1, 0, 0, 0, 7, 0, 0, 0, 3, 0x40, 0x40, 0x40}, 0, "odd element count 3"},
	{"map8 too many pairs", []byte{0xc1, 3, 100, 0x40, 0x40}, 3, "map of 100 elements cannot fit in 2 bytes"},
	{"array of nulls", []byte{0xf0, 0, 0, 0, 5, 0xff, 0xff, 0xff, 0xff, 0x40}, 9, "null (0x40) cannot construct array elements"},
	{"array of true", []byte{0xe0, 2, 9, 0x41}, 3, "cannot construct array elements"},
	{"array of uint0", []byte{0xe0, 2, 9, 0x43}, 3, "cannot construct array elements"},
	{"array of list0", []byte{0xe0, 2, 9, 0x45}, 3, "cannot construct array elements"},
	{"array unknown constructor", []byte{0xe0, 2, 1, 0x33}, 3, "unknown format code 0x33 cannot construct"},
	{"array 255 ubytes in 2 bytes", []byte{0xe0, 4, 0xff, 0x50, 0, 0}, 4, "array of 255 elements cannot fit in 2 bytes"},
	{"array 3 uints in 8 bytes", []byte{0xe0, 10, 3, 0x70, 0, 0, 0, 1, 0, 0, 0, 2}, 4, "array of 3 elements cannot fit in 8 bytes"},
	{"array without constructor", []byte{0xe0, 1, 0}, 3, "truncated array constructor"},
	{"array null descriptor", []byte{0xe0, 5, 1, 0x00, 0x40, 0x50, 7}, 3, "array element descriptor is null"},
	{"array nested described constructor", []byte{0xe0, 7, 1, 0x00, 0x53, 1, 0x00, 0x53, 2}, 6, "described type (0x00) cannot construct"},
	{"array element bad utf8", []byte{0xe0, 4, 1, 0xa1, 1, 0xff}, 4, "not valid UTF-8"},
	{"described without value", []byte{0x00, 0x53, 0x10}, 3, "truncated format code"},
	{"described without descriptor", []byte{0x00}, 1, "truncated format code"},
	{"described 100 deep", nested([]byte{0x00}, 100, nil), MaxDepth, "nested deeper than 64"},
	{"lists 100 deep", nestedLists(100), MaxDepth * 9, "nested deeper than 64"},
	{"array8 size 0", []byte{0xe0, 0, 1, 0xc0}, 1, "array size 0 cannot hold its 1-byte count"},
}

func TestMalformedValues(t *testing.T) {
	for _, tc := range malformedValues {
		t.Run(tc.name, func(t *testing.T) {
			v, n, err := DecodeValue(tc.in)
			var de *DecodeError
			if !errors.As(err, &de) {
				t.Fatalf("decode = %#v (%d bytes), %v; want a DecodeError", v, n, err)
			}
			if !strings.Contains(de.Reason, tc.want) {
				t.Errorf("reason %q, want it to contain %q", de.Reason, tc.want)
			}
			if de.Offset != tc.offset {
				t.Errorf("offset %d, want %d (%v)", de.Offset, tc.offset, err)
			}
		})
	}
}

// Exactly MaxDepth levels of nesting decode; one more does not.
func TestDepthLimit(t *testing.T) {
	if _, _, err := DecodeValue(nestedLists(MaxDepth)); err != nil {
		t.Fatalf("%d levels: %v", MaxDepth, err)
	}
	if _, _, err := DecodeValue(nestedLists(MaxDepth + 1)); err == nil {
		t.Fatalf("%d levels decoded", MaxDepth+1)
	}
}
