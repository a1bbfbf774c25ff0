package amqp

import (
	"bytes"
	"testing"

	"github.com/hamq/hamq/core"
	"github.com/hamq/hamq/protocols/amqp/wire"
)

// controller is a raw client driving a coordinator link on handle 0; go-amqp
// has no transactions.
type controller struct {
	*raw
	nextID    uint32
	transfers []*wire.Transfer // the server's, read while waiting for a disposition
}

func newController(t *testing.T, s *testServer) *controller {
	r := dialRaw(t, s.addr)
	r.open()
	c := &controller{raw: r}
	c.attachCoordinator()
	return c
}

func (c *controller) attachCoordinator() {
	c.t.Helper()
	c.send(0, &wire.Attach{Name: "txn", Handle: 0, Role: wire.RoleSender, Source: &wire.Source{},
		Coordinator: &wire.Coordinator{Capabilities: []wire.Symbol{"amqp:local-transactions"}}}, nil)
	if a := c.attached(); a.Coordinator == nil {
		c.t.Fatalf("coordinator attach answered with %+v", a)
	}
}

// attached skips to the server's next attach.
func (c *controller) attached() *wire.Attach {
	c.t.Helper()
	for {
		if a, ok := c.next().(*wire.Attach); ok {
			return a
		}
	}
}

// transfer sends a one-frame delivery and returns the disposition answering it.
func (c *controller) transfer(handle uint32, m *wire.Message, state wire.DeliveryState) wire.DeliveryState {
	c.t.Helper()
	payload, err := wire.AppendMessage(nil, m)
	if err != nil {
		c.t.Fatal(err)
	}
	id := c.nextID
	c.nextID++
	format := uint32(0)
	c.send(0, &wire.Transfer{Handle: handle, DeliveryID: &id, DeliveryTag: []byte{byte(id)}, MessageFormat: &format, State: state}, payload)
	for {
		switch p := c.next().(type) {
		case *wire.Disposition:
			if p.First == id {
				return p.State
			}
		case *wire.Transfer:
			c.transfers = append(c.transfers, p)
		}
	}
}

// nextTransfer returns the server's next transfer.
func (c *controller) nextTransfer() *wire.Transfer {
	c.t.Helper()
	if len(c.transfers) > 0 {
		t := c.transfers[0]
		c.transfers = c.transfers[1:]
		return t
	}
	for {
		if t, ok := c.next().(*wire.Transfer); ok {
			return t
		}
	}
}

func (c *controller) declare() []byte {
	c.t.Helper()
	st := c.transfer(0, &wire.Message{Value: &wire.Declare{}, HasValue: true}, nil)
	d, ok := st.(*wire.Declared)
	if !ok {
		c.t.Fatalf("declare answered with %#v", st)
	}
	return d.TxnID
}

func (c *controller) discharge(id []byte, fail bool) wire.DeliveryState {
	c.t.Helper()
	return c.transfer(0, &wire.Message{Value: &wire.Discharge{TxnID: id, Fail: fail}, HasValue: true}, nil)
}

// Messages sent within a transaction reach their queue when it commits and
// never when it rolls back; deliveries accepted within one are acknowledged
// when it commits and come again when it rolls back.
func TestLocalTransactions(t *testing.T) {
	s := startServer(t, nil, nil)
	c := newController(t, s)
	queue := core.Destination{Kind: core.Queue, Name: "tx"}
	size := func() int64 {
		st, _ := s.b.Stats(queue)
		return st.Size
	}
	c.send(0, &wire.Attach{Name: "out", Handle: 1, Role: wire.RoleSender, Source: &wire.Source{},
		Target: &wire.Target{Address: "queue://tx"}}, nil)
	c.attached()
	body := func(s string) *wire.Message { return &wire.Message{Data: [][]byte{[]byte(s)}} }

	for _, fail := range []bool{true, false} {
		txn := c.declare()
		for _, m := range []string{"a", "b"} {
			st := c.transfer(1, body(m), &wire.TransactionalState{TxnID: txn})
			if ts, ok := st.(*wire.TransactionalState); !ok || !bytes.Equal(ts.TxnID, txn) {
				t.Fatalf("transactional send answered with %#v", st)
			} else if _, ok := ts.Outcome.(*wire.Accepted); !ok {
				t.Fatalf("transactional send's outcome %#v", ts.Outcome)
			}
		}
		if n := size(); n != 0 {
			t.Fatalf("%d messages on the queue before the transaction ends", n)
		}
		if st := c.discharge(txn, fail); !isAccepted(st) {
			t.Fatalf("discharge (fail %v) answered with %#v", fail, st)
		}
		want := int64(2)
		if fail {
			want = 0
		}
		if n := size(); n != want {
			t.Fatalf("discharged with fail %v: %d messages on the queue, want %d", fail, n, want)
		}
	}

	// Receive both, accept them in a transaction that rolls back, then in
	// one that commits.
	c.send(0, &wire.Attach{Name: "in", Handle: 2, Role: wire.RoleReceiver, Source: &wire.Source{Address: "queue://tx"}}, nil)
	c.attached()
	h, credit, count := uint32(2), uint32(10), uint32(0)
	next := uint32(1)
	c.send(0, &wire.Flow{Handle: &h, LinkCredit: &credit, DeliveryCount: &count, NextIncomingID: &next, IncomingWindow: 100, OutgoingWindow: 100}, nil)
	for _, fail := range []bool{true, false} {
		ids := []uint32{*c.nextTransfer().DeliveryID, *c.nextTransfer().DeliveryID}
		txn := c.declare()
		last := ids[1]
		c.send(0, &wire.Disposition{Role: wire.RoleReceiver, First: ids[0], Last: &last, Settled: true,
			State: &wire.TransactionalState{TxnID: txn, Outcome: &wire.Accepted{}}}, nil)
		if n := size(); n != 2 {
			t.Fatalf("%d messages on the queue while their acceptance is uncommitted, want 2", n)
		}
		if st := c.discharge(txn, fail); !isAccepted(st) {
			t.Fatalf("discharge (fail %v) answered with %#v", fail, st)
		}
		if !fail {
			if n := size(); n != 0 {
				t.Fatalf("%d messages on the queue after their acceptance committed", n)
			}
		}
		// Rolled back, both come again: the loop receives them.
	}

	// What the coordinator cannot do is refused with its condition, and
	// the link goes on.
	for _, bad := range []struct {
		what string
		m    *wire.Message
		cond wire.Symbol
	}{
		{"discharge of an unknown transaction", &wire.Message{Value: &wire.Discharge{TxnID: []byte("no-such")}, HasValue: true}, wire.CondTransactionUnknownID},
		{"distributed transaction", &wire.Message{Value: &wire.Declare{GlobalID: []byte("g")}, HasValue: true}, wire.CondNotImplemented},
		{"neither declare nor discharge", &wire.Message{Value: "commit please", HasValue: true}, wire.CondDecodeError},
	} {
		if st, ok := c.transfer(0, bad.m, nil).(*wire.Rejected); !ok || st.Error == nil || st.Error.Condition != bad.cond {
			t.Fatalf("%s answered with %#v, want rejected %s", bad.what, st, bad.cond)
		}
	}
	if txn := c.declare(); len(txn) == 0 {
		t.Fatal("empty transaction id")
	}
}

// A transaction the controller leaves open rolls back when its coordinator
// link closes.
func TestOpenTransactionRollsBackWithItsLink(t *testing.T) {
	s := startServer(t, nil, nil)
	c := newController(t, s)
	c.send(0, &wire.Attach{Name: "out", Handle: 1, Role: wire.RoleSender, Source: &wire.Source{},
		Target: &wire.Target{Address: "queue://tx"}}, nil)
	c.attached()
	txn := c.declare()
	c.transfer(1, &wire.Message{Data: [][]byte{[]byte("x")}}, &wire.TransactionalState{TxnID: txn})
	c.send(0, &wire.Detach{Handle: 0, Closed: true}, nil)
	for {
		if d, ok := c.next().(*wire.Detach); ok && d.Handle == 0 {
			break
		}
	}
	c.attachCoordinator()
	if st, ok := c.discharge(txn, false).(*wire.Rejected); !ok || st.Error == nil || st.Error.Condition != wire.CondTransactionUnknownID {
		t.Fatalf("committing the rolled-back transaction answered with %#v", st)
	}
	if st, _ := s.b.Stats(core.Destination{Kind: core.Queue, Name: "tx"}); st.Size != 0 {
		t.Fatalf("%d messages on the queue from a rolled-back transaction", st.Size)
	}
}

func isAccepted(st wire.DeliveryState) bool {
	_, ok := st.(*wire.Accepted)
	return ok
}
