package wire

import (
	"bytes"
	"encoding/hex"
	"errors"
	"math"
	"reflect"
	"strings"
	"testing"
	"time"
)

// hexb turns "c0 06 02" into bytes; spaces are for the reader.
func hexb(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.ReplaceAll(s, " ", ""))
	if err != nil {
		t.Fatalf("bad hex %q: %v", s, err)
	}
	return b
}

func repeat(b byte, n int) []byte { return bytes.Repeat([]byte{b}, n) }

func cat(parts ...[]byte) []byte { return bytes.Join(parts, nil) }

// Each value encodes to exactly these bytes (the smallest width), and the
// bytes decode back to the value.
var canonicalVectors = []struct {
	name string
	v    any
	hex  string
}{
	{"null", nil, "40"},
	{"true", true, "41"},
	{"false", false, "42"},
	{"ubyte", uint8(0xff), "50 ff"},
	{"ushort", uint16(0x1234), "60 12 34"},
	{"uint0", uint32(0), "43"},
	{"smalluint", uint32(7), "52 07"},
	{"smalluint max", uint32(255), "52 ff"},
	{"uint", uint32(0x10000), "70 00 01 00 00"},
	{"uint max", uint32(math.MaxUint32), "70 ff ff ff ff"},
	{"ulong0", uint64(0), "44"},
	{"smallulong", uint64(255), "53 ff"},
	{"ulong", uint64(256), "80 00 00 00 00 00 00 01 00"},
	{"byte", int8(-1), "51 ff"},
	{"short", int16(-2), "61 ff fe"},
	{"smallint", int32(-1), "54 ff"},
	{"smallint min", int32(-128), "54 80"},
	{"int", int32(-129), "71 ff ff ff 7f"},
	{"int 1000", int32(1000), "71 00 00 03 e8"},
	{"smalllong", int64(127), "55 7f"},
	{"long", int64(128), "81 00 00 00 00 00 00 00 80"},
	{"long min", int64(math.MinInt64), "81 80 00 00 00 00 00 00 00"},
	{"float", float32(1.5), "72 3f c0 00 00"},
	{"double", float64(1.5), "82 3f f8 00 00 00 00 00 00"},
	{"decimal32", Decimal32{0x22, 0x50, 0x00, 0x01}, "74 22 50 00 01"},
	{"decimal64", Decimal64{1, 2, 3, 4, 5, 6, 7, 8}, "84 01 02 03 04 05 06 07 08"},
	{"decimal128", Decimal128{15: 9}, "94 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 09"},
	{"char", Char('é'), "73 00 00 00 e9"},
	{"char astral", Char('😀'), "73 00 01 f6 00"},
	{"timestamp", Timestamp(1311704463521), "83 00 00 01 31 67 ad b8 a1"},
	{"timestamp before epoch", Timestamp(-1), "83 ff ff ff ff ff ff ff ff"},
	{"uuid", UUID{0xf8, 0x1d, 0x4f, 0xae, 0x7d, 0xec, 0x11, 0xd0, 0xa7, 0x65, 0x00, 0xa0, 0xc9, 0x1e, 0x6b, 0xf6},
		"98 f8 1d 4f ae 7d ec 11 d0 a7 65 00 a0 c9 1e 6b f6"},
	{"vbin8 empty", []byte{}, "a0 00"},
	{"vbin8", []byte{1, 2, 3}, "a0 03 01 02 03"},
	{"str8 empty", "", "a1 00"},
	{"str8", "hello", "a1 05 68 65 6c 6c 6f"},
	{"str8 multibyte", "é", "a1 02 c3 a9"},
	{"sym8", Symbol("amqp:accepted:list"), "a3 12 616d71703a61636365707465643a6c697374"},
	{"list0", []any{}, "45"},
	{"list8", []any{uint32(1), "a"}, "c0 06 02 52 01 a1 01 61"},
	{"list8 nested", []any{[]any{}, []any{nil}}, "c0 06 02 45 c0 02 01 40"},
	{"map8 empty", Map{}, "c1 01 00"},
	{"map8", Map{{"a", true}}, "c1 05 02 a1 01 61 41"},
	{"map8 binary key", Map{{[]byte{1}, uint64(2)}}, "c1 06 02 a0 01 01 53 02"},
	{"array8 symbols", Array{Type: TypeSymbol, Values: []any{Symbol("a"), Symbol("bc")}}, "e0 07 02 a3 01 61 02 62 63"},
	{"array8 smalluint", Array{Type: TypeUint, Values: []any{uint32(1), uint32(2)}}, "e0 04 02 52 01 02"},
	{"array8 uint", Array{Type: TypeUint, Values: []any{uint32(1), uint32(1000)}}, "e0 0a 02 70 00 00 00 01 00 00 03 e8"},
	{"array8 empty", Array{Type: TypeInt, Values: []any{}}, "e0 02 00 54"},
	{"array8 bool", Array{Type: TypeBool, Values: []any{true, false}}, "e0 04 02 56 01 00"},
	{"array8 long", Array{Type: TypeLong, Values: []any{int64(-1), int64(300)}}, "e0 12 02 81 ff ff ff ff ff ff ff ff 00 00 00 00 00 00 01 2c"},
	{"array8 ushort", Array{Type: TypeUshort, Values: []any{uint16(1)}}, "e0 04 01 60 00 01"},
	{"array8 uuid", Array{Type: TypeUUID, Values: []any{UUID{}}}, "e0 12 01 98 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00"},
	{"array8 binary", Array{Type: TypeBinary, Values: []any{[]byte{7}, []byte{}}}, "e0 05 02 a0 01 07 00"},
	{"array8 of lists", Array{Type: TypeList, Values: []any{[]any{true}}}, "e0 0b 01 d0 00 00 00 05 00 00 00 01 41"},
	{"array8 of maps", Array{Type: TypeMap, Values: []any{Map{}}}, "e0 0a 01 d1 00 00 00 04 00 00 00 00"},
	{"array8 of arrays", Array{Type: TypeArray, Values: []any{Array{Type: TypeUbyte, Values: []any{uint8(5)}}}},
		"e0 0c 01 f0 00 00 00 06 00 00 00 01 50 05"},
	{"array8 described", Array{Type: TypeString, Descriptor: uint64(0x77), Values: []any{"x"}}, "e0 07 01 00 53 77 a1 01 78"},
	{"described accepted", Described{uint64(0x24), []any{}}, "00 53 24 45"},
	{"described symbolic", Described{Symbol("x:y"), "v"}, "00 a3 03 78 3a 79 a1 01 76"},
	{"described nested", Described{Described{uint64(1), nil}, nil}, "00 00 53 01 40 40"},
}

func TestCanonicalEncodings(t *testing.T) {
	for _, tc := range canonicalVectors {
		t.Run(tc.name, func(t *testing.T) {
			want := hexb(t, tc.hex)
			got, err := AppendValue(nil, tc.v)
			if err != nil {
				t.Fatalf("encode: %v", err)
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("encode = % x, want % x", got, want)
			}
			v, n, err := DecodeValue(want)
			if err != nil {
				t.Fatalf("decode: %v", err)
			}
			if n != len(want) {
				t.Fatalf("decode used %d of %d bytes", n, len(want))
			}
			if !reflect.DeepEqual(v, tc.v) {
				t.Fatalf("decode = %#v, want %#v", v, tc.v)
			}
		})
	}
}

func TestLargeWidths(t *testing.T) {
	long := strings.Repeat("x", 300)
	nulls := make([]any, 300)
	tests := []struct {
		name string
		v    any
		want []byte
	}{
		{"vbin32", []byte(long), cat(hexb(t, "b0 00 00 01 2c"), []byte(long))},
		{"str32", long, cat(hexb(t, "b1 00 00 01 2c"), []byte(long))},
		{"sym32", Symbol(long), cat(hexb(t, "b3 00 00 01 2c"), []byte(long))},
		{"list32 by count", nulls, cat(hexb(t, "d0 00 00 01 30 00 00 01 2c"), repeat(0x40, 300))},
		{"list32 by size", []any{long}, cat(hexb(t, "d0 00 00 01 35 00 00 00 01 b1 00 00 01 2c"), []byte(long))},
		{"map32", Map{{long, nil}}, cat(hexb(t, "d1 00 00 01 36 00 00 00 02 b1 00 00 01 2c"), []byte(long), hexb(t, "40"))},
		{"array32", Array{Type: TypeString, Values: []any{long}},
			cat(hexb(t, "f0 00 00 01 35 00 00 00 01 b1 00 00 01 2c"), []byte(long))},
		{"array32 by count", Array{Type: TypeBool, Values: func() []any {
			v := make([]any, 256)
			for i := range v {
				v[i] = true
			}
			return v
		}()}, cat(hexb(t, "f0 00 00 01 05 00 00 01 00 56"), repeat(1, 256))},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := AppendValue(nil, tc.v)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, tc.want) {
				t.Fatalf("encode = % x\nwant     % x", got[:min(len(got), 20)], tc.want[:min(len(tc.want), 20)])
			}
			v, n, err := DecodeValue(got)
			if err != nil || n != len(got) {
				t.Fatalf("decode: n=%d err=%v", n, err)
			}
			if !reflect.DeepEqual(v, tc.v) {
				t.Fatalf("decode = %#v, want %#v", v, tc.v)
			}
		})
	}
}

// Wider encodings than the encoder would choose still decode to the same
// value, as peers may use any width.
func TestNonCanonicalDecodings(t *testing.T) {
	tests := []struct {
		name string
		hex  string
		want any
	}{
		{"bool 0x56 true", "56 01", true},
		{"bool 0x56 false", "56 00", false},
		{"uint 0x70 small", "70 00 00 00 07", uint32(7)},
		{"uint 0x70 zero", "70 00 00 00 00", uint32(0)},
		{"smalluint zero", "52 00", uint32(0)},
		{"ulong 0x80 small", "80 00 00 00 00 00 00 00 07", uint64(7)},
		{"int 0x71 small", "71 00 00 00 01", int32(1)},
		{"long 0x81 small", "81 ff ff ff ff ff ff ff fe", int64(-2)},
		{"smalllong negative", "55 fe", int64(-2)},
		{"vbin32", "b0 00 00 00 01 09", []byte{9}},
		{"str32", "b1 00 00 00 02 68 69", "hi"},
		{"sym32", "b3 00 00 00 01 78", Symbol("x")},
		{"list8 empty", "c0 01 00", []any{}},
		{"list32 empty", "d0 00 00 00 04 00 00 00 00", []any{}},
		{"list32", "d0 00 00 00 05 00 00 00 01 41", []any{true}},
		{"map32", "d1 00 00 00 07 00 00 00 02 52 01 40", Map{{uint32(1), nil}}},
		{"array32", "f0 00 00 00 07 00 00 00 02 50 01 02", Array{Type: TypeUbyte, Values: []any{uint8(1), uint8(2)}}},
		{"array of smallulong", "e0 03 01 53 09", Array{Type: TypeUlong, Values: []any{uint64(9)}}},
		{"array of list8", "e0 04 01 c0 01 00", Array{Type: TypeList, Values: []any{[]any{}}}},
		{"array described by symbol", "e0 07 01 00 a3 01 64 52 02",
			Array{Type: TypeUint, Descriptor: Symbol("d"), Values: []any{uint32(2)}}},
		{"negative zero double", "82 80 00 00 00 00 00 00 00", math.Copysign(0, -1)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b := hexb(t, tc.hex)
			v, n, err := DecodeValue(b)
			if err != nil {
				t.Fatal(err)
			}
			if n != len(b) {
				t.Fatalf("decode used %d of %d bytes", n, len(b))
			}
			if !reflect.DeepEqual(v, tc.want) {
				t.Fatalf("decode = %#v, want %#v", v, tc.want)
			}
		})
	}
}

// Arrays of every element type that has a per-element encoding round trip,
// with the element width the encoder picks.
func TestArrayElementTypes(t *testing.T) {
	tests := []struct {
		a    Array
		ctor byte
	}{
		{Array{Type: TypeByte, Values: []any{int8(-1), int8(2)}}, codeByte},
		{Array{Type: TypeShort, Values: []any{int16(-300)}}, codeShort},
		{Array{Type: TypeInt, Values: []any{int32(-1), int32(1 << 20)}}, codeInt},
		{Array{Type: TypeLong, Values: []any{int64(5)}}, codeSmallLong},
		{Array{Type: TypeUlong, Values: []any{uint64(1), uint64(1 << 40)}}, codeUlong},
		{Array{Type: TypeUlong, Values: []any{uint64(0)}}, codeSmallUlong},
		{Array{Type: TypeFloat, Values: []any{float32(-0.5)}}, codeFloat},
		{Array{Type: TypeDouble, Values: []any{math.Inf(1), 2.25}}, codeDouble},
		{Array{Type: TypeDecimal32, Values: []any{Decimal32{1}}}, codeDecimal32},
		{Array{Type: TypeDecimal64, Values: []any{Decimal64{2}}}, codeDecimal64},
		{Array{Type: TypeDecimal128, Values: []any{Decimal128{3}}}, codeDecimal128},
		{Array{Type: TypeChar, Values: []any{Char('a'), Char('😀')}}, codeChar},
		{Array{Type: TypeTimestamp, Values: []any{Timestamp(-5)}}, codeTimestamp},
		{Array{Type: TypeString, Values: []any{"a", strings.Repeat("b", 256)}}, codeStr32},
		{Array{Type: TypeSymbol, Values: []any{Symbol(strings.Repeat("c", 300))}}, codeSym32},
		{Array{Type: TypeBinary, Values: []any{make([]byte, 256)}}, codeVbin32},
		{Array{Type: TypeMap, Descriptor: Symbol("d"), Values: []any{Map{{true, false}}}}, codeMap32},
	}
	for _, tc := range tests {
		t.Run(tc.a.Type.String(), func(t *testing.T) {
			b, err := AppendValue(nil, tc.a)
			if err != nil {
				t.Fatal(err)
			}
			if got := bytes.IndexByte(b, tc.ctor); got < 0 {
				t.Fatalf("no constructor 0x%02x in % x", tc.ctor, b)
			}
			v, n, err := DecodeValue(b)
			if err != nil || n != len(b) {
				t.Fatalf("decode: %d of %d bytes, %v", n, len(b), err)
			}
			if !reflect.DeepEqual(v, tc.a) {
				t.Fatalf("decode = %#v, want %#v", v, tc.a)
			}
		})
	}
	for _, bad := range []Array{
		{Type: TypeChar, Values: []any{'a'}},
		{Type: TypeUUID, Values: []any{"not a uuid"}},
		{Type: TypeBool, Values: []any{1}},
		{Type: TypeLong, Values: []any{int32(1)}},
		{Type: TypeList, Values: []any{Map{}}},
		{Type: TypeMap, Values: []any{Fields{}}},
		{Type: TypeArray, Values: []any{nil}},
		{Type: TypeSymbol, Values: []any{Symbol("é")}},
		{Type: TypeString, Values: []any{Symbol("s")}},
		{Type: Type(200), Values: []any{}},
	} {
		if _, err := AppendValue(nil, bad); !errors.Is(err, ErrEncode) {
			t.Errorf("%v of %T: err = %v", bad.Type, bad.Values, err)
		}
	}
}

func TestNaNRoundTrip(t *testing.T) {
	for _, bits := range []uint64{0x7ff8000000000001, 0xfff0000000000001} {
		b, err := AppendValue(nil, math.Float64frombits(bits))
		if err != nil {
			t.Fatal(err)
		}
		v, _, err := DecodeValue(b)
		if err != nil {
			t.Fatal(err)
		}
		if got := math.Float64bits(v.(float64)); got != bits {
			t.Errorf("NaN bits %x came back as %x", bits, got)
		}
	}
}

func TestGoMapsEncodeSorted(t *testing.T) {
	f := Fields{"b": uint32(2), "a": uint32(1), "c": nil}
	a := Annotations{Symbol("x-opt-b"): "b", uint64(7): "u", Symbol("x-opt-a"): "a"}
	p := map[string]any{"z": int64(1), "y": int64(2)}
	for range 10 {
		got, err := AppendValue(nil, f)
		if err != nil {
			t.Fatal(err)
		}
		if want := hexb(t, "c1 0f 06 a3 01 61 52 01 a3 01 62 52 02 a3 01 63 40"); !bytes.Equal(got, want) {
			t.Fatalf("fields = % x, want % x", got, want)
		}
		got, err = AppendValue(nil, a)
		if err != nil {
			t.Fatal(err)
		}
		v, _, _ := DecodeValue(got)
		m := v.(Map)
		if m[0].Key != uint64(7) || m[1].Key != Symbol("x-opt-a") || m[2].Key != Symbol("x-opt-b") {
			t.Fatalf("annotations order %v", m)
		}
		got, err = AppendValue(nil, p)
		if err != nil {
			t.Fatal(err)
		}
		if want := hexb(t, "c1 0b 04 a1 01 79 55 02 a1 01 7a 55 01"); !bytes.Equal(got, want) {
			t.Fatalf("string map = % x, want % x", got, want)
		}
	}
}

func TestEncodeErrors(t *testing.T) {
	deep := any(nil)
	for range MaxDepth + 1 {
		deep = []any{deep}
	}
	tests := []struct {
		name string
		v    any
		want string
	}{
		{"go int", 5, "Go type int"},
		{"invalid utf8", "\xff", "UTF-8"},
		{"non-ascii symbol", Symbol("é"), "not ASCII"},
		{"surrogate char", Char(0xd800), "scalar"},
		{"array of nulls", Array{Type: TypeNull, Values: []any{nil}}, "arrays of null"},
		{"array type mismatch", Array{Type: TypeString, Values: []any{uint32(1)}}, "holds a uint32"},
		{"array of uint holding string", Array{Type: TypeUint, Values: []any{uint32(300), "x"}}, "holds a string"},
		{"too deep", deep, "deeper than"},
		{"annotation key", Annotations{int64(1): nil}, "annotation key"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b, err := AppendValue([]byte("keep"), []any{"ok", tc.v})
			if err == nil || !strings.Contains(err.Error(), tc.want) || !errors.Is(err, ErrEncode) {
				t.Fatalf("err = %v, want ErrEncode mentioning %q", err, tc.want)
			}
			if string(b) != "keep" {
				t.Fatalf("failed append returned %q", b)
			}
		})
	}
	// Exactly MaxDepth levels are fine, and decode again.
	ok := any(nil)
	for range MaxDepth {
		ok = []any{ok}
	}
	b, err := AppendValue(nil, ok)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := DecodeValue(b); err != nil {
		t.Fatal(err)
	}
}

func TestHelpers(t *testing.T) {
	u := UUID{0xf8, 0x1d, 0x4f, 0xae, 0x7d, 0xec, 0x11, 0xd0, 0xa7, 0x65, 0x00, 0xa0, 0xc9, 0x1e, 0x6b, 0xf6}
	if got := u.String(); got != "f81d4fae-7dec-11d0-a765-00a0c91e6bf6" {
		t.Errorf("uuid = %s", got)
	}
	now := time.UnixMilli(1311704463521)
	if ts := TimestampOf(now); ts != 1311704463521 || !ts.Time().Equal(now) {
		t.Errorf("timestamp %d", ts)
	}
	m := Map{{[]any{1}, "list"}, {[]byte("k"), "bin"}, {Symbol("s"), "sym"}, {uint64(1), "one"}}
	for key, want := range map[any]any{Symbol("s"): "sym", uint64(1): "one"} {
		if v, ok := m.Get(key); !ok || v != want {
			t.Errorf("Get(%v) = %v, %v", key, v, ok)
		}
	}
	if v, ok := m.Get([]byte("k")); !ok || v != "bin" {
		t.Errorf("Get(binary) = %v, %v", v, ok)
	}
	if _, ok := m.Get("s"); ok {
		t.Error("string key matched a symbol")
	}
	if TypeArray.String() != "array" || Type(99).String() != "type(99)" {
		t.Error("Type.String")
	}
}
