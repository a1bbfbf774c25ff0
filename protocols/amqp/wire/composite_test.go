package wire

import (
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"reflect"
	"strings"
	"testing"
)

func ptr[T any](v T) *T { return &v }

var testError = &Error{
	Condition:   CondResourceLimitExceeded,
	Description: "queue full",
	Info:        Fields{"limit": uint64(1000)},
}

// Every performative with every field set to something other than its
// default.
var fullPerformatives = []Performative{
	&Open{
		ContainerID: "hamq-1", Hostname: "broker.example", MaxFrameSize: 65536, ChannelMax: 255,
		IdleTimeOut: 30000, OutgoingLocales: []Symbol{"en-US"}, IncomingLocales: []Symbol{"en-US", "fr"},
		OfferedCapabilities: []Symbol{"ANONYMOUS-RELAY"}, DesiredCapabilities: []Symbol{"DELAYED_DELIVERY"},
		Properties: Fields{"product": "hamq", "version": "1.0"},
	},
	&Begin{
		RemoteChannel: ptr(uint16(3)), NextOutgoingID: 1, IncomingWindow: 2048, OutgoingWindow: math.MaxUint32,
		HandleMax: 1023, OfferedCapabilities: []Symbol{"a"}, DesiredCapabilities: []Symbol{"b"},
		Properties: Fields{"k": int32(-5)},
	},
	&Attach{
		Name: "sender-link", Handle: 7, Role: RoleReceiver, SndSettleMode: SndUnsettled, RcvSettleMode: RcvSecond,
		Source: &Source{
			Address: "topic://sensors.temp", Durable: DurableUnsettledState, ExpiryPolicy: ExpiryNever,
			Timeout: 60, Dynamic: true,
			DynamicNodeProperties: Fields{"lifetime-policy": Described{uint64(0x2b), []any{}}},
			DistributionMode:      DistributionCopy,
			Filter: Fields{"jms-selector": Described{Symbol("apache.org:selector-filter:string"), "color = 'red'"},
				"none": nil},
			DefaultOutcome: &Modified{DeliveryFailed: true},
			Outcomes:       []Symbol{"amqp:accepted:list", "amqp:rejected:list"},
			Capabilities:   []Symbol{"topic", "shared"},
		},
		Target: &Target{
			Address: "queue://orders", Durable: DurableConfiguration, ExpiryPolicy: ExpiryLinkDetach,
			Timeout: 5, Dynamic: true, DynamicNodeProperties: Fields{"x": true}, Capabilities: []Symbol{"queue"},
		},
		Unsettled:            Map{{[]byte("tag1"), Described{uint64(0x24), []any{}}}},
		IncompleteUnsettled:  true,
		InitialDeliveryCount: ptr(uint32(0)),
		MaxMessageSize:       1 << 20,
		OfferedCapabilities:  []Symbol{"SHARED-SUBS"},
		DesiredCapabilities:  []Symbol{},
		Properties:           Fields{"paired": true},
	},
	&Attach{
		Name: "txn", Handle: 0, Role: RoleSender, SndSettleMode: SndSettled,
		Coordinator: &Coordinator{Capabilities: []Symbol{"amqp:local-transactions"}},
	},
	&Flow{
		NextIncomingID: ptr(uint32(10)), IncomingWindow: 100, NextOutgoingID: 20, OutgoingWindow: 200,
		Handle: ptr(uint32(1)), DeliveryCount: ptr(uint32(5)), LinkCredit: ptr(uint32(50)),
		Available: ptr(uint32(0)), Drain: true, Echo: true, Properties: Fields{"p": nil},
	},
	&Transfer{
		Handle: 1, DeliveryID: ptr(uint32(99)), DeliveryTag: []byte{0, 0, 0, 99}, MessageFormat: ptr(uint32(0)),
		Settled: true, More: true, RcvSettleMode: ptr(RcvSecond), State: &Received{SectionNumber: 2, SectionOffset: 300},
		Resume: true, Aborted: true, Batchable: true,
	},
	&Transfer{Handle: 2, State: &TransactionalState{TxnID: []byte("tx1"), Outcome: &Accepted{}}},
	&Disposition{Role: RoleReceiver, First: 4, Last: ptr(uint32(9)), Settled: true, State: &Accepted{}, Batchable: true},
	&Disposition{Role: RoleSender, First: 1, State: &Rejected{Error: testError}},
	&Disposition{Role: RoleReceiver, First: 1, State: &Released{}},
	&Disposition{Role: RoleReceiver, First: 1, State: &Modified{DeliveryFailed: true, UndeliverableHere: true,
		MessageAnnotations: Fields{"x-opt-reason": "bad"}}},
	&Disposition{Role: RoleReceiver, First: 1, Settled: true, State: &Declared{TxnID: []byte{1, 2, 3}}},
	&Detach{Handle: 3, Closed: true, Error: testError},
	&End{Error: testError},
	&End{},
	&Close{Error: &Error{Condition: CondConnectionForced}},
	&Close{},
	&SASLMechanisms{Mechanisms: []Symbol{"PLAIN", "ANONYMOUS"}},
	&SASLInit{Mechanism: "PLAIN", InitialResponse: []byte("\x00user\x00pass"), Hostname: "broker"},
	&SASLChallenge{Challenge: []byte("c")},
	&SASLResponse{Response: []byte("r")},
	&SASLOutcome{Code: SASLAuth, AdditionalData: []byte("why")},
}

func TestPerformativeRoundTrip(t *testing.T) {
	for _, p := range fullPerformatives {
		name := descriptorName(p.Descriptor())
		t.Run(name, func(t *testing.T) {
			var payload []byte
			if _, ok := p.(*Transfer); ok {
				payload = []byte("message bytes")
			}
			b, err := AppendPerformativeFrame(nil, 5, p, payload)
			if err != nil {
				t.Fatal(err)
			}
			f, err := NewFrameReader(bytes.NewReader(b), math.MaxUint32).ReadFrame()
			if err != nil {
				t.Fatal(err)
			}
			if f.Type != p.FrameType() {
				t.Fatalf("frame type %v, want %v", f.Type, p.FrameType())
			}
			if want := uint16(5); p.FrameType() == FrameSASL {
				if f.Channel != 0 {
					t.Fatalf("SASL frame channel %d", f.Channel)
				}
			} else if f.Channel != want {
				t.Fatalf("channel %d, want %d", f.Channel, want)
			}
			got, gotPayload, err := DecodePerformative(f)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, p) {
				t.Fatalf("decoded\n%#v\nwant\n%#v", got, p)
			}
			if !bytes.Equal(gotPayload, payload) {
				t.Fatalf("payload %q, want %q", gotPayload, payload)
			}
		})
	}
}

func TestCompositeRoundTrip(t *testing.T) {
	composites := []Composite{
		testError,
		&Source{Address: "a"},
		&Target{},
		&Coordinator{},
		&Received{},
		&Accepted{},
		&Declare{GlobalID: []byte("g")},
		&Discharge{TxnID: []byte("t"), Fail: true},
		&Header{Durable: true, Priority: 9, TTL: ptr(uint32(1000)), FirstAcquirer: true, DeliveryCount: 2},
		&Properties{MessageID: "id-1"},
	}
	for _, c := range composites {
		t.Run(descriptorName(c.Descriptor()), func(t *testing.T) {
			b, err := AppendComposite(nil, c)
			if err != nil {
				t.Fatal(err)
			}
			got := reflect.New(reflect.TypeOf(c).Elem()).Interface().(Composite)
			n, err := DecodeComposite(b, got)
			if err != nil {
				t.Fatal(err)
			}
			if n != len(b) {
				t.Fatalf("used %d of %d bytes", n, len(b))
			}
			if want := c; reflect.TypeOf(c) == reflect.TypeOf(&Target{}) {
				want = &Target{ExpiryPolicy: ExpirySessionEnd}
				if !reflect.DeepEqual(got, want) {
					t.Fatalf("decoded %#v, want %#v", got, want)
				}
			} else if _, ok := c.(*Source); ok {
				if s := got.(*Source); s.Address != "a" || s.ExpiryPolicy != ExpirySessionEnd {
					t.Fatalf("decoded %#v", s)
				}
			} else if !reflect.DeepEqual(got, c) {
				t.Fatalf("decoded %#v, want %#v", got, c)
			}
		})
	}
}

// The encoder leaves out trailing fields equal to their defaults and writes
// null for defaults in the middle.
func TestEncodingOmitsDefaults(t *testing.T) {
	tests := []struct {
		name string
		c    Composite
		hex  string
	}{
		{"open minimal", &Open{ContainerID: "c", MaxFrameSize: math.MaxUint32, ChannelMax: math.MaxUint16},
			"00 53 10 c0 04 01 a1 01 63"},
		{"open idle timeout only", &Open{ContainerID: "c", MaxFrameSize: math.MaxUint32, ChannelMax: math.MaxUint16, IdleTimeOut: 1},
			"00 53 10 c0 09 05 a1 01 63 40 40 40 52 01"},
		{"accepted", &Accepted{}, "00 53 24 45"},
		{"close", &Close{}, "00 53 18 45"},
		{"flow", &Flow{IncomingWindow: 1, NextOutgoingID: 2, OutgoingWindow: 3},
			"00 53 13 c0 08 04 40 52 01 52 02 52 03"},
		{"header priority 4", &Header{Priority: 4}, "00 53 70 45"},
		{"header durable", &Header{Durable: true, Priority: 4}, "00 53 70 c0 02 01 41"},
		{"transfer", &Transfer{Handle: 0, DeliveryID: ptr(uint32(1)), DeliveryTag: []byte{1}, MessageFormat: ptr(uint32(0))},
			"00 53 14 c0 08 04 43 52 01 a0 01 01 43"},
		{"disposition accepted", &Disposition{Role: RoleReceiver, First: 3, Settled: true, State: &Accepted{}},
			"00 53 15 c0 0a 05 41 52 03 40 41 00 53 24 45"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := AppendComposite(nil, tc.c)
			if err != nil {
				t.Fatal(err)
			}
			if want := hexb(t, tc.hex); !bytes.Equal(got, want) {
				t.Fatalf("encode = % x\nwant     % x", got, want)
			}
		})
	}
}

// Absent fields, null fields and a shorter list all decode to the spec's
// defaults.
func TestDecodeDefaults(t *testing.T) {
	wantOpen := &Open{ContainerID: "c", MaxFrameSize: math.MaxUint32, ChannelMax: math.MaxUint16}
	for name, in := range map[string]string{
		"short list":     "00 53 10 c0 04 01 a1 01 63",
		"trailing nulls": "00 53 10 c0 0d 0a a1 01 63 40 40 40 40 40 40 40 40 40",
		"list32":         "00 53 10 d0 00 00 00 07 00 00 00 01 a1 01 63",
		"symbolic":       "00 a3 0e 616d71703a6f70656e3a6c697374 c0 04 01 a1 01 63",
		"ulong code":     "00 80 00 00 00 00 00 00 00 10 c0 04 01 a1 01 63",
	} {
		t.Run(name, func(t *testing.T) {
			var o Open
			if _, err := DecodeComposite(hexb(t, in), &o); err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(&o, wantOpen) {
				t.Fatalf("decoded %#v", o)
			}
		})
	}

	var a Attach
	if _, err := DecodeComposite(hexb(t, "00 53 12"+l8("a1 01 6c", "43", "42", "40", "40", "00 53 28 c0 01 00")), &a); err != nil {
		t.Fatal(err)
	}
	want := Attach{Name: "l", SndSettleMode: SndMixed, Source: &Source{ExpiryPolicy: ExpirySessionEnd}}
	if !reflect.DeepEqual(a, want) {
		t.Fatalf("attach %#v", a)
	}

	var h Header
	if _, err := DecodeComposite(hexb(t, "00 53 70 45"), &h); err != nil || h.Priority != 4 {
		t.Fatalf("header %#v, %v", h, err)
	}

	// Decoding overwrites every field of a reused struct.
	reused := Flow{Drain: true, Handle: ptr(uint32(1)), Properties: Fields{"x": nil}}
	if _, err := DecodeComposite(hexb(t, "00 53 13 c0 08 04 40 52 01 52 02 52 03"), &reused); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(reused, Flow{IncomingWindow: 1, NextOutgoingID: 2, OutgoingWindow: 3}) {
		t.Fatalf("reused flow %#v", reused)
	}
}

// Fields added by a later version of the spec are skipped.
func TestDecodeSkipsUnknownTrailingFields(t *testing.T) {
	var c Close
	n, err := DecodeComposite(hexb(t, "00 53 18 c0 07 03 40 a1 01 78 52 05"), &c)
	if err != nil || n != 12 || c.Error != nil {
		t.Fatalf("close %#v, %d, %v", c, n, err)
	}
}

func TestMalformedComposites(t *testing.T) {
	tests := []struct {
		name   string
		c      Composite
		hex    string
		offset int
		want   string
	}{
		{"open missing container-id", &Open{}, "00 53 10 45", 4, "open: mandatory field container-id is missing"},
		{"open null container-id", &Open{}, "00 53 10 c0 02 01 40", 6, "open: mandatory field container-id is null"},
		{"attach missing handle", &Attach{}, "00 53 12 c0 04 01 a1 01 6c", 9, "attach: mandatory field handle is missing"},
		{"attach missing role", &Attach{}, "00 53 12 c0 05 02 a1 01 6c 43", 10, "attach: mandatory field role is missing"},
		{"begin null next-outgoing-id", &Begin{}, "00 53 11 c0 03 02 40 40", 7, "begin: mandatory field next-outgoing-id is null"},
		{"flow missing windows", &Flow{}, "00 53 13 c0 03 02 40 43", 8, "flow: mandatory field next-outgoing-id is missing"},
		{"transfer missing handle", &Transfer{}, "00 53 14 45", 4, "transfer: mandatory field handle is missing"},
		{"disposition missing first", &Disposition{}, "00 53 15 c0 02 01 41", 7, "disposition: mandatory field first is missing"},
		{"error missing condition", &Error{}, "00 53 1d 45", 4, "error: mandatory field condition is missing"},
		{"received missing offset", &Received{}, "00 53 23 c0 02 01 43", 7, "received: mandatory field section-offset is missing"},
		{"sasl-init missing mechanism", &SASLInit{}, "00 53 41 45", 4, "sasl-init: mandatory field mechanism is missing"},
		{"sasl-outcome missing code", &SASLOutcome{}, "00 53 44 45", 4, "sasl-outcome: mandatory field code is missing"},
		{"sasl-mechanisms missing", &SASLMechanisms{}, "00 53 40 45", 4, "mandatory field sasl-server-mechanisms is missing"},
		{"wrong field type", &Open{}, "00 53 10" + l8("a1 01 63", "40", "a1 00"), 10, "open max-frame-size: expected uint, found string (0xa1)"},
		{"wrong descriptor", &Open{}, "00 53 11 45", 0, "expected open, found begin"},
		{"unknown symbolic descriptor", &Open{}, "00 a3 01 78 45", 1, `unknown descriptor "x"`},
		{"descriptor of wrong type", &Open{}, "00 a1 01 78 45", 1, "expected descriptor (ulong or symbol), found string (0xa1)"},
		{"not described", &Open{}, "45", 0, "expected open, found list (0x45)"},
		{"fields not a list", &Open{}, "00 53 10 c1 01 00", 3, "expected open field list, found map (0xc1)"},
		{"fields list count past size", &Open{}, "00 53 10 c0 02 05 40", 6, "open fields of 5 elements cannot fit in 1 bytes"},
		{"field past list end", &Open{}, "00 53 10 c0 02 01 a1 01 63", 7, "open container-id: truncated string size"},
		{"fields with slack", &Close{}, "00 53 18 c0 02 00 40", 6, "close fields has 1 bytes after"},
		{"properties key not symbol", &Open{}, "00 53 10" + l8("a1 01 63", nulls(8), m8("52 01", "40")),
			20, "open properties: expected symbol, found uint (0x52)"},
		{"properties duplicate key", &Open{}, "00 53 10" + l8("a1 01 63", nulls(8), m8("a3 01 6b", "40", "a3 01 6b", "40")),
			24, "open properties: fields has duplicate key k"},
		{"properties odd count", &Open{}, "00 53 10" + l8("a1 01 63", nulls(8), "c1 02 01 40"),
			17, "open properties: fields has an odd element count 1"},
		{"capabilities of strings", &Open{}, "00 53 10" + l8("a1 01 63", nulls(6), a8("a1", "00")),
			15, "open offered-capabilities: expected an array of symbols, found an array of string"},
		{"bad settle mode", &Attach{}, "00 53 12" + l8("a1 01 6c", "43", "41", "50 07"), 11, "attach snd-settle-mode: sender settle mode 7 is not one the spec defines"},
		{"bad durability", &Source{}, "00 53 28" + l8("40", "52 09"), 7, "source durable: terminus durability 9"},
		{"bad sasl code", &SASLOutcome{}, "00 53 44" + l8("50 05"), 6, "sasl-outcome code: sasl code 5"},
		{"state not a state", &Transfer{}, "00 53 14" + l8("43", nulls(6), "00 53 28 45"), 13, "transfer state: expected a delivery state, found source"},
		{"target not a target", &Attach{}, "00 53 12" + l8("a1 01 6c", "43", "41", nulls(3), "00 53 24 45"), 14, "attach target: expected target or coordinator, found accepted"},
		{"nested error in state", &Disposition{}, "00 53 15" + l8("41", "43", "40", "40", "00 53 25"+l8("00 53 1d"+l8("40"))),
			22, "disposition state: rejected error: error: mandatory field condition is null"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := DecodeComposite(hexb(t, tc.hex), tc.c)
			var de *DecodeError
			if !errors.As(err, &de) {
				t.Fatalf("err = %v, want a DecodeError", err)
			}
			if !strings.Contains(de.Reason, tc.want) {
				t.Errorf("reason %q, want it to contain %q", de.Reason, tc.want)
			}
			if de.Offset != tc.offset {
				t.Errorf("offset %d, want %d (%v)", de.Offset, tc.offset, err)
			}
		})
	}
}

func TestDescribedAs(t *testing.T) {
	m, err := DecodeMessage(hexb(t, "00 53 77 00 53 32 c0 06 02 a0 02 74 31 41"))
	if err != nil {
		t.Fatal(err)
	}
	var d Discharge
	if err := DescribedAs(m.Value, &d); err != nil {
		t.Fatal(err)
	}
	if string(d.TxnID) != "t1" || !d.Fail {
		t.Fatalf("discharge %#v", d)
	}
	if err := DescribedAs(m.Value, &Declare{}); err == nil {
		t.Fatal("discharge decoded as declare")
	}
}

func TestCompositeEncodeErrors(t *testing.T) {
	tests := []struct {
		name string
		c    Composite
		want string
	}{
		{"bad string", &Open{ContainerID: "\xff"}, "open: amqp: cannot encode: string"},
		{"bad symbol", &Source{Capabilities: []Symbol{"é"}}, "not ASCII"},
		{"target and coordinator", &Attach{Target: &Target{}, Coordinator: &Coordinator{}}, "both a target and a coordinator"},
		{"bad property", &Begin{Properties: Fields{"x": 1}}, "Go type int"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b, err := AppendComposite([]byte("keep"), tc.c)
			if err == nil || !strings.Contains(err.Error(), tc.want) || !errors.Is(err, ErrEncode) {
				t.Fatalf("err = %v, want ErrEncode mentioning %q", err, tc.want)
			}
			if string(b) != "keep" {
				t.Fatalf("failed append returned %q", b)
			}
		})
	}
}

func TestErrorIsGoError(t *testing.T) {
	var err error = testError
	if err.Error() != "amqp: amqp:resource-limit-exceeded: queue full" {
		t.Errorf("%q", err.Error())
	}
	if (&Error{Condition: CondNotFound}).Error() != "amqp: amqp:not-found" {
		t.Error("condition only")
	}
}

// l8, m8 and a8 build the hex of a list8, map8 and array8 of the given
// encoded elements, counting sizes so the test vectors need not.
func l8(elems ...string) string { return compound8("c0", "", elems) }

func m8(elems ...string) string { return compound8("c1", "", elems) }

func a8(ctor string, elems ...string) string { return compound8("e0", ctor, elems) }

func compound8(code, ctor string, elems []string) string {
	body := ctor + " " + strings.Join(elems, " ")
	b, err := hex.DecodeString(strings.ReplaceAll(body, " ", ""))
	if err != nil {
		panic(err)
	}
	count := len(elems)
	if code != "e0" {
		count = 0
		for _, e := range elems {
			count += fieldCount(e)
		}
	}
	return fmt.Sprintf(" %s %02x %02x %s", code, len(b)+1, count, body)
}

// fieldCount counts an element made of nulls alone, as nulls(n) gives, as
// that many elements.
func fieldCount(e string) int {
	f := strings.Fields(e)
	for _, x := range f {
		if x != "40" {
			return 1
		}
	}
	return len(f)
}

func nulls(n int) string { return strings.TrimSpace(strings.Repeat("40 ", n)) }
