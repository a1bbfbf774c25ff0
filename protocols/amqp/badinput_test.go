package amqp

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"net"
	"slices"
	"testing"
	"time"

	"github.com/hamq/hamq/core"
	"github.com/hamq/hamq/protocols/amqp/wire"
)

// raw is a client that writes frames by hand, to break the protocol in ways
// real clients never do.
type raw struct {
	t  *testing.T
	nc net.Conn
	br *bufio.Reader
	fr *wire.FrameReader
}

func dialRaw(t *testing.T, addr string) *raw {
	t.Helper()
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	nc.SetDeadline(time.Now().Add(5 * time.Second))
	br := bufio.NewReader(nc)
	return &raw{t: t, nc: nc, br: br, fr: wire.NewFrameReader(br, 1<<20)}
}

func (r *raw) write(b []byte) {
	r.t.Helper()
	if _, err := r.nc.Write(b); err != nil {
		r.t.Fatal(err)
	}
}

func (r *raw) send(ch uint16, p wire.Performative, payload []byte) { r.write(frame(ch, p, payload)) }

// next reads the next performative, skipping empty frames.
func (r *raw) next() wire.Performative {
	r.t.Helper()
	for {
		f, err := r.fr.ReadFrame()
		if err != nil {
			r.t.Fatalf("read: %v", err)
		}
		if f.IsEmpty() {
			continue
		}
		p, _, err := wire.DecodePerformative(f)
		if err != nil {
			r.t.Fatal(err)
		}
		return p
	}
}

func (r *raw) header(want wire.ProtocolHeader) {
	r.t.Helper()
	h, err := wire.ReadProtocolHeader(r.br)
	if err != nil || h != want {
		r.t.Fatalf("protocol header %v (%v), want %v", h, err, want)
	}
}

// open runs the headers and open of a client without SASL, then begins a
// session on channel 0.
func (r *raw) open() {
	r.t.Helper()
	r.write(wire.AMQPHeader.Append(nil))
	r.header(wire.AMQPHeader)
	r.send(0, &wire.Open{ContainerID: "raw", MaxFrameSize: 1 << 20, ChannelMax: 10}, nil)
	if _, ok := r.next().(*wire.Open); !ok {
		r.t.Fatal("no open from the server")
	}
	r.send(0, &wire.Begin{IncomingWindow: 100, OutgoingWindow: 100, HandleMax: 10}, nil)
	if _, ok := r.next().(*wire.Begin); !ok {
		r.t.Fatal("no begin from the server")
	}
}

// expect reads performatives until one of want's type carries an error with
// the condition, and returns its description.
func expect[T interface {
	*wire.Close | *wire.End | *wire.Detach
	wire.Performative
}](r *raw, cond wire.Symbol) string {
	r.t.Helper()
	for {
		p := r.next()
		got, ok := p.(T)
		if !ok {
			continue
		}
		var e *wire.Error
		switch v := any(got).(type) {
		case *wire.Close:
			e = v.Error
		case *wire.End:
			e = v.Error
		case *wire.Detach:
			e = v.Error
		}
		if e == nil || e.Condition != cond {
			r.t.Fatalf("%T with error %v, want condition %s", got, e, cond)
		}
		return e.Description
	}
}

func TestBadInputClosesWithItsCondition(t *testing.T) {
	s := startServer(t, func(c *core.Config) { c.Users = map[string]string{"alice": "secret"} },
		func(o *Options) { o.MaxFrameSize = 4096; o.Credit = 2 })
	// A well-behaved client holds a link open through all of it.
	good := s.dial(t, nil)
	snd, rcv := good.sender(t, "queue://good", nil), good.receiver(t, "queue://good", nil)

	t.Run("wrong protocol header", func(t *testing.T) {
		r := dialRaw(t, s.addr)
		r.write([]byte("GET / HTTP/1.1\r\n\r\n"))
		r.header(wire.AMQPHeader)
		if _, err := r.br.ReadByte(); !errors.Is(err, io.EOF) {
			t.Errorf("after the header: %v, want the connection closed", err)
		}
	})
	t.Run("unsupported version", func(t *testing.T) {
		r := dialRaw(t, s.addr)
		r.write([]byte("AMQP\x00\x00\x09\x01")) // AMQP 0-9-1
		r.header(wire.AMQPHeader)
	})
	t.Run("bad SASL password", func(t *testing.T) {
		r := dialRaw(t, s.addr)
		r.write(wire.SASLHeader.Append(nil))
		r.header(wire.SASLHeader)
		if _, ok := r.next().(*wire.SASLMechanisms); !ok {
			t.Fatal("no sasl-mechanisms")
		}
		r.send(0, &wire.SASLInit{Mechanism: "PLAIN", InitialResponse: []byte("\x00alice\x00guess")}, nil)
		out, ok := r.next().(*wire.SASLOutcome)
		if !ok || out.Code != wire.SASLAuth {
			t.Fatalf("outcome %+v, want code auth", out)
		}
	})
	t.Run("unknown performative", func(t *testing.T) {
		r := dialRaw(t, s.addr)
		r.open()
		r.write([]byte{0, 0, 0, 12, 2, 0, 0, 0, 0x00, 0x53, 0x99, 0x45})
		if d := expect[*wire.Close](r, wire.CondDecodeError); !bytes.Contains([]byte(d), []byte("performative")) {
			t.Errorf("description %q does not name the performative", d)
		}
	})
	t.Run("frame over the negotiated size", func(t *testing.T) {
		r := dialRaw(t, s.addr)
		r.open()
		big := make([]byte, 8192)
		copy(big, []byte{0, 0, 0x20, 0, 2, 0, 0, 0})
		r.write(big)
		expect[*wire.Close](r, wire.CondFramingError)
	})
	t.Run("transfer on an unattached link", func(t *testing.T) {
		r := dialRaw(t, s.addr)
		r.open()
		id := uint32(0)
		r.send(0, &wire.Transfer{Handle: 7, DeliveryID: &id, DeliveryTag: []byte{1}}, []byte{0x00, 0x53, 0x77, 0x40})
		expect[*wire.End](r, wire.CondUnattachedHandle)
	})
	t.Run("credit violation", func(t *testing.T) {
		r := dialRaw(t, s.addr)
		r.open()
		zero := uint32(0)
		r.send(0, &wire.Attach{Name: "l", Handle: 0, Role: wire.RoleSender, SndSettleMode: wire.SndMixed,
			Source: &wire.Source{}, Target: &wire.Target{Address: "queue://raw"}, InitialDeliveryCount: &zero}, nil)
		// Aborted deliveries use credit without ever being confirmed, so
		// the server has no reason to grant more than its first two.
		for i := range uint32(3) {
			id := i
			r.send(0, &wire.Transfer{Handle: 0, DeliveryID: &id, DeliveryTag: []byte{byte(i)}, More: true}, []byte{0x00})
			r.send(0, &wire.Transfer{Handle: 0, Aborted: true}, nil)
		}
		expect[*wire.Detach](r, wire.CondTransferLimitExceeded)
	})
	t.Run("disposition of every delivery id", func(t *testing.T) {
		r := dialRaw(t, s.addr)
		r.open()
		last := uint32(1<<32 - 1)
		r.send(0, &wire.Disposition{Role: wire.RoleReceiver, First: 0, Last: &last, Settled: true, State: &wire.Accepted{}}, nil)
		// Answered at once, not after four billion ids.
		r.send(1, &wire.Begin{IncomingWindow: 100, OutgoingWindow: 100, HandleMax: 10}, nil)
		if _, ok := r.next().(*wire.Begin); !ok {
			t.Fatal("no begin from the server")
		}
	})

	send(t, snd, "still here")
	if m := receive(t, rcv); string(m.GetData()) != "still here" {
		t.Errorf("the other client got %q", m.GetData())
	}
}

func TestIdleTimeout(t *testing.T) {
	s := startServer(t, nil, func(o *Options) { o.IdleTimeout = 300 * time.Millisecond })
	r := dialRaw(t, s.addr)
	r.write(wire.AMQPHeader.Append(nil))
	r.header(wire.AMQPHeader)
	// The client asks for frames at least every 200 ms; it then goes
	// silent, so the server closes it after its own 300 ms.
	r.send(0, &wire.Open{ContainerID: "idle", MaxFrameSize: 1 << 20, ChannelMax: 10, IdleTimeOut: 200}, nil)
	open, ok := r.next().(*wire.Open)
	if !ok || open.IdleTimeOut != 300 {
		t.Fatalf("open %+v, want idle-time-out 300", open)
	}
	empties := 0
	for {
		f, err := r.fr.ReadFrame()
		if err != nil {
			t.Fatalf("read: %v", err)
		}
		if f.IsEmpty() {
			empties++
			continue
		}
		p, _, _ := wire.DecodePerformative(f)
		cl, ok := p.(*wire.Close)
		if !ok || cl.Error == nil || cl.Error.Condition != wire.CondResourceLimitExceeded {
			t.Fatalf("%T %+v, want close with amqp:resource-limit-exceeded", p, p)
		}
		break
	}
	if empties == 0 {
		t.Error("the server sent no empty frames to a client with an idle timeout")
	}
}

// A client asking for its container to have one connection (Qpid JMS with
// a client id set) is refused a second with invalid-field naming the
// container id, which Qpid JMS reports as InvalidClientIDException.
func TestSoleConnectionForContainer(t *testing.T) {
	s := startServer(t, nil, nil)
	open := func(container string, sole bool) (*raw, *wire.Open) {
		r := dialRaw(t, s.addr)
		r.write(wire.AMQPHeader.Append(nil))
		r.header(wire.AMQPHeader)
		o := &wire.Open{ContainerID: container, MaxFrameSize: 1 << 20}
		if sole {
			o.DesiredCapabilities = []wire.Symbol{soleConnection}
		}
		r.send(0, o, nil)
		reply, ok := r.next().(*wire.Open)
		if !ok {
			t.Fatal("no open from the server")
		}
		return r, reply
	}
	first, reply := open("jms-1", true)
	if !slices.Contains(reply.OfferedCapabilities, soleConnection) {
		t.Fatalf("offered capabilities %v", reply.OfferedCapabilities)
	}
	second, _ := open("jms-1", true)
	if c, ok := second.next().(*wire.Close); !ok || c.Error == nil || c.Error.Condition != wire.CondInvalidField ||
		c.Error.Info["invalid-field"] != wire.Symbol("container-id") {
		t.Fatalf("second connection of the container: %+v", c)
	}

	// Not asked for, the container id is anyone's; asked for, another
	// container's is not in the way.
	for _, other := range []struct {
		container string
		sole      bool
	}{{"jms-1", false}, {"jms-2", true}} {
		r, _ := open(other.container, other.sole)
		r.send(0, &wire.Begin{IncomingWindow: 100, OutgoingWindow: 100}, nil)
		if _, ok := r.next().(*wire.Begin); !ok {
			t.Fatalf("%+v: no begin", other)
		}
	}

	first.nc.Close()
	deadline := time.Now().Add(5 * time.Second)
	for {
		r, _ := open("jms-1", true)
		r.send(0, &wire.Begin{IncomingWindow: 100, OutgoingWindow: 100}, nil)
		if _, ok := r.next().(*wire.Begin); ok {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the container id stayed taken after its connection closed")
		}
		time.Sleep(10 * time.Millisecond)
	}
}
