package wire

// DeliveryState is the state of a delivery in a transfer or disposition, or
// a source's default outcome: *Received, *Accepted, *Rejected, *Released,
// *Modified, or for transactions *Declared and *TransactionalState.
type DeliveryState interface {
	Composite
	deliveryState()
}

func (d *decoder) stateOf(code byte, start int) (DeliveryState, error) {
	got, err := d.describedHeader(code, start, "delivery state")
	if err != nil {
		return nil, err
	}
	var s DeliveryState
	switch got {
	case descReceived:
		s = new(Received)
	case descAccepted:
		s = new(Accepted)
	case descRejected:
		s = new(Rejected)
	case descReleased:
		s = new(Released)
	case descModified:
		s = new(Modified)
	case descDeclared:
		s = new(Declared)
	case descTransactionalState:
		s = new(TransactionalState)
	default:
		return nil, d.errorf(start, "expected a delivery state, found %s", descriptorName(got))
	}
	if err := d.fields(s); err != nil {
		return nil, err
	}
	d.depth--
	return s, nil
}

// Received says how much of a partly transferred message has arrived, so a
// resumed delivery can continue from there.
type Received struct {
	SectionNumber uint32
	SectionOffset uint64
}

func (*Received) Descriptor() uint64 { return descReceived }
func (*Received) deliveryState()     {}

func (s *Received) appendFields(w fieldWriter) fieldWriter {
	w.uint(s.SectionNumber)
	w.put(appendUlong(w.b, s.SectionOffset), nil)
	return w
}

func (s *Received) decodeFields(r fieldReader) fieldReader {
	s.SectionNumber = required(&r, "section-number", (*decoder).uintOf)
	s.SectionOffset = required(&r, "section-offset", (*decoder).ulongOf)
	return r
}

// Accepted is the outcome of a message processed successfully.
type Accepted struct{}

func (*Accepted) Descriptor() uint64                     { return descAccepted }
func (*Accepted) deliveryState()                         {}
func (*Accepted) appendFields(w fieldWriter) fieldWriter { return w }
func (*Accepted) decodeFields(r fieldReader) fieldReader { return r }

// Rejected is the outcome of a message that is invalid and will not be
// processed.
type Rejected struct {
	Error *Error
}

func (*Rejected) Descriptor() uint64 { return descRejected }
func (*Rejected) deliveryState()     {}
func (s *Rejected) appendFields(w fieldWriter) fieldWriter {
	writeComposite(&w, s.Error)
	return w
}
func (s *Rejected) decodeFields(r fieldReader) fieldReader {
	s.Error = field(&r, "error", nil, newComposite[Error])
	return r
}

// Released is the outcome of a message not processed and free to go
// elsewhere.
type Released struct{}

func (*Released) Descriptor() uint64                     { return descReleased }
func (*Released) deliveryState()                         {}
func (*Released) appendFields(w fieldWriter) fieldWriter { return w }
func (*Released) decodeFields(r fieldReader) fieldReader { return r }

// Modified is the outcome of a message released with changes to apply.
type Modified struct {
	DeliveryFailed     bool
	UndeliverableHere  bool
	MessageAnnotations Fields
}

func (*Modified) Descriptor() uint64 { return descModified }
func (*Modified) deliveryState()     {}

func (s *Modified) appendFields(w fieldWriter) fieldWriter {
	w.boolOr(s.DeliveryFailed, false)
	w.boolOr(s.UndeliverableHere, false)
	w.fields(s.MessageAnnotations)
	return w
}

func (s *Modified) decodeFields(r fieldReader) fieldReader {
	s.DeliveryFailed = field(&r, "delivery-failed", false, (*decoder).boolOf)
	s.UndeliverableHere = field(&r, "undeliverable-here", false, (*decoder).boolOf)
	s.MessageAnnotations = field(&r, "message-annotations", nil, (*decoder).fieldsOf)
	return r
}
