package ha

import (
	"context"
	"fmt"
	"log/slog"
	"sync"

	"github.com/go-zookeeper/zk"
)

// zkSession follows one ZooKeeper client's sessions from its event
// callback: the event channel drops events, the callback does not. A new
// session on the same client (the library opens one silently after an
// expiry) counts as the old one lost.
type zkSession struct {
	mu        sync.Mutex
	conn      *zk.Conn
	sid       int64
	connected bool
	lost      chan struct{} // closed when the session sid is over
	changed   chan struct{} // closed and replaced on every state change
	onState   func(connected bool)
}

func (z *zkSession) init(conn *zk.Conn, onState func(bool)) {
	z.mu.Lock()
	defer z.mu.Unlock()
	z.conn, z.onState = conn, onState
	if z.lost == nil {
		z.lost, z.changed = make(chan struct{}), make(chan struct{})
	}
	if z.connected && z.sid == 0 {
		z.sid = conn.SessionID()
	}
}

func (z *zkSession) event(e zk.Event) {
	if e.Type != zk.EventSession {
		return
	}
	z.mu.Lock()
	defer z.mu.Unlock()
	if z.lost == nil {
		z.lost, z.changed = make(chan struct{}), make(chan struct{})
	}
	notify := func(connected bool) {
		if z.onState != nil {
			z.onState(connected)
		}
	}
	switch e.State {
	case zk.StateDisconnected:
		z.connected = false
		notify(false)
	case zk.StateExpired:
		z.connected = false
		z.endLocked()
		notify(false)
	case zk.StateHasSession:
		z.connected = true
		if z.conn != nil {
			sid := z.conn.SessionID()
			if z.sid != 0 && sid != z.sid {
				z.endLocked()
			}
			z.sid = sid
		}
		// Confirming resumes only on the session it was suspended in; a
		// new session has ended the old one above and its master steps down.
		notify(true)
	}
	close(z.changed)
	z.changed = make(chan struct{})
}

func (z *zkSession) endLocked() {
	close(z.lost)
	z.lost = make(chan struct{})
	z.sid = 0
}

// wait returns the current session and the channel closed when it ends,
// waiting for one to be established.
func (z *zkSession) wait(ctx context.Context) (int64, <-chan struct{}, error) {
	for {
		z.mu.Lock()
		if z.connected && z.sid == 0 && z.conn != nil {
			z.sid = z.conn.SessionID()
		}
		sid, lost, ch := z.sid, z.lost, z.changed
		ok := z.connected && sid != 0
		z.mu.Unlock()
		if ok {
			return sid, lost, nil
		}
		select {
		case <-ctx.Done():
			return 0, nil, ctx.Err()
		case <-ch:
		}
	}
}

func (z *zkSession) current() (int64, <-chan struct{}, bool) {
	z.mu.Lock()
	defer z.mu.Unlock()
	return z.sid, z.lost, z.connected
}

// zkLogger sends the client library's chatter to the debug log.
type zkLogger struct{ log *slog.Logger }

func (l zkLogger) Printf(format string, args ...any) {
	l.log.Debug(fmt.Sprintf(format, args...), "source", "zookeeper")
}
