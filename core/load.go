package core

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"strings"

	"github.com/hamq/hamq/core/selector"
	"github.com/hamq/hamq/core/store"
)

// load rebuilds the registry from the store: counters, durable
// subscriptions, then the messages they and the queues hold.
func (b *Broker) load() error {
	err := b.st.Scan([]byte{prefixCounter}, func(k, v []byte) error {
		d, err := parseCounterKey(k)
		if err != nil {
			return err
		}
		c, err := decodeCounters(v)
		if err != nil {
			return err
		}
		b.destinationLocked(d).setCounters(c)
		return nil
	})
	if err != nil {
		return fmt.Errorf("core: load counters: %w", err)
	}
	byStoreName := map[string]*msgQueue{}
	err = b.st.Scan([]byte{prefixDurable}, func(k, v []byte) error {
		clientID, name, err := parseDurableKey(k)
		if err != nil {
			return err
		}
		r, err := decodeDurable(v)
		if err != nil {
			return err
		}
		var sel *selector.Selector
		if r.selector != "" {
			if sel, err = selector.Parse(r.selector); err != nil {
				return fmt.Errorf("durable %s/%s: %w", clientID, name, err)
			}
		}
		ts := b.newDurable(durableID{clientID, name}, r.topic, r.selector, sel, r.noLocal)
		byStoreName[ts.q.storeName] = ts.q
		return nil
	})
	if err != nil {
		return fmt.Errorf("core: load durable subscriptions: %w", err)
	}
	delivered := map[string]uint64{}
	err = b.st.Scan([]byte{prefixDelivered}, func(k, v []byte) error {
		d := decoder{b: k[1:]}
		name := d.string()
		if d.err != nil || len(v) != 8 {
			return fmt.Errorf("delivered mark %q: %w", k, errCorrupt)
		}
		delivered[name] = binary.BigEndian.Uint64(v)
		return nil
	})
	if err != nil {
		return fmt.Errorf("core: load delivered marks: %w", err)
	}
	var orphans []store.Op
	n := 0
	err = b.st.Scan([]byte{prefixMessage}, func(k, v []byte) error {
		storeName, seq, err := parseMessageKey(k)
		if err != nil {
			return err
		}
		q := byStoreName[storeName]
		if q == nil {
			if name, ok := strings.CutPrefix(storeName, "q:"); ok {
				q = b.destinationLocked(Destination{Kind: Queue, Name: name}).queue
				byStoreName[storeName] = q
			}
		}
		if q == nil {
			orphans = append(orphans, store.Op{Key: append([]byte(nil), k...), Delete: true})
			return nil
		}
		m, err := decodeMessage(bytes.Clone(v)) // v is the iterator's buffer
		if err != nil {
			return fmt.Errorf("message %s #%d: %w", storeName, seq, err)
		}
		if seq <= delivered[storeName] {
			m.DeliveryCount = max(m.DeliveryCount, 1)
		}
		e := &entry{msg: m, dest: b.destinationLocked(m.Dest), seq: seq, size: m.size(), stored: true}
		q.push(e)
		e.dest.hold(e.size)
		q.maybeSpool(e)
		q.nextSeq = seq + 1
		n++
		return nil
	})
	if err != nil {
		return fmt.Errorf("core: load messages: %w", err)
	}
	for name, mark := range delivered {
		q := byStoreName[name]
		if q == nil {
			if qname, ok := strings.CutPrefix(name, "q:"); ok {
				q = b.destinationLocked(Destination{Kind: Queue, Name: qname}).queue
			} else {
				orphans = append(orphans, store.Op{Key: deliveredKey(name), Delete: true})
				continue
			}
		}
		// New messages come after the mark, so it never covers one that
		// was not there when it was written.
		q.delivered, q.nextSeq = mark, max(q.nextSeq, mark+1)
		q.durable.Store(mark)
	}
	if len(orphans) > 0 {
		b.log.Warn("dropping messages of durable subscriptions that no longer exist", "count", len(orphans))
		b.st.Submit(orphans)
	}
	if err := b.loadDedup(); err != nil {
		return err
	}
	b.log.Info("loaded", "destinations", len(b.dests), "durables", len(b.durables), "messages", n)
	return nil
}

// resolver gives a selector the message's JMS headers and properties.
func resolver(m *Message) func(string) (any, bool) {
	return func(name string) (any, bool) {
		switch name {
		case "JMSMessageID":
			return m.ID, true
		case "JMSPriority":
			return int64(m.Priority), true
		case "JMSTimestamp":
			return m.Timestamp, true
		case "JMSExpiration":
			return m.Expiration, true
		case "JMSCorrelationID":
			return m.CorrelationID, m.CorrelationID != ""
		case "JMSType":
			return m.Type, m.Type != ""
		case "JMSDeliveryMode":
			if m.Persistent {
				return "PERSISTENT", true
			}
			return "NON_PERSISTENT", true
		case "JMSRedelivered":
			return m.DeliveryCount > 0, true
		case "JMSXDeliveryCount":
			return int64(m.DeliveryCount) + 1, true
		}
		v, ok := m.Properties[name]
		return v, ok
	}
}
