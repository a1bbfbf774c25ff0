// Package ensemble runs a ZooKeeper ensemble of local processes from
// Debian's zookeeper package, on loopback: `hamq demo` starts one for a
// newcomer, and the tests start one per cluster test, since hamq's HA is
// proven against the real ZooKeeper, never a fake. StartWith places the
// members on addresses of their own instead (the chaos suite runs each in
// a network namespace, so that a node can be cut off from it).
package ensemble

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Debian's zookeeper package puts the server here; its jar's manifest
// names the libraries it needs.
const (
	jar     = "/usr/share/java/zookeeper.jar"
	confDir = "/etc/zookeeper/conf"
)

// ErrNotInstalled says what to install.
var ErrNotInstalled = errors.New("ZooKeeper is not installed: install Debian's zookeeper package (apt-get install zookeeper), which brings java too")

// Ensemble is a running ensemble; Close ends its processes.
type Ensemble struct {
	dir     string
	members []*member
}

type member struct {
	id                 int
	dir                string
	host               string
	client, peer, elec int
	wrap               []string
	cmd                *exec.Cmd
	exited             chan struct{}
}

// Options say where the members run. The zero value is Start's: every
// member on loopback with free ports, as a plain child process.
type Options struct {
	// Hosts, when set, gives member i the address Hosts[i], on which it
	// serves ZooKeeper's default ports (client 2181, quorum 2888, election
	// 3888): each member needs an address of its own, such as one inside
	// a network namespace.
	Hosts []string
	// Wrap, when set, is the command prefix member i runs under, such as
	// ip netns exec NAME. The prefix must exec the member, so that Kill
	// ends the member itself.
	Wrap func(i int) []string
}

// Default ports of a member given a host of its own.
const (
	clientPort   = 2181
	quorumPort   = 2888
	electionPort = 3888
)

// Start runs n members with their data under dir and returns once every
// one of them serves as leader or follower (or standalone, for n = 1).
func Start(ctx context.Context, dir string, n int) (*Ensemble, error) {
	return StartWith(ctx, dir, n, Options{})
}

// StartWith is Start with the members placed as opts says.
func StartWith(ctx context.Context, dir string, n int, opts Options) (*Ensemble, error) {
	if _, err := os.Stat(jar); err != nil {
		return nil, ErrNotInstalled
	}
	if _, err := exec.LookPath("java"); err != nil {
		return nil, ErrNotInstalled
	}
	if opts.Hosts != nil && len(opts.Hosts) != n {
		return nil, fmt.Errorf("ensemble: %d hosts for %d members", len(opts.Hosts), n)
	}
	var ports []int
	if opts.Hosts == nil {
		var err error
		if ports, err = FreePorts(3 * n); err != nil {
			return nil, err
		}
	}
	e := &Ensemble{dir: dir}
	for i := range n {
		m := &member{id: i + 1, dir: filepath.Join(dir, fmt.Sprintf("zk%d", i+1))}
		if opts.Hosts == nil {
			m.host, m.client, m.peer, m.elec = "127.0.0.1", ports[3*i], ports[3*i+1], ports[3*i+2]
		} else {
			m.host, m.client, m.peer, m.elec = opts.Hosts[i], clientPort, quorumPort, electionPort
		}
		if opts.Wrap != nil {
			m.wrap = opts.Wrap(i)
		}
		e.members = append(e.members, m)
	}
	for _, m := range e.members {
		if err := e.write(m); err != nil {
			return nil, err
		}
	}
	for i := range e.members {
		if err := e.Restart(i); err != nil {
			e.Close()
			return nil, err
		}
	}
	if err := e.WaitReady(ctx); err != nil {
		e.Close()
		return nil, err
	}
	return e, nil
}

// FreePorts finds n free loopback ports for servers started next. They
// are taken below Linux's ephemeral range (32768 and up): a port the
// kernel hands out can, by the time a server binds it, be the source port
// of some outgoing connection. A port is handed out once per process:
// servers start after all their ports are picked, so a port picked earlier
// may not be bound yet and would look free again (two e2e nodes were given
// the same STOMP port). Another process could still take one first; that
// server's start then fails and says so.
func FreePorts(n int) ([]int, error) {
	handedOut.Lock()
	defer handedOut.Unlock()
	var out []int
	var lns []net.Listener
	defer func() {
		for _, l := range lns {
			l.Close()
		}
	}()
	for tries := 0; len(out) < n; tries++ {
		if tries == 1000 {
			return nil, errors.New("ensemble: no free ports between 20000 and 32000")
		}
		port := 20000 + rand.IntN(12000)
		if handedOut.ports[port] {
			continue
		}
		l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))
		if err != nil {
			continue
		}
		lns = append(lns, l)
		out = append(out, port)
	}
	for _, p := range out {
		handedOut.ports[p] = true
	}
	return out, nil
}

var handedOut = struct {
	sync.Mutex
	ports map[int]bool
}{ports: map[int]bool{}}

func (e *Ensemble) write(m *member) error {
	if err := os.MkdirAll(filepath.Join(m.dir, "data"), 0o755); err != nil {
		return err
	}
	// tickTime 500 ms lets sessions as short as 1 s exist (the server
	// clamps them to 2..20 ticks), so that tests fail over quickly.
	cfg := []string{
		"tickTime=500", "initLimit=20", "syncLimit=5",
		"dataDir=" + filepath.Join(m.dir, "data"),
		"clientPort=" + strconv.Itoa(m.client), "clientPortAddress=" + m.host,
		"admin.enableServer=false", "4lw.commands.whitelist=srvr,ruok",
		"maxSessionTimeout=20000",
	}
	if len(e.members) > 1 {
		for _, o := range e.members {
			cfg = append(cfg, fmt.Sprintf("server.%d=%s:%d:%d", o.id, o.host, o.peer, o.elec))
		}
	}
	if err := os.WriteFile(filepath.Join(m.dir, "zoo.cfg"), []byte(strings.Join(cfg, "\n")+"\n"), 0o644); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(m.dir, "data", "myid"), []byte(strconv.Itoa(m.id)+"\n"), 0o644)
}

// Connect is the client connect string: every member's address.
func (e *Ensemble) Connect() string { return strings.Join(e.Addrs(), ",") }

// Addrs are the members' client addresses.
func (e *Ensemble) Addrs() []string {
	var out []string
	for _, m := range e.members {
		out = append(out, net.JoinHostPort(m.host, strconv.Itoa(m.client)))
	}
	return out
}

// Restart starts member i (counted from 0) again after Kill.
func (e *Ensemble) Restart(i int) error {
	m := e.members[i]
	logf, err := os.OpenFile(filepath.Join(m.dir, "zookeeper.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer logf.Close()
	args := append(slices.Clip(m.wrap), "java", "-Xmx96m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1", "-Xshare:auto",
		"-Dzookeeper.root.logger=INFO,CONSOLE", "-Dzookeeper.console.threshold=INFO",
		"-cp", confDir+":"+jar, "org.apache.zookeeper.server.quorum.QuorumPeerMain", filepath.Join(m.dir, "zoo.cfg"))
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Stdout, cmd.Stderr = logf, logf
	// Its own process group, so that a Ctrl-C meant for hamq demo reaches
	// the members only through Close, in order.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start ZooKeeper member %d: %w", m.id, err)
	}
	m.cmd, m.exited = cmd, make(chan struct{})
	go func(exited chan struct{}) {
		cmd.Wait()
		close(exited)
	}(m.exited)
	return nil
}

// Kill ends member i with SIGKILL and waits for it.
func (e *Ensemble) Kill(i int) {
	m := e.members[i]
	if m.cmd == nil {
		return
	}
	m.cmd.Process.Kill()
	<-m.exited
	m.cmd = nil
}

// Close kills every member.
func (e *Ensemble) Close() {
	for i := range e.members {
		e.Kill(i)
	}
}

// WaitReady waits until every running member answers srvr with its mode.
func (e *Ensemble) WaitReady(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	for _, m := range e.members {
		if m.cmd == nil {
			continue
		}
		for {
			mode, err := srvr(m.host, m.client)
			if err == nil && mode != "" {
				break
			}
			select {
			case <-m.exited:
				return fmt.Errorf("ZooKeeper member %d exited:\n%s", m.id, e.tail(m))
			case <-ctx.Done():
				return fmt.Errorf("ZooKeeper member %d not serving (%v); its log ends:\n%s", m.id, err, e.tail(m))
			case <-time.After(100 * time.Millisecond):
			}
		}
	}
	return nil
}

// Mode is what member i says it is: leader, follower or standalone.
func (e *Ensemble) Mode(i int) (string, error) {
	m := e.members[i]
	return srvr(m.host, m.client)
}

// srvr asks a member's mode with the four-letter command.
func srvr(host string, port int) (string, error) {
	c, err := net.DialTimeout("tcp", net.JoinHostPort(host, strconv.Itoa(port)), time.Second)
	if err != nil {
		return "", err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(2 * time.Second))
	if _, err := c.Write([]byte("srvr")); err != nil {
		return "", err
	}
	var buf bytes.Buffer
	buf.ReadFrom(c)
	for _, l := range strings.Split(buf.String(), "\n") {
		if mode, ok := strings.CutPrefix(l, "Mode: "); ok {
			return strings.TrimSpace(mode), nil
		}
	}
	return "", fmt.Errorf("no mode in %q", buf.String())
}

func (e *Ensemble) tail(m *member) string {
	b, _ := os.ReadFile(filepath.Join(m.dir, "zookeeper.log"))
	if len(b) > 3000 {
		b = b[len(b)-3000:]
	}
	return string(b)
}
