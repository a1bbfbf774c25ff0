// Package e2e runs hamq as users do: the real binary as a process, real
// clients (Debian's stomp.py among them), kill -9 and restarts.
package e2e

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hamq/hamq/ha/ensemble"
)

// hamqBin is the binary under test, built once by TestMain.
var hamqBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "hamq-e2e")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	hamqBin = filepath.Join(dir, "hamq")
	build := exec.Command("go", "build", "-o", hamqBin, "../cmd/hamq")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building hamq:", err)
		os.Exit(1)
	}
	// The chaos suite (e2e/chaos) runs clusters too, and go test ./... runs
	// packages in parallel: one package's clusters at a time, so that
	// neither's timing suffers the other's load. Released at exit.
	lock, err := os.OpenFile(filepath.Join(os.TempDir(), "hamq-e2e.lock"), os.O_CREATE|os.O_RDONLY, 0o666)
	if err == nil {
		err = syscall.Flock(int(lock.Fd()), syscall.LOCK_EX)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "hamq-e2e.lock:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	// Held to the end: a file nothing refers to any more is closed by its
	// finalizer, and the lock with it.
	lock.Close()
	os.Exit(code)
}

// node is one hamq process with its data directory and ports, which stay
// the same across restarts.
type node struct {
	t     *testing.T
	data  string
	stomp string
	mqtt  string
	amqp  string
	ws    string
	http  string
	cmd   *exec.Cmd
	log   *bytes.Buffer
	done  chan error
	// extra are more flags of hamq start; a cluster node's slaves never
	// open their client ports, so start waits for its admin API only.
	extra   []string
	cluster bool
}

func freePort(t *testing.T) string {
	t.Helper()
	ports, err := ensemble.FreePorts(1)
	if err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("127.0.0.1:%d", ports[0])
}

func startNode(t *testing.T) *node {
	t.Helper()
	n := newNode(t)
	n.start()
	return n
}

// newNode picks a node's ports and data directory, and sees that it ends
// with the test.
func newNode(t *testing.T) *node {
	t.Helper()
	n := &node{t: t, data: t.TempDir(), stomp: freePort(t), mqtt: freePort(t), amqp: freePort(t), ws: freePort(t), http: freePort(t)}
	t.Cleanup(func() {
		if n.cmd != nil {
			n.kill()
		}
		if t.Failed() {
			t.Logf("hamq log:\n%s", n.log)
		}
	})
	return n
}

func (n *node) start() {
	n.t.Helper()
	if n.log == nil {
		n.log = &bytes.Buffer{} // kept across restarts
	}
	n.cmd = exec.Command(hamqBin, append([]string{"start", "--data", n.data, "--stomp", n.stomp, "--http", n.http,
		"--mqtt", n.mqtt, "--amqp", n.amqp, "--ws", n.ws}, n.extra...)...)
	n.cmd.Stdout, n.cmd.Stderr = n.log, n.log
	if err := n.cmd.Start(); err != nil {
		n.t.Fatal(err)
	}
	n.done = make(chan error, 1)
	go func(c *exec.Cmd, done chan error) { done <- c.Wait() }(n.cmd, n.done)
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		if resp, err := http.Get("http://" + n.http + "/api/broker"); err == nil {
			resp.Body.Close()
			if n.cluster {
				return
			}
			if n.serving() {
				return
			}
		}
		select {
		case err := <-n.done:
			n.t.Fatalf("hamq exited at start: %v\n%s", err, n.log)
		case <-time.After(50 * time.Millisecond):
		}
	}
	n.t.Fatalf("hamq did not come up within 15s\n%s", n.log)
}

func (n *node) clientPorts() map[string]string {
	return map[string]string{"stomp": n.stomp, "mqtt": n.mqtt, "ws": n.ws, "amqp": n.amqp}
}

// serving reports whether every client port takes connections: the
// broker opens them one after another, so the first alone says nothing of
// the others.
func (n *node) serving() bool {
	for _, addr := range n.clientPorts() {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			return false
		}
		c.Close()
	}
	return true
}

// kill ends the process with SIGKILL, as a crash would.
func (n *node) kill() {
	n.t.Helper()
	n.cmd.Process.Signal(syscall.SIGKILL)
	<-n.done
	n.cmd = nil
}

// stop sends SIGTERM and returns the exit error.
func (n *node) stop() error {
	n.t.Helper()
	n.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-n.done:
		n.cmd = nil
		return err
	case <-time.After(30 * time.Second):
		n.t.Fatal("hamq did not stop within 30s of SIGTERM")
		return nil
	}
}

// python is Debian's python3, which has the client libraries the scripts
// import; a missing one fails the test with the package to install.
const python = "/usr/bin/python3"

var pythonPackages = map[string]string{"stomp": "python3-stomp", "paho.mqtt.client": "python3-paho-mqtt", "proton": "python3-qpid-proton"}

func needPython(t *testing.T, module string) {
	t.Helper()
	if err := exec.Command(python, "-c", "import "+module).Run(); err != nil {
		t.Fatalf("%s is needed: apt-get install %s (%s -c 'import %s': %v)", module, pythonPackages[module], python, module, err)
	}
}

// tool finds a client program, failing with its Debian package when absent.
func tool(t *testing.T, name, pkg string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		t.Fatalf("%s is needed: apt-get install %s", name, pkg)
	}
	return p
}

// script runs a testdata python script and hands each output line to fn
// as it comes; fn returning false stops reading (the script keeps running).
func script(t *testing.T, ctx context.Context, name string, fn func(line string) bool, args ...string) *exec.Cmd {
	t.Helper()
	// A client that hangs fails its test rather than the whole run's
	// timeout; scripts still running when the test ends are stopped.
	ctx, cancel := context.WithTimeout(ctx, scriptTimeout)
	t.Cleanup(cancel)
	cmd := exec.CommandContext(ctx, python, append([]string{filepath.Join("testdata", name)}, args...)...)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		if !fn(sc.Text()) {
			go io.Copy(io.Discard, out)
			return cmd
		}
	}
	err = cmd.Wait()
	switch {
	case errors.Is(ctx.Err(), context.DeadlineExceeded):
		t.Fatalf("%s did not finish within %v\n%s", name, scriptTimeout, stderr.String())
	case err != nil && ctx.Err() == nil:
		t.Fatalf("%s: %v\n%s", name, err, stderr.String())
	}
	return cmd
}

const scriptTimeout = 4 * time.Minute

func hostPort(t *testing.T, addr string) (string, string) {
	t.Helper()
	h, p, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	return h, p
}

// hamq runs the CLI and returns its combined output and exit code.
func hamq(t *testing.T, args ...string) (string, int) {
	t.Helper()
	out, err := exec.Command(hamqBin, args...).CombinedOutput()
	if ee, ok := err.(*exec.ExitError); ok {
		return string(out), ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(out)), 0
}
