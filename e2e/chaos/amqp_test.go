package chaos

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/Azure/go-amqp"
)

// The AMQP clients are go-amqp's. An idle timeout of 4 s makes the broker
// send an empty frame every 2 s, so that a paused master is noticed.

const amqpIdle = 4 * time.Second

func amqpDial(ep endpoint, containerID string) (*amqp.Conn, *amqp.Session, error) {
	ctx, cancel := context.WithTimeout(context.Background(), connectTimeout+time.Second)
	defer cancel()
	conn, err := amqp.Dial(ctx, "amqp://"+ep.addr, &amqp.ConnOptions{ContainerID: containerID, IdleTimeout: amqpIdle})
	if err != nil {
		return nil, nil, err
	}
	sess, err := conn.NewSession(ctx, nil)
	if err != nil {
		conn.Close()
		return nil, nil, err
	}
	return conn, sess, nil
}

// amqpSender is a producer's connection: durable messages, each waiting
// for its outcome.
type amqpSender struct {
	conn *amqp.Conn
	s    *amqp.Sender
}

func amqpDialer(client, target string) func(endpoint) (sender, error) {
	return func(ep endpoint) (sender, error) {
		conn, sess, err := amqpDial(ep, "chaos-"+client)
		if err != nil {
			return nil, err
		}
		ctx, cancel := context.WithTimeout(context.Background(), connectTimeout)
		defer cancel()
		s, err := sess.NewSender(ctx, target, nil)
		if err != nil {
			conn.Close()
			return nil, err
		}
		return &amqpSender{conn: conn, s: s}, nil
	}
}

func (s *amqpSender) send(id string, attempt int, body []byte, timeout time.Duration) (Kind, string, bool) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	m := amqp.NewMessage(body)
	m.Header = &amqp.MessageHeader{Durable: true}
	m.Properties = &amqp.MessageProperties{MessageID: id}
	r, err := s.s.SendWithReceipt(ctx, m, nil)
	if err != nil {
		return Unknown, err.Error(), errors.Is(err, context.DeadlineExceeded)
	}
	state, err := r.Wait(ctx)
	switch st := state.(type) {
	case nil:
		return Unknown, err.Error(), errors.Is(err, context.DeadlineExceeded)
	case *amqp.StateAccepted:
		return Confirm, "", false
	case *amqp.StateRejected:
		return Fail, fmt.Sprintf("rejected: %v", st.Error), false
	default:
		return Fail, fmt.Sprintf("outcome %T", st), false
	}
}

func (s *amqpSender) close() { s.conn.Close() }

// amqpSession consumes source through a durable receiver (the name of
// link names the subscription, the container id its owner), accepting
// each message after recording it.
func amqpSession(rec *recorder, flow, client, containerID, link, source string) session {
	return func(ep endpoint, got func(copyOf), idle time.Duration, stop <-chan struct{}) error {
		conn, sess, err := amqpDial(ep, containerID)
		if err != nil {
			return err
		}
		defer conn.Close()
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		go func() {
			select {
			case <-stop:
				cancel()
			case <-ctx.Done():
			}
		}()
		lctx, lcancel := context.WithTimeout(ctx, connectTimeout)
		r, err := sess.NewReceiver(lctx, source, durableReceiver(link))
		lcancel()
		if err != nil {
			return err
		}
		for {
			rctx, rcancel := context.WithTimeout(ctx, idle)
			m, err := r.Receive(rctx, nil)
			rcancel()
			switch {
			case errors.Is(err, context.DeadlineExceeded):
				return errIdle
			case err != nil:
				return err
			}
			cp := copyOf{body: m.GetData()}
			if m.Properties != nil {
				cp.header, _ = m.Properties.MessageID.(string)
			}
			cp.redelivered = m.Header != nil && m.Header.DeliveryCount > 0
			got(cp)
			actx, acancel := context.WithTimeout(ctx, 2*time.Second)
			err = r.AcceptMessage(actx, m)
			acancel()
			if err != nil {
				return err
			}
			rec.add(Event{Kind: Ack, Flow: flow, Client: client, ID: cp.header, Node: ep.name})
		}
	}
}

func durableReceiver(name string) *amqp.ReceiverOptions {
	return &amqp.ReceiverOptions{Name: name, Credit: 200, SourceDurability: amqp.DurabilityUnsettledState,
		SourceExpiryPolicy: amqp.ExpiryPolicyNever}
}

// amqpDurable attaches a durable receiver and goes away without closing
// the link, leaving the subscription to collect: a witness.
func amqpDurable(eps []endpoint, containerID, name, source string, timeout time.Duration) error {
	var last error
	for deadline := time.Now().Add(timeout); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		for _, ep := range eps {
			conn, sess, err := amqpDial(ep, containerID)
			if err != nil {
				last = err
				continue
			}
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			_, err = sess.NewReceiver(ctx, source, durableReceiver(name))
			cancel()
			conn.Close()
			if err == nil {
				return nil
			}
			last = err
		}
	}
	return fmt.Errorf("AMQP durable receiver %s of %s: %w", name, containerID, last)
}

func amqpEndpoints(c *cluster) []endpoint {
	var out []endpoint
	for _, n := range c.nodes {
		out = append(out, endpoint{n.name, n.amqp()})
	}
	return out
}
