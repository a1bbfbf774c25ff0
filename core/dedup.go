package core

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/hamq/hamq/core/store"
)

// Duplicate detection: a producer names each message (STOMP's
// _HQ_DUPL_ID header as Artemis reads it, or dedup-id; an MQTT 5 user
// property dedup-id; with a rule's MessageID, the message id the client
// gave, as AMQP's message-id) and a resend of a name still in the
// destination's window is confirmed again without being enqueued twice.
// The window is in the store, written in the same record as the message,
// so a resend that reaches a new master after a failover finds it.
const (
	PropDuplicateID = "_HQ_DUPL_ID"
	PropDedupID     = "dedup-id"
)

// DedupRule sets the duplicate window of the destinations whose names match
// Pattern (a topic pattern: orders.>, *.events); the first rule that
// matches applies. Size 0 turns detection off for them.
type DedupRule struct {
	Pattern string
	Size    int           // ids remembered per destination
	TTL     time.Duration // how long an id is remembered
	// MessageID takes the message id a client sets (AMQP message-id) as
	// the duplicate id when the message names none of its own.
	MessageID bool
}

// DefaultDedup is a window for every destination: ids are only looked at
// when a producer sets one.
var DefaultDedup = []DedupRule{{Pattern: ">", Size: 10000, TTL: 10 * time.Minute}}

// dedupWindow holds one destination's recent duplicate ids, oldest first.
type dedupWindow struct {
	rule  DedupRule
	mu    sync.Mutex
	ids   map[string]*dedupEntry
	order []*dedupEntry
}

type dedupEntry struct {
	id   string
	seen time.Time
	// conf is the original send's confirmation while it is on its way; a
	// resend waits on it. nil once the entry was read back from the store.
	conf Confirmation
}

const prefixDedup = 'u'

func dedupKey(d Destination, id string) []byte {
	return appendName(appendName([]byte{prefixDedup, byte(d.Kind)}, d.Name), id)
}

// dedupRule is the rule for d, or false when none keeps ids for it.
func (b *Broker) dedupRule(d Destination) (DedupRule, bool) {
	for _, r := range b.cfg.Dedup {
		if topicMatches(r.Pattern, d.Name) {
			return r, r.Size > 0 && r.TTL > 0
		}
	}
	return DedupRule{}, false
}

// dedupID is the duplicate id of m under rule, or "" when it has none.
// Called before the core sets an id of its own.
func dedupID(m *Message, rule DedupRule) string {
	for _, k := range []string{PropDuplicateID, PropDedupID} {
		if v, ok := m.Properties[k]; ok {
			if s := fmt.Sprint(v); s != "" {
				return s
			}
		}
	}
	if rule.MessageID {
		return m.ID
	}
	return ""
}

// window returns d's duplicate window, made on first use.
func (d *destination) window(rule DedupRule) *dedupWindow {
	d.dedupOnce.Do(func() { d.dedup = &dedupWindow{rule: rule, ids: map[string]*dedupEntry{}} })
	return d.dedup
}

// sendOnce sends (with the window's op in the same record) unless id is in
// d's window: then it returns the first send's confirmation (Confirmed
// once that is durable), and counts a duplicate.
func (b *Broker) sendOnce(ctx context.Context, d *destination, id string, rule DedupRule, send func(...store.Op) (Confirmation, error)) (Confirmation, error) {
	w := d.window(rule)
	w.mu.Lock()
	defer w.mu.Unlock()
	now := time.Now()
	b.evict(d, w, now)
	if e := w.ids[id]; e != nil {
		if e.conf == nil {
			d.duplicates.Add(1)
			return Confirmed, nil
		}
		select {
		case <-e.conf.Done():
			if e.conf.Wait(ctx) != nil {
				// The first send failed: this one is not a duplicate.
				delete(w.ids, id)
				w.order = slices.DeleteFunc(w.order, func(x *dedupEntry) bool { return x == e })
				break
			}
			d.duplicates.Add(1)
			return e.conf, nil
		default:
			d.duplicates.Add(1)
			return e.conf, nil
		}
	}
	conf, err := send(store.Op{Key: dedupKey(d.dest, id), Value: binary.BigEndian.AppendUint64(nil, uint64(now.UnixMilli()))})
	if err != nil {
		return nil, err
	}
	e := &dedupEntry{id: id, seen: now, conf: conf}
	w.ids[id] = e
	w.order = append(w.order, e)
	b.evict(d, w, now)
	return conf, nil
}

// evict forgets ids past the window's size or age; w.mu is held. Their
// keys go lazily: a crash that keeps one only keeps it a little longer.
func (b *Broker) evict(d *destination, w *dedupWindow, now time.Time) {
	n := 0
	for n < len(w.order) && (len(w.order)-n > w.rule.Size || now.Sub(w.order[n].seen) > w.rule.TTL) {
		n++
	}
	if n == 0 {
		return
	}
	ops := make([]store.Op, 0, n)
	for _, e := range w.order[:n] {
		delete(w.ids, e.id)
		ops = append(ops, store.Op{Key: dedupKey(d.dest, e.id), Delete: true})
	}
	w.order = slices.Delete(w.order, 0, n)
	b.st.SubmitLazy(ops)
}

// loadDedup rebuilds the duplicate windows from the store.
func (b *Broker) loadDedup() error {
	var stale []store.Op
	now := time.Now()
	touched := map[*destination]bool{}
	err := b.st.Scan([]byte{prefixDedup}, func(k, v []byte) error {
		if len(k) < 2 || len(v) != 8 {
			return fmt.Errorf("duplicate id %q: %w", k, errCorrupt)
		}
		dec := decoder{b: k[2:]}
		dest := Destination{Kind: Kind(k[1]), Name: dec.string()}
		id := dec.string()
		if dec.err != nil {
			return fmt.Errorf("duplicate id %q: %w", k, errCorrupt)
		}
		seen := time.UnixMilli(int64(binary.BigEndian.Uint64(v)))
		rule, ok := b.dedupRule(dest)
		if !ok || now.Sub(seen) > rule.TTL {
			stale = append(stale, store.Op{Key: bytes.Clone(k), Delete: true})
			return nil
		}
		d := b.destinationLocked(dest)
		w := d.window(rule)
		e := &dedupEntry{id: id, seen: seen}
		w.ids[id] = e
		w.order = append(w.order, e)
		touched[d] = true
		return nil
	})
	if err != nil {
		return fmt.Errorf("core: load duplicate ids: %w", err)
	}
	for d := range touched {
		slices.SortFunc(d.dedup.order, func(x, y *dedupEntry) int { return x.seen.Compare(y.seen) })
		b.evict(d, d.dedup, now)
	}
	if len(stale) > 0 {
		b.st.SubmitLazy(stale)
	}
	return nil
}
