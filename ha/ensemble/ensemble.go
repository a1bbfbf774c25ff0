// Package ensemble runs a ZooKeeper ensemble of local processes from
// Debian's zookeeper package, on loopback: `hamq demo` starts one for a
// newcomer, and the tests start one per cluster test, since hamq's HA is
// proven against the real ZooKeeper, never a fake.
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
	client, peer, elec int
	cmd                *exec.Cmd
	exited             chan struct{}
}

// Start runs n members with their data under dir and returns once every
// one of them serves as leader or follower (or standalone, for n = 1).
func Start(ctx context.Context, dir string, n int) (*Ensemble, error) {
	if _, err := os.Stat(jar); err != nil {
		return nil, ErrNotInstalled
	}
	if _, err := exec.LookPath("java"); err != nil {
		return nil, ErrNotInstalled
	}
	ports, err := FreePorts(3 * n)
	if err != nil {
		return nil, err
	}
	e := &Ensemble{dir: dir}
	for i := range n {
		m := &member{id: i + 1, dir: filepath.Join(dir, fmt.Sprintf("zk%d", i+1)),
			client: ports[3*i], peer: ports[3*i+1], elec: ports[3*i+2]}
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
		"clientPort=" + strconv.Itoa(m.client), "clientPortAddress=127.0.0.1",
		"admin.enableServer=false", "4lw.commands.whitelist=srvr,ruok",
		"maxSessionTimeout=20000",
	}
	if len(e.members) > 1 {
		for _, o := range e.members {
			cfg = append(cfg, fmt.Sprintf("server.%d=127.0.0.1:%d:%d", o.id, o.peer, o.elec))
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
		out = append(out, fmt.Sprintf("127.0.0.1:%d", m.client))
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
	cmd := exec.Command("java", "-Xmx96m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1", "-Xshare:auto",
		"-Dzookeeper.root.logger=INFO,CONSOLE", "-Dzookeeper.console.threshold=INFO",
		"-cp", confDir+":"+jar, "org.apache.zookeeper.server.quorum.QuorumPeerMain", filepath.Join(m.dir, "zoo.cfg"))
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
			mode, err := srvr(m.client)
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

// srvr asks a member's mode with the four-letter command.
func srvr(port int) (string, error) {
	c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", port), time.Second)
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
