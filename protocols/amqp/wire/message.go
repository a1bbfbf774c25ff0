package wire

// Message is an AMQP message as a transfer carries it: its sections in the
// order part 3.2 fixes. Header, annotations and footer belong to the
// transfer; the rest is the bare message, which the broker must not alter.
type Message struct {
	Header                *Header
	DeliveryAnnotations   Annotations
	MessageAnnotations    Annotations
	Properties            *Properties
	ApplicationProperties map[string]any
	// The body is one or more data sections, one or more amqp-sequence
	// sections, or one amqp-value section: at most one of Data, Sequence
	// and HasValue is set. Value may be nil when HasValue is set.
	Data     [][]byte
	Sequence [][]any
	Value    any
	HasValue bool
	Footer   Annotations
}

// Header is the message header section.
type Header struct {
	Durable bool
	// Priority decodes as 4 when absent.
	Priority uint8
	// TTL is in milliseconds; nil means the message does not expire.
	TTL           *uint32
	FirstAcquirer bool
	DeliveryCount uint32
}

func (*Header) Descriptor() uint64 { return descHeader }

func (h *Header) appendFields(w fieldWriter) fieldWriter {
	w.boolOr(h.Durable, false)
	w.ubyteOr(h.Priority, 4)
	w.optUint(h.TTL)
	w.boolOr(h.FirstAcquirer, false)
	w.uintOr(h.DeliveryCount, 0)
	return w
}

func (h *Header) decodeFields(r fieldReader) fieldReader {
	h.Durable = field(&r, "durable", false, (*decoder).boolOf)
	h.Priority = field(&r, "priority", 4, (*decoder).ubyteOf)
	h.TTL = optional(&r, "ttl", (*decoder).uintOf)
	h.FirstAcquirer = field(&r, "first-acquirer", false, (*decoder).boolOf)
	h.DeliveryCount = field(&r, "delivery-count", 0, (*decoder).uintOf)
	return r
}

// Properties is the message properties section.
type Properties struct {
	// MessageID and CorrelationID are uint64, UUID, []byte or string in
	// the spec; any value a peer sends is kept.
	MessageID          any
	UserID             []byte
	To                 string
	Subject            string
	ReplyTo            string
	CorrelationID      any
	ContentType        Symbol
	ContentEncoding    Symbol
	AbsoluteExpiryTime *Timestamp
	CreationTime       *Timestamp
	GroupID            string
	GroupSequence      *uint32
	ReplyToGroupID     string
}

func (*Properties) Descriptor() uint64 { return descProperties }

func (p *Properties) appendFields(w fieldWriter) fieldWriter {
	w.value(p.MessageID)
	w.optBinary(p.UserID)
	w.optString(p.To)
	w.optString(p.Subject)
	w.optString(p.ReplyTo)
	w.value(p.CorrelationID)
	w.symbolOr(p.ContentType, "")
	w.symbolOr(p.ContentEncoding, "")
	w.optTimestamp(p.AbsoluteExpiryTime)
	w.optTimestamp(p.CreationTime)
	w.optString(p.GroupID)
	w.optUint(p.GroupSequence)
	w.optString(p.ReplyToGroupID)
	return w
}

func (p *Properties) decodeFields(r fieldReader) fieldReader {
	p.MessageID = field(&r, "message-id", nil, (*decoder).anyOf)
	p.UserID = field(&r, "user-id", nil, (*decoder).binaryOf)
	p.To = field(&r, "to", "", (*decoder).stringOf)
	p.Subject = field(&r, "subject", "", (*decoder).stringOf)
	p.ReplyTo = field(&r, "reply-to", "", (*decoder).stringOf)
	p.CorrelationID = field(&r, "correlation-id", nil, (*decoder).anyOf)
	p.ContentType = field(&r, "content-type", "", (*decoder).symbolOf)
	p.ContentEncoding = field(&r, "content-encoding", "", (*decoder).symbolOf)
	p.AbsoluteExpiryTime = optional(&r, "absolute-expiry-time", (*decoder).timestampOf)
	p.CreationTime = optional(&r, "creation-time", (*decoder).timestampOf)
	p.GroupID = field(&r, "group-id", "", (*decoder).stringOf)
	p.GroupSequence = optional(&r, "group-sequence", (*decoder).uintOf)
	p.ReplyToGroupID = field(&r, "reply-to-group-id", "", (*decoder).stringOf)
	return r
}

// sectionRank orders the sections; body sections share a rank.
func sectionRank(code uint64) int {
	switch code {
	case descHeader:
		return 0
	case descDeliveryAnnotations:
		return 1
	case descMessageAnnotations:
		return 2
	case descProperties:
		return 3
	case descApplicationProperties:
		return 4
	case descData, descAMQPSequence, descAMQPValue:
		return 5
	case descFooter:
		return 6
	}
	return -1
}

// DecodeMessage decodes the sections of a message: the payloads of a
// delivery's transfers, joined. Data sections alias b.
func DecodeMessage(b []byte) (*Message, error) {
	d := newDecoder(b)
	m := new(Message)
	last, lastCode := -1, uint64(0)
	for d.off < d.end {
		start := d.off
		code, _ := d.u8("section")
		got, err := d.describedHeader(code, start, "message section")
		if err != nil {
			return nil, err
		}
		rank := sectionRank(got)
		switch {
		case rank < 0:
			return nil, d.errorf(start, "%s is not a message section", descriptorName(got))
		case rank < last, rank == last && (got != lastCode || got == descAMQPValue || rank != 5):
			return nil, d.errorf(start, "%s section after %s", descriptorName(got), descriptorName(lastCode))
		}
		last, lastCode = rank, got
		if got == descHeader || got == descProperties {
			c := Composite(new(Header))
			if got == descProperties {
				c = new(Properties)
			}
			if err := d.fields(c); err != nil {
				return nil, err
			}
			d.depth--
			if h, ok := c.(*Header); ok {
				m.Header = h
			} else {
				m.Properties = c.(*Properties)
			}
			continue
		}
		vstart := d.off
		vcode, err := d.u8(descriptorName(got))
		if err != nil {
			return nil, err
		}
		switch got {
		case descDeliveryAnnotations:
			m.DeliveryAnnotations, err = d.annotationsOf(vcode, vstart)
		case descMessageAnnotations:
			m.MessageAnnotations, err = d.annotationsOf(vcode, vstart)
		case descApplicationProperties:
			m.ApplicationProperties, err = d.stringMapOf(vcode, vstart)
		case descData:
			var data []byte
			data, err = d.binaryOf(vcode, vstart)
			m.Data = append(m.Data, data)
		case descAMQPSequence:
			var seq []any
			seq, err = d.listOf(vcode, vstart)
			m.Sequence = append(m.Sequence, seq)
		case descAMQPValue:
			m.Value, err = d.anyOf(vcode, vstart)
			m.HasValue = true
		case descFooter:
			m.Footer, err = d.annotationsOf(vcode, vstart)
		}
		if err != nil {
			return nil, err
		}
		d.depth--
	}
	return m, nil
}

// AppendMessage appends the sections of m to b.
func AppendMessage(b []byte, m *Message) ([]byte, error) {
	bodies := 0
	for _, set := range []bool{len(m.Data) > 0, len(m.Sequence) > 0, m.HasValue} {
		if set {
			bodies++
		}
	}
	if bodies > 1 {
		return b, encodeErrorf("message has more than one kind of body")
	}
	start := len(b)
	var err error
	section := func(code byte, v any) {
		if err == nil {
			b, err = appendValue(append(b, codeDescribed, codeSmallUlong, code), v, 1)
		}
	}
	if m.Header != nil {
		b, err = appendComposite(b, m.Header, 0)
	}
	if m.DeliveryAnnotations != nil {
		section(descDeliveryAnnotations, m.DeliveryAnnotations)
	}
	if m.MessageAnnotations != nil {
		section(descMessageAnnotations, m.MessageAnnotations)
	}
	if m.Properties != nil && err == nil {
		b, err = appendComposite(b, m.Properties, 0)
	}
	if m.ApplicationProperties != nil {
		section(descApplicationProperties, m.ApplicationProperties)
	}
	for _, data := range m.Data {
		section(descData, data)
	}
	for _, seq := range m.Sequence {
		section(descAMQPSequence, seq)
	}
	if m.HasValue {
		section(descAMQPValue, m.Value)
	}
	if m.Footer != nil {
		section(descFooter, m.Footer)
	}
	if err != nil {
		return b[:start], err
	}
	return b, nil
}
