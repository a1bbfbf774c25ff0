package chaos

import (
	"bytes"
	"fmt"
	"strconv"
	"time"
)

// Kind is what an event records.
type Kind uint8

const (
	// Send is a producer's attempt to send a message.
	Send Kind = iota + 1
	// Confirm is the cluster confirming an attempt: a RECEIPT, a PUBACK, an
	// accepted outcome.
	Confirm
	// Fail is the cluster refusing an attempt; Err says how.
	Fail
	// Unknown is an attempt whose connection ended, or whose producer gave
	// up waiting, before any answer: it may or may not have been stored.
	Unknown
	// Deliver is a live consumer receiving a copy.
	Deliver
	// Witness is a witness subscription giving a copy in the final drain.
	Witness
	// Ack is a consumer acknowledging a copy.
	Ack
)

func (k Kind) String() string {
	switch k {
	case Send:
		return "send"
	case Confirm:
		return "confirm"
	case Fail:
		return "fail"
	case Unknown:
		return "unknown"
	case Deliver:
		return "deliver"
	case Witness:
		return "witness"
	case Ack:
		return "ack"
	}
	return "kind" + strconv.Itoa(int(k))
}

// Event is one step of one client.
type Event struct {
	Kind Kind
	// Flow names one protocol's producers, destination, live consumer and
	// witness: the checker matches deliveries to sends within a flow.
	Flow   string
	Client string
	// ID and Attempt name a message and the producer's attempt at it; a
	// delivery's come from its body (and must match its header).
	ID      string
	Attempt int
	// Node is the node the client was connected to.
	Node string
	// Redelivered is a delivery's flag (STOMP redelivered, MQTT DUP, an
	// AMQP delivery count above 0).
	Redelivered bool
	// Bad says how a delivery did not match what was sent: a header that
	// names another message, a body not of the form Body gives.
	Bad string
	Err string
	// Hung marks an Unknown where the producer gave up after waiting its
	// longest for an answer.
	Hung bool
	// At is the wall time, taken from the monotonic clock of the recorder.
	At time.Time
}

// Promotion is a node's log line "promoted: master".
type Promotion struct {
	Node  string
	Epoch uint64
	At    time.Time
}

// Fault is one fault injected and healed.
type Fault struct {
	Kind   string
	Target string
	// Start is when it was injected, End when it was healed, Recovered
	// when the cluster had one master and two caught-up slaves again (zero
	// when it never did).
	Start, End, Recovered time.Time
	// RogueAccepted says a rogue replication peer changed a node's role
	// or epoch, or fenced it.
	RogueAccepted bool
	// Notes are what the fault's runner saw worth telling.
	Notes []string
}

// History is everything a run recorded.
type History struct {
	Events     []Event
	Promotions []Promotion
	Faults     []Fault
	// Witnessed are the flows whose every message a witness subscription
	// also took, in the same store record as the live consumer's copy.
	Witnessed map[string]bool
	// StopAndWait are the producers that send one message at a time: the
	// gaps between their confirmations measure unavailability.
	StopAndWait map[string]bool
	// End is when the run ended.
	End time.Time
	// Incomplete, when set, says why the final drain did not happen or
	// did not finish: what was not delivered may still be in the cluster,
	// so the checker counts no losses and no dirty reads.
	Incomplete string
}

// MessageID is the id of a client's seq-th message in the run named run.
func MessageID(run, client string, seq int) string {
	return fmt.Sprintf("%s-%s-%06d", run, client, seq)
}

// padding makes a body of a realistic size, the same for every message so
// that a body from another message's bytes shows.
var padding = bytes.Repeat([]byte("0123456789abcdef"), 6)

// Body is what a producer sends as attempt of message id.
func Body(id string, attempt int) []byte {
	b := fmt.Appendf(nil, "%s#%d|", id, attempt)
	return append(b, padding...)
}

// ParseBody reads the id and attempt back from a body Body made; ok is
// false for any other body.
func ParseBody(b []byte) (id string, attempt int, ok bool) {
	head, _, found := bytes.Cut(b, []byte("|"))
	if !found {
		return "", 0, false
	}
	i := bytes.LastIndexByte(head, '#')
	if i < 0 {
		return "", 0, false
	}
	attempt, err := strconv.Atoi(string(head[i+1:]))
	if err != nil || attempt < 1 {
		return "", 0, false
	}
	id = string(head[:i])
	return id, attempt, bytes.Equal(b, Body(id, attempt))
}
