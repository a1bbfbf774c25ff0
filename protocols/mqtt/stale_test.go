package mqtt

import (
	"context"
	"testing"
	"time"

	"github.com/hamq/hamq/core/store"
)

// staleConfirmer confirms every record with a validity already over, as
// a cluster master paused between confirming and answering would find.
type staleConfirmer struct{}

func (staleConfirmer) Confirm(context.Context, store.Record, time.Time) (time.Time, error) {
	return time.Now().Add(-time.Millisecond), nil
}

// TestStaleConfirmationClosesInstead: a QoS 1 PUBLISH that a persistent
// session stores, confirmed too late to say so, gets no PUBACK: the
// connection closes and paho sends it again on its next connection.
func TestStaleConfirmationClosesInstead(t *testing.T) {
	br := startBroker(t)
	sub := br.client("keeper", false, make(chan received, 10))
	if tok := sub.Subscribe("stale/x", 1, nil); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("subscribe: %v", tok.Error())
	}
	br.st.SetConfirmer(staleConfirmer{})
	defer br.st.SetConfirmer(nil)
	pub := br.client("publisher", true, nil)
	tok := pub.Publish("stale/x", 1, false, "m")
	if tok.WaitTimeout(2*time.Second) && tok.Error() == nil {
		t.Fatal("a stale confirmation was sent as a PUBACK")
	}
	for deadline := time.Now().Add(5 * time.Second); pub.IsConnectionOpen(); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the publisher's connection stayed open")
		}
	}
}
