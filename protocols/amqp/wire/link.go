package wire

// Role says which end of a link an endpoint is.
type Role bool

const (
	RoleSender   Role = false
	RoleReceiver Role = true
)

// SenderSettleMode is a link's snd-settle-mode.
type SenderSettleMode uint8

const (
	SndUnsettled SenderSettleMode = 0
	SndSettled   SenderSettleMode = 1
	SndMixed     SenderSettleMode = 2
)

// ReceiverSettleMode is a link's rcv-settle-mode.
type ReceiverSettleMode uint8

const (
	RcvFirst  ReceiverSettleMode = 0
	RcvSecond ReceiverSettleMode = 1
)

func (d *decoder) enumOf(code byte, start int, max uint8, what string) (uint8, error) {
	v, err := d.ubyteOf(code, start)
	if err == nil && v > max {
		err = d.errorf(start, "%s %d is not one the spec defines (0 to %d)", what, v, max)
	}
	return v, err
}

func (d *decoder) sndSettleModeOf(code byte, start int) (SenderSettleMode, error) {
	v, err := d.enumOf(code, start, uint8(SndMixed), "sender settle mode")
	return SenderSettleMode(v), err
}

func (d *decoder) rcvSettleModeOf(code byte, start int) (ReceiverSettleMode, error) {
	v, err := d.enumOf(code, start, uint8(RcvSecond), "receiver settle mode")
	return ReceiverSettleMode(v), err
}

func (d *decoder) roleOf(code byte, start int) (Role, error) {
	v, err := d.boolOf(code, start)
	return Role(v), err
}

// Attach attaches a link to a session.
type Attach struct {
	Name   string
	Handle uint32
	Role   Role
	// SndSettleMode decodes as SndMixed when absent.
	SndSettleMode SenderSettleMode
	RcvSettleMode ReceiverSettleMode
	Source        *Source
	// Target holds an ordinary target; a transactional link's target is a
	// coordinator instead, held in Coordinator. At most one is set.
	Target      *Target
	Coordinator *Coordinator
	// Unsettled maps delivery tags (binary) to delivery states, kept as
	// generic values since hamq does not resume links.
	Unsettled            Map
	IncompleteUnsettled  bool
	InitialDeliveryCount *uint32
	// MaxMessageSize is 0 when the link sets no limit.
	MaxMessageSize      uint64
	OfferedCapabilities []Symbol
	DesiredCapabilities []Symbol
	Properties          Fields
}

func (*Attach) Descriptor() uint64   { return descAttach }
func (*Attach) FrameType() FrameType { return FrameAMQP }

func (a *Attach) appendFields(w fieldWriter) fieldWriter {
	w.string(a.Name)
	w.uint(a.Handle)
	w.bool(bool(a.Role))
	w.ubyteOr(uint8(a.SndSettleMode), uint8(SndMixed))
	w.ubyteOr(uint8(a.RcvSettleMode), uint8(RcvFirst))
	writeComposite(&w, a.Source)
	switch {
	case a.Target != nil && a.Coordinator != nil:
		w.put(nil, encodeErrorf("attach has both a target and a coordinator"))
	case a.Coordinator != nil:
		writeComposite(&w, a.Coordinator)
	default:
		writeComposite(&w, a.Target)
	}
	if a.Unsettled == nil {
		w.null()
	} else {
		w.value(a.Unsettled)
	}
	w.boolOr(a.IncompleteUnsettled, false)
	w.optUint(a.InitialDeliveryCount)
	w.ulongOr(a.MaxMessageSize, 0)
	w.symbols(a.OfferedCapabilities)
	w.symbols(a.DesiredCapabilities)
	w.fields(a.Properties)
	return w
}

func (a *Attach) decodeFields(r fieldReader) fieldReader {
	a.Name = required(&r, "name", (*decoder).stringOf)
	a.Handle = required(&r, "handle", (*decoder).uintOf)
	a.Role = required(&r, "role", (*decoder).roleOf)
	a.SndSettleMode = field(&r, "snd-settle-mode", SndMixed, (*decoder).sndSettleModeOf)
	a.RcvSettleMode = field(&r, "rcv-settle-mode", RcvFirst, (*decoder).rcvSettleModeOf)
	a.Source = field(&r, "source", nil, newComposite[Source])
	a.Target, a.Coordinator = nil, nil
	if code, start, ok := r.next("target", false); ok {
		if err := r.d.targetOf(a, code, start); err != nil {
			r.fail("target", err)
		}
	}
	a.Unsettled = field(&r, "unsettled", nil, (*decoder).mapOf)
	a.IncompleteUnsettled = field(&r, "incomplete-unsettled", false, (*decoder).boolOf)
	a.InitialDeliveryCount = optional(&r, "initial-delivery-count", (*decoder).uintOf)
	a.MaxMessageSize = field(&r, "max-message-size", 0, (*decoder).ulongOf)
	a.OfferedCapabilities = field(&r, "offered-capabilities", nil, (*decoder).symbolsOf)
	a.DesiredCapabilities = field(&r, "desired-capabilities", nil, (*decoder).symbolsOf)
	a.Properties = field(&r, "properties", nil, (*decoder).fieldsOf)
	return r
}

// targetOf decodes an attach's target, which is a target or a coordinator.
func (d *decoder) targetOf(a *Attach, code byte, start int) error {
	got, err := d.describedHeader(code, start, "target or coordinator")
	if err != nil {
		return err
	}
	var c Composite
	switch got {
	case descTarget:
		a.Target = new(Target)
		c = a.Target
	case descCoordinator:
		a.Coordinator = new(Coordinator)
		c = a.Coordinator
	default:
		return d.errorf(start, "expected target or coordinator, found %s", descriptorName(got))
	}
	if err := d.fields(c); err != nil {
		return err
	}
	d.depth--
	return nil
}

// Flow updates session and, with a handle, link flow state.
type Flow struct {
	NextIncomingID *uint32
	IncomingWindow uint32
	NextOutgoingID uint32
	OutgoingWindow uint32
	// Handle, DeliveryCount, LinkCredit and Available are set only for link
	// flow state.
	Handle        *uint32
	DeliveryCount *uint32
	LinkCredit    *uint32
	Available     *uint32
	Drain         bool
	Echo          bool
	Properties    Fields
}

func (*Flow) Descriptor() uint64   { return descFlow }
func (*Flow) FrameType() FrameType { return FrameAMQP }

func (f *Flow) appendFields(w fieldWriter) fieldWriter {
	w.optUint(f.NextIncomingID)
	w.uint(f.IncomingWindow)
	w.uint(f.NextOutgoingID)
	w.uint(f.OutgoingWindow)
	w.optUint(f.Handle)
	w.optUint(f.DeliveryCount)
	w.optUint(f.LinkCredit)
	w.optUint(f.Available)
	w.boolOr(f.Drain, false)
	w.boolOr(f.Echo, false)
	w.fields(f.Properties)
	return w
}

func (f *Flow) decodeFields(r fieldReader) fieldReader {
	f.NextIncomingID = optional(&r, "next-incoming-id", (*decoder).uintOf)
	f.IncomingWindow = required(&r, "incoming-window", (*decoder).uintOf)
	f.NextOutgoingID = required(&r, "next-outgoing-id", (*decoder).uintOf)
	f.OutgoingWindow = required(&r, "outgoing-window", (*decoder).uintOf)
	f.Handle = optional(&r, "handle", (*decoder).uintOf)
	f.DeliveryCount = optional(&r, "delivery-count", (*decoder).uintOf)
	f.LinkCredit = optional(&r, "link-credit", (*decoder).uintOf)
	f.Available = optional(&r, "available", (*decoder).uintOf)
	f.Drain = field(&r, "drain", false, (*decoder).boolOf)
	f.Echo = field(&r, "echo", false, (*decoder).boolOf)
	f.Properties = field(&r, "properties", nil, (*decoder).fieldsOf)
	return r
}

// Transfer carries (part of) a message; the message's bytes are the frame's
// payload, after the performative.
type Transfer struct {
	Handle uint32
	// DeliveryID, DeliveryTag and MessageFormat may be left out on the
	// continuation transfers of a multi-frame delivery.
	DeliveryID    *uint32
	DeliveryTag   []byte
	MessageFormat *uint32
	Settled       bool
	More          bool
	// RcvSettleMode is nil when the link's mode applies.
	RcvSettleMode *ReceiverSettleMode
	State         DeliveryState
	Resume        bool
	Aborted       bool
	Batchable     bool
}

func (*Transfer) Descriptor() uint64   { return descTransfer }
func (*Transfer) FrameType() FrameType { return FrameAMQP }

func (t *Transfer) appendFields(w fieldWriter) fieldWriter {
	w.uint(t.Handle)
	w.optUint(t.DeliveryID)
	w.optBinary(t.DeliveryTag)
	w.optUint(t.MessageFormat)
	w.boolOr(t.Settled, false)
	w.boolOr(t.More, false)
	if t.RcvSettleMode == nil {
		w.null()
	} else {
		w.ubyte(uint8(*t.RcvSettleMode))
	}
	w.state(t.State)
	w.boolOr(t.Resume, false)
	w.boolOr(t.Aborted, false)
	w.boolOr(t.Batchable, false)
	return w
}

func (t *Transfer) decodeFields(r fieldReader) fieldReader {
	t.Handle = required(&r, "handle", (*decoder).uintOf)
	t.DeliveryID = optional(&r, "delivery-id", (*decoder).uintOf)
	t.DeliveryTag = field(&r, "delivery-tag", nil, (*decoder).binaryOf)
	t.MessageFormat = optional(&r, "message-format", (*decoder).uintOf)
	t.Settled = field(&r, "settled", false, (*decoder).boolOf)
	t.More = field(&r, "more", false, (*decoder).boolOf)
	t.RcvSettleMode = optional(&r, "rcv-settle-mode", (*decoder).rcvSettleModeOf)
	t.State = field(&r, "state", nil, (*decoder).stateOf)
	t.Resume = field(&r, "resume", false, (*decoder).boolOf)
	t.Aborted = field(&r, "aborted", false, (*decoder).boolOf)
	t.Batchable = field(&r, "batchable", false, (*decoder).boolOf)
	return r
}

// Disposition reports the state of a range of deliveries.
type Disposition struct {
	Role  Role
	First uint32
	// Last is nil when the range is First alone.
	Last      *uint32
	Settled   bool
	State     DeliveryState
	Batchable bool
}

func (*Disposition) Descriptor() uint64   { return descDisposition }
func (*Disposition) FrameType() FrameType { return FrameAMQP }

func (d *Disposition) appendFields(w fieldWriter) fieldWriter {
	w.bool(bool(d.Role))
	w.uint(d.First)
	w.optUint(d.Last)
	w.boolOr(d.Settled, false)
	w.state(d.State)
	w.boolOr(d.Batchable, false)
	return w
}

func (d *Disposition) decodeFields(r fieldReader) fieldReader {
	d.Role = required(&r, "role", (*decoder).roleOf)
	d.First = required(&r, "first", (*decoder).uintOf)
	d.Last = optional(&r, "last", (*decoder).uintOf)
	d.Settled = field(&r, "settled", false, (*decoder).boolOf)
	d.State = field(&r, "state", nil, (*decoder).stateOf)
	d.Batchable = field(&r, "batchable", false, (*decoder).boolOf)
	return r
}

// Detach detaches a link, closing it when Closed is set.
type Detach struct {
	Handle uint32
	Closed bool
	Error  *Error
}

func (*Detach) Descriptor() uint64   { return descDetach }
func (*Detach) FrameType() FrameType { return FrameAMQP }

func (d *Detach) appendFields(w fieldWriter) fieldWriter {
	w.uint(d.Handle)
	w.boolOr(d.Closed, false)
	writeComposite(&w, d.Error)
	return w
}

func (d *Detach) decodeFields(r fieldReader) fieldReader {
	d.Handle = required(&r, "handle", (*decoder).uintOf)
	d.Closed = field(&r, "closed", false, (*decoder).boolOf)
	d.Error = field(&r, "error", nil, newComposite[Error])
	return r
}
