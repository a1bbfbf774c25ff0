package core

import (
	"context"
	"io"
	"log/slog"
	"strings"
	"testing"

	"github.com/hamq/hamq/core/store"
)

// BenchmarkDispatch carries messages through the core as a producer and a
// consumer acknowledging each do: route, queue, dispatch, deliver, ack. A
// non-persistent message touches no store; a persistent one is written
// (8 producers share the fsyncs) and dispatched once durable, its ack
// riding on a later fsync.
func BenchmarkDispatch(b *testing.B) {
	for _, persistent := range []bool{false, true} {
		name := "non-persistent"
		if persistent {
			name = "persistent"
		}
		b.Run(name, func(b *testing.B) {
			br := benchBroker(b)
			cs, _ := br.Connect(ConnInfo{Protocol: "bench"})
			c := make(chanConsumer, 10000)
			if _, err := cs.Subscribe(SubSpec{Dest: orders, Prefetch: 5000}, c); err != nil {
				b.Fatal(err)
			}
			body := []byte(strings.Repeat("x", 1024))
			ctx := context.Background()
			const producers = 8
			done := make(chan error, producers)
			b.ReportAllocs()
			b.ResetTimer()
			for p := range producers {
				go func() {
					ps, _ := br.Connect(ConnInfo{Protocol: "bench"})
					defer ps.Close()
					for i := p; i < b.N; i += producers {
						if err := ps.Send(ctx, "", &Message{Dest: orders, Body: body, Persistent: persistent, Priority: DefaultPriority}); err != nil {
							done <- err
							return
						}
					}
					done <- nil
				}()
			}
			for range b.N {
				d := <-c
				if _, err := cs.Ack(ctx, "", d.Tag, false, false); err != nil {
					b.Fatal(err)
				}
			}
			for range producers {
				if err := <-done; err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// benchBroker is a broker on a real store in a temporary directory, both
// closed when the benchmark ends.
func benchBroker(b *testing.B) *Broker {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	st, err := store.Open(b.TempDir(), store.Options{}, log)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { st.Close() })
	br, err := NewBroker(DefaultConfig(), st, log)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { br.Close() })
	return br
}
