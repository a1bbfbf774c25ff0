package main

import (
	"context"
	"fmt"
	"net/url"
	"strings"
	"time"

	goamqp "github.com/Azure/go-amqp"
)

// amqpBench is a go-amqp connection with one link: a sender whose messages
// are unsettled (each waits for the broker's outcome), or a receiver that
// accepts each message once it has it, as STOMP's client-individual
// consumers ACK each (with --ack auto, deliveries come pre-settled, done
// with once written, as ack:auto's are).
type amqpBench struct {
	conn    *goamqp.Conn
	snd     *goamqp.Sender
	rcv     *goamqp.Receiver
	cfg     benchConfig
	waiting chan pendingSend // a producer's sends in order, awaiting outcomes
}

type pendingSend struct {
	r    goamqp.SendReceipt
	done func(error)
}

func dialAMQPBench(cfg benchConfig, role string) (benchConn, error) {
	u, err := url.Parse(cfg.url)
	if err != nil || u.Host == "" {
		return nil, fmt.Errorf("--url %q: want tcp://host:port", cfg.url)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var opts *goamqp.ConnOptions
	if cfg.login.user != "" {
		opts = &goamqp.ConnOptions{SASLType: goamqp.SASLTypePlain(cfg.login.user, cfg.login.password)}
	}
	conn, err := goamqp.Dial(ctx, "amqp://"+u.Host, opts)
	if err != nil {
		return nil, fmt.Errorf("amqp connect %s: %w", u.Host, err)
	}
	b := &amqpBench{conn: conn, cfg: cfg}
	sess, err := conn.NewSession(ctx, nil)
	if err == nil {
		if strings.HasPrefix(role, "consumer") {
			// The link credit is the STOMP consumers' prefetch.
			opts := &goamqp.ReceiverOptions{Credit: int32(cfg.prefetch)}
			if cfg.ack == "auto" {
				settled := goamqp.SenderSettleModeSettled
				opts.RequestedSenderSettleMode = &settled
			}
			b.rcv, err = sess.NewReceiver(ctx, cfg.dest, opts)
		} else {
			b.snd, err = sess.NewSender(ctx, cfg.dest, nil)
			b.waiting = make(chan pendingSend, cfg.window)
			go b.awaitOutcomes()
		}
	}
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("amqp link to %s: %w", cfg.dest, err)
	}
	return b, nil
}

func (b *amqpBench) publish(body []byte, done func(error)) error {
	m := goamqp.NewMessage(body)
	m.Header = &goamqp.MessageHeader{Durable: b.cfg.persistent}
	r, err := b.snd.SendWithReceipt(context.Background(), m, nil)
	if err != nil {
		return err
	}
	b.waiting <- pendingSend{r, done}
	return nil
}

// awaitOutcomes waits for each send's outcome in turn: one goroutine per
// producer rather than one per message.
func (b *amqpBench) awaitOutcomes() {
	for p := range b.waiting {
		state, err := p.r.Wait(context.Background())
		if _, ok := state.(*goamqp.StateAccepted); err == nil && !ok {
			err = fmt.Errorf("amqp: message not accepted: %v", state)
		}
		p.done(err)
	}
}

func (b *amqpBench) subscribe(fn func([]byte)) error {
	go func() {
		for {
			m, err := b.rcv.Receive(context.Background(), nil)
			if err != nil {
				return
			}
			fn(m.GetData())
			// Settled at the first disposition (the receiver's default
			// mode): the accept is sent, not waited for; a no-op on
			// pre-settled deliveries.
			if err := b.rcv.AcceptMessage(context.Background(), m); err != nil {
				return
			}
		}
	}()
	return nil
}

func (b *amqpBench) close() {
	if b.waiting != nil {
		close(b.waiting)
	}
	b.conn.Close()
}
