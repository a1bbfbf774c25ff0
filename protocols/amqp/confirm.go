package amqp

import (
	"fmt"
	"time"

	"github.com/hamq/hamq/core"
	"github.com/hamq/hamq/protocols/amqp/wire"
)

// confirmItem is a received message on its way to durability.
type confirmItem struct {
	conf    core.Confirmation
	l       *link
	id      uint32 // delivery id
	settled bool   // the client settled it when sending: it needs no answer
	dest    core.Destination
}

// maxUnconfirmed bounds the messages of one connection waiting for
// durability; past it the reader waits, which is the client's
// back-pressure beyond link credit.
const maxUnconfirmed = 4096

func (c *conn) confirm(it confirmItem) {
	select {
	case c.confirms <- it:
	case <-c.ctx.Done():
	}
}

// confirmLoop lets the reader go on while messages become durable (many of
// them then share one fsync) and accepts each once it is: a durable
// message's accepted outcome never goes out before that. Consecutive
// deliveries of a session are accepted by one disposition.
func (c *conn) confirmLoop() {
	defer close(c.confirmed)
	var run *session
	var first, last uint32
	var until time.Time // the soonest any acceptance of the run goes stale
	flush := func() {
		if run != nil {
			c.mu.Lock()
			l := last
			c.sendUntil(run.channel, &wire.Disposition{Role: wire.RoleReceiver, First: first, Last: &l, Settled: true, State: &wire.Accepted{}}, until)
			c.mu.Unlock()
			run, until = nil, time.Time{}
		}
	}
	for {
		var it confirmItem
		select {
		case it = <-c.confirms:
		case <-c.ctx.Done():
			return
		}
		select {
		case <-it.conf.Done():
		default:
			// Not durable yet: what is ready goes out before the wait.
			flush()
		}
		if err := it.conf.Wait(c.ctx); err != nil {
			if c.ctx.Err() == nil {
				// Not durable: closing makes the client send it again,
				// as unsettled, where the broker can take it.
				c.srv.log.Warn("send failed", "remote", c.nc.RemoteAddr(), "dest", it.dest, "err", err)
				c.closeWith(&wire.Error{Condition: condition(err), Description: fmt.Sprintf("send to %s failed: %v", it.dest, err)})
			}
			return
		}
		if !it.settled {
			if run != it.l.s || it.id != last+1 {
				flush()
				run, first = it.l.s, it.id
			}
			last = it.id
			if u := it.conf.ValidUntil(); !u.IsZero() && (until.IsZero() || u.Before(until)) {
				until = u
			}
		}
		c.mu.Lock()
		it.l.unconfirmed--
		it.l.topUp()
		c.mu.Unlock()
		if len(c.confirms) == 0 {
			flush()
		}
	}
}
