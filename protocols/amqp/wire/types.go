package wire

import (
	"bytes"
	"encoding/hex"
	"fmt"
	"time"
)

// Symbol is an AMQP symbol: an ASCII name such as a capability, an error
// condition or a descriptor.
type Symbol string

// Char is an AMQP char, one Unicode code point. It is a distinct type so that
// it does not decode into the int32 of an AMQP int.
type Char rune

// Timestamp is an AMQP timestamp, in milliseconds since the Unix epoch. It is
// kept as an integer because time.Time values with equal instants need not be
// ==, and a broker mostly compares and forwards timestamps.
type Timestamp int64

// Time returns t as a time.Time.
func (t Timestamp) Time() time.Time { return time.UnixMilli(int64(t)) }

// TimestampOf returns t truncated to AMQP's millisecond precision.
func TimestampOf(t time.Time) Timestamp { return Timestamp(t.UnixMilli()) }

// UUID is an AMQP uuid, in network byte order.
type UUID [16]byte

// String formats u in the usual 8-4-4-4-12 form.
func (u UUID) String() string {
	var b [36]byte
	hex.Encode(b[0:8], u[0:4])
	b[8] = '-'
	hex.Encode(b[9:13], u[4:6])
	b[13] = '-'
	hex.Encode(b[14:18], u[6:8])
	b[18] = '-'
	hex.Encode(b[19:23], u[8:10])
	b[23] = '-'
	hex.Encode(b[24:], u[10:])
	return string(b[:])
}

// Decimal32, Decimal64 and Decimal128 are IEEE 754 decimal floating point
// values kept as their encoded bytes: the broker only passes them through,
// and the standard library has no decimal arithmetic to convert them to.
type (
	Decimal32  [4]byte
	Decimal64  [8]byte
	Decimal128 [16]byte
)

// MapEntry is one key/value pair of a Map.
type MapEntry struct {
	Key, Value any
}

// Map is an AMQP map in the order its entries were encoded.
type Map []MapEntry

// Get returns the value for key. Only keys of scalar types (and binaries) can
// be looked up; entries with list, map, array or described keys never match.
func (m Map) Get(key any) (any, bool) {
	if kb, ok := key.([]byte); ok {
		for _, e := range m {
			if eb, ok := e.Key.([]byte); ok && bytes.Equal(kb, eb) {
				return e.Value, true
			}
		}
		return nil, false
	}
	for _, e := range m {
		// Comparing only scalar keys keeps == away from uncomparable
		// dynamic types, where it would panic.
		if isScalar(e.Key) && e.Key == key {
			return e.Value, true
		}
	}
	return nil, false
}

func isScalar(v any) bool {
	switch v.(type) {
	case nil, bool, uint8, uint16, uint32, uint64, int8, int16, int32, int64,
		float32, float64, Decimal32, Decimal64, Decimal128, Char, Timestamp,
		UUID, string, Symbol:
		return true
	}
	return false
}

// Array is an AMQP array: Values all of one Type, sharing one constructor.
// For an array of described values, Descriptor is the shared descriptor and
// Values hold the values it describes.
type Array struct {
	Type       Type
	Descriptor any
	Values     []any
}

// Described is a value with a descriptor saying what it means, normally a
// ulong code or a symbol.
type Described struct {
	Descriptor any
	Value      any
}

// Fields is AMQP's fields type, the properties of connections, sessions,
// links and nodes, and the filter set of a source.
type Fields map[Symbol]any

// Annotations are message annotations, delivery annotations and footers.
// Keys are Symbol or uint64.
type Annotations map[any]any

// Type names an AMQP primitive type; it is the element type of an Array.
type Type uint8

// The AMQP primitive types.
const (
	TypeNull Type = iota
	TypeBool
	TypeUbyte
	TypeUshort
	TypeUint
	TypeUlong
	TypeByte
	TypeShort
	TypeInt
	TypeLong
	TypeFloat
	TypeDouble
	TypeDecimal32
	TypeDecimal64
	TypeDecimal128
	TypeChar
	TypeTimestamp
	TypeUUID
	TypeBinary
	TypeString
	TypeSymbol
	TypeList
	TypeMap
	TypeArray
)

var typeNames = [...]string{
	TypeNull: "null", TypeBool: "boolean", TypeUbyte: "ubyte", TypeUshort: "ushort",
	TypeUint: "uint", TypeUlong: "ulong", TypeByte: "byte", TypeShort: "short",
	TypeInt: "int", TypeLong: "long", TypeFloat: "float", TypeDouble: "double",
	TypeDecimal32: "decimal32", TypeDecimal64: "decimal64", TypeDecimal128: "decimal128",
	TypeChar: "char", TypeTimestamp: "timestamp", TypeUUID: "uuid", TypeBinary: "binary",
	TypeString: "string", TypeSymbol: "symbol", TypeList: "list", TypeMap: "map",
	TypeArray: "array",
}

func (t Type) String() string {
	if int(t) < len(typeNames) {
		return typeNames[t]
	}
	return fmt.Sprintf("type(%d)", uint8(t))
}
