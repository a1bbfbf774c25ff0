package chaos

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

// lab is the network of one test: a Linux bridge in the root namespace,
// with an address for the test's own clients, and one network namespace
// per hamq node and per ZooKeeper member, each joined to the bridge by a
// veth pair. Faults on the network are iptables rules inside a victim's
// namespace, so that its peers see packets vanish rather than connections
// reset.
type lab struct {
	t       *testing.T
	dir     string // logs and ZooKeeper's data; node data is on tmpfs mounts below it
	bridge  string
	gateway string // the bridge's address: where the test's clients come from
	nodes   []*host
	zks     []*host
}

// host is one namespace with its address.
type host struct {
	ns, ip, veth string
}

// All names start with namePrefix and the run's tag (this process's id in
// base 36, five characters), so that what a crashed run left behind is
// found and removed, and a run never touches another live run's.
const namePrefix = "hqc"

func runTag(pid int) string { return fmt.Sprintf("%05s", strconv.FormatInt(int64(pid), 36)) }

// subnet is the run's /24 in 10.0.0.0/8, derived from the process id so
// that two runs on one machine use different ones.
func subnet(pid int) string { return fmt.Sprintf("10.%d.%d.", 128+(pid>>8)%120, pid&255) }

// needLab fails t with what to do when the suite cannot build its network.
func needLab(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Fatal("the chaos suite needs root, for network namespaces, iptables and tmpfs mounts: run it as root (CI does), with apt-get install iproute2 iptables")
	}
	for _, tool := range []struct{ name, pkg string }{{"ip", "iproute2"}, {"iptables", "iptables"}, {"iptables-restore", "iptables"}} {
		if _, err := exec.LookPath(tool.name); err != nil {
			t.Fatalf("the chaos suite needs %s: apt-get install iproute2 iptables (missing package %s), and run it as root", tool.name, tool.pkg)
		}
	}
}

func newLab(t *testing.T) *lab {
	t.Helper()
	needLab(t)
	removeStale()
	pid := os.Getpid()
	prefix := namePrefix + runTag(pid)
	net := subnet(pid)
	if out, _ := exec.Command("ip", "-4", "-o", "addr").Output(); strings.Contains(string(out), " "+net) {
		t.Fatalf("the subnet %s0/24 is in use on this machine:\n%s", net, out)
	}
	dir, err := os.MkdirTemp("", fmt.Sprintf("hamq-chaos-%d-", pid))
	if err != nil {
		t.Fatal(err)
	}
	l := &lab{t: t, dir: dir, bridge: prefix + "br", gateway: net + "1"}
	t.Cleanup(l.close)
	l.must("ip", "link", "add", l.bridge, "type", "bridge")
	l.must("ip", "addr", "add", l.gateway+"/24", "dev", l.bridge)
	l.must("ip", "link", "set", l.bridge, "up")
	for i := range 3 {
		l.nodes = append(l.nodes, l.addHost(fmt.Sprintf("%sn%d", prefix, i+1), fmt.Sprintf("%s1%d", net, i+1)))
	}
	for i := range 3 {
		l.zks = append(l.zks, l.addHost(fmt.Sprintf("%sz%d", prefix, i+1), fmt.Sprintf("%s2%d", net, i+1)))
	}
	if err := l.drop(l.nodes[0]); err != nil {
		t.Fatalf("iptables does not work in a network namespace (apt-get install iptables, and run as root): %v", err)
	}
	return l
}

func (l *lab) addHost(ns, ip string) *host {
	h := &host{ns: ns, ip: ip, veth: ns + "v"}
	l.must("ip", "netns", "add", ns)
	l.must("ip", "link", "add", h.veth, "type", "veth", "peer", "name", "eth0", "netns", ns)
	l.must("ip", "link", "set", h.veth, "master", l.bridge, "up")
	l.must("ip", "-n", ns, "addr", "add", ip+"/24", "dev", "eth0")
	l.must("ip", "-n", ns, "link", "set", "eth0", "up")
	l.must("ip", "-n", ns, "link", "set", "lo", "up")
	return h
}

func (l *lab) must(args ...string) {
	l.t.Helper()
	if out, err := exec.Command(args[0], args[1:]...).CombinedOutput(); err != nil {
		l.t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// close removes the namespaces and the bridge (the veths go with their
// namespaces), and the directory unless the test failed or
// HAMQ_CHAOS_KEEP is set.
func (l *lab) close() {
	for _, h := range append(l.nodes, l.zks...) {
		exec.Command("ip", "netns", "del", h.ns).Run()
	}
	exec.Command("ip", "link", "del", l.bridge).Run()
	if l.t.Failed() || os.Getenv("HAMQ_CHAOS_KEEP") != "" {
		l.t.Logf("logs and history kept in %s", l.dir)
		return
	}
	os.RemoveAll(l.dir)
}

// drop makes h drop every packet to and from peers, replacing whatever it
// dropped before: one iptables-restore, so that a cut starts at once.
// drop(h) with no peers heals h.
func (l *lab) drop(h *host, peers ...*host) error {
	var rules strings.Builder
	rules.WriteString("*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n")
	for _, p := range peers {
		fmt.Fprintf(&rules, "-A INPUT -s %s -j DROP\n-A OUTPUT -d %s -j DROP\n", p.ip, p.ip)
	}
	rules.WriteString("COMMIT\n")
	cmd := exec.Command("ip", "netns", "exec", h.ns, "iptables-restore")
	cmd.Stdin = strings.NewReader(rules.String())
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("iptables-restore in %s: %v: %s", h.ns, err, out)
	}
	return nil
}

// healAll removes every rule in every namespace.
func (l *lab) healAll() {
	for _, h := range append(l.nodes, l.zks...) {
		if err := l.drop(h); err != nil {
			l.t.Error(err)
		}
	}
}

// mountTmpfs mounts a tmpfs of size bytes on dir, unmounted when the test
// ends.
func (l *lab) mountTmpfs(dir string, size int64) {
	l.t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		l.t.Fatal(err)
	}
	if err := syscall.Mount("tmpfs", dir, "tmpfs", 0, fmt.Sprintf("size=%d", size)); err != nil {
		l.t.Fatalf("mount a tmpfs on %s: %v", dir, err)
	}
	l.t.Cleanup(func() { syscall.Unmount(dir, syscall.MNT_DETACH) })
}

// removeStale removes what a run that ended without cleaning up left:
// namespaces, links and tmpfs mounts named after a process that no longer
// runs (or this one, from an earlier test). The processes still in such a
// namespace are that dead run's hamq and ZooKeeper: they are killed, or
// they would hold their addresses and memory for ever.
func removeStale() {
	stale := func(name string) bool {
		tag, ok := strings.CutPrefix(name, namePrefix)
		if !ok || len(tag) < 5 {
			return false
		}
		pid, err := strconv.ParseInt(tag[:5], 36, 64)
		if err != nil {
			return false
		}
		return int(pid) == os.Getpid() || syscall.Kill(int(pid), 0) == syscall.ESRCH
	}
	if out, err := exec.Command("ip", "netns", "list").Output(); err == nil {
		for _, l := range strings.Split(string(out), "\n") {
			f := strings.Fields(l)
			if len(f) == 0 || !stale(f[0]) {
				continue
			}
			if pids, err := exec.Command("ip", "netns", "pids", f[0]).Output(); err == nil {
				for _, p := range strings.Fields(string(pids)) {
					if pid, err := strconv.Atoi(p); err == nil {
						syscall.Kill(pid, syscall.SIGKILL)
					}
				}
			}
			exec.Command("ip", "netns", "del", f[0]).Run()
		}
	}
	if out, err := exec.Command("ip", "-o", "link", "show").Output(); err == nil {
		for _, l := range strings.Split(string(out), "\n") {
			f := strings.Fields(l)
			if len(f) < 2 {
				continue
			}
			name, _, _ := strings.Cut(strings.TrimSuffix(f[1], ":"), "@")
			if stale(name) {
				exec.Command("ip", "link", "del", name).Run()
			}
		}
	}
	mounts, err := os.Open("/proc/self/mounts")
	if err != nil {
		return
	}
	defer mounts.Close()
	sc := bufio.NewScanner(mounts)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 3 || f[2] != "tmpfs" {
			continue
		}
		rest, ok := strings.CutPrefix(filepath.Base(filepath.Dir(filepath.Dir(f[1]))), "hamq-chaos-")
		if !ok {
			continue
		}
		pidText, _, _ := strings.Cut(rest, "-")
		if pid, err := strconv.Atoi(pidText); err == nil && (pid == os.Getpid() || syscall.Kill(pid, 0) == syscall.ESRCH) {
			syscall.Unmount(f[1], syscall.MNT_DETACH)
		}
	}
}
