package wire

// The transaction types of part 4. A controller attaches a link whose target
// is a Coordinator, sends Declare and Discharge as amqp-value message bodies
// (read them from Message.Value with DescribedAs), and learns the outcome
// from a disposition carrying Declared, or a TransactionalState for work
// done inside a transaction.

// Declare asks the coordinator to begin a transaction.
type Declare struct {
	// GlobalID is for distributed transactions, which hamq does not offer.
	GlobalID any
}

func (*Declare) Descriptor() uint64 { return descDeclare }
func (t *Declare) appendFields(w fieldWriter) fieldWriter {
	w.value(t.GlobalID)
	return w
}
func (t *Declare) decodeFields(r fieldReader) fieldReader {
	t.GlobalID = field(&r, "global-id", nil, (*decoder).anyOf)
	return r
}

// Discharge asks the coordinator to end a transaction, rolling it back when
// Fail is set.
type Discharge struct {
	TxnID []byte
	Fail  bool
}

func (*Discharge) Descriptor() uint64 { return descDischarge }

func (t *Discharge) appendFields(w fieldWriter) fieldWriter {
	w.binary(t.TxnID)
	w.boolOr(t.Fail, false)
	return w
}

func (t *Discharge) decodeFields(r fieldReader) fieldReader {
	t.TxnID = required(&r, "txn-id", (*decoder).binaryOf)
	t.Fail = field(&r, "fail", false, (*decoder).boolOf)
	return r
}

// Declared is the outcome of a Declare, naming the new transaction.
type Declared struct {
	TxnID []byte
}

func (*Declared) Descriptor() uint64 { return descDeclared }
func (*Declared) deliveryState()     {}
func (t *Declared) appendFields(w fieldWriter) fieldWriter {
	w.binary(t.TxnID)
	return w
}
func (t *Declared) decodeFields(r fieldReader) fieldReader {
	t.TxnID = required(&r, "txn-id", (*decoder).binaryOf)
	return r
}

// TransactionalState is the state of a delivery taking part in a
// transaction, with the outcome it will have if the transaction commits.
type TransactionalState struct {
	TxnID   []byte
	Outcome DeliveryState
}

func (*TransactionalState) Descriptor() uint64 { return descTransactionalState }
func (*TransactionalState) deliveryState()     {}

func (t *TransactionalState) appendFields(w fieldWriter) fieldWriter {
	w.binary(t.TxnID)
	w.state(t.Outcome)
	return w
}

func (t *TransactionalState) decodeFields(r fieldReader) fieldReader {
	t.TxnID = required(&r, "txn-id", (*decoder).binaryOf)
	t.Outcome = field(&r, "outcome", nil, (*decoder).stateOf)
	return r
}
