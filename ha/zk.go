package ha

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/go-zookeeper/zk"
)

// zkSession follows one ZooKeeper client's sessions from its event
// callback: the event channel drops events, the callback does not. A new
// session on the same client (the library opens one silently after an
// expiry) counts as the old one lost.
type zkSession struct {
	mu        sync.Mutex
	conn      *zk.Conn
	zl        *zkLogger
	sid       int64
	connected bool
	expired   bool          // the last session ended; none since
	lost      chan struct{} // closed when the session sid is over
	changed   chan struct{} // closed and replaced on every state change
	onState   func(connected bool)
}

func (z *zkSession) init(conn *zk.Conn, onState func(bool), zl *zkLogger) {
	z.mu.Lock()
	defer z.mu.Unlock()
	z.conn, z.onState, z.zl = conn, onState, zl
	if z.lost == nil {
		z.lost, z.changed = make(chan struct{}), make(chan struct{})
	}
	if z.connected && z.sid == 0 {
		z.sid = conn.SessionID()
	}
}

// event is the client's callback. The node is told of the change after
// the session's lock is released: the node's own lock is taken in that
// call, and the node reads the session under its own lock (Status).
func (z *zkSession) event(e zk.Event) {
	if e.Type != zk.EventSession {
		return
	}
	z.mu.Lock()
	if z.lost == nil {
		z.lost, z.changed = make(chan struct{}), make(chan struct{})
	}
	notify, connected := false, false
	switch e.State {
	case zk.StateDisconnected:
		z.connected = false
		notify = true
	case zk.StateExpired:
		z.connected, z.expired = false, true
		z.endLocked()
		notify = true
	case zk.StateHasSession:
		z.connected, z.expired = true, false
		notify, connected = true, true
		if z.conn != nil {
			sid := z.conn.SessionID()
			if z.sid != 0 && sid != z.sid {
				// A new session: the old one, and any term held in it, is
				// over. Confirming stays suspended; the master steps down.
				z.endLocked()
				connected = false
			}
			z.sid = sid
		}
	}
	close(z.changed)
	z.changed = make(chan struct{})
	onState := z.onState
	z.mu.Unlock()
	if notify && onState != nil {
		onState(connected)
	}
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

// describe is the session's state for the node's status.
func (z *zkSession) describe() string {
	z.mu.Lock()
	defer z.mu.Unlock()
	switch {
	case z.connected:
		return "connected"
	case z.expired:
		return "expired"
	}
	return "disconnected"
}

// negotiated is the session timeout the ensemble granted, once known.
func (z *zkSession) negotiated() time.Duration {
	z.mu.Lock()
	zl := z.zl
	z.mu.Unlock()
	if zl == nil {
		return 0
	}
	zl.mu.Lock()
	defer zl.mu.Unlock()
	return zl.granted
}

// reportUnreachable warns while the node has no ZooKeeper session: first
// after one session timeout, then every 30 s, with the last reason the
// client gave. Without it a node that cannot reach ZooKeeper said nothing.
func (z *zkSession) reportUnreachable(ctx context.Context, timeout time.Duration, servers string, log *slog.Logger) {
	wait := timeout
	for {
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
		z.mu.Lock()
		connected := z.connected
		z.mu.Unlock()
		if !connected {
			log.Warn("no ZooKeeper session: cannot take part in the cluster", "zk", servers, "last_error", z.zl.lastFailure())
		}
		wait = 30 * time.Second
		if connected {
			wait = timeout
		}
	}
}

// zkLogger sends the client library's chatter to the debug log, keeping
// the two things hamq needs from it: the session timeout the server
// granted, and the last reason a connection attempt failed.
type zkLogger struct {
	log *slog.Logger

	mu      sync.Mutex
	granted time.Duration
	failure string
}

func (l *zkLogger) Printf(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	l.mu.Lock()
	// go-zookeeper has no accessor for the granted timeout; it logs it
	// with this format once a session is established.
	if format == "authenticated: id=%d, timeout=%d" && len(args) == 2 {
		if ms, ok := args[1].(int32); ok {
			l.granted = time.Duration(ms) * time.Millisecond
		}
	}
	if strings.Contains(strings.ToLower(msg), "failed to connect") {
		l.failure = msg
	}
	l.mu.Unlock()
	l.log.Debug(msg, "source", "zookeeper")
}

func (l *zkLogger) lastFailure() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.failure == "" {
		return "no answer"
	}
	return l.failure
}
