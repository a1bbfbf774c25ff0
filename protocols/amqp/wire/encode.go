package wire

import (
	"cmp"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"slices"
	"unicode/utf8"
)

// ErrEncode is wrapped by every encoding error: a value outside the model
// described in the package documentation, an invalid string, symbol or char,
// or something too large or too deeply nested for AMQP.
var ErrEncode = errors.New("amqp: cannot encode")

func encodeErrorf(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrEncode}, args...)...)
}

// AppendValue appends the AMQP encoding of v to b. On error it returns b as
// it was, like every Append function here.
func AppendValue(b []byte, v any) ([]byte, error) {
	out, err := appendValue(b, v, 0)
	if err != nil {
		return b, err
	}
	return out, nil
}

// appendValue encodes v inside depth enclosing containers, counted as the
// decoder counts them, so whatever decodes can be encoded again.
func appendValue(b []byte, v any, depth int) ([]byte, error) {
	switch v := v.(type) {
	case nil:
		return append(b, codeNull), nil
	case bool:
		if v {
			return append(b, codeTrue), nil
		}
		return append(b, codeFalse), nil
	case uint8:
		return append(b, codeUbyte, v), nil
	case uint16:
		return binary.BigEndian.AppendUint16(append(b, codeUshort), v), nil
	case uint32:
		return appendUint(b, v), nil
	case uint64:
		return appendUlong(b, v), nil
	case int8:
		return append(b, codeByte, byte(v)), nil
	case int16:
		return binary.BigEndian.AppendUint16(append(b, codeShort), uint16(v)), nil
	case int32:
		if v == int32(int8(v)) {
			return append(b, codeSmallInt, byte(v)), nil
		}
		return binary.BigEndian.AppendUint32(append(b, codeInt), uint32(v)), nil
	case int64:
		if v == int64(int8(v)) {
			return append(b, codeSmallLong, byte(v)), nil
		}
		return binary.BigEndian.AppendUint64(append(b, codeLong), uint64(v)), nil
	case float32:
		return binary.BigEndian.AppendUint32(append(b, codeFloat), math.Float32bits(v)), nil
	case float64:
		return binary.BigEndian.AppendUint64(append(b, codeDouble), math.Float64bits(v)), nil
	case Decimal32:
		return append(append(b, codeDecimal32), v[:]...), nil
	case Decimal64:
		return append(append(b, codeDecimal64), v[:]...), nil
	case Decimal128:
		return append(append(b, codeDecimal128), v[:]...), nil
	case Char:
		if !utf8.ValidRune(rune(v)) {
			return b, encodeErrorf("char 0x%x is not a Unicode scalar value", uint32(v))
		}
		return binary.BigEndian.AppendUint32(append(b, codeChar), uint32(v)), nil
	case Timestamp:
		return appendTimestamp(b, v), nil
	case UUID:
		return append(append(b, codeUUID), v[:]...), nil
	case []byte:
		return appendBinary(b, v)
	case string:
		return appendString(b, v)
	case Symbol:
		return appendSymbol(b, v)
	case []any:
		return appendList(b, v, depth)
	case Map:
		return appendMap(b, v, depth)
	case Array:
		return appendArray(b, v, depth)
	case Described:
		if depth+1 > MaxDepth {
			return b, encodeErrorf("values nested deeper than %d", MaxDepth)
		}
		b, err := appendValue(append(b, codeDescribed), v.Descriptor, depth+1)
		if err != nil {
			return b, err
		}
		return appendValue(b, v.Value, depth+1)
	case Fields:
		return appendGoMap(b, v, depth, cmp.Compare)
	case Annotations:
		for k := range v {
			switch k.(type) {
			case Symbol, uint64:
			default:
				return b, encodeErrorf("annotation key %v is a %T, not a Symbol or uint64", k, k)
			}
		}
		return appendGoMap(b, v, depth, compareAnnotationKeys)
	case map[string]any:
		return appendGoMap(b, v, depth, cmp.Compare)
	case Composite:
		return appendComposite(b, v, depth)
	}
	return b, encodeErrorf("Go type %T is not an AMQP value", v)
}

func appendUint(b []byte, v uint32) []byte {
	switch {
	case v == 0:
		return append(b, codeUint0)
	case v <= math.MaxUint8:
		return append(b, codeSmallUint, byte(v))
	}
	return binary.BigEndian.AppendUint32(append(b, codeUint), v)
}

func appendUlong(b []byte, v uint64) []byte {
	switch {
	case v == 0:
		return append(b, codeUlong0)
	case v <= math.MaxUint8:
		return append(b, codeSmallUlong, byte(v))
	}
	return binary.BigEndian.AppendUint64(append(b, codeUlong), v)
}

func appendBool(b []byte, v bool) []byte {
	if v {
		return append(b, codeTrue)
	}
	return append(b, codeFalse)
}

func appendTimestamp(b []byte, v Timestamp) []byte {
	return binary.BigEndian.AppendUint64(append(b, codeTimestamp), uint64(v))
}

// appendVariable appends a binary, string or symbol with the 8-bit size form
// when it fits.
func appendVariable[S ~string | ~[]byte](b []byte, v S, code8, code32 byte) ([]byte, error) {
	if len(v) <= math.MaxUint8 {
		return appendSized(append(b, code8), v, false), nil
	}
	if uint64(len(v)) > math.MaxUint32 {
		return b, encodeErrorf("%d bytes exceed AMQP's 4 GiB limit", len(v))
	}
	return appendSized(append(b, code32), v, true), nil
}

func appendBinary(b []byte, v []byte) ([]byte, error) {
	return appendVariable(b, v, codeVbin8, codeVbin32)
}

func appendString(b []byte, v string) ([]byte, error) {
	if !utf8.ValidString(v) {
		return b, encodeErrorf("string %q is not valid UTF-8", v)
	}
	return appendVariable(b, v, codeStr8, codeStr32)
}

func appendSymbol(b []byte, v Symbol) ([]byte, error) {
	if err := checkSymbol(v); err != nil {
		return b, err
	}
	return appendVariable(b, v, codeSym8, codeSym32)
}

func checkSymbol(v Symbol) error {
	for i := 0; i < len(v); i++ {
		if v[i] >= utf8.RuneSelf {
			return encodeErrorf("symbol %q is not ASCII", v)
		}
	}
	return nil
}

// appendSized appends data after its size, one byte wide or four; the
// caller has checked that it fits.
func appendSized[S ~string | ~[]byte](b []byte, data S, wide bool) []byte {
	if wide {
		return append(binary.BigEndian.AppendUint32(b, uint32(len(data))), data...)
	}
	return append(append(b, byte(len(data))), data...)
}

// compoundForm says how a list, map or array is framed. A value carries its
// format code and takes the 8-bit header when it fits; an array element has
// neither code nor choice, as the array's constructor fixed the 32-bit form.
type compoundForm bool

const (
	formValue   compoundForm = false
	formElement compoundForm = true
)

// startCompound reserves room for a 32-bit header; finishCompound fills it,
// or shrinks it to the 8-bit form, which costs a memmove of the elements but
// spares encoding them twice to learn their size.
func startCompound(b []byte, depth int, form compoundForm) (int, []byte, error) {
	if depth+1 > MaxDepth {
		return 0, b, encodeErrorf("values nested deeper than %d", MaxDepth)
	}
	n := 9
	if form == formElement {
		n = 8
	}
	return len(b), append(b, make([]byte, n)...), nil
}

func finishCompound(b []byte, start int, count int, code8, code32 byte, form compoundForm) ([]byte, error) {
	hdr := 9
	if form == formElement {
		hdr = 8
	}
	body := len(b) - start - hdr
	if form == formValue && body+1 <= math.MaxUint8 && count <= math.MaxUint8 {
		b[start] = code8
		b[start+1] = byte(body + 1)
		b[start+2] = byte(count)
		copy(b[start+3:], b[start+hdr:])
		return b[:len(b)-hdr+3], nil
	}
	if uint64(body)+4 > math.MaxUint32 || uint64(count) > math.MaxUint32 {
		return b, encodeErrorf("compound of %d bytes exceeds AMQP's 4 GiB limit", body)
	}
	at := start
	if form == formValue {
		b[start] = code32
		at++
	}
	binary.BigEndian.PutUint32(b[at:], uint32(body+4))
	binary.BigEndian.PutUint32(b[at+4:], uint32(count))
	return b, nil
}

func appendList(b []byte, items []any, depth int) ([]byte, error) {
	if len(items) == 0 {
		return append(b, codeList0), nil
	}
	return appendListForm(b, items, depth, formValue)
}

func appendListForm(b []byte, items []any, depth int, form compoundForm) ([]byte, error) {
	start, b, err := startCompound(b, depth, form)
	if err != nil {
		return b, err
	}
	for _, v := range items {
		if b, err = appendValue(b, v, depth+1); err != nil {
			return b, err
		}
	}
	return finishCompound(b, start, len(items), codeList8, codeList32, form)
}

func appendMap(b []byte, m Map, depth int) ([]byte, error) {
	return appendMapForm(b, m, depth, formValue)
}

func appendMapForm(b []byte, m Map, depth int, form compoundForm) ([]byte, error) {
	start, b, err := startCompound(b, depth, form)
	if err != nil {
		return b, err
	}
	for _, e := range m {
		if b, err = appendValue(b, e.Key, depth+1); err != nil {
			return b, err
		}
		if b, err = appendValue(b, e.Value, depth+1); err != nil {
			return b, err
		}
	}
	return finishCompound(b, start, 2*len(m), codeMap8, codeMap32, form)
}

// appendGoMap encodes a Go map with its keys in the order compare gives, so
// that the same map always encodes to the same bytes.
func appendGoMap[K comparable](b []byte, m map[K]any, depth int, compare func(a, b K) int) ([]byte, error) {
	keys := make([]K, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, compare)
	start, b, err := startCompound(b, depth, formValue)
	if err != nil {
		return b, err
	}
	for _, k := range keys {
		if b, err = appendValue(b, k, depth+1); err != nil {
			return b, err
		}
		if b, err = appendValue(b, m[k], depth+1); err != nil {
			return b, err
		}
	}
	return finishCompound(b, start, 2*len(m), codeMap8, codeMap32, formValue)
}

// compareAnnotationKeys orders ulong keys before symbols, the only key types
// annotations may have.
func compareAnnotationKeys(a, b any) int {
	rank := func(k any) int {
		if _, ok := k.(uint64); ok {
			return 0
		}
		return 1
	}
	if c := cmp.Compare(rank(a), rank(b)); c != 0 {
		return c
	}
	switch a := a.(type) {
	case uint64:
		return cmp.Compare(a, b.(uint64))
	case Symbol:
		return cmp.Compare(a, b.(Symbol))
	}
	return 0
}

// arrayConstructor picks the one constructor all of a's values can share:
// the smallest fixed width that fits every value, and the 32-bit form for
// compound elements, whose sizes are not known until they are written.
func arrayConstructor(a Array) (byte, error) {
	fits8 := func(ok func(any) bool) bool {
		for _, v := range a.Values {
			if !ok(v) {
				return false
			}
		}
		return true
	}
	switch a.Type {
	case TypeBool:
		return codeBool, nil
	case TypeUbyte:
		return codeUbyte, nil
	case TypeUshort:
		return codeUshort, nil
	case TypeUint:
		if fits8(func(v any) bool { u, ok := v.(uint32); return ok && u <= math.MaxUint8 }) {
			return codeSmallUint, nil
		}
		return codeUint, nil
	case TypeUlong:
		if fits8(func(v any) bool { u, ok := v.(uint64); return ok && u <= math.MaxUint8 }) {
			return codeSmallUlong, nil
		}
		return codeUlong, nil
	case TypeByte:
		return codeByte, nil
	case TypeShort:
		return codeShort, nil
	case TypeInt:
		if fits8(func(v any) bool { i, ok := v.(int32); return ok && i == int32(int8(i)) }) {
			return codeSmallInt, nil
		}
		return codeInt, nil
	case TypeLong:
		if fits8(func(v any) bool { i, ok := v.(int64); return ok && i == int64(int8(i)) }) {
			return codeSmallLong, nil
		}
		return codeLong, nil
	case TypeFloat:
		return codeFloat, nil
	case TypeDouble:
		return codeDouble, nil
	case TypeDecimal32:
		return codeDecimal32, nil
	case TypeDecimal64:
		return codeDecimal64, nil
	case TypeDecimal128:
		return codeDecimal128, nil
	case TypeChar:
		return codeChar, nil
	case TypeTimestamp:
		return codeTimestamp, nil
	case TypeUUID:
		return codeUUID, nil
	case TypeBinary:
		if fits8(func(v any) bool { s, ok := v.([]byte); return ok && len(s) <= math.MaxUint8 }) {
			return codeVbin8, nil
		}
		return codeVbin32, nil
	case TypeString:
		if fits8(func(v any) bool { s, ok := v.(string); return ok && len(s) <= math.MaxUint8 }) {
			return codeStr8, nil
		}
		return codeStr32, nil
	case TypeSymbol:
		if fits8(func(v any) bool { s, ok := v.(Symbol); return ok && len(s) <= math.MaxUint8 }) {
			return codeSym8, nil
		}
		return codeSym32, nil
	case TypeList:
		return codeList32, nil
	case TypeMap:
		return codeMap32, nil
	case TypeArray:
		return codeArray32, nil
	}
	return 0, encodeErrorf("arrays of %s are not encodable", a.Type)
}

func appendArray(b []byte, a Array, depth int) ([]byte, error) {
	return appendArrayForm(b, a, depth, formValue)
}

func appendArrayForm(b []byte, a Array, depth int, form compoundForm) ([]byte, error) {
	ctor, err := arrayConstructor(a)
	if err != nil {
		return b, err
	}
	start, b, err := startCompound(b, depth, form)
	if err != nil {
		return b, err
	}
	if a.Descriptor != nil {
		if b, err = appendValue(append(b, codeDescribed), a.Descriptor, depth+1); err != nil {
			return b, err
		}
	}
	b = append(b, ctor)
	for _, v := range a.Values {
		if b, err = appendElement(b, ctor, v, depth+1); err != nil {
			return b, err
		}
	}
	return finishCompound(b, start, len(a.Values), codeArray8, codeArray32, form)
}

// appendElement appends one array element, which is its value's encoding
// without a constructor, checking that v has the array's type.
func appendElement(b []byte, ctor byte, v any, depth int) ([]byte, error) {
	bad := func() ([]byte, error) {
		return b, encodeErrorf("array of %s holds a %T", codes[ctor].typ, v)
	}
	switch ctor {
	case codeList32:
		if items, ok := v.([]any); ok {
			return appendListForm(b, items, depth, formElement)
		}
		return bad()
	case codeMap32:
		if m, ok := v.(Map); ok {
			return appendMapForm(b, m, depth, formElement)
		}
		return bad()
	case codeArray32:
		if a, ok := v.(Array); ok {
			return appendArrayForm(b, a, depth, formElement)
		}
		return bad()
	case codeBool:
		x, ok := v.(bool)
		if !ok {
			return bad()
		}
		if x {
			return append(b, 1), nil
		}
		return append(b, 0), nil
	// arrayConstructor chose a small width only after checking every value
	// has the type and fits.
	case codeSmallUint:
		return append(b, byte(v.(uint32))), nil
	case codeSmallUlong:
		return append(b, byte(v.(uint64))), nil
	case codeSmallInt:
		return append(b, byte(v.(int32))), nil
	case codeSmallLong:
		return append(b, byte(v.(int64))), nil
	case codeUint:
		if x, ok := v.(uint32); ok {
			return binary.BigEndian.AppendUint32(b, x), nil
		}
		return bad()
	case codeUlong:
		if x, ok := v.(uint64); ok {
			return binary.BigEndian.AppendUint64(b, x), nil
		}
		return bad()
	case codeInt:
		if x, ok := v.(int32); ok {
			return binary.BigEndian.AppendUint32(b, uint32(x)), nil
		}
		return bad()
	case codeLong:
		if x, ok := v.(int64); ok {
			return binary.BigEndian.AppendUint64(b, uint64(x)), nil
		}
		return bad()
	case codeVbin8, codeVbin32, codeStr8, codeStr32, codeSym8, codeSym32:
		wide := ctor&0xf0 == 0xb0
		switch x := v.(type) {
		case []byte:
			if codes[ctor].typ == TypeBinary {
				return appendSized(b, x, wide), nil
			}
		case string:
			if codes[ctor].typ == TypeString {
				if !utf8.ValidString(x) {
					return b, encodeErrorf("string %q is not valid UTF-8", x)
				}
				return appendSized(b, x, wide), nil
			}
		case Symbol:
			if codes[ctor].typ == TypeSymbol {
				if err := checkSymbol(x); err != nil {
					return b, err
				}
				return appendSized(b, x, wide), nil
			}
		}
		return bad()
	}
	// What remains are fixed-width types with a single encoding: write the
	// value and drop its constructor.
	if typeOf(v) != codes[ctor].typ {
		return bad()
	}
	n := len(b)
	b, err := appendValue(b, v, depth)
	if err != nil {
		return b, err
	}
	return append(b[:n], b[n+1:]...), nil
}

// typeOf returns the AMQP type a Go value of the model encodes as.
func typeOf(v any) Type {
	switch v.(type) {
	case nil:
		return TypeNull
	case bool:
		return TypeBool
	case uint8:
		return TypeUbyte
	case uint16:
		return TypeUshort
	case uint32:
		return TypeUint
	case uint64:
		return TypeUlong
	case int8:
		return TypeByte
	case int16:
		return TypeShort
	case int32:
		return TypeInt
	case int64:
		return TypeLong
	case float32:
		return TypeFloat
	case float64:
		return TypeDouble
	case Decimal32:
		return TypeDecimal32
	case Decimal64:
		return TypeDecimal64
	case Decimal128:
		return TypeDecimal128
	case Char:
		return TypeChar
	case Timestamp:
		return TypeTimestamp
	case UUID:
		return TypeUUID
	case []byte:
		return TypeBinary
	case string:
		return TypeString
	case Symbol:
		return TypeSymbol
	case []any:
		return TypeList
	case Map, Fields, Annotations, map[string]any:
		return TypeMap
	case Array:
		return TypeArray
	}
	return Type(255)
}
