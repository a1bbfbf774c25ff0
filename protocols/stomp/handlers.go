package stomp

import (
	"errors"
	"fmt"
	"strconv"

	"github.com/go-stomp/stomp/v3/frame"
	"github.com/hamq/hamq/core"
)

// Ack modes of SUBSCRIBE.
const (
	ackAuto       = "auto"
	ackClient     = "client"
	ackIndividual = "client-individual"
)

func (c *conn) send(f *frame.Frame) error {
	ds, ok := f.Header.Contains(frame.Destination)
	if !ok || ds == "" {
		return protocolErrorf("SEND frame has no destination header")
	}
	dest, err := c.destination(ds)
	if err != nil {
		return err
	}
	m, err := c.message(f, dest)
	if err != nil {
		return err
	}
	if tx := f.Header.Get(frame.Transaction); tx != "" {
		if err := c.sess.Send(c.ctx, tx, m); err != nil {
			return fmt.Errorf("send to %s failed: %w", ds, err)
		}
		c.receipt(f)
		return nil
	}
	conf, err := c.sess.SendAsync(c.callCtx(), m)
	if err != nil {
		return fmt.Errorf("send to %s failed: %w", ds, err)
	}
	receipt := f.Header.Get(frame.Receipt)
	if conf != core.Confirmed || receipt != "" {
		c.confirm(confirmItem{conf: conf, what: "send to " + ds, receipt: receipt})
	}
	return nil
}

func (c *conn) subscribe(f *frame.Frame) error {
	ds, ok := f.Header.Contains(frame.Destination)
	if !ok || ds == "" {
		return protocolErrorf("SUBSCRIBE frame has no destination header")
	}
	id, ok := f.Header.Contains(frame.Id)
	if !ok {
		if c.version != "1.0" {
			return protocolErrorf("SUBSCRIBE frame has no id header")
		}
		id = ds
	}
	if c.subs[id] != nil {
		return protocolErrorf("subscription id %q is already in use on this connection", id)
	}
	ack := f.Header.Get(frame.Ack)
	switch ack {
	case "":
		ack = ackAuto
	case ackAuto, ackClient, ackIndividual:
	default:
		return protocolErrorf("invalid ack mode %q: want auto, client or client-individual", ack)
	}
	dest, err := c.destination(ds)
	if err != nil {
		return err
	}
	spec := core.SubSpec{Dest: dest, Selector: f.Header.Get("selector"), NoLocal: f.Header.Get("activemq.noLocal") == "true"}
	spec.Durable = f.Header.Get("activemq.subscriptionName")
	if spec.Durable == "" {
		spec.Durable = f.Header.Get("durable-subscription-name")
	}
	if v, ok := f.Header.Contains("activemq.prefetchSize"); ok {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			return protocolErrorf("invalid activemq.prefetchSize %q: want a positive number", v)
		}
		spec.Prefetch = n
	}
	s := &subscription{id: id, ack: ack, durable: spec.Durable}
	c.subs[id] = s
	sub, err := c.sess.Subscribe(spec, consumer{c, s})
	if err != nil {
		delete(c.subs, id)
		return fmt.Errorf("subscribe to %s failed: %w", ds, err)
	}
	s.sub = sub
	c.receipt(f)
	return nil
}

func (c *conn) unsubscribe(f *frame.Frame) error {
	id, ok := f.Header.Contains(frame.Id)
	if !ok && c.version == "1.0" {
		id, ok = f.Header.Contains(frame.Destination)
	}
	if !ok {
		return protocolErrorf("UNSUBSCRIBE frame has no id header")
	}
	s := c.subs[id]
	if s == nil {
		return protocolErrorf("no subscription with id %q", id)
	}
	delete(c.subs, id)
	if err := c.sess.Unsubscribe(s.sub); err != nil {
		return err
	}
	// As in ActiveMQ: UNSUBSCRIBE naming a durable subscription removes it;
	// without the header the subscription only goes offline.
	if name := f.Header.Get("activemq.subscriptionName"); name != "" {
		if err := c.srv.b.DeleteDurable(c.ctx, c.clientID, name); err != nil && !errors.Is(err, core.ErrNoSuchDestination) {
			return err
		}
	}
	c.receipt(f)
	return nil
}

func (c *conn) ack(f *frame.Frame) error {
	ref, err := c.ackRef(f)
	if err != nil {
		return err
	}
	s := c.subs[ref.sub]
	cumulative := s != nil && s.ack == ackClient
	tx := f.Header.Get(frame.Transaction)
	conf := core.Confirmed
	_, receipt := f.Header.Contains(frame.Receipt)
	if f.Command == frame.NACK {
		err = c.sess.Nack(tx, ref.tag, cumulative)
	} else {
		conf, err = c.sess.Ack(c.callCtx(), tx, ref.tag, cumulative, receipt)
	}
	if errors.Is(err, core.ErrUnknownDelivery) {
		return protocolErrorf("%s of a message that is not awaiting acknowledgement on this connection", f.Command)
	}
	if err != nil {
		return err
	}
	c.forget(ref, cumulative)
	if r, ok := f.Header.Contains(frame.Receipt); ok {
		c.confirm(confirmItem{conf: conf, what: f.Command, receipt: r})
	}
	return nil
}

// ackRef finds the delivery an ACK or NACK names: by id in 1.2, by
// message-id (and subscription) before.
func (c *conn) ackRef(f *frame.Frame) (ackRef, error) {
	c.ackMu.Lock()
	defer c.ackMu.Unlock()
	if id, ok := f.Header.Contains(frame.Id); ok {
		tag, err := strconv.ParseUint(id, 10, 64)
		if ref, known := c.byTag[tag]; err == nil && known {
			return ref, nil
		}
		return ackRef{}, protocolErrorf("%s of unknown message %q: not awaiting acknowledgement on this connection", f.Command, id)
	}
	mid, ok := f.Header.Contains(frame.MessageId)
	if !ok {
		return ackRef{}, protocolErrorf("%s frame has neither id nor message-id header", f.Command)
	}
	// A message on two subscriptions has one id: 1.1 names the
	// subscription, 1.0 does not and gets the first that matches.
	subs := []string{f.Header.Get(frame.Subscription)}
	if _, named := f.Header.Contains(frame.Subscription); !named {
		subs = subs[:0]
		for id := range c.subs {
			subs = append(subs, id)
		}
	}
	for _, sub := range subs {
		if tag, ok := c.byMsgID[msgKey(sub, mid)]; ok {
			return c.byTag[tag], nil
		}
	}
	return ackRef{}, protocolErrorf("%s of unknown message %q: not awaiting acknowledgement on this connection", f.Command, mid)
}

func msgKey(sub, msgID string) string { return sub + "\x00" + msgID }

// forget drops what an acknowledgement settled from the lookup maps: the
// delivery acknowledged, and for a cumulative one (ack mode client) the
// subscription's earlier ones.
func (c *conn) forget(ref ackRef, cumulative bool) {
	c.ackMu.Lock()
	defer c.ackMu.Unlock()
	c.drop(ref.tag)
	s := c.subs[ref.sub]
	if !cumulative || s == nil {
		return
	}
	left := s.order[:0]
	for _, tag := range s.order {
		if tag <= ref.tag {
			c.drop(tag)
		} else {
			left = append(left, tag)
		}
	}
	clear(s.order[len(left):])
	s.order = left
}

// drop forgets one delivery; c.ackMu is held.
func (c *conn) drop(tag uint64) {
	if r, ok := c.byTag[tag]; ok {
		delete(c.byTag, tag)
		if c.version != "1.2" {
			delete(c.byMsgID, msgKey(r.sub, r.msgID))
		}
	}
}

func (c *conn) transaction(f *frame.Frame) error {
	tx, ok := f.Header.Contains(frame.Transaction)
	if !ok || tx == "" {
		return protocolErrorf("%s frame has no transaction header", f.Command)
	}
	var err error
	conf := core.Confirmed
	switch f.Command {
	case frame.BEGIN:
		err = c.sess.Begin(tx)
	case frame.COMMIT:
		conf, err = c.sess.Commit(c.callCtx(), tx)
	default:
		err = c.sess.Abort(tx)
	}
	if err != nil {
		return fmt.Errorf("%s %s failed: %w", f.Command, tx, err)
	}
	if conf != core.Confirmed || f.Header.Get(frame.Receipt) != "" {
		c.confirm(confirmItem{conf: conf, what: f.Command + " " + tx, receipt: f.Header.Get(frame.Receipt)})
	}
	return nil
}

// consumer turns core deliveries into MESSAGE frames for the writer.
type consumer struct {
	c *conn
	s *subscription
}

func (k consumer) Deliver(d core.Delivery) {
	f := k.c.messageFrame(k.s, d)
	if k.s.ack == ackAuto {
		k.c.out.SendAcked(f, d.Tag)
		return
	}
	k.c.ackMu.Lock()
	k.c.byTag[d.Tag] = ackRef{tag: d.Tag, sub: k.s.id, msgID: d.Msg.ID}
	if k.c.version != "1.2" {
		// 1.2 acknowledges by the ack header's id only.
		k.c.byMsgID[msgKey(k.s.id, d.Msg.ID)] = d.Tag
	}
	if k.s.ack == ackClient {
		k.s.order = append(k.s.order, d.Tag)
	}
	k.c.ackMu.Unlock()
	k.c.out.Send(f)
}
