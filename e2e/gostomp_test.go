package e2e

import (
	"testing"
	"time"

	"github.com/go-stomp/stomp/v3"
	"github.com/go-stomp/stomp/v3/frame"
)

// TestGoStompAckFromSubscriptionGoroutine (issue 14, item 8): a go-stomp
// v3.1.3 consumer that acknowledges each message (client-individual,
// prefetch 1000) from the goroutine reading sub.C receives a backlog of
// 3,000 when its write channel holds a prefetch's worth of ACKs, the usage
// the README gives.
//
// With go-stomp's default of 20 it hung against hamq in each of 9 runs of
// 5,000, after 102 to 1,977 messages: the library's one goroutine for the
// socket blocks handing a MESSAGE to the full subscription channel while
// the program, the subscription's only reader, blocks in Ack on the full
// write channel that only that goroutine empties. hamq had read every ACK
// (its receive queue was empty), and its burst matches ActiveMQ 5.17's in
// size, pace and refill per ACK (ActiveMQ pages 200 at a time unless its
// maxPageSize is raised), yet ActiveMQ got through all of 16 such runs:
// the deadlock is the library's, and timing decides when it bites. With the write channel at least the prefetch, Ack never
// blocks: the broker sends no more than the prefetch unacknowledged, so no
// more ACKs than that can wait.
func TestGoStompAckFromSubscriptionGoroutine(t *testing.T) {
	const backlog, prefetch = 3000, 1000
	n := startNode(t)
	p, err := stomp.Dial("tcp", n.stomp)
	if err != nil {
		t.Fatal(err)
	}
	body := make([]byte, 1024)
	for i := range backlog {
		var opts []func(*frame.Frame) error
		if i == backlog-1 {
			opts = append(opts, stomp.SendOpt.Receipt)
		}
		if err := p.Send("/queue/gostomp", "text/plain", body, append(opts, stomp.SendOpt.Header("persistent", "true"))...); err != nil {
			t.Fatal(err)
		}
	}
	p.Disconnect()

	c, err := stomp.Dial("tcp", n.stomp, stomp.ConnOpt.WriteChannelCapacity(prefetch))
	if err != nil {
		t.Fatal(err)
	}
	sub, err := c.Subscribe("/queue/gostomp", stomp.AckClientIndividual,
		stomp.SubscribeOpt.Header("activemq.prefetchSize", "1000"))
	if err != nil {
		t.Fatal(err)
	}
	got := make(chan int)
	go func() {
		n := 0
		for m := range sub.C {
			if m.Err != nil || c.Ack(m) != nil {
				break
			}
			if n++; n == backlog {
				break
			}
		}
		got <- n
	}()
	select {
	case n := <-got:
		if n != backlog {
			t.Fatalf("received and acknowledged %d of %d", n, backlog)
		}
	case <-time.After(60 * time.Second):
		t.Fatalf("the consumer hung: not all %d messages within 60 s", backlog)
	}
	if err := c.Disconnect(); err != nil {
		t.Fatal(err)
	}
}
