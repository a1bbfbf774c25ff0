package ha

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/go-zookeeper/zk"

	"github.com/hamq/hamq/core/store"
)

func (n *Node) paths() (root, members, master, epoch string) {
	root = path.Join(n.cfg.ZKPath, n.cfg.BrokerName)
	return root, root + "/members", root + "/master", root + "/epoch"
}

func splitHosts(list string) []string {
	var out []string
	for _, h := range strings.Split(list, ",") {
		if h = strings.TrimSpace(h); h != "" {
			out = append(out, h)
		}
	}
	return out
}

// member is one life in the cluster on one ZooKeeper session: register,
// follow a master, or lead when this node is the best candidate. It keeps
// one watch on the master znode and one on the members at a time, armed
// again only once fired: the client library keeps every watch set until
// it fires, so arming them on each tick piled them up.
func (n *Node) member(ctx context.Context, conn *zk.Conn) error {
	sid, lost, err := n.zs.wait(ctx)
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
	me := ""
	defer func() {
		if me != "" && conn.SessionID() == sid {
			conn.Delete(me, -1)
		}
	}()
	var masterCh, membersCh <-chan zk.Event
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		if conn.SessionID() != sid {
			return errors.New("the ZooKeeper session changed")
		}
		// A node without its store takes no part: it could neither be
		// fenced nor lead.
		reg, ok := n.registration()
		switch {
		case !ok && me != "":
			conn.Delete(me, -1)
			me = ""
		case ok && me == "":
			if me, err = conn.CreateProtectedEphemeralSequential(membersPath+"/n-", reg, zk.WorldACL(zk.PermAll)); err != nil {
				return fmt.Errorf("register: %w", err)
			}
			n.log.Info("registered", "znode", me)
		case ok:
			if _, err := conn.Set(me, reg, -1); err != nil {
				return err
			}
		}
		if masterCh == nil {
			_, _, ch, err := conn.ExistsW(masterPath)
			if err != nil {
				return err
			}
			masterCh = ch
		}
		if membersCh == nil {
			_, _, ch, err := conn.ChildrenW(membersPath)
			if err != nil {
				return err
			}
			membersCh = ch
		}
		m, found, err := readMaster(conn, masterPath)
		if err != nil {
			return err
		}
		// The master and the members change together, and a failed read
		// keeps the last list: a restarted slave's status never names a
		// master with nobody in the cluster.
		members, err := n.readMembers(conn, membersPath)
		n.mu.Lock()
		n.master = m.ID
		if err == nil {
			n.members = members
		}
		n.mu.Unlock()
		if !found && err == nil && me != "" && len(members) >= n.quorum() {
			if c := candidate(members); c != nil && c.ID == n.id {
				if err := n.lead(ctx, conn, sid, lost, me); err != nil {
					n.log.Warn("leading failed; standing aside", "err", err)
				}
				// lead held watches of its own; the master znode came and
				// went meanwhile.
				continue
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-lost:
			return errors.New("the ZooKeeper session was lost")
		case <-masterCh:
			masterCh = nil
		case <-membersCh:
			membersCh = nil
		case <-tick.C:
		}
	}
}

// candidate is the member that should lead: the first not standing aside
// in readMembers' order.
func candidate(members []Member) *Member {
	for i := range members {
		if !members[i].Aside {
			return &members[i]
		}
	}
	return nil
}

func readMaster(conn *zk.Conn, masterPath string) (Member, bool, error) {
	var m Member
	data, _, err := conn.Get(masterPath)
	if errors.Is(err, zk.ErrNoNode) {
		return m, false, nil
	}
	if err != nil {
		return m, false, err
	}
	json.Unmarshal(data, &m)
	return m, true, nil
}

// verifyMaster checks that ZooKeeper names id the master of epoch, after
// a sync when the first read disagrees: the master znode is created just
// before its master dials, and this node's ZooKeeper server may lag.
func verifyMaster(conn *zk.Conn, masterPath string, epoch uint64, id string) error {
	var m Member
	for try := range 2 {
		if try > 0 {
			if _, err := conn.Sync(masterPath); err != nil {
				return fmt.Errorf("cannot check the master with ZooKeeper: %w", err)
			}
		}
		var found bool
		var err error
		if m, found, err = readMaster(conn, masterPath); err != nil {
			return fmt.Errorf("cannot check the master with ZooKeeper: %w", err)
		}
		if found && m.ID == id && m.Epoch == epoch {
			return nil
		}
	}
	if m.ID == "" {
		return fmt.Errorf("ZooKeeper names no master; %s claims epoch %d", id, epoch)
	}
	return fmt.Errorf("ZooKeeper names %s master of epoch %d, not %s of epoch %d", m.ID, m.Epoch, id, epoch)
}

// registration is what this node publishes of itself; ok is false while
// its store is unavailable.
func (n *Node) registration() ([]byte, bool) {
	n.mu.Lock()
	st, aside := n.st, time.Now().Before(n.asideUntil)
	n.mu.Unlock()
	if st == nil {
		return nil, false
	}
	b, _ := json.Marshal(Member{ID: n.id, Repl: n.id, Admin: n.cfg.Admin, End: st.End(), Aside: aside})
	return b, true
}

// standAside keeps this node out of elections for d and says so in its
// registration, before a master it held gives up the master znode: the
// others then elect among themselves instead of waiting for a node that
// cannot reach them, though its log may be the longest.
func (n *Node) standAside(conn *zk.Conn, me string, d time.Duration) {
	n.mu.Lock()
	n.asideUntil = time.Now().Add(d)
	n.mu.Unlock()
	if reg, ok := n.registration(); ok {
		conn.Set(me, reg, -1)
	}
}

// readMembers lists the registered nodes, best candidate first: the
// greatest log end, compared epoch first, then the earliest registration.
// A node counts once: a restarted node's registration of its previous
// session lingers until that session expires, and the newest one stands.
func (n *Node) readMembers(conn *zk.Conn, dir string) ([]Member, error) {
	names, _, err := conn.Children(dir)
	if err != nil {
		return nil, err
	}
	byID := map[string]Member{}
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
		if old, ok := byID[m.ID]; !ok || old.seq < m.seq {
			byID[m.ID] = m
		}
	}
	var out []Member
	for _, m := range byID {
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
	return out, nil
}

// lead takes the master znode with a new epoch, fences a quorum, syncs
// from the longest log among it, starts the services, and holds on until
// it must step down.
func (n *Node) lead(ctx context.Context, conn *zk.Conn, sid int64, lost <-chan struct{}, me string) (err error) {
	_, membersPath, masterPath, epochPath := n.paths()
	st := n.store()
	if st == nil || st.Restoring() {
		return errors.New("the store is not whole: a snapshot restore was interrupted or the store is unavailable")
	}
	data, stat, err := conn.Get(epochPath)
	if err != nil {
		return err
	}
	last, _ := strconv.ParseUint(string(data), 10, 64)
	epoch := max(last, n.epoch()) + 1
	info, _ := json.Marshal(Member{ID: n.id, Repl: n.id, Admin: n.cfg.Admin, Epoch: epoch})
	// One transaction: the epoch is unique and increasing because the
	// counter only moves with the versioned write that creates the master.
	sent := time.Now()
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
	timeout := n.sessionTimeout()
	n.mu.Lock()
	if n.st != st {
		n.mu.Unlock()
		return errors.New("the store was reopened")
	}
	if err := st.SetEpoch(epoch); err != nil {
		n.mu.Unlock()
		return err
	}
	n.role, n.epochNow, n.master = RoleCandidate, epoch, n.id
	n.demote, n.demoted = make(chan struct{}), make(chan struct{})
	rep := newReplicator(st, n.id, n.secret, epoch, n.quorum(), n.cfg.ConfirmTimeout, timeout*3/4, log)
	rep.memory = n.cfg.Sync != SyncQuorumDisk && n.quorum() > 1
	rep.renew(sent)
	n.rep = rep
	demote, demoted := n.demote, n.demoted
	n.mu.Unlock()
	// Whatever ends the term, the services stop and nothing waiting is
	// confirmed before the master znode goes; a node that failed to lead
	// or lost its quorum says it stands aside before that too, so that
	// the others, woken by the znode's deletion, elect among themselves:
	// it was electing itself again hundreds of times a second.
	var stop func(string)
	why, aside := "", true
	defer func() {
		reason := why
		switch {
		case err != nil:
			reason = err.Error()
		case reason == "":
			reason = "the node is stopping"
		}
		n.stepDown(rep, stop, demoted, reason)
		if aside {
			n.standAside(conn, me, 2*timeout)
		}
		if why != "" {
			log.Warn("stepped down: "+why, "standing_aside", aside)
		}
	}()

	watchCtx, cancelWatch := context.WithCancel(ctx)
	defer cancelWatch()
	go n.watchMembers(watchCtx, conn, membersPath, rep)

	fctx, cancel := context.WithCancel(ctx)
	go func() {
		select {
		case <-demote:
			cancel()
		case <-fctx.Done():
		}
	}()
	err = rep.fence(fctx, timeout)
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
	why, aside = n.hold(ctx, conn, rep, st, demote, lost, masterPath, epoch, sent, timeout)
	return nil
}

// hold keeps a master's term until it must end, and says why it ended
// and whether to stand aside. The master's authority rests on ZooKeeper
// and on a quorum, and both are checked on this node's own clock rather
// than on what the ZooKeeper client reports, which learns of a lost
// session only once it reaches the ensemble again:
//   - every timeout/6 it syncs with ZooKeeper and reads the master znode;
//     each answer that still names this term renews the lease from when
//     the request left (replicator.renew), and no answer for a session
//     timeout ends the term;
//   - no acknowledgement from a quorum for a session timeout ends the
//     term too (Raft's CheckQuorum), and the node stands aside, so that
//     the members it cannot reach elect a master among themselves.
func (n *Node) hold(ctx context.Context, conn *zk.Conn, rep *replicator, st *store.Store, demote, lost <-chan struct{},
	masterPath string, epoch uint64, sent time.Time, timeout time.Duration) (why string, aside bool) {
	var answered atomic.Int64
	answered.Store(sent.UnixNano())
	gone := make(chan string, 1)
	probeCtx, stopProbe := context.WithCancel(ctx)
	defer stopProbe()
	go func() {
		t := time.NewTicker(timeout / 6)
		defer t.Stop()
		for {
			sent := time.Now()
			_, err := conn.Sync(masterPath)
			var m Member
			var found bool
			if err == nil {
				m, found, err = readMaster(conn, masterPath)
			}
			switch {
			case err == nil && found && m.ID == n.id && m.Epoch == epoch:
				rep.renew(sent)
				answered.Store(sent.UnixNano())
			case err == nil:
				gone <- fmt.Sprintf("the master znode names %q of epoch %d", m.ID, m.Epoch)
				return
			}
			select {
			case <-probeCtx.Done():
				return
			case <-t.C:
			}
		}
	}()
	check := time.NewTicker(min(timeout/8, heartbeat))
	defer check.Stop()
	for {
		select {
		case <-ctx.Done():
			return "", false
		case <-demote:
			return "asked to", false
		case <-lost:
			return "the ZooKeeper session expired", false
		case <-rep.lostCh:
			return rep.lostWhy, true
		case w := <-gone:
			return w, false
		case <-st.Failed():
			return fmt.Sprintf("the store failed: %v", st.Err()), false
		case <-check.C:
		}
		if since := time.Since(time.Unix(0, answered.Load())); since > timeout {
			return fmt.Sprintf("no answer from ZooKeeper for %v", since.Round(time.Millisecond)), false
		}
		if since := time.Since(rep.quorumSeen()); since > timeout {
			return fmt.Sprintf("no quorum has acknowledged for %v", since.Round(time.Millisecond)), true
		}
	}
}

// watchMembers keeps the replicator's peers in step with the registered
// nodes, so a restarted slave is fenced and fed as soon as it registers.
func (n *Node) watchMembers(ctx context.Context, conn *zk.Conn, dir string, rep *replicator) {
	var ch <-chan zk.Event
	for ctx.Err() == nil {
		if ch == nil {
			if _, _, c, err := conn.ChildrenW(dir); err == nil {
				ch = c
			}
		}
		if members, err := n.readMembers(conn, dir); err == nil {
			for _, m := range members {
				rep.setPeer(m.ID, m.Repl)
			}
			n.setMembers(members)
		}
		select {
		case <-ctx.Done():
			return
		case <-ch:
			ch = nil
		case <-time.After(time.Second):
		}
	}
}

func (n *Node) setMembers(m []Member) {
	n.mu.Lock()
	n.members = m
	n.mu.Unlock()
}
