package wire

import "fmt"

// Format codes (part 1.6).
const (
	codeDescribed  = 0x00
	codeNull       = 0x40
	codeTrue       = 0x41
	codeFalse      = 0x42
	codeUint0      = 0x43
	codeUlong0     = 0x44
	codeList0      = 0x45
	codeUbyte      = 0x50
	codeByte       = 0x51
	codeSmallUint  = 0x52
	codeSmallUlong = 0x53
	codeSmallInt   = 0x54
	codeSmallLong  = 0x55
	codeBool       = 0x56
	codeUshort     = 0x60
	codeShort      = 0x61
	codeUint       = 0x70
	codeInt        = 0x71
	codeFloat      = 0x72
	codeChar       = 0x73
	codeDecimal32  = 0x74
	codeUlong      = 0x80
	codeLong       = 0x81
	codeDouble     = 0x82
	codeTimestamp  = 0x83
	codeDecimal64  = 0x84
	codeDecimal128 = 0x94
	codeUUID       = 0x98
	codeVbin8      = 0xa0
	codeStr8       = 0xa1
	codeSym8       = 0xa3
	codeVbin32     = 0xb0
	codeStr32      = 0xb1
	codeSym32      = 0xb3
	codeList8      = 0xc0
	codeMap8       = 0xc1
	codeList32     = 0xd0
	codeMap32      = 0xd1
	codeArray8     = 0xe0
	codeArray32    = 0xf0
)

// codeInfo says what a format code constructs. elemWidth is the fewest bytes
// one array element with this constructor can take; it is 0 for the codes
// that carry no per-element bytes and so cannot construct array elements
// (an array of them would let a few bytes claim billions of elements).
type codeInfo struct {
	valid     bool
	typ       Type
	elemWidth uint8
}

var codes = func() (t [256]codeInfo) {
	set := func(c byte, typ Type, w uint8) { t[c] = codeInfo{true, typ, w} }
	set(codeNull, TypeNull, 0)
	set(codeTrue, TypeBool, 0)
	set(codeFalse, TypeBool, 0)
	set(codeBool, TypeBool, 1)
	set(codeUbyte, TypeUbyte, 1)
	set(codeUshort, TypeUshort, 2)
	set(codeUint0, TypeUint, 0)
	set(codeSmallUint, TypeUint, 1)
	set(codeUint, TypeUint, 4)
	set(codeUlong0, TypeUlong, 0)
	set(codeSmallUlong, TypeUlong, 1)
	set(codeUlong, TypeUlong, 8)
	set(codeByte, TypeByte, 1)
	set(codeShort, TypeShort, 2)
	set(codeSmallInt, TypeInt, 1)
	set(codeInt, TypeInt, 4)
	set(codeSmallLong, TypeLong, 1)
	set(codeLong, TypeLong, 8)
	set(codeFloat, TypeFloat, 4)
	set(codeDouble, TypeDouble, 8)
	set(codeDecimal32, TypeDecimal32, 4)
	set(codeDecimal64, TypeDecimal64, 8)
	set(codeDecimal128, TypeDecimal128, 16)
	set(codeChar, TypeChar, 4)
	set(codeTimestamp, TypeTimestamp, 8)
	set(codeUUID, TypeUUID, 16)
	set(codeVbin8, TypeBinary, 1)
	set(codeVbin32, TypeBinary, 4)
	set(codeStr8, TypeString, 1)
	set(codeStr32, TypeString, 4)
	set(codeSym8, TypeSymbol, 1)
	set(codeSym32, TypeSymbol, 4)
	set(codeList0, TypeList, 0)
	set(codeList8, TypeList, 2)
	set(codeList32, TypeList, 8)
	set(codeMap8, TypeMap, 2)
	set(codeMap32, TypeMap, 8)
	set(codeArray8, TypeArray, 3)
	set(codeArray32, TypeArray, 9)
	return t
}()

// describeCode names a format code for error messages.
func describeCode(c byte) string {
	if c == codeDescribed {
		return "described type (0x00)"
	}
	if !codes[c].valid {
		return fmt.Sprintf("unknown format code 0x%02x", c)
	}
	return fmt.Sprintf("%s (0x%02x)", codes[c].typ, c)
}
