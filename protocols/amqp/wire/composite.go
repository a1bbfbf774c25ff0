package wire

import (
	"fmt"
	"math"
	"strings"
)

// Composite is one of the spec's described list types: a performative, a
// SASL frame, a delivery state, a terminus, an error, a transaction type, or
// a message's header or properties section. The set is closed; a server
// takes a decoded one apart with a type switch.
type Composite interface {
	// Descriptor returns the type's numeric descriptor code.
	Descriptor() uint64
	appendFields(w fieldWriter) fieldWriter
	decodeFields(r fieldReader) fieldReader
}

// Descriptor codes (the domain, the upper 32 bits, is 0 for all of them).
const (
	descOpen                  = 0x10
	descBegin                 = 0x11
	descAttach                = 0x12
	descFlow                  = 0x13
	descTransfer              = 0x14
	descDisposition           = 0x15
	descDetach                = 0x16
	descEnd                   = 0x17
	descClose                 = 0x18
	descError                 = 0x1d
	descReceived              = 0x23
	descAccepted              = 0x24
	descRejected              = 0x25
	descReleased              = 0x26
	descModified              = 0x27
	descSource                = 0x28
	descTarget                = 0x29
	descCoordinator           = 0x30
	descDeclare               = 0x31
	descDischarge             = 0x32
	descDeclared              = 0x33
	descTransactionalState    = 0x34
	descSASLMechanisms        = 0x40
	descSASLInit              = 0x41
	descSASLChallenge         = 0x42
	descSASLResponse          = 0x43
	descSASLOutcome           = 0x44
	descHeader                = 0x70
	descDeliveryAnnotations   = 0x71
	descMessageAnnotations    = 0x72
	descProperties            = 0x73
	descApplicationProperties = 0x74
	descData                  = 0x75
	descAMQPSequence          = 0x76
	descAMQPValue             = 0x77
	descFooter                = 0x78
)

// descriptorSymbols are the symbolic descriptors a peer may send instead of
// the codes.
var descriptorSymbols = map[uint64]string{
	descOpen: "amqp:open:list", descBegin: "amqp:begin:list", descAttach: "amqp:attach:list",
	descFlow: "amqp:flow:list", descTransfer: "amqp:transfer:list",
	descDisposition: "amqp:disposition:list", descDetach: "amqp:detach:list",
	descEnd: "amqp:end:list", descClose: "amqp:close:list", descError: "amqp:error:list",
	descReceived: "amqp:received:list", descAccepted: "amqp:accepted:list",
	descRejected: "amqp:rejected:list", descReleased: "amqp:released:list",
	descModified: "amqp:modified:list", descSource: "amqp:source:list",
	descTarget: "amqp:target:list", descCoordinator: "amqp:coordinator:list",
	descDeclare: "amqp:declare:list", descDischarge: "amqp:discharge:list",
	descDeclared: "amqp:declared:list", descTransactionalState: "amqp:transactional-state:list",
	descSASLMechanisms: "amqp:sasl-mechanisms:list", descSASLInit: "amqp:sasl-init:list",
	descSASLChallenge: "amqp:sasl-challenge:list", descSASLResponse: "amqp:sasl-response:list",
	descSASLOutcome: "amqp:sasl-outcome:list", descHeader: "amqp:header:list",
	descDeliveryAnnotations:   "amqp:delivery-annotations:map",
	descMessageAnnotations:    "amqp:message-annotations:map",
	descProperties:            "amqp:properties:list",
	descApplicationProperties: "amqp:application-properties:map",
	descData:                  "amqp:data:binary", descAMQPSequence: "amqp:amqp-sequence:list",
	descAMQPValue: "amqp:amqp-value:*", descFooter: "amqp:footer:map",
}

var descriptorCodes = func() map[string]uint64 {
	m := make(map[string]uint64, len(descriptorSymbols))
	for c, s := range descriptorSymbols {
		m[s] = c
	}
	return m
}()

// descriptorName gives the short name of a descriptor ("attach"), for error
// messages.
func descriptorName(code uint64) string {
	s, ok := descriptorSymbols[code]
	if !ok {
		return fmt.Sprintf("descriptor 0x%08x:0x%08x", code>>32, code&math.MaxUint32)
	}
	s = strings.TrimPrefix(s, "amqp:")
	return s[:strings.LastIndexByte(s, ':')]
}

// AppendComposite appends the described list encoding of c to b.
func AppendComposite(b []byte, c Composite) ([]byte, error) {
	out, err := appendComposite(b, c, 0)
	if err != nil {
		return b, err
	}
	return out, nil
}

func appendComposite(b []byte, c Composite, depth int) ([]byte, error) {
	if depth+1 > MaxDepth {
		return b, encodeErrorf("values nested deeper than %d", MaxDepth)
	}
	// Every descriptor code is below 256, so a smallulong holds it.
	b = append(b, codeDescribed, codeSmallUlong, byte(c.Descriptor()))
	start, b, err := startCompound(b, depth+1, formValue)
	if err != nil {
		return b, err
	}
	w := c.appendFields(fieldWriter{b: b, depth: depth + 2, keepLen: len(b)})
	if w.err != nil {
		return b, fmt.Errorf("%s: %w", descriptorName(c.Descriptor()), w.err)
	}
	// Trailing absent fields are left out, as the spec allows.
	b = w.b[:w.keepLen]
	if w.keepCount == 0 {
		return append(b[:start], codeList0), nil
	}
	return finishCompound(b, start, w.keepCount, codeList8, codeList32, formValue)
}

// DecodeComposite decodes the described list at the start of b into c, which
// must be of the type the descriptor names, and returns the bytes it took.
// Every field of c is overwritten.
func DecodeComposite(b []byte, c Composite) (int, error) {
	d := newDecoder(b)
	code, err := d.u8("format code")
	if err != nil {
		return 0, err
	}
	if err := d.compositeOf(c, code, 0); err != nil {
		return 0, err
	}
	return d.off, nil
}

// DescribedAs decodes v, a value decoded generically such as a message's
// amqp-value body, into c. This is how a transaction coordinator reads the
// Declare and Discharge messages sent to it.
func DescribedAs(v any, c Composite) error {
	b, err := AppendValue(nil, v)
	if err != nil {
		return err
	}
	n, err := DecodeComposite(b, c)
	if err == nil && n != len(b) {
		err = &DecodeError{Offset: n, Reason: "bytes follow the composite"}
	}
	return err
}

// descriptor reads a descriptor as a code; symbolic descriptors of the known
// types map to their codes.
func (d *decoder) descriptor() (uint64, error) {
	start := d.off
	code, err := d.u8("descriptor")
	if err != nil {
		return 0, err
	}
	switch code {
	case codeUlong0, codeSmallUlong, codeUlong:
		return d.ulongOf(code, start)
	case codeSym8, codeSym32:
		s, err := d.rawSymbol(code, start)
		if err != nil {
			return 0, err
		}
		if c, ok := descriptorCodes[string(s)]; ok {
			return c, nil
		}
		return 0, d.errorf(start, "unknown descriptor %q", s)
	}
	return 0, d.mismatch(start, code, "descriptor (ulong or symbol)")
}

// describedHeader reads the descriptor of a composite whose constructor
// (code, at start) has been read, entering one level of nesting; the caller
// decodes the fields and leaves it.
func (d *decoder) describedHeader(code byte, start int, want string) (uint64, error) {
	if code != codeDescribed {
		return 0, d.mismatch(start, code, want)
	}
	if err := d.enter(start); err != nil {
		return 0, err
	}
	return d.descriptor()
}

func (d *decoder) compositeOf(c Composite, code byte, start int) error {
	want := c.Descriptor()
	got, err := d.describedHeader(code, start, descriptorName(want))
	if err != nil {
		return err
	}
	if got != want {
		return d.errorf(start, "expected %s, found %s", descriptorName(want), descriptorName(got))
	}
	if err := d.fields(c); err != nil {
		return err
	}
	d.depth--
	return nil
}

// fields decodes the field list of c.
func (d *decoder) fields(c Composite) error {
	start := d.off
	if d.off >= d.end {
		return d.truncated(descriptorName(c.Descriptor())+" fields", 1)
	}
	code := d.b[d.off]
	d.off++
	r := fieldReader{d: d, code: c.Descriptor()}
	saved := -1
	switch code {
	case codeList0:
	case codeList8, codeList32:
		count, end, err := d.compound(code, "fields")
		if err == nil {
			err = d.checkCount(count, 1, end, "fields")
		}
		if err == nil {
			saved, err = d.open(start, end)
		}
		if err != nil {
			return r.prefix(err)
		}
		r.n = count
	default:
		return d.mismatch(start, code, r.what()+" field list")
	}
	r = c.decodeFields(r)
	if r.err != nil {
		return r.err
	}
	// Fields a later version of the spec may add are checked and dropped.
	for ; r.i < r.n; r.i++ {
		if _, err := d.value(); err != nil {
			return err
		}
	}
	if saved >= 0 {
		if err := d.close(saved, "fields"); err != nil {
			return r.prefix(err)
		}
	}
	return nil
}

// fieldReader walks a composite's fields in order. The first error sticks
// and turns the remaining reads into no-ops, so decodeFields methods read as
// a plain list of fields. It is passed by value through the Composite
// interface, as a pointer would make every one escape to the heap.
type fieldReader struct {
	d    *decoder
	code uint64
	n, i uint64
	err  error
}

func (r *fieldReader) what() string { return descriptorName(r.code) }

// prefix names the composite in err.
func (r *fieldReader) prefix(err error) error {
	if de, ok := err.(*DecodeError); ok {
		return &DecodeError{Offset: de.Offset, Reason: r.what() + " " + de.Reason}
	}
	return err
}

// next reads the constructor of the next field. It reports false when the
// field is absent (the list ended) or null, which is an error if the field
// is mandatory.
func (r *fieldReader) next(name string, mandatory bool) (code byte, start int, ok bool) {
	if r.err != nil {
		return 0, 0, false
	}
	d := r.d
	if r.i >= r.n {
		if mandatory {
			r.err = d.errorf(d.off, "%s: mandatory field %s is missing", r.what(), name)
		}
		return 0, 0, false
	}
	r.i++
	start = d.off
	if d.off >= d.end {
		r.err = d.truncated(r.what()+" "+name, 1)
		return 0, 0, false
	}
	code = d.b[d.off]
	d.off++
	if code == codeNull {
		if mandatory {
			r.err = d.errorf(start, "%s: mandatory field %s is null", r.what(), name)
		}
		return 0, 0, false
	}
	return code, start, true
}

func (r *fieldReader) fail(name string, err error) {
	if de, ok := err.(*DecodeError); ok {
		err = &DecodeError{Offset: de.Offset, Reason: r.what() + " " + name + ": " + de.Reason}
	}
	r.err = err
}

type readFunc[T any] func(d *decoder, code byte, start int) (T, error)

func readField[T any](r *fieldReader, name string, mandatory bool, def T, read readFunc[T]) T {
	code, start, ok := r.next(name, mandatory)
	if !ok {
		return def
	}
	v, err := read(r.d, code, start)
	if err != nil {
		r.fail(name, err)
		return def
	}
	return v
}

// field reads an optional field, giving def when it is absent.
func field[T any](r *fieldReader, name string, def T, read readFunc[T]) T {
	return readField(r, name, false, def, read)
}

// required reads a mandatory field.
func required[T any](r *fieldReader, name string, read readFunc[T]) T {
	var zero T
	return readField(r, name, true, zero, read)
}

// optional reads a field whose absence matters, giving nil when absent.
func optional[T any](r *fieldReader, name string, read readFunc[T]) *T {
	code, start, ok := r.next(name, false)
	if !ok {
		return nil
	}
	v, err := read(r.d, code, start)
	if err != nil {
		r.fail(name, err)
		return nil
	}
	return &v
}

// anyOf reads a value of any type, described ones included.
func (d *decoder) anyOf(code byte, start int) (any, error) {
	if code == codeDescribed {
		v, err := d.described(start)
		if err != nil {
			return nil, err
		}
		return v, nil
	}
	return d.valueOf(code, start)
}

// newComposite reads a composite of type *T.
func newComposite[T any, P interface {
	*T
	Composite
}](d *decoder, code byte, start int) (P, error) {
	p := P(new(T))
	if err := d.compositeOf(p, code, start); err != nil {
		return nil, err
	}
	return p, nil
}

// fieldWriter appends a composite's fields in order, remembering where the
// last non-null field ended so trailing nulls can be cut. The first error
// sticks. Like fieldReader it travels by value.
type fieldWriter struct {
	b         []byte
	depth     int
	count     int
	keepLen   int
	keepCount int
	err       error
}

func (w *fieldWriter) null() {
	if w.err == nil {
		w.b = append(w.b, codeNull)
		w.count++
	}
}

func (w *fieldWriter) put(b []byte, err error) {
	if w.err != nil {
		return
	}
	if err != nil {
		w.err = err
		return
	}
	w.b = b
	w.count++
	w.keepLen = len(w.b)
	w.keepCount = w.count
}

func (w *fieldWriter) uint(v uint32) { w.put(appendUint(w.b, v), nil) }

func (w *fieldWriter) uintOr(v, def uint32) {
	if v == def {
		w.null()
		return
	}
	w.uint(v)
}

func (w *fieldWriter) optUint(p *uint32) {
	if p == nil {
		w.null()
		return
	}
	w.uint(*p)
}

func (w *fieldWriter) ulongOr(v, def uint64) {
	if v == def {
		w.null()
		return
	}
	w.put(appendUlong(w.b, v), nil)
}

func (w *fieldWriter) ushortOr(v, def uint16) {
	if v == def {
		w.null()
		return
	}
	w.put(append(w.b, codeUshort, byte(v>>8), byte(v)), nil)
}

func (w *fieldWriter) optUshort(p *uint16) {
	if p == nil {
		w.null()
		return
	}
	w.put(append(w.b, codeUshort, byte(*p>>8), byte(*p)), nil)
}

func (w *fieldWriter) ubyte(v uint8) { w.put(append(w.b, codeUbyte, v), nil) }

func (w *fieldWriter) ubyteOr(v, def uint8) {
	if v == def {
		w.null()
		return
	}
	w.ubyte(v)
}

func (w *fieldWriter) bool(v bool) { w.put(appendBool(w.b, v), nil) }

// boolOr writes v, or null when it is the default.
func (w *fieldWriter) boolOr(v, def bool) {
	if v == def {
		w.null()
		return
	}
	w.bool(v)
}

func (w *fieldWriter) optTimestamp(p *Timestamp) {
	if p == nil {
		w.null()
		return
	}
	w.put(appendTimestamp(w.b, *p), nil)
}

func (w *fieldWriter) string(v string) { w.put(appendString(w.b, v)) }

// optString writes v, or null when it is empty.
func (w *fieldWriter) optString(v string) {
	if v == "" {
		w.null()
		return
	}
	w.string(v)
}

func (w *fieldWriter) symbol(v Symbol) { w.put(appendSymbol(w.b, v)) }

// symbolOr writes v, or null when it is empty or the default.
func (w *fieldWriter) symbolOr(v, def Symbol) {
	if v == "" || v == def {
		w.null()
		return
	}
	w.symbol(v)
}

// binary writes a mandatory binary; nil is written as an empty one.
func (w *fieldWriter) binary(v []byte) { w.put(appendBinary(w.b, v)) }

// optBinary writes v, or null when it is nil; an empty non-nil binary is
// written as one.
func (w *fieldWriter) optBinary(v []byte) {
	if v == nil {
		w.null()
		return
	}
	w.binary(v)
}

// symbols writes a multiple symbol field as an array, or null when nil.
func (w *fieldWriter) symbols(v []Symbol) {
	if v == nil {
		w.null()
		return
	}
	w.put(appendSymbolArray(w.b, v, w.depth))
}

func (w *fieldWriter) fields(v Fields) {
	if v == nil {
		w.null()
		return
	}
	w.put(appendValue(w.b, v, w.depth))
}

func (w *fieldWriter) value(v any) {
	if v == nil {
		w.null()
		return
	}
	w.put(appendValue(w.b, v, w.depth))
}

// composite writes c, or null when it is a nil pointer.
func writeComposite[T any, P interface {
	*T
	Composite
}](w *fieldWriter, c P) {
	if c == nil {
		w.null()
		return
	}
	w.put(appendComposite(w.b, c, w.depth))
}

func (w *fieldWriter) state(s DeliveryState) {
	if s == nil {
		w.null()
		return
	}
	w.put(appendComposite(w.b, s, w.depth))
}

func appendSymbolArray(b []byte, syms []Symbol, depth int) ([]byte, error) {
	ctor := byte(codeSym8)
	for _, s := range syms {
		if err := checkSymbol(s); err != nil {
			return b, err
		}
		if len(s) > math.MaxUint8 {
			ctor = codeSym32
		}
	}
	start, b, err := startCompound(b, depth, formValue)
	if err != nil {
		return b, err
	}
	b = append(b, ctor)
	for _, s := range syms {
		b = appendSized(b, s, ctor == codeSym32)
	}
	return finishCompound(b, start, len(syms), codeArray8, codeArray32, formValue)
}
