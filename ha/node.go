package ha

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/go-zookeeper/zk"

	"github.com/hamq/hamq/core/store"
)

// Sync policies: what a quorum must have done with a record before the
// master confirms it.
const (
	SyncQuorumMem  = "quorum_mem"
	SyncQuorumDisk = "quorum_disk"
)

// Config is a node's part of the cluster, named as in ActiveMQ's
// replicatedLevelDB.
type Config struct {
	BrokerName       string
	Replicas         int
	Bind             string // replication listener, host:port
	Hostname         string // how other nodes reach this one; bind's host when empty
	ZKAddress        string // comma-separated host:port list
	ZKPath           string
	ZKSessionTimeout time.Duration
	Sync             string
	// Admin is this node's admin API URL, published for `hamq cluster status`.
	Admin string
	// ConfirmTimeout bounds a commit's wait for a quorum, from its submission.
	ConfirmTimeout time.Duration
	// Secret is what members prove to each other before replicating (see
	// auth.go); empty lets anyone who reaches Bind in.
	Secret string
}

// Services is what a node runs while it is the master: cmd builds the core
// on the store and opens the client listeners in Start, and stop closes
// them all again, telling the clients why (a master that lost its quorum
// says so, not just that the broker is going). ha knows nothing of them.
type Services interface {
	Start(st *store.Store) (stop func(why string), err error)
}

// Role is a node's place in the cluster.
type Role string

const (
	RoleSlave     Role = "slave"
	RoleCandidate Role = "candidate"
	RoleMaster    Role = "master"
)

// Status is what the admin API reports of a node.
type Status struct {
	ID     string                `json:"id"`
	Role   Role                  `json:"role"`
	Master string                `json:"master,omitempty"`
	Epoch  uint64                `json:"epoch"`
	End    store.Position        `json:"end"`
	Peers  map[string]PeerStatus `json:"slaves,omitempty"`
	// Members are the registered nodes, as ZooKeeper lists them.
	Members []Member `json:"members,omitempty"`
	// Health is "ok", or what keeps the node from serving or following:
	// a store that failed and cannot be reopened yet.
	Health string `json:"health"`
	// ZooKeeper is the node's session: connected, disconnected or expired.
	ZooKeeper string `json:"zookeeper"`
	// CatchUp is a transfer under way into this node's store.
	CatchUp *CatchUp `json:"catchUp,omitempty"`
	// Aside: the node lost its quorum or failed to lead, and lets the
	// others elect a master among themselves for a while.
	Aside bool `json:"standingAside,omitempty"`
}

// PeerStatus is a master's view of one slave.
type PeerStatus struct {
	Addr     string `json:"address"`
	Attached bool   `json:"attached"`
	Acked    uint64 `json:"acked"`
	Lag      uint64 `json:"lag"`
	// Error is why the master cannot replicate to it, while it cannot.
	Error string `json:"error,omitempty"`
}

// Member is a node's registration in ZooKeeper; the master znode holds
// the master's, with its epoch.
type Member struct {
	ID    string         `json:"id"`
	Repl  string         `json:"replication"`
	Admin string         `json:"admin,omitempty"`
	End   store.Position `json:"end"`
	Aside bool           `json:"standingAside,omitempty"`
	Epoch uint64         `json:"epoch,omitempty"`
	seq   int
}

// Node is one member of a cluster: it holds the store, serves replication
// to masters, takes part in elections and runs the Services while master.
type Node struct {
	cfg      Config
	id       string
	dir      string
	storeOpt store.Options
	svc      Services
	log      *slog.Logger
	follower follower
	secret   []byte
	prog     progress
	// verify checks a HELLO's epoch and master id against ZooKeeper's
	// master znode; Run sets it before it serves replication.
	verify func(epoch uint64, id string) error
	zs     zkSession

	mu         sync.Mutex
	st         *store.Store // nil while the store cannot be opened
	storeErr   error        // why not
	role       Role
	epochNow   uint64 // the epoch this node leads, while candidate or master
	master     string
	members    []Member
	rep        *replicator
	demote     chan struct{} // closed to ask the leader loop to step down
	demoted    chan struct{} // closed once it has
	asideUntil time.Time
	retrying   bool // a goroutine is reopening the store
}

// NewNode opens the store in dir. Run then joins the cluster.
func NewNode(cfg Config, dir string, opts store.Options, svc Services, log *slog.Logger) (*Node, error) {
	if cfg.Replicas < 1 {
		return nil, fmt.Errorf("ha: replicas must be at least 1, not %d", cfg.Replicas)
	}
	host := cfg.Hostname
	_, port, err := net.SplitHostPort(cfg.Bind)
	if err != nil {
		return nil, fmt.Errorf("ha: bind %q: %w", cfg.Bind, err)
	}
	if host == "" {
		host, _, _ = net.SplitHostPort(cfg.Bind)
	}
	st, err := store.Open(dir, opts, log)
	if err != nil {
		return nil, err
	}
	n := &Node{cfg: cfg, id: net.JoinHostPort(host, port), dir: dir, storeOpt: opts, svc: svc, log: log.With("component", "ha"),
		st: st, role: RoleSlave, secret: []byte(cfg.Secret)}
	n.follower = follower{n: n, log: n.log}
	if cfg.Replicas%2 == 0 {
		n.log.Warn(fmt.Sprintf("replicas %d is even: a quorum is %d, so %d nodes tolerate no more failures than %d do; use an odd number",
			cfg.Replicas, n.quorum(), cfg.Replicas, cfg.Replicas-1))
	}
	return n, nil
}

func (n *Node) quorum() int { return n.cfg.Replicas/2 + 1 }

// Status reports the node's role, epoch, log end and, on a master, its slaves.
func (n *Node) Status() Status {
	// Read apart from n.mu, which the session's callback takes.
	zk, catchUp := n.zs.describe(), n.prog.current()
	n.mu.Lock()
	defer n.mu.Unlock()
	s := Status{ID: n.id, Role: n.role, Master: n.master, Members: n.members, Health: "ok",
		ZooKeeper: zk, CatchUp: catchUp, Aside: time.Now().Before(n.asideUntil)}
	if n.st != nil {
		s.Epoch, s.End = n.st.Epoch(), n.st.End()
	}
	if n.storeErr != nil {
		s.Health = "store unavailable: " + n.storeErr.Error()
	}
	if n.rep != nil {
		s.Peers = n.rep.lag()
	}
	return s
}

func (n *Node) epoch() uint64 {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.st == nil {
		return 0
	}
	return n.st.Epoch()
}

// fence is the follower asking to serve a master of epoch: refused while
// this node leads that epoch or a newer one; a node leading an older epoch
// steps down first, so that its store never takes two masters' records.
func (n *Node) fence(epoch uint64) (*store.Store, error) {
	n.mu.Lock()
	if n.st == nil {
		defer n.mu.Unlock()
		return nil, fmt.Errorf("the store is unavailable: %w", n.storeErr)
	}
	if epoch < n.st.Epoch() {
		defer n.mu.Unlock()
		return nil, fmt.Errorf("epoch %d is older than the fenced epoch %d", epoch, n.st.Epoch())
	}
	if n.role != RoleSlave {
		if epoch <= n.epochNow {
			defer n.mu.Unlock()
			return nil, fmt.Errorf("this node is %s of epoch %d", n.role, n.epochNow)
		}
		demoted := n.askDemoteLocked()
		n.mu.Unlock()
		<-demoted
		n.mu.Lock()
	}
	defer n.mu.Unlock()
	if n.st == nil {
		return nil, fmt.Errorf("the store is unavailable: %w", n.storeErr)
	}
	return n.st, nil
}

func (n *Node) askDemoteLocked() chan struct{} {
	select {
	case <-n.demote:
	default:
		close(n.demote)
	}
	return n.demoted
}

// Run serves replication on the bind address and takes part in elections
// until ctx ends; then it steps down and closes the store.
func (n *Node) Run(ctx context.Context) error {
	ln, err := net.Listen("tcp", n.cfg.Bind)
	if err != nil {
		return fmt.Errorf("ha: replication listener: %w", err)
	}
	if len(n.secret) == 0 {
		n.log.Warn("no cluster secret (cluster.secret, --cluster-secret or HAMQ_CLUSTER_SECRET): any process that reaches the replication address can take this cluster over", "bind", n.cfg.Bind)
	}
	n.log.Info("replication listening", "address", ln.Addr().String(), "id", n.id, "zk", n.cfg.ZKAddress, "replicas", n.cfg.Replicas)

	zl := &zkLogger{log: n.log}
	conn, _, err := zk.Connect(splitHosts(n.cfg.ZKAddress), n.cfg.ZKSessionTimeout,
		zk.WithLogger(zl), zk.WithEventCallback(n.zs.event))
	if err != nil {
		ln.Close()
		return fmt.Errorf("ha: zookeeper: %w", err)
	}
	n.zs.init(conn, n.onZKState, zl)
	_, _, masterPath, _ := n.paths()
	n.verify = func(epoch uint64, id string) error { return verifyMaster(conn, masterPath, epoch, id) }
	go n.follower.serve(ln)
	n.mu.Lock()
	if n.st != nil {
		go n.watchStore(n.st)
	}
	n.mu.Unlock()
	defer func() {
		ln.Close()
		n.follower.drop()
		conn.Close()
		n.mu.Lock()
		if n.st != nil {
			n.st.Close()
			n.st = nil
		}
		n.storeErr = errStopped
		n.mu.Unlock()
	}()
	go n.zs.reportUnreachable(ctx, n.cfg.ZKSessionTimeout, n.cfg.ZKAddress, n.log)
	for ctx.Err() == nil {
		if err := n.member(ctx, conn); err != nil && ctx.Err() == nil {
			n.log.Warn("cluster membership interrupted; joining again", "err", err)
			select {
			case <-ctx.Done():
			case <-time.After(time.Second):
			}
		}
	}
	return nil
}

// onZKState stops confirming the moment ZooKeeper is out of reach: a
// master cut off may already have been replaced.
func (n *Node) onZKState(connected bool) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.rep != nil {
		n.rep.suspend(!connected)
		if !connected {
			n.log.Warn("lost ZooKeeper: confirming nothing until it is back")
		}
	}
}

// sessionTimeout is the ZooKeeper session timeout the leadership checks
// run on: the one asked for, or the one the ensemble granted if shorter
// (a server clamps it to its maxSessionTimeout).
func (n *Node) sessionTimeout() time.Duration {
	if got := n.zs.negotiated(); got > 0 && got < n.cfg.ZKSessionTimeout {
		return got
	}
	return n.cfg.ZKSessionTimeout
}

// stepDown fails what waits for confirmation (with why, which clients
// see), closes the services, and reopens the store: Close drains the
// committer, so nothing written under the old epoch can land after a
// newer master fences this node.
func (n *Node) stepDown(rep *replicator, stop func(string), demoted chan struct{}, why string) {
	rep.close(why)
	if stop != nil {
		stop("stepped down: " + why)
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.st != nil {
		n.st.SetConfirmer(nil)
	}
	n.rep, n.role, n.epochNow, n.master = nil, RoleSlave, 0, ""
	n.reopenLocked()
	close(demoted)
	n.log.Info("stepped down: slave")
}

// watchStore waits for st to fail, and then has the node deal with it:
// a master steps down, a slave drops its master; both reopen the store.
func (n *Node) watchStore(st *store.Store) {
	select {
	case <-st.Failed():
	case <-st.Closed():
		return
	}
	n.mu.Lock()
	if n.st != st {
		n.mu.Unlock()
		return
	}
	if n.role != RoleSlave {
		n.log.Error("the store failed: stepping down", "err", st.Err())
		n.askDemoteLocked() // stepDown reopens it
		n.mu.Unlock()
		return
	}
	n.mu.Unlock()
	n.log.Error("the store failed: leaving the master until it is reopened", "err", st.Err())
	n.follower.drop()
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.st == st {
		n.reopenLocked()
	}
}

// reopenLocked closes the store and opens it again (after stepping down,
// and after a failed write, which LevelDB recovers from only by replaying
// its journal). While it cannot be opened the node is out of the
// cluster, and a goroutine tries again every second. n.mu is held.
func (n *Node) reopenLocked() {
	if n.st != nil {
		n.st.Close()
		n.st = nil
	}
	if err := n.openLocked(); err != nil {
		n.log.Error("cannot reopen the store; retrying every second", "err", err)
		if !n.retrying {
			n.retrying = true
			go n.retryStore()
		}
	}
}

func (n *Node) openLocked() error {
	st, err := store.Reopen(n.dir, n.storeOpt, n.log)
	if err != nil {
		n.storeErr = err
		return err
	}
	n.st, n.storeErr = st, nil
	go n.watchStore(st)
	return nil
}

func (n *Node) retryStore() {
	for {
		time.Sleep(time.Second)
		n.mu.Lock()
		if n.st != nil || errors.Is(n.storeErr, errStopped) {
			n.retrying = false
			n.mu.Unlock()
			return
		}
		if n.openLocked() == nil {
			n.retrying = false
			n.mu.Unlock()
			n.log.Info("the store is open again")
			return
		}
		n.mu.Unlock()
	}
}

var errStopped = errors.New("the node has stopped")

// store is the node's store, or nil while it cannot be opened.
func (n *Node) store() *store.Store {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.st
}
