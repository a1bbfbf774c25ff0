// Package wire is the AMQP 1.0 wire layer hamq's AMQP front-end builds on: the
// type system (OASIS AMQP 1.0 part 1), frames and protocol headers (part 2.3),
// the performatives, SASL frames, delivery states, termini, transaction types
// and message sections, each with an encoder and a decoder. It is pure code:
// it reads from an io.Reader and appends to byte slices, and owns no
// connection, goroutine or policy. It imports only the standard library and
// must never import core, the store or any other hamq package.
//
// # Values
//
// A decoded AMQP value is an `any` holding exactly one of these Go types, so a
// server can take it apart with a type switch:
//
//	null        nil
//	boolean     bool
//	ubyte       uint8        byte      int8
//	ushort      uint16       short     int16
//	uint        uint32       int       int32
//	ulong       uint64       long      int64
//	float       float32      double    float64
//	decimal32   Decimal32    (and Decimal64, Decimal128: raw IEEE 754 bytes)
//	char        Char         timestamp Timestamp (ms since the Unix epoch)
//	uuid        UUID         binary    []byte
//	string      string       symbol    Symbol
//	list        []any        map       Map (ordered key/value pairs)
//	array       Array        described Described
//
// Every width of a type decodes to the same Go type (uint0, smalluint and uint
// are all uint32), and the encoder always picks the smallest width, so
// re-encoding a decoded value may change its bytes but never its value.
// Maps are slices of entries, not Go maps, because AMQP keys may be binaries
// or lists, which Go cannot hash. Where the spec fixes the key type, the typed
// fields use Go maps instead: Fields (symbol keys), Annotations (symbol or
// ulong keys) and map[string]any for application properties. The encoder also
// accepts those three, and any Composite, inside a value; it writes Go maps in
// sorted key order so that output is deterministic.
//
// Decoded binaries alias the input: keep the input unmodified while they are
// in use. FrameReader returns a fresh body for every frame, so that holds
// without care.
//
// # Composites
//
// Performatives, SASL frames, delivery states, termini, errors and the header
// and properties sections are structs implementing Composite. Decoding fills
// absent and null fields with the spec's defaults, so a decoded struct holds
// effective values; encoding leaves out fields equal to their default. Where
// absence means something a default cannot express (Flow.Handle,
// Transfer.DeliveryID, ...) the field is a pointer. A few defaults are not Go
// zero values (Open.MaxFrameSize, Open.ChannelMax, Begin.HandleMax,
// Attach.SndSettleMode, Header.Priority): set them when building a struct.
//
// # Hostile input
//
// Decoding never panics and allocates in proportion to the input: every size
// and count is checked against the bytes actually remaining before anything
// is allocated, nested containers may not overrun their parent, nesting is
// bounded by MaxDepth, strings must be UTF-8 and symbols ASCII. Errors are
// *DecodeError values giving the offset of the fault. FrameReader rejects a
// frame larger than the caller's maximum before reading its body, and grows
// large bodies only as their bytes arrive.
package wire
