package amqp

import (
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/hamq/hamq/core"
	"github.com/hamq/hamq/protocols/amqp/wire"
)

// Local transactions (AMQP part 4) are the connection's core session's: a
// controller declares one on a coordinator link, sends messages whose
// transfers carry its id, accepts deliveries by dispositions naming it,
// then discharges it. Committing returns once what it sent and acknowledged
// is durable, as STOMP's COMMIT does. Only acceptance is transactional: a
// released, modified or rejected delivery is settled at once, since none
// of them takes a message away.

// txnCapabilities are what the coordinator offers: transactions local to
// the broker, several at once on a session, one spanning the connection's
// sessions.
var txnCapabilities = []wire.Symbol{"amqp:local-transactions", "amqp:multi-txns-per-ssn", "amqp:multi-ssns-per-txn"}

// coordinate runs a Declare or Discharge the controller sent on a
// coordinator link and answers it: Declared, Accepted, or Rejected with
// the transaction error.
func (l *link) coordinate(in *incoming) {
	c := l.s.c
	state, until, err := l.control(in.payload)
	if err != nil {
		c.srv.log.Info("transaction refused", "remote", c.nc.RemoteAddr(), "condition", err.Condition, "err", err.Description)
		state = &wire.Rejected{Error: err}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if !in.settled {
		c.sendUntil(l.s.channel, &wire.Disposition{Role: wire.RoleReceiver, First: in.id, Settled: true, State: state}, until)
	}
	l.topUp()
}

// control runs a Declare or a Discharge; until is when a committed
// discharge's acceptance goes stale (core.Confirmation.ValidUntil).
func (l *link) control(payload []byte) (state wire.DeliveryState, until time.Time, werr *wire.Error) {
	c := l.s.c
	m, err := wire.DecodeMessage(payload)
	if err != nil {
		return nil, until, &wire.Error{Condition: wire.CondDecodeError, Description: err.Error()}
	}
	var declare wire.Declare
	var discharge wire.Discharge
	switch {
	case wire.DescribedAs(m.Value, &declare) == nil:
		if declare.GlobalID != nil {
			return nil, until, &wire.Error{Condition: wire.CondNotImplemented, Description: "distributed transactions are not supported"}
		}
		c.txnSeq++
		id := strconv.FormatUint(c.txnSeq, 10)
		if err := c.sess.Begin(id); err != nil {
			return nil, until, &wire.Error{Condition: condition(err), Description: err.Error()}
		}
		c.mu.Lock()
		l.txns[id] = struct{}{}
		c.mu.Unlock()
		return &wire.Declared{TxnID: []byte(id)}, until, nil
	case wire.DescribedAs(m.Value, &discharge) == nil:
		id := string(discharge.TxnID)
		c.mu.Lock()
		delete(l.txns, id)
		c.mu.Unlock()
		var err error
		if discharge.Fail {
			err = c.sess.Abort(id)
		} else {
			var conf core.Confirmation
			if conf, err = c.sess.Commit(c.ctx, id); err == nil {
				err = conf.Wait(c.ctx)
				until = conf.ValidUntil()
			}
		}
		switch {
		case errors.Is(err, core.ErrUnknownTransaction):
			return nil, until, &wire.Error{Condition: wire.CondTransactionUnknownID, Description: fmt.Sprintf("no transaction %q", id)}
		case err != nil:
			return nil, until, &wire.Error{Condition: wire.CondTransactionRollback, Description: err.Error()}
		}
		return &wire.Accepted{}, until, nil
	}
	return nil, until, &wire.Error{Condition: wire.CondDecodeError, Description: "a coordinator takes declare and discharge messages"}
}

// abortOpen rolls back what a closing coordinator link declared and never
// discharged.
func (l *link) abortOpen() {
	c := l.s.c
	c.mu.Lock()
	ids := make([]string, 0, len(l.txns))
	for id := range l.txns {
		ids = append(ids, id)
	}
	clear(l.txns)
	c.mu.Unlock()
	for _, id := range ids {
		c.sess.Abort(id)
	}
}

// sendInTxn adds a message to the transaction its transfer names; it is
// accepted, as part of that transaction, at once.
func (l *link) sendInTxn(in *incoming, ts *wire.TransactionalState, m *core.Message) error {
	c := l.s.c
	if err := c.sess.Send(c.ctx, string(ts.TxnID), m); err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if !in.settled {
		c.send(l.s.channel, &wire.Disposition{Role: wire.RoleReceiver, First: in.id, Settled: true,
			State: &wire.TransactionalState{TxnID: ts.TxnID, Outcome: &wire.Accepted{}}})
	}
	l.topUp()
	return nil
}
