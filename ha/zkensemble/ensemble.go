package zkensemble

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"
)

// Options configure Start. The zero value is a 3-member ensemble on free
// ports in a temporary directory.
type Options struct {
	// Dir holds one directory per member (zk1, zk2, ...) with its zoo.cfg,
	// data and zookeeper.log. Empty means a new temporary directory that
	// Close removes; a given Dir is kept, so that the demo's logs can be
	// read after it ends.
	Dir string
	// Members is the ensemble's size; 0 means 3. A single member runs
	// standalone.
	Members int
	// BasePort fixes the ports, for a demo whose connect string should
	// not change between runs: clients on BasePort..BasePort+n-1, quorum
	// on the next n, leader election on the n after. 0 picks free ports
	// and starts over with new ones if another process takes one first.
	BasePort int
	// Tick is ZooKeeper's tickTime; 0 means 500ms, which allows sessions
	// from 1s (2 ticks) to 20s (40 ticks).
	Tick time.Duration
	// StartTimeout bounds the wait for members to serve, in Start and
	// Restart; 0 means 60s, generous for a loaded 2-core CI machine.
	StartTimeout time.Duration
	// Logger receives the members' PIDs and roles as they come up; nil
	// discards them.
	Logger *slog.Logger
}

// Ensemble is a running ensemble. Its methods are safe for concurrent use
// and run one at a time. Close must be called to end the members.
type Ensemble struct {
	inst      install
	opts      Options
	dir       string
	removeDir bool
	log       *slog.Logger

	mu      sync.Mutex
	members []*member // fixed after Start; processes change under mu
	closed  bool
}

// stopGrace is how long Stop lets a member shut down before killing it.
const stopGrace = 5 * time.Second

// errPortTaken marks a start that failed because another process bound
// one of the ports between freePorts and the JVM: retrying with new ports
// is then the cure.
var errPortTaken = errors.New("a port it needs was taken by another process")

// Start starts the members and returns once every one answers srvr with
// its role (leader, follower or standalone), so that a client connecting
// right after gets served. On error no member is left running.
func Start(ctx context.Context, opts Options) (*Ensemble, error) {
	if opts.Members == 0 {
		opts.Members = 3
	}
	if opts.Members < 0 || opts.BasePort < 0 || opts.BasePort+3*opts.Members > 65536 {
		return nil, fmt.Errorf("zkensemble: invalid options: %d members from port %d", opts.Members, opts.BasePort)
	}
	if opts.Tick == 0 {
		opts.Tick = 500 * time.Millisecond
	}
	if opts.StartTimeout == 0 {
		opts.StartTimeout = 60 * time.Second
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	inst, err := findInstall()
	if err != nil {
		return nil, err
	}
	e := &Ensemble{inst: inst, opts: opts, dir: opts.Dir, log: log.With("component", "zkensemble")}
	if e.dir == "" {
		if e.dir, err = os.MkdirTemp("", "zkensemble-"); err != nil {
			return nil, fmt.Errorf("zkensemble: %w", err)
		}
		e.removeDir = true
	}
	attempts := 1
	if opts.BasePort == 0 {
		attempts = 3
	}
	began := time.Now()
	for attempt := 1; ; attempt++ {
		err := e.startAll(ctx)
		if err == nil {
			e.log.Info("ensemble serving", "connect", e.Connect(), "took", time.Since(began).Round(time.Millisecond))
			return e, nil
		}
		for _, m := range e.members {
			m.stop(0)
		}
		if !errors.Is(err, errPortTaken) || attempt == attempts {
			if e.removeDir {
				os.RemoveAll(e.dir)
			}
			return nil, err
		}
		e.log.Warn("starting over with new ports", "attempt", attempt, "err", err)
	}
}

// startAll lays out the members on their ports, starts them and waits for
// all to serve.
func (e *Ensemble) startAll(ctx context.Context) error {
	n := e.opts.Members
	var ports []int
	if e.opts.BasePort != 0 {
		for p := range 3 * n {
			ports = append(ports, e.opts.BasePort+p)
		}
	} else {
		var err error
		if ports, err = freePorts(3 * n); err != nil {
			return err
		}
	}
	e.members = make([]*member, n)
	for i := range n {
		e.members[i] = &member{
			id:     i + 1,
			dir:    filepath.Join(e.dir, fmt.Sprintf("zk%d", i+1)),
			client: ports[i], peer: ports[n+i], election: ports[2*n+i],
		}
	}
	for _, m := range e.members {
		if err := m.writeConfig(e.members, e.opts.Tick); err != nil {
			return err
		}
	}
	for _, m := range e.members {
		if err := m.start(e.inst); err != nil {
			return err
		}
		e.log.Info("member started", "member", m.id, "pid", m.cmd.Process.Pid, "addr", m.addr(), "log", m.logPath())
	}
	return e.waitServing(ctx, e.members)
}

// waitServing polls the members until each has a role, one exits, or the
// start timeout passes.
func (e *Ensemble) waitServing(parent context.Context, ms []*member) error {
	ctx, cancel := context.WithTimeout(parent, e.opts.StartTimeout)
	defer cancel()
	began := time.Now()
	pending := slices.Clone(ms)
	lastErr := make(map[*member]error)
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		waiting := pending[:0]
		for _, m := range pending {
			mode, err := probeMode(ctx, m.addr())
			if err != nil {
				lastErr[m] = err
				waiting = append(waiting, m)
				continue
			}
			e.log.Info("member serving", "member", m.id, "mode", mode, "after", time.Since(began).Round(time.Millisecond))
		}
		if pending = waiting; len(pending) == 0 {
			return nil
		}
		for _, m := range pending {
			select {
			case <-m.exited:
				return e.notServing(m, fmt.Sprintf("exited (%v)", m.waitErr))
			default:
			}
		}
		select {
		case <-ctx.Done():
			if err := parent.Err(); err != nil {
				return fmt.Errorf("zkensemble: waiting for members: %w", err)
			}
			m := pending[0]
			return e.notServing(m, fmt.Sprintf("not serving after %v (%v)", e.opts.StartTimeout, lastErr[m]))
		case <-tick.C:
		}
	}
}

// notServing is the error for a member that did not come up, with the
// end of its log since that is where ZooKeeper says why.
func (e *Ensemble) notServing(m *member, what string) error {
	tail := m.logTail(4096)
	if m.logMentions("Address already in use") {
		return fmt.Errorf("zkensemble: member %d (%s) %s: %w; %s ends:\n%s", m.id, m.addr(), what, errPortTaken, m.logPath(), tail)
	}
	return fmt.Errorf("zkensemble: member %d (%s) %s; %s ends:\n%s", m.id, m.addr(), what, m.logPath(), tail)
}

// Addrs are the members' client addresses, in member order: index i is
// the member that Stop(i), Kill(i) and Restart(i) act on.
func (e *Ensemble) Addrs() []string {
	addrs := make([]string, len(e.members))
	for i, m := range e.members {
		addrs[i] = m.addr()
	}
	return addrs
}

// Connect is the connect string naming every member, as ZooKeeper clients
// and hamq's configuration take it.
func (e *Ensemble) Connect() string { return strings.Join(e.Addrs(), ",") }

// LogPath is member i's log file, for the demo to point at and for a
// failing test to read.
func (e *Ensemble) LogPath(i int) string {
	if i < 0 || i >= len(e.members) {
		return ""
	}
	return e.members[i].logPath()
}

// PID is member i's process ID, or 0 while it is not running: the demo
// prints it so that a newcomer can kill a member by hand.
func (e *Ensemble) PID(i int) int {
	e.mu.Lock()
	defer e.mu.Unlock()
	if i < 0 || i >= len(e.members) || !e.members[i].running() {
		return 0
	}
	return e.members[i].cmd.Process.Pid
}

// Mode asks member i for its role: "leader", "follower" or "standalone".
// It fails while the member is down or has no quorum, so tests use it to
// find the leader and to wait for a new one.
func (e *Ensemble) Mode(ctx context.Context, i int) (string, error) {
	if i < 0 || i >= len(e.members) {
		return "", fmt.Errorf("zkensemble: no member %d", i)
	}
	mode, err := probeMode(ctx, e.members[i].addr())
	if err != nil {
		return "", fmt.Errorf("zkensemble: member %d: %w", e.members[i].id, err)
	}
	return mode, nil
}

// Stop shuts member i down with SIGTERM, as an operator would, and waits
// for it to exit (killing it after 5s). Stopping a stopped member does
// nothing.
func (e *Ensemble) Stop(i int) error { return e.halt(i, stopGrace) }

// Kill ends member i with SIGKILL, a crash that gives it no chance to
// close its connections cleanly, and waits for it to exit.
func (e *Ensemble) Kill(i int) error { return e.halt(i, 0) }

func (e *Ensemble) halt(i int, grace time.Duration) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if i < 0 || i >= len(e.members) {
		return fmt.Errorf("zkensemble: no member %d", i)
	}
	m := e.members[i]
	if m.running() {
		e.log.Info("stopping member", "member", m.id, "pid", m.cmd.Process.Pid, "kill", grace == 0)
	}
	return m.stop(grace)
}

// Restart starts member i again on its ports and data, stopping it first
// if it runs, and waits until it serves again. A member alone without a
// quorum never serves, so restarting one member of an ensemble that lost
// its majority waits for the start timeout; start the others first, in
// goroutines, or accept the error and use Mode.
func (e *Ensemble) Restart(ctx context.Context, i int) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return errors.New("zkensemble: restart after Close")
	}
	if i < 0 || i >= len(e.members) {
		return fmt.Errorf("zkensemble: no member %d", i)
	}
	m := e.members[i]
	if err := m.stop(stopGrace); err != nil {
		return err
	}
	if err := m.start(e.inst); err != nil {
		return err
	}
	e.log.Info("member restarted", "member", m.id, "pid", m.cmd.Process.Pid)
	return e.waitServing(ctx, []*member{m})
}

// Close kills every member and waits for each to exit, then removes the
// directory if Start made it. Members are killed rather than stopped:
// nothing in them needs a clean shutdown, and tests should not pay for one.
func (e *Ensemble) Close() error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return nil
	}
	e.closed = true
	var errs []error
	for _, m := range e.members {
		errs = append(errs, m.stop(0))
	}
	if e.removeDir {
		errs = append(errs, os.RemoveAll(e.dir))
	}
	return errors.Join(errs...)
}
