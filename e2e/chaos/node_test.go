package chaos

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// status is a node's /api/cluster (ha.Status as JSON): read as JSON, so
// that the suite tests the binary as it is, whatever ha's Go API becomes.
type status struct {
	ID     string   `json:"id"`
	Role   string   `json:"role"` // master, slave or candidate
	Master string   `json:"master"`
	Epoch  uint64   `json:"epoch"`
	End    position `json:"end"`
}

type position struct {
	Epoch uint64 `json:"epoch"`
	Index uint64 `json:"index"`
}

func (p position) less(q position) bool {
	return p.Epoch < q.Epoch || p.Epoch == q.Epoch && p.Index < q.Index
}

const (
	roleMaster = "master"
	roleSlave  = "slave"
)

// zkSessionTimeout is the cluster's; the faults' bounds derive from it.
const zkSessionTimeout = 2 * time.Second

// Each node's data is on a tmpfs of its own, small enough to fill at once
// for the disk-full fault; a long run's witnesses keep every message, so
// it gets more room.
const (
	dataSize     = 512 << 20
	longDataSize = 2 << 30
)

// node is one hamq process in its namespace. Its data directory is a
// tmpfs of its own and its log (stderr, kept across restarts) is beside it.
type node struct {
	t      *testing.T
	name   string // n1, n2, n3: how the history names it
	host   *host
	dir    string
	data   string // the tmpfs
	log    string
	zk     string
	secret string // HAMQ_CLUSTER_SECRET; empty starts the node without it

	mu      sync.Mutex
	cmd     *exec.Cmd
	done    chan struct{}
	paused  bool
	exits   int // exits the test did not cause
	killing bool
}

func (n *node) addr(port int) string { return net.JoinHostPort(n.host.ip, strconv.Itoa(port)) }

func (n *node) stomp() string { return n.addr(61613) }
func (n *node) mqtt() string  { return n.addr(1883) }
func (n *node) amqp() string  { return n.addr(5672) }
func (n *node) admin() string { return n.addr(8161) }
func (n *node) bind() string  { return n.addr(61619) }

// start runs hamq in the node's namespace. ip netns exec execs, so the
// process started is hamq itself: the signals reach it.
func (n *node) start() {
	n.t.Helper()
	if err := n.startErr(); err != nil {
		n.t.Fatal(err)
	}
}

func (n *node) startErr() error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.cmd != nil {
		return nil
	}
	logf, err := os.OpenFile(n.log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer logf.Close()
	fmt.Fprintf(logf, "----- chaos: start %s at %s\n", n.name, time.Now().Format(time.RFC3339Nano))
	cmd := exec.Command("ip", "netns", "exec", n.host.ns, hamqBin, "start", "--data", n.data,
		"--stomp", n.stomp(), "--mqtt", n.mqtt(), "--amqp", n.amqp(), "--ws", "off", "--http", n.admin(),
		"--zk", n.zk, "--bind", n.bind(), "--hostname", n.host.ip, "--replicas", "3",
		"--zk-session-timeout", zkSessionTimeout.String(), "--broker-name", "chaos")
	cmd.Env = os.Environ()
	if n.secret != "" {
		cmd.Env = append(cmd.Env, "HAMQ_CLUSTER_SECRET="+n.secret)
	}
	cmd.Dir = n.dir // no conf/hamq.yaml there: built-in defaults
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", n.name, err)
	}
	n.cmd, n.done, n.paused, n.killing = cmd, make(chan struct{}), false, false
	go func(cmd *exec.Cmd, done chan struct{}) {
		err := cmd.Wait()
		n.mu.Lock()
		if n.cmd == cmd && !n.killing {
			n.exits++
			n.cmd = nil
			if lf, ferr := os.OpenFile(n.log, os.O_WRONLY|os.O_APPEND, 0); ferr == nil {
				fmt.Fprintf(lf, "----- chaos: %s exited by itself at %s: %v\n", n.name, time.Now().Format(time.RFC3339Nano), err)
				lf.Close()
			}
		}
		n.mu.Unlock()
		close(done)
	}(cmd, n.done)
	return nil
}

// running says whether the process is up (maybe stopped).
func (n *node) running() bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.cmd != nil
}

func (n *node) pid() int {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.cmd == nil {
		return 0
	}
	return n.cmd.Process.Pid
}

// kill ends the process with SIGKILL, as a crash would, and waits for it.
func (n *node) kill() {
	n.mu.Lock()
	cmd, done := n.cmd, n.done
	if cmd == nil {
		n.mu.Unlock()
		return
	}
	n.killing = true
	cmd.Process.Signal(syscall.SIGKILL)
	n.mu.Unlock()
	<-done
	n.mu.Lock()
	if n.cmd == cmd {
		n.cmd, n.paused = nil, false
	}
	n.mu.Unlock()
}

// pause and resume send SIGSTOP and SIGCONT.
func (n *node) pause() {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.cmd != nil {
		n.cmd.Process.Signal(syscall.SIGSTOP)
		n.paused = true
	}
}

func (n *node) resume() {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.cmd != nil && n.paused {
		n.cmd.Process.Signal(syscall.SIGCONT)
		n.paused = false
	}
}

// httpClient reads the admin API directly, whatever proxy the
// environment names.
var httpClient = &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}

// status is the node's /api/cluster.
func (n *node) status() (status, error) {
	var st status
	resp, err := httpClient.Get("http://" + n.admin() + "/api/cluster")
	if err != nil {
		return st, err
	}
	defer resp.Body.Close()
	return st, json.NewDecoder(resp.Body).Decode(&st)
}

// getJSON reads one of the node's admin API views.
func (n *node) getJSON(path string) (map[string]any, error) {
	resp, err := httpClient.Get("http://" + n.admin() + path)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	out := map[string]any{}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		return nil, fmt.Errorf("GET %s: %d: %w", path, resp.StatusCode, err)
	}
	return out, nil
}

// logText is the node's whole log.
func (n *node) logText() string {
	b, _ := os.ReadFile(n.log)
	return string(b)
}

// logSize marks where the log is now, for linesSince.
func (n *node) logSize() int64 {
	fi, err := os.Stat(n.log)
	if err != nil {
		return 0
	}
	return fi.Size()
}

// linesSince are the log's lines written after mark.
func (n *node) linesSince(mark int64) []string {
	b, _ := os.ReadFile(n.log)
	if int64(len(b)) < mark {
		mark = 0
	}
	return strings.Split(strings.TrimSpace(string(b[mark:])), "\n")
}

func (n *node) tail(lines int) string {
	l := strings.Split(strings.TrimRight(n.logText(), "\n"), "\n")
	return strings.Join(l[max(0, len(l)-lines):], "\n")
}

// promotions reads the node's "promoted: master" lines.
func (n *node) promotions() []Promotion {
	var out []Promotion
	sc := bufio.NewScanner(bytes.NewReader([]byte(n.logText())))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		l := sc.Text()
		if !strings.Contains(l, `msg="promoted: master"`) {
			continue
		}
		at, err := time.Parse(time.RFC3339Nano, logField(l, "time"))
		if err != nil {
			continue
		}
		epoch, _ := strconv.ParseUint(logField(l, "epoch"), 10, 64)
		out = append(out, Promotion{Node: n.name, Epoch: epoch, At: at})
	}
	return out
}

// logField is the value of key=value in a slog text line.
func logField(line, key string) string {
	i := strings.Index(" "+line, " "+key+"=")
	if i < 0 {
		return ""
	}
	v := line[i+len(key)+1:]
	if strings.HasPrefix(v, `"`) {
		if s, err := strconv.QuotedPrefix(v); err == nil {
			u, _ := strconv.Unquote(s)
			return u
		}
	}
	v, _, _ = strings.Cut(v, " ")
	return v
}

// fill takes every free byte of the node's tmpfs; unfill gives them back.
func (n *node) fill() error {
	f, err := os.OpenFile(filepath.Join(n.data, "chaos-fill"), os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	defer f.Close()
	// Ever smaller pieces until not even a page is left: the free space
	// a statfs reports is not all one allocation can take.
	var size int64
	for chunk := int64(64 << 20); chunk >= 4096; chunk /= 4 {
		for syscall.Fallocate(int(f.Fd()), 0, size, chunk) == nil {
			size += chunk
		}
	}
	if size == 0 {
		return errors.New("fill: not a page free")
	}
	return nil
}

func (n *node) unfill() error {
	err := os.Remove(filepath.Join(n.data, "chaos-fill"))
	if os.IsNotExist(err) {
		return nil
	}
	return err
}

// accepts says whether addr takes a TCP connection within a second.
func accepts(addr string) bool {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return false
	}
	c.Close()
	return true
}
