package wire

import (
	"fmt"
	"math"
)

// Performative is what a frame carries: an AMQP performative (*Open, *Begin,
// *Attach, *Flow, *Transfer, *Disposition, *Detach, *End, *Close) or a SASL
// frame body (*SASLMechanisms, *SASLInit, *SASLChallenge, *SASLResponse,
// *SASLOutcome).
type Performative interface {
	Composite
	// FrameType is the type of frame that carries the performative.
	FrameType() FrameType
}

// MinMaxFrameSize is the largest frame a peer may send before open has been
// exchanged, and the least max-frame-size an open may state.
const MinMaxFrameSize = 512

// Open opens a connection.
type Open struct {
	ContainerID string
	Hostname    string
	// MaxFrameSize decodes as math.MaxUint32 when absent.
	MaxFrameSize uint32
	// ChannelMax decodes as math.MaxUint16 when absent.
	ChannelMax uint16
	// IdleTimeOut is in milliseconds; 0 means none.
	IdleTimeOut         uint32
	OutgoingLocales     []Symbol
	IncomingLocales     []Symbol
	OfferedCapabilities []Symbol
	DesiredCapabilities []Symbol
	Properties          Fields
}

func (*Open) Descriptor() uint64   { return descOpen }
func (*Open) FrameType() FrameType { return FrameAMQP }

func (o *Open) appendFields(w fieldWriter) fieldWriter {
	w.string(o.ContainerID)
	w.optString(o.Hostname)
	w.uintOr(o.MaxFrameSize, math.MaxUint32)
	w.ushortOr(o.ChannelMax, math.MaxUint16)
	w.uintOr(o.IdleTimeOut, 0)
	w.symbols(o.OutgoingLocales)
	w.symbols(o.IncomingLocales)
	w.symbols(o.OfferedCapabilities)
	w.symbols(o.DesiredCapabilities)
	w.fields(o.Properties)
	return w
}

func (o *Open) decodeFields(r fieldReader) fieldReader {
	o.ContainerID = required(&r, "container-id", (*decoder).stringOf)
	o.Hostname = field(&r, "hostname", "", (*decoder).stringOf)
	o.MaxFrameSize = field(&r, "max-frame-size", math.MaxUint32, (*decoder).uintOf)
	o.ChannelMax = field(&r, "channel-max", math.MaxUint16, (*decoder).ushortOf)
	o.IdleTimeOut = field(&r, "idle-time-out", 0, (*decoder).uintOf)
	o.OutgoingLocales = field(&r, "outgoing-locales", nil, (*decoder).symbolsOf)
	o.IncomingLocales = field(&r, "incoming-locales", nil, (*decoder).symbolsOf)
	o.OfferedCapabilities = field(&r, "offered-capabilities", nil, (*decoder).symbolsOf)
	o.DesiredCapabilities = field(&r, "desired-capabilities", nil, (*decoder).symbolsOf)
	o.Properties = field(&r, "properties", nil, (*decoder).fieldsOf)
	return r
}

// Begin begins a session.
type Begin struct {
	// RemoteChannel is set only when answering a peer's begin.
	RemoteChannel  *uint16
	NextOutgoingID uint32
	IncomingWindow uint32
	OutgoingWindow uint32
	// HandleMax decodes as math.MaxUint32 when absent.
	HandleMax           uint32
	OfferedCapabilities []Symbol
	DesiredCapabilities []Symbol
	Properties          Fields
}

func (*Begin) Descriptor() uint64   { return descBegin }
func (*Begin) FrameType() FrameType { return FrameAMQP }

func (b *Begin) appendFields(w fieldWriter) fieldWriter {
	w.optUshort(b.RemoteChannel)
	w.uint(b.NextOutgoingID)
	w.uint(b.IncomingWindow)
	w.uint(b.OutgoingWindow)
	w.uintOr(b.HandleMax, math.MaxUint32)
	w.symbols(b.OfferedCapabilities)
	w.symbols(b.DesiredCapabilities)
	w.fields(b.Properties)
	return w
}

func (b *Begin) decodeFields(r fieldReader) fieldReader {
	b.RemoteChannel = optional(&r, "remote-channel", (*decoder).ushortOf)
	b.NextOutgoingID = required(&r, "next-outgoing-id", (*decoder).uintOf)
	b.IncomingWindow = required(&r, "incoming-window", (*decoder).uintOf)
	b.OutgoingWindow = required(&r, "outgoing-window", (*decoder).uintOf)
	b.HandleMax = field(&r, "handle-max", math.MaxUint32, (*decoder).uintOf)
	b.OfferedCapabilities = field(&r, "offered-capabilities", nil, (*decoder).symbolsOf)
	b.DesiredCapabilities = field(&r, "desired-capabilities", nil, (*decoder).symbolsOf)
	b.Properties = field(&r, "properties", nil, (*decoder).fieldsOf)
	return r
}

// End ends a session.
type End struct {
	Error *Error
}

func (*End) Descriptor() uint64   { return descEnd }
func (*End) FrameType() FrameType { return FrameAMQP }
func (e *End) appendFields(w fieldWriter) fieldWriter {
	writeComposite(&w, e.Error)
	return w
}
func (e *End) decodeFields(r fieldReader) fieldReader {
	e.Error = field(&r, "error", nil, newComposite[Error])
	return r
}

// Close closes a connection.
type Close struct {
	Error *Error
}

func (*Close) Descriptor() uint64   { return descClose }
func (*Close) FrameType() FrameType { return FrameAMQP }
func (c *Close) appendFields(w fieldWriter) fieldWriter {
	writeComposite(&w, c.Error)
	return w
}
func (c *Close) decodeFields(r fieldReader) fieldReader {
	c.Error = field(&r, "error", nil, newComposite[Error])
	return r
}

// Error is the error an endpoint reports when it closes, ends, detaches or
// rejects. It is also a Go error, so a front-end can return it.
type Error struct {
	Condition   Symbol
	Description string
	Info        Fields
}

func (*Error) Descriptor() uint64 { return descError }

func (e *Error) Error() string {
	if e.Description == "" {
		return "amqp: " + string(e.Condition)
	}
	return fmt.Sprintf("amqp: %s: %s", e.Condition, e.Description)
}

func (e *Error) appendFields(w fieldWriter) fieldWriter {
	w.symbol(e.Condition)
	w.optString(e.Description)
	w.fields(e.Info)
	return w
}

func (e *Error) decodeFields(r fieldReader) fieldReader {
	e.Condition = required(&r, "condition", (*decoder).symbolOf)
	e.Description = field(&r, "description", "", (*decoder).stringOf)
	e.Info = field(&r, "info", nil, (*decoder).fieldsOf)
	return r
}

// Error conditions of the spec, for Error.Condition (part 2.8.15 to 2.8.18, and 4.5.8 for
// transactions).
const (
	CondInternalError         Symbol = "amqp:internal-error"
	CondNotFound              Symbol = "amqp:not-found"
	CondUnauthorizedAccess    Symbol = "amqp:unauthorized-access"
	CondDecodeError           Symbol = "amqp:decode-error"
	CondResourceLimitExceeded Symbol = "amqp:resource-limit-exceeded"
	CondNotAllowed            Symbol = "amqp:not-allowed"
	CondInvalidField          Symbol = "amqp:invalid-field"
	CondNotImplemented        Symbol = "amqp:not-implemented"
	CondResourceLocked        Symbol = "amqp:resource-locked"
	CondPreconditionFailed    Symbol = "amqp:precondition-failed"
	CondResourceDeleted       Symbol = "amqp:resource-deleted"
	CondIllegalState          Symbol = "amqp:illegal-state"
	CondFrameSizeTooSmall     Symbol = "amqp:frame-size-too-small"

	CondConnectionForced      Symbol = "amqp:connection:forced"
	CondFramingError          Symbol = "amqp:connection:framing-error"
	CondConnectionRedirect    Symbol = "amqp:connection:redirect"
	CondWindowViolation       Symbol = "amqp:session:window-violation"
	CondErrantLink            Symbol = "amqp:session:errant-link"
	CondHandleInUse           Symbol = "amqp:session:handle-in-use"
	CondUnattachedHandle      Symbol = "amqp:session:unattached-handle"
	CondDetachForced          Symbol = "amqp:link:detach-forced"
	CondTransferLimitExceeded Symbol = "amqp:link:transfer-limit-exceeded"
	CondMessageSizeExceeded   Symbol = "amqp:link:message-size-exceeded"
	CondLinkRedirect          Symbol = "amqp:link:redirect"
	CondLinkStolen            Symbol = "amqp:link:stolen"

	CondTransactionUnknownID Symbol = "amqp:transaction:unknown-id"
	CondTransactionRollback  Symbol = "amqp:transaction:rollback"
	CondTransactionTimeout   Symbol = "amqp:transaction:timeout"
)
