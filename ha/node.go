package ha

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"path"
	"slices"
	"strconv"
	"strings"
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
	// ConfirmTimeout bounds a commit's wait for a quorum.
	ConfirmTimeout time.Duration
}

// Services is what a node runs while it is the master: cmd builds the core
// on the store and opens the client listeners in Start, and stop closes
// them all again. ha knows nothing of them.
type Services interface {
	Start(st *store.Store) (stop func(), err error)
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
}

// PeerStatus is a master's view of one slave.
type PeerStatus struct {
	Addr     string `json:"address"`
	Attached bool   `json:"attached"`
	Acked    uint64 `json:"acked"`
	Lag      uint64 `json:"lag"`
}

// Member is a node's registration in ZooKeeper.
type Member struct {
	ID    string         `json:"id"`
	Repl  string         `json:"replication"`
	Admin string         `json:"admin,omitempty"`
	End   store.Position `json:"end"`
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

	mu       sync.Mutex
	st       *store.Store
	role     Role
	epochNow uint64 // the epoch this node leads, while candidate or master
	master   string
	members  []Member
	rep      *replicator
	demote   chan struct{} // closed to ask the leader loop to step down
	demoted  chan struct{} // closed once it has
	failed   error         // the store could not be reopened
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
	n := &Node{cfg: cfg, id: net.JoinHostPort(host, port), dir: dir, storeOpt: opts, svc: svc, log: log.With("component", "ha"), st: st, role: RoleSlave}
	n.follower = follower{n: n, log: n.log}
	return n, nil
}

func (n *Node) quorum() int { return n.cfg.Replicas/2 + 1 }

// Status reports the node's role, epoch, log end and, on a master, its slaves.
func (n *Node) Status() Status {
	n.mu.Lock()
	defer n.mu.Unlock()
	s := Status{ID: n.id, Role: n.role, Master: n.master, Epoch: n.st.Epoch(), End: n.st.End(), Members: n.members}
	if n.rep != nil {
		s.Peers = n.rep.lag()
	}
	return s
}

func (n *Node) epoch() uint64 {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.st.Epoch()
}

// fence is the follower asking to serve a master of epoch: refused while
// this node leads that epoch or a newer one; a node leading an older epoch
// steps down first, so that its store never takes two masters' records.
func (n *Node) fence(epoch uint64) (*store.Store, error) {
	n.mu.Lock()
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
	go n.follower.serve(ln)
	defer func() {
		ln.Close()
		n.follower.drop()
		n.mu.Lock()
		if n.failed == nil {
			n.st.Close()
		}
		n.mu.Unlock()
	}()
	n.log.Info("replication listening", "address", ln.Addr().String(), "id", n.id, "zk", n.cfg.ZKAddress, "replicas", n.cfg.Replicas)

	var zs zkSession
	conn, _, err := zk.Connect(strings.Split(n.cfg.ZKAddress, ","), n.cfg.ZKSessionTimeout,
		zk.WithLogger(zkLogger{n.log}), zk.WithEventCallback(zs.event))
	if err != nil {
		return fmt.Errorf("ha: zookeeper: %w", err)
	}
	defer conn.Close()
	zs.init(conn, n.onZKState)
	for ctx.Err() == nil {
		err := n.member(ctx, conn, &zs)
		n.mu.Lock()
		failed := n.failed
		n.mu.Unlock()
		if failed != nil {
			return failed
		}
		if err != nil && ctx.Err() == nil {
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

func (n *Node) paths() (root, members, master, epoch string) {
	root = path.Join(n.cfg.ZKPath, n.cfg.BrokerName)
	return root, root + "/members", root + "/master", root + "/epoch"
}

// member is one life in the cluster on one ZooKeeper session: register,
// follow a master, or lead when this node is the best candidate.
func (n *Node) member(ctx context.Context, conn *zk.Conn, zs *zkSession) error {
	sid, lost, err := zs.wait(ctx)
	if err != nil {
		return err
	}
	root, membersPath, masterPath, epochPath := n.paths()
	var paths []string
	for p := root; p != "/" && p != "."; p = path.Dir(p) {
		paths = append([]string{p}, paths...)
	}
	for _, p := range append(paths, membersPath, epochPath) {
		if _, err := conn.Create(p, []byte("0"), 0, zk.WorldACL(zk.PermAll)); err != nil && !errors.Is(err, zk.ErrNodeExists) {
			return fmt.Errorf("create %s: %w", p, err)
		}
	}
	me, err := conn.CreateProtectedEphemeralSequential(membersPath+"/n-", n.registration(), zk.WorldACL(zk.PermAll))
	if err != nil {
		return fmt.Errorf("register: %w", err)
	}
	defer func() {
		if conn.SessionID() == sid {
			conn.Delete(me, -1)
		}
	}()
	n.log.Info("registered", "znode", me)
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		if conn.SessionID() != sid {
			return errors.New("the ZooKeeper session changed")
		}
		data, _, masterCh, err := conn.GetW(masterPath)
		switch {
		case err == nil:
			var m Member
			json.Unmarshal(data, &m)
			if _, err := conn.Set(me, n.registration(), -1); err != nil {
				return err
			}
			// The master and the members change together, and a failed
			// read keeps the last list: a restarted slave's status never
			// names a master with nobody in the cluster.
			members, _, err := n.readMembers(conn, membersPath, false)
			n.mu.Lock()
			n.master = m.ID
			if err == nil {
				n.members = members
			}
			n.mu.Unlock()
		case errors.Is(err, zk.ErrNoNode):
			n.setMaster("")
			if _, err := conn.Set(me, n.registration(), -1); err != nil {
				return err
			}
			members, ch, err := n.readMembers(conn, membersPath, true)
			if err != nil {
				return err
			}
			n.setMembers(members)
			if len(members) >= n.quorum() && members[0].ID == n.id {
				if err := n.lead(ctx, conn, zs, sid, masterPath, epochPath, membersPath); err != nil {
					// Stand aside for a while, so that the next candidate
					// leads rather than this node failing again at once (a
					// port taken, a disk gone): it was electing itself
					// hundreds of times a second.
					n.log.Warn("leading failed; standing aside", "err", err, "for", n.cfg.ZKSessionTimeout)
					conn.Delete(me, -1)
					select {
					case <-ctx.Done():
						return nil
					case <-time.After(n.cfg.ZKSessionTimeout):
					}
					return fmt.Errorf("leading failed: %w", err)
				}
				continue
			}
			masterCh = mergeEvents(ch, masterCh)
		default:
			return err
		}
		select {
		case <-ctx.Done():
			return nil
		case <-lost:
			return errors.New("the ZooKeeper session was lost")
		case <-masterCh:
		case <-tick.C:
		}
	}
}

func mergeEvents(a, b <-chan zk.Event) <-chan zk.Event {
	out := make(chan zk.Event, 2)
	go func() {
		select {
		case e := <-a:
			out <- e
		case e := <-b:
			out <- e
		}
	}()
	return out
}

func (n *Node) registration() []byte {
	n.mu.Lock()
	end := n.st.End()
	n.mu.Unlock()
	b, _ := json.Marshal(Member{ID: n.id, Repl: n.id, Admin: n.cfg.Admin, End: end})
	return b
}

// readMembers lists the registered nodes, best candidate first: the
// greatest log end, compared epoch first, then the earliest registration.
func (n *Node) readMembers(conn *zk.Conn, dir string, watch bool) ([]Member, <-chan zk.Event, error) {
	var names []string
	var ch <-chan zk.Event
	var err error
	if watch {
		names, _, ch, err = conn.ChildrenW(dir)
	} else {
		names, _, err = conn.Children(dir)
	}
	if err != nil {
		return nil, nil, err
	}
	var out []Member
	for _, name := range names {
		data, _, err := conn.Get(dir + "/" + name)
		if err != nil {
			continue // gone meanwhile
		}
		var m Member
		if json.Unmarshal(data, &m) != nil {
			continue
		}
		// Protected names carry a GUID prefix: order by the sequence suffix.
		m.seq, _ = strconv.Atoi(name[max(0, len(name)-10):])
		out = append(out, m)
	}
	slices.SortFunc(out, func(a, b Member) int {
		if a.End != b.End {
			if b.End.Less(a.End) {
				return -1
			}
			return 1
		}
		return a.seq - b.seq
	})
	return out, ch, nil
}

func (n *Node) setMaster(id string) {
	n.mu.Lock()
	n.master = id
	n.mu.Unlock()
}

func (n *Node) setMembers(m []Member) {
	n.mu.Lock()
	n.members = m
	n.mu.Unlock()
}

// lead takes the master znode with a new epoch, fences a quorum, syncs
// from the longest log among it, starts the services, and holds on until
// it must step down.
func (n *Node) lead(ctx context.Context, conn *zk.Conn, zs *zkSession, sid int64, masterPath, epochPath, membersPath string) error {
	data, stat, err := conn.Get(epochPath)
	if err != nil {
		return err
	}
	last, _ := strconv.ParseUint(string(data), 10, 64)
	epoch := max(last, n.epoch()) + 1
	info, _ := json.Marshal(Member{ID: n.id, Repl: n.id, Admin: n.cfg.Admin})
	// One transaction: the epoch is unique and increasing because the
	// counter only moves with the versioned write that creates the master.
	if _, err := conn.Multi(
		&zk.CreateRequest{Path: masterPath, Data: info, Acl: zk.WorldACL(zk.PermAll), Flags: zk.FlagEphemeral},
		&zk.SetDataRequest{Path: epochPath, Data: []byte(strconv.FormatUint(epoch, 10)), Version: stat.Version},
	); err != nil {
		return nil // another node was quicker
	}
	// Stepping down gives the master znode up, but only while no newer
	// master exists: a request queued here can reach ZooKeeper after this
	// session expired, in the next one, when the znode is another node's.
	// Each election moves the epoch counter with its create, so its
	// version says whether ours is still the last.
	defer func() {
		if conn.SessionID() == sid {
			conn.Multi(
				&zk.CheckVersionRequest{Path: epochPath, Version: stat.Version + 1},
				&zk.DeleteRequest{Path: masterPath, Version: -1},
			)
		}
	}()
	log := n.log.With("epoch", epoch)
	log.Info("elected: fencing a quorum", "quorum", n.quorum())

	n.follower.drop()
	n.mu.Lock()
	st := n.st
	if err := st.SetEpoch(epoch); err != nil {
		n.mu.Unlock()
		return err
	}
	n.role, n.epochNow, n.master = RoleCandidate, epoch, n.id
	n.demote, n.demoted = make(chan struct{}), make(chan struct{})
	rep := newReplicator(st, n.id, epoch, n.quorum(), n.cfg.ConfirmTimeout, log, func(uint64) {
		n.mu.Lock()
		n.askDemoteLocked()
		n.mu.Unlock()
	})
	n.rep = rep
	demote, demoted := n.demote, n.demoted
	n.mu.Unlock()
	var stop func()
	defer func() { n.stepDown(rep, stop, demoted) }()

	watchCtx, cancelWatch := context.WithCancel(ctx)
	defer cancelWatch()
	go n.watchMembers(watchCtx, conn, membersPath, rep)

	fctx, cancel := context.WithTimeout(ctx, n.cfg.ZKSessionTimeout+10*time.Second)
	err = rep.fence(mergeDone(fctx, demote))
	cancel()
	if err != nil {
		return err
	}
	st.SetConfirmer(rep)
	if stop, err = n.svc.Start(st); err != nil {
		return fmt.Errorf("start the services: %w", err)
	}
	n.mu.Lock()
	n.role = RoleMaster
	n.mu.Unlock()
	log.Info("promoted: master", "end", st.End())
	_, lost, _ := zs.current()
	for {
		exists, _, ch, err := conn.ExistsW(masterPath)
		if err != nil || !exists {
			log.Warn("the master znode is gone: stepping down", "err", err)
			return nil
		}
		select {
		case <-ctx.Done():
			return nil
		case <-demote:
			return nil
		case <-lost:
			log.Warn("the ZooKeeper session expired: stepping down")
			return nil
		case <-ch:
		}
	}
}

func mergeDone(ctx context.Context, stop <-chan struct{}) context.Context {
	ctx, cancel := context.WithCancel(ctx)
	go func() {
		select {
		case <-stop:
			cancel()
		case <-ctx.Done():
		}
	}()
	return ctx
}

// watchMembers keeps the replicator's peers in step with the registered
// nodes, so a restarted slave is fenced and fed as soon as it registers.
func (n *Node) watchMembers(ctx context.Context, conn *zk.Conn, dir string, rep *replicator) {
	for ctx.Err() == nil {
		members, ch, err := n.readMembers(conn, dir, true)
		if err == nil {
			for _, m := range members {
				rep.setPeer(m.ID, m.Repl)
			}
			n.setMembers(members)
		}
		select {
		case <-ctx.Done():
			return
		case <-ch:
		case <-time.After(time.Second):
		}
	}
}

// stepDown closes the services, fails what waits for confirmation, and
// reopens the store: Close drains the committer, so nothing written under
// the old epoch can land after a newer master fences this node.
func (n *Node) stepDown(rep *replicator, stop func(), demoted chan struct{}) {
	if stop != nil {
		stop()
	}
	rep.close()
	n.mu.Lock()
	defer n.mu.Unlock()
	n.st.SetConfirmer(nil)
	n.st.Close()
	n.rep, n.role, n.epochNow, n.master = nil, RoleSlave, 0, ""
	st, err := store.Open(n.dir, n.storeOpt, n.log)
	if err != nil {
		// Without its store a node can neither serve nor follow: Run ends.
		n.failed = fmt.Errorf("ha: reopening the store after stepping down: %w", err)
		close(demoted)
		return
	}
	n.st = st
	close(demoted)
	n.log.Info("stepped down: slave")
}
