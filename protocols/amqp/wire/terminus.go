package wire

// Durability is a terminus-durability: what of a terminus survives.
type Durability uint32

const (
	DurableNone           Durability = 0
	DurableConfiguration  Durability = 1
	DurableUnsettledState Durability = 2
)

// Terminus expiry policies.
const (
	ExpiryLinkDetach      Symbol = "link-detach"
	ExpirySessionEnd      Symbol = "session-end"
	ExpiryConnectionClose Symbol = "connection-close"
	ExpiryNever           Symbol = "never"
)

// Distribution modes of a source.
const (
	DistributionMove Symbol = "move"
	DistributionCopy Symbol = "copy"
)

func (d *decoder) durabilityOf(code byte, start int) (Durability, error) {
	v, err := d.uintOf(code, start)
	if err == nil && v > uint32(DurableUnsettledState) {
		err = d.errorf(start, "terminus durability %d is not one the spec defines (0 to 2)", v)
	}
	return Durability(v), err
}

// Source is the source terminus of a link.
type Source struct {
	Address string
	Durable Durability
	// ExpiryPolicy decodes as ExpirySessionEnd when absent; an empty one is
	// sent as absent.
	ExpiryPolicy Symbol
	// Timeout is in seconds.
	Timeout               uint32
	Dynamic               bool
	DynamicNodeProperties Fields
	DistributionMode      Symbol
	// Filter maps filter names to filters, normally described values such
	// as a JMS selector.
	Filter         Fields
	DefaultOutcome DeliveryState
	Outcomes       []Symbol
	Capabilities   []Symbol
}

func (*Source) Descriptor() uint64 { return descSource }

func (s *Source) appendFields(w fieldWriter) fieldWriter {
	w.optString(s.Address)
	w.uintOr(uint32(s.Durable), 0)
	w.symbolOr(s.ExpiryPolicy, ExpirySessionEnd)
	w.uintOr(s.Timeout, 0)
	w.boolOr(s.Dynamic, false)
	w.fields(s.DynamicNodeProperties)
	w.symbolOr(s.DistributionMode, "")
	w.fields(s.Filter)
	w.state(s.DefaultOutcome)
	w.symbols(s.Outcomes)
	w.symbols(s.Capabilities)
	return w
}

func (s *Source) decodeFields(r fieldReader) fieldReader {
	s.Address = field(&r, "address", "", (*decoder).stringOf)
	s.Durable = field(&r, "durable", DurableNone, (*decoder).durabilityOf)
	s.ExpiryPolicy = field(&r, "expiry-policy", ExpirySessionEnd, (*decoder).symbolOf)
	s.Timeout = field(&r, "timeout", 0, (*decoder).uintOf)
	s.Dynamic = field(&r, "dynamic", false, (*decoder).boolOf)
	s.DynamicNodeProperties = field(&r, "dynamic-node-properties", nil, (*decoder).fieldsOf)
	s.DistributionMode = field(&r, "distribution-mode", "", (*decoder).symbolOf)
	s.Filter = field(&r, "filter", nil, (*decoder).fieldsOf)
	s.DefaultOutcome = field(&r, "default-outcome", nil, (*decoder).stateOf)
	s.Outcomes = field(&r, "outcomes", nil, (*decoder).symbolsOf)
	s.Capabilities = field(&r, "capabilities", nil, (*decoder).symbolsOf)
	return r
}

// Target is the target terminus of a link.
type Target struct {
	Address string
	Durable Durability
	// ExpiryPolicy decodes as ExpirySessionEnd when absent; an empty one is
	// sent as absent.
	ExpiryPolicy Symbol
	// Timeout is in seconds.
	Timeout               uint32
	Dynamic               bool
	DynamicNodeProperties Fields
	Capabilities          []Symbol
}

func (*Target) Descriptor() uint64 { return descTarget }

func (t *Target) appendFields(w fieldWriter) fieldWriter {
	w.optString(t.Address)
	w.uintOr(uint32(t.Durable), 0)
	w.symbolOr(t.ExpiryPolicy, ExpirySessionEnd)
	w.uintOr(t.Timeout, 0)
	w.boolOr(t.Dynamic, false)
	w.fields(t.DynamicNodeProperties)
	w.symbols(t.Capabilities)
	return w
}

func (t *Target) decodeFields(r fieldReader) fieldReader {
	t.Address = field(&r, "address", "", (*decoder).stringOf)
	t.Durable = field(&r, "durable", DurableNone, (*decoder).durabilityOf)
	t.ExpiryPolicy = field(&r, "expiry-policy", ExpirySessionEnd, (*decoder).symbolOf)
	t.Timeout = field(&r, "timeout", 0, (*decoder).uintOf)
	t.Dynamic = field(&r, "dynamic", false, (*decoder).boolOf)
	t.DynamicNodeProperties = field(&r, "dynamic-node-properties", nil, (*decoder).fieldsOf)
	t.Capabilities = field(&r, "capabilities", nil, (*decoder).symbolsOf)
	return r
}

// Coordinator is the target of a transactional link (part 4.5.1).
type Coordinator struct {
	Capabilities []Symbol
}

func (*Coordinator) Descriptor() uint64 { return descCoordinator }

func (c *Coordinator) appendFields(w fieldWriter) fieldWriter {
	w.symbols(c.Capabilities)
	return w
}

func (c *Coordinator) decodeFields(r fieldReader) fieldReader {
	c.Capabilities = field(&r, "capabilities", nil, (*decoder).symbolsOf)
	return r
}
