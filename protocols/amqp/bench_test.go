package amqp

import (
	"context"
	"sync"
	"testing"

	goamqp "github.com/Azure/go-amqp"
)

// BenchmarkDurableSendReceive is the load of `hamq bench --proto amqp` in
// one process, for profiles: four senders of 1 KiB durable messages, each
// with up to 100 unsettled, and four pre-settled receivers on one queue.
func BenchmarkDurableSendReceive(b *testing.B) {
	s := startServer(b, nil, nil)
	const links, window = 4, 100
	settled := goamqp.SenderSettleModeSettled
	var received sync.WaitGroup
	received.Add(b.N)
	for range links {
		r := s.dial(b, nil).receiver(b, "queue://bench", &goamqp.ReceiverOptions{Credit: 1000, RequestedSenderSettleMode: &settled})
		go func() {
			for {
				if _, err := r.Receive(context.Background(), nil); err != nil {
					return
				}
				received.Done()
			}
		}()
	}
	senders := make([]*goamqp.Sender, links)
	for i := range senders {
		senders[i] = s.dial(b, nil).sender(b, "queue://bench", nil)
	}
	body := make([]byte, 1024)
	b.SetBytes(int64(len(body)))
	b.ResetTimer()
	var sent sync.WaitGroup
	for i, snd := range senders {
		n := b.N / links
		if i < b.N%links {
			n++
		}
		sent.Add(1)
		go func() {
			defer sent.Done()
			receipts := make(chan goamqp.SendReceipt, window)
			go func() {
				for range n {
					m := goamqp.NewMessage(body)
					m.Header = &goamqp.MessageHeader{Durable: true}
					r, err := snd.SendWithReceipt(context.Background(), m, nil)
					if err != nil {
						b.Error(err)
						break
					}
					receipts <- r
				}
				close(receipts)
			}()
			for r := range receipts {
				if _, err := r.Wait(context.Background()); err != nil {
					b.Error(err)
				}
			}
		}()
	}
	sent.Wait()
	received.Wait()
}
