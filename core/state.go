package core

import (
	"context"
	"fmt"

	"github.com/hamq/hamq/core/store"
)

// Front-ends keep state of their own (MQTT sessions, retained messages) in
// the core's store through these calls, so that it is in the log and
// replicated with everything else. Keys are the front-end's; "mqtt/…" for
// MQTT.

func stateKey(key string) []byte { return append([]byte{prefixState}, key...) }

// PutState durably stores value under key.
func (b *Broker) PutState(ctx context.Context, key string, value []byte) error {
	if err := b.st.Submit([]store.Op{{Key: stateKey(key), Value: value}}).Wait(ctx); err != nil {
		return fmt.Errorf("store state %s: %w", key, err)
	}
	return nil
}

// DeleteState durably removes key.
func (b *Broker) DeleteState(ctx context.Context, key string) error {
	if err := b.st.Submit([]store.Op{{Key: stateKey(key), Delete: true}}).Wait(ctx); err != nil {
		return fmt.Errorf("delete state %s: %w", key, err)
	}
	return nil
}

// State calls fn for every stored key with the prefix, in key order; value
// is fn's to keep.
func (b *Broker) State(prefix string, fn func(key string, value []byte) error) error {
	return b.st.Scan(stateKey(prefix), func(k, v []byte) error {
		return fn(string(k[1:]), append([]byte(nil), v...))
	})
}
