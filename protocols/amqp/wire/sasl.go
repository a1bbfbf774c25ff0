package wire

// SASLCode is the outcome of a SASL exchange.
type SASLCode uint8

const (
	SASLOK      SASLCode = 0 // authenticated
	SASLAuth    SASLCode = 1 // bad credentials
	SASLSys     SASLCode = 2 // system error
	SASLSysPerm SASLCode = 3 // unrecoverable system error
	SASLSysTemp SASLCode = 4 // transient system error
)

func (d *decoder) saslCodeOf(code byte, start int) (SASLCode, error) {
	v, err := d.enumOf(code, start, uint8(SASLSysTemp), "sasl code")
	return SASLCode(v), err
}

// SASLMechanisms lists the mechanisms the server offers.
type SASLMechanisms struct {
	Mechanisms []Symbol
}

func (*SASLMechanisms) Descriptor() uint64   { return descSASLMechanisms }
func (*SASLMechanisms) FrameType() FrameType { return FrameSASL }

func (s *SASLMechanisms) appendFields(w fieldWriter) fieldWriter {
	if s.Mechanisms == nil {
		// Mandatory: an empty list is still sent.
		w.symbols([]Symbol{})
		return w
	}
	w.symbols(s.Mechanisms)
	return w
}

func (s *SASLMechanisms) decodeFields(r fieldReader) fieldReader {
	s.Mechanisms = required(&r, "sasl-server-mechanisms", (*decoder).symbolsOf)
	return r
}

// SASLInit picks a mechanism and may carry its first response.
type SASLInit struct {
	Mechanism       Symbol
	InitialResponse []byte
	Hostname        string
}

func (*SASLInit) Descriptor() uint64   { return descSASLInit }
func (*SASLInit) FrameType() FrameType { return FrameSASL }

func (s *SASLInit) appendFields(w fieldWriter) fieldWriter {
	w.symbol(s.Mechanism)
	w.optBinary(s.InitialResponse)
	w.optString(s.Hostname)
	return w
}

func (s *SASLInit) decodeFields(r fieldReader) fieldReader {
	s.Mechanism = required(&r, "mechanism", (*decoder).symbolOf)
	s.InitialResponse = field(&r, "initial-response", nil, (*decoder).binaryOf)
	s.Hostname = field(&r, "hostname", "", (*decoder).stringOf)
	return r
}

// SASLChallenge carries a server challenge.
type SASLChallenge struct {
	Challenge []byte
}

func (*SASLChallenge) Descriptor() uint64   { return descSASLChallenge }
func (*SASLChallenge) FrameType() FrameType { return FrameSASL }
func (s *SASLChallenge) appendFields(w fieldWriter) fieldWriter {
	w.binary(s.Challenge)
	return w
}
func (s *SASLChallenge) decodeFields(r fieldReader) fieldReader {
	s.Challenge = required(&r, "challenge", (*decoder).binaryOf)
	return r
}

// SASLResponse carries a client response to a challenge.
type SASLResponse struct {
	Response []byte
}

func (*SASLResponse) Descriptor() uint64   { return descSASLResponse }
func (*SASLResponse) FrameType() FrameType { return FrameSASL }
func (s *SASLResponse) appendFields(w fieldWriter) fieldWriter {
	w.binary(s.Response)
	return w
}
func (s *SASLResponse) decodeFields(r fieldReader) fieldReader {
	s.Response = required(&r, "response", (*decoder).binaryOf)
	return r
}

// SASLOutcome ends the SASL exchange.
type SASLOutcome struct {
	Code           SASLCode
	AdditionalData []byte
}

func (*SASLOutcome) Descriptor() uint64   { return descSASLOutcome }
func (*SASLOutcome) FrameType() FrameType { return FrameSASL }

func (s *SASLOutcome) appendFields(w fieldWriter) fieldWriter {
	w.ubyte(uint8(s.Code))
	w.optBinary(s.AdditionalData)
	return w
}

func (s *SASLOutcome) decodeFields(r fieldReader) fieldReader {
	s.Code = required(&r, "code", (*decoder).saslCodeOf)
	s.AdditionalData = field(&r, "additional-data", nil, (*decoder).binaryOf)
	return r
}
