package wire

import (
	"encoding/binary"
	"fmt"
	"math"
	"unicode/utf8"
)

// MaxDepth bounds how deeply lists, maps, arrays and described values may
// nest, so that hostile input cannot drive the recursive decoder off the end
// of the stack. The deepest legitimate structure, a transfer's delivery state
// carrying an error with info, uses six levels; the rest is room for
// application data in message bodies.
const MaxDepth = 64

// DecodeError reports malformed input: what was wrong, and the offset of the
// fault counted from the start of the bytes given to the decoder (for frame
// bodies, the first byte after the frame header).
type DecodeError struct {
	Offset int
	Reason string
}

func (e *DecodeError) Error() string {
	return fmt.Sprintf("amqp: decode at offset %d: %s", e.Offset, e.Reason)
}

// decoder reads values from b. end is the end of the innermost container
// being read: nothing inside a list, map or array may read past it, which is
// what keeps a nested length from escaping its parent's.
type decoder struct {
	b     []byte
	off   int
	end   int
	depth int
}

func newDecoder(b []byte) decoder { return decoder{b: b, end: len(b)} }

func (d *decoder) errorf(off int, format string, args ...any) error {
	return &DecodeError{Offset: off, Reason: fmt.Sprintf(format, args...)}
}

func (d *decoder) mismatch(start int, code byte, want string) error {
	return d.errorf(start, "expected %s, found %s", want, describeCode(code))
}

// need checks that n bytes remain. Callers pass constant labels: building
// one per read would cost an allocation on every value decoded.
func (d *decoder) need(n uint64, what string) error {
	if n > uint64(d.end-d.off) {
		return d.truncated(what, n)
	}
	return nil
}

func (d *decoder) truncated(what string, n uint64) error {
	unit := "bytes"
	if n == 1 {
		unit = "byte"
	}
	return d.errorf(d.off, "truncated %s: need %d %s, %d remain", what, n, unit, d.end-d.off)
}

// sizeField reads the 1- or 4-byte size or count of a variable-width or
// compound value.
func (d *decoder) sizeField(width int, what, field string) (uint64, error) {
	if d.end-d.off < width {
		return 0, d.truncated(what+" "+field, uint64(width))
	}
	var v uint64
	if width == 1 {
		v = uint64(d.b[d.off])
	} else {
		v = uint64(binary.BigEndian.Uint32(d.b[d.off:]))
	}
	d.off += width
	return v, nil
}

func (d *decoder) take(n uint64, what string) ([]byte, error) {
	if err := d.need(n, what); err != nil {
		return nil, err
	}
	i := d.off
	d.off += int(n)
	return d.b[i:d.off:d.off], nil
}

func (d *decoder) u8(what string) (byte, error) {
	if d.off >= d.end {
		return 0, d.truncated(what, 1)
	}
	c := d.b[d.off]
	d.off++
	return c, nil
}

func (d *decoder) u16(what string) (uint16, error) {
	b, err := d.take(2, what)
	if err != nil {
		return 0, err
	}
	return binary.BigEndian.Uint16(b), nil
}

func (d *decoder) u32(what string) (uint32, error) {
	b, err := d.take(4, what)
	if err != nil {
		return 0, err
	}
	return binary.BigEndian.Uint32(b), nil
}

func (d *decoder) u64(what string) (uint64, error) {
	b, err := d.take(8, what)
	if err != nil {
		return 0, err
	}
	return binary.BigEndian.Uint64(b), nil
}

func (d *decoder) enter(start int) error {
	d.depth++
	if d.depth > MaxDepth {
		return d.errorf(start, "values nested deeper than %d", MaxDepth)
	}
	return nil
}

// DecodeValue decodes the AMQP value at the start of b and returns it with
// the number of bytes it took.
func DecodeValue(b []byte) (any, int, error) {
	d := newDecoder(b)
	v, err := d.value()
	if err != nil {
		return nil, 0, err
	}
	return v, d.off, nil
}

func (d *decoder) value() (any, error) {
	start := d.off
	code, err := d.u8("format code")
	if err != nil {
		return nil, err
	}
	if code == codeDescribed {
		v, err := d.described(start)
		if err != nil {
			return nil, err
		}
		return v, nil
	}
	return d.valueOf(code, start)
}

func (d *decoder) described(start int) (Described, error) {
	if err := d.enter(start); err != nil {
		return Described{}, err
	}
	desc, err := d.value()
	if err != nil {
		return Described{}, err
	}
	v, err := d.value()
	if err != nil {
		return Described{}, err
	}
	d.depth--
	return Described{Descriptor: desc, Value: v}, nil
}

// valueOf decodes the value whose constructor code has been read; start is
// where the value began, for error offsets.
func (d *decoder) valueOf(code byte, start int) (any, error) {
	var v any
	var err error
	switch code {
	case codeNull:
		return nil, nil
	case codeTrue, codeFalse, codeBool:
		v, err = d.boolOf(code, start)
	case codeUbyte:
		v, err = d.ubyteOf(code, start)
	case codeUshort:
		v, err = d.ushortOf(code, start)
	case codeUint0, codeSmallUint, codeUint:
		v, err = d.uintOf(code, start)
	case codeUlong0, codeSmallUlong, codeUlong:
		v, err = d.ulongOf(code, start)
	case codeByte:
		var b byte
		b, err = d.u8("byte")
		v = int8(b)
	case codeShort:
		var u uint16
		u, err = d.u16("short")
		v = int16(u)
	case codeSmallInt:
		var b byte
		b, err = d.u8("smallint")
		v = int32(int8(b))
	case codeInt:
		var u uint32
		u, err = d.u32("int")
		v = int32(u)
	case codeSmallLong:
		var b byte
		b, err = d.u8("smalllong")
		v = int64(int8(b))
	case codeLong:
		var u uint64
		u, err = d.u64("long")
		v = int64(u)
	case codeFloat:
		var u uint32
		u, err = d.u32("float")
		v = math.Float32frombits(u)
	case codeDouble:
		var u uint64
		u, err = d.u64("double")
		v = math.Float64frombits(u)
	case codeDecimal32:
		var x Decimal32
		err = d.fixed(x[:], "decimal32")
		v = x
	case codeDecimal64:
		var x Decimal64
		err = d.fixed(x[:], "decimal64")
		v = x
	case codeDecimal128:
		var x Decimal128
		err = d.fixed(x[:], "decimal128")
		v = x
	case codeChar:
		var u uint32
		u, err = d.u32("char")
		if err == nil && !utf8.ValidRune(rune(u)) {
			err = d.errorf(start, "char 0x%x is not a Unicode scalar value", u)
		}
		v = Char(u)
	case codeTimestamp:
		v, err = d.timestampOf(code, start)
	case codeUUID:
		var x UUID
		err = d.fixed(x[:], "uuid")
		v = x
	case codeVbin8, codeVbin32:
		v, err = d.binaryOf(code, start)
	case codeStr8, codeStr32:
		v, err = d.stringOf(code, start)
	case codeSym8, codeSym32:
		v, err = d.symbolOf(code, start)
	case codeList0, codeList8, codeList32:
		v, err = d.listOf(code, start)
	case codeMap8, codeMap32:
		v, err = d.mapOf(code, start)
	case codeArray8, codeArray32:
		v, err = d.arrayOf(code, start)
	default:
		return nil, d.errorf(start, "%s", describeCode(code))
	}
	if err != nil {
		return nil, err
	}
	return v, nil
}

func (d *decoder) fixed(dst []byte, what string) error {
	b, err := d.take(uint64(len(dst)), what)
	copy(dst, b)
	return err
}

func (d *decoder) boolOf(code byte, start int) (bool, error) {
	switch code {
	case codeTrue:
		return true, nil
	case codeFalse:
		return false, nil
	case codeBool:
		b, err := d.u8("boolean")
		if err != nil {
			return false, err
		}
		if b > 1 {
			return false, d.errorf(start, "boolean byte is 0x%02x, not 0x00 or 0x01", b)
		}
		return b == 1, nil
	}
	return false, d.mismatch(start, code, "boolean")
}

func (d *decoder) ubyteOf(code byte, start int) (uint8, error) {
	if code != codeUbyte {
		return 0, d.mismatch(start, code, "ubyte")
	}
	return d.u8("ubyte")
}

func (d *decoder) ushortOf(code byte, start int) (uint16, error) {
	if code != codeUshort {
		return 0, d.mismatch(start, code, "ushort")
	}
	return d.u16("ushort")
}

func (d *decoder) uintOf(code byte, start int) (uint32, error) {
	switch code {
	case codeUint0:
		return 0, nil
	case codeSmallUint:
		b, err := d.u8("smalluint")
		return uint32(b), err
	case codeUint:
		return d.u32("uint")
	}
	return 0, d.mismatch(start, code, "uint")
}

func (d *decoder) ulongOf(code byte, start int) (uint64, error) {
	switch code {
	case codeUlong0:
		return 0, nil
	case codeSmallUlong:
		b, err := d.u8("smallulong")
		return uint64(b), err
	case codeUlong:
		return d.u64("ulong")
	}
	return 0, d.mismatch(start, code, "ulong")
}

func (d *decoder) timestampOf(code byte, start int) (Timestamp, error) {
	if code != codeTimestamp {
		return 0, d.mismatch(start, code, "timestamp")
	}
	u, err := d.u64("timestamp")
	return Timestamp(u), err
}

// variable reads the bytes of a binary, string or symbol whose code is one of
// the two given (8- and 32-bit size).
func (d *decoder) variable(code byte, start int, code8, code32 byte, what string) ([]byte, error) {
	width := 4
	switch code {
	case code8:
		width = 1
	case code32:
	default:
		return nil, d.mismatch(start, code, what)
	}
	n, err := d.sizeField(width, what, "size")
	if err != nil {
		return nil, err
	}
	return d.take(n, what)
}

func (d *decoder) binaryOf(code byte, start int) ([]byte, error) {
	return d.variable(code, start, codeVbin8, codeVbin32, "binary")
}

func (d *decoder) stringOf(code byte, start int) (string, error) {
	b, err := d.variable(code, start, codeStr8, codeStr32, "string")
	if err != nil {
		return "", err
	}
	if !utf8.Valid(b) {
		return "", d.errorf(start, "string is not valid UTF-8")
	}
	return string(b), nil
}

func (d *decoder) rawSymbol(code byte, start int) ([]byte, error) {
	b, err := d.variable(code, start, codeSym8, codeSym32, "symbol")
	if err != nil {
		return nil, err
	}
	for i, c := range b {
		if c >= utf8.RuneSelf {
			return nil, d.errorf(start, "symbol byte %d is 0x%02x, not ASCII", i, c)
		}
	}
	return b, nil
}

func (d *decoder) symbolOf(code byte, start int) (Symbol, error) {
	b, err := d.rawSymbol(code, start)
	return Symbol(b), err
}

// compound reads the size and count of a list, map or array and checks the
// size against the bytes that remain. It returns the count and the offset at
// which the compound ends; the caller checks the count against that.
func (d *decoder) compound(code byte, what string) (count uint64, end int, err error) {
	width := 4
	if code == codeList8 || code == codeMap8 || code == codeArray8 {
		width = 1
	}
	sizeAt := d.off
	size, err := d.sizeField(width, what, "size")
	if err != nil {
		return 0, 0, err
	}
	if size < uint64(width) {
		return 0, 0, d.errorf(sizeAt, "%s size %d cannot hold its %d-byte count", what, size, width)
	}
	if rem := d.end - d.off; size > uint64(rem) {
		return 0, 0, d.errorf(sizeAt, "%s size %d exceeds the %d bytes that remain", what, size, rem)
	}
	end = d.off + int(size)
	// The size covers the count, so this cannot fail.
	count, err = d.sizeField(width, what, "count")
	return count, end, err
}

// checkCount rejects a count of elements that cannot fit before end, each
// taking at least minWidth bytes. It runs before any allocation sized by the
// count.
func (d *decoder) checkCount(count uint64, minWidth uint64, end int, what string) error {
	if rem := uint64(end - d.off); count*minWidth > rem {
		return d.errorf(d.off, "%s of %d elements cannot fit in %d bytes", what, count, rem)
	}
	return nil
}

// open enters a compound ending at end; close leaves it, checking that its
// elements used exactly its size.
func (d *decoder) open(start, end int) (saved int, err error) {
	if err := d.enter(start); err != nil {
		return 0, err
	}
	saved = d.end
	d.end = end
	return saved, nil
}

func (d *decoder) close(saved int, what string) error {
	if d.off != d.end {
		return d.errorf(d.off, "%s has %d bytes after its last element", what, d.end-d.off)
	}
	d.end = saved
	d.depth--
	return nil
}

func (d *decoder) listOf(code byte, start int) ([]any, error) {
	switch code {
	case codeList0:
		return []any{}, nil
	case codeList8, codeList32:
	default:
		return nil, d.mismatch(start, code, "list")
	}
	count, end, err := d.compound(code, "list")
	if err != nil {
		return nil, err
	}
	if err := d.checkCount(count, 1, end, "list"); err != nil {
		return nil, err
	}
	saved, err := d.open(start, end)
	if err != nil {
		return nil, err
	}
	items := make([]any, 0, count)
	for range count {
		v, err := d.value()
		if err != nil {
			return nil, err
		}
		items = append(items, v)
	}
	return items, d.close(saved, "list")
}

// mapHeader reads a map's header, checks its count and enters it.
func (d *decoder) mapHeader(code byte, start int, what string) (pairs uint64, saved int, err error) {
	if code != codeMap8 && code != codeMap32 {
		return 0, 0, d.mismatch(start, code, what)
	}
	count, end, err := d.compound(code, what)
	if err != nil {
		return 0, 0, err
	}
	if count%2 != 0 {
		return 0, 0, d.errorf(start, "%s has an odd element count %d", what, count)
	}
	if err := d.checkCount(count, 1, end, what); err != nil {
		return 0, 0, err
	}
	saved, err = d.open(start, end)
	return count / 2, saved, err
}

func (d *decoder) mapOf(code byte, start int) (Map, error) {
	n, saved, err := d.mapHeader(code, start, "map")
	if err != nil {
		return nil, err
	}
	m := make(Map, 0, n)
	for range n {
		k, err := d.value()
		if err != nil {
			return nil, err
		}
		v, err := d.value()
		if err != nil {
			return nil, err
		}
		m = append(m, MapEntry{k, v})
	}
	return m, d.close(saved, "map")
}

// goMapOf decodes a map whose keys key reads into a Go map, rejecting
// duplicate keys, which AMQP forbids and a Go map would silently merge.
func goMapOf[K comparable](d *decoder, code byte, start int, what string, key func(*decoder, byte, int) (K, error)) (map[K]any, error) {
	n, saved, err := d.mapHeader(code, start, what)
	if err != nil {
		return nil, err
	}
	m := make(map[K]any, n)
	for range n {
		kstart := d.off
		if d.off >= d.end {
			return nil, d.truncated(what+" key", 1)
		}
		kc := d.b[d.off]
		d.off++
		k, err := key(d, kc, kstart)
		if err != nil {
			return nil, err
		}
		if _, dup := m[k]; dup {
			return nil, d.errorf(kstart, "%s has duplicate key %v", what, k)
		}
		v, err := d.value()
		if err != nil {
			return nil, err
		}
		m[k] = v
	}
	return m, d.close(saved, what)
}

func (d *decoder) fieldsOf(code byte, start int) (Fields, error) {
	return goMapOf(d, code, start, "fields", (*decoder).symbolOf)
}

func (d *decoder) annotationsOf(code byte, start int) (Annotations, error) {
	return goMapOf(d, code, start, "annotations", func(d *decoder, code byte, start int) (any, error) {
		switch code {
		case codeSym8, codeSym32:
			return d.symbolOf(code, start)
		case codeUlong0, codeSmallUlong, codeUlong:
			return d.ulongOf(code, start)
		}
		return nil, d.mismatch(start, code, "symbol or ulong annotation key")
	})
}

func (d *decoder) stringMapOf(code byte, start int) (map[string]any, error) {
	return goMapOf(d, code, start, "application-properties", (*decoder).stringOf)
}

func (d *decoder) arrayOf(code byte, start int) (Array, error) {
	if code != codeArray8 && code != codeArray32 {
		return Array{}, d.mismatch(start, code, "array")
	}
	count, end, err := d.compound(code, "array")
	if err != nil {
		return Array{}, err
	}
	saved, err := d.open(start, end)
	if err != nil {
		return Array{}, err
	}
	ctorAt := d.off
	ctor, err := d.u8("array constructor")
	if err != nil {
		return Array{}, err
	}
	var desc any
	if ctor == codeDescribed {
		if desc, err = d.value(); err != nil {
			return Array{}, err
		}
		if desc == nil {
			return Array{}, d.errorf(ctorAt, "array element descriptor is null")
		}
		ctorAt = d.off
		if ctor, err = d.u8("array constructor"); err != nil {
			return Array{}, err
		}
	}
	info := codes[ctor]
	if ctor == codeDescribed || !info.valid || info.elemWidth == 0 {
		return Array{}, d.errorf(ctorAt, "%s cannot construct array elements", describeCode(ctor))
	}
	if err := d.checkCount(count, uint64(info.elemWidth), d.end, "array"); err != nil {
		return Array{}, err
	}
	a := Array{Type: info.typ, Descriptor: desc, Values: make([]any, 0, count)}
	for range count {
		v, err := d.valueOf(ctor, d.off)
		if err != nil {
			return Array{}, err
		}
		a.Values = append(a.Values, v)
	}
	return a, d.close(saved, "array")
}

// symbolsOf decodes a field of symbols with multiple="true", which the spec
// lets a peer send as one symbol or as an array of them.
func (d *decoder) symbolsOf(code byte, start int) ([]Symbol, error) {
	switch code {
	case codeSym8, codeSym32:
		s, err := d.symbolOf(code, start)
		if err != nil {
			return nil, err
		}
		return []Symbol{s}, nil
	case codeArray8, codeArray32:
	default:
		return nil, d.mismatch(start, code, "symbol or array of symbols")
	}
	a, err := d.arrayOf(code, start)
	if err != nil {
		return nil, err
	}
	if a.Type != TypeSymbol || a.Descriptor != nil {
		return nil, d.errorf(start, "expected an array of symbols, found an array of %s", a.Type)
	}
	syms := make([]Symbol, len(a.Values))
	for i, v := range a.Values {
		syms[i] = v.(Symbol)
	}
	return syms, nil
}
