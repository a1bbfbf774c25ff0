package e2e

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestCLILogsIn: send, receive, browse and bench log in with --user and
// --password or with HAMQ_USER and HAMQ_PASSWORD; a wrong password or an
// anonymous client fails at once in the broker's words; bench says how
// far a long run got and removes the queue it made.
func TestCLILogsIn(t *testing.T) {
	n := startAuthNode(t, "")
	url, api := "tcp://"+n.stomp, "http://"+n.http
	if out, code := hamq(t, "send", "--url", url, "--user", "alice", "--password", alicePassword,
		"--destination", "/queue/orders.cli", "--count", "2", "--body", "order"); code != 0 {
		t.Fatalf("send as alice: %s", out)
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--user", "alice", "--password", "wrong"}, `wrong user name or password for "alice"`},
		{nil, "anonymous clients are not allowed"},
	} {
		start := time.Now()
		out, code := hamq(t, append([]string{"send", "--url", "failover:(" + url + ")", "--destination", "/queue/orders.cli", "--body", "x"}, tc.args...)...)
		if took := time.Since(start); code == 0 || !strings.Contains(out, tc.want) || took > 5*time.Second {
			t.Errorf("send %v: exit %d after %v: %s; want a failure within 5s saying %q", tc.args, code, took.Round(time.Millisecond), out, tc.want)
		}
	}

	t.Setenv("HAMQ_USER", "admin")
	t.Setenv("HAMQ_PASSWORD", adminPassword)
	if out, code := hamq(t, "browse", "orders.cli", "--http", api); code != 0 || !strings.Contains(out, "Message 2 of 2") ||
		!strings.Contains(out, "orders.cli: 2 pending") {
		t.Errorf("browse as the environment's admin: %d\n%s", code, out)
	}
	t.Setenv("HAMQ_USER", "bob")
	t.Setenv("HAMQ_PASSWORD", bobPassword)
	if out, code := hamq(t, "receive", "--url", url, "--destination", "/queue/orders.cli", "--count", "2"); code != 0 || strings.Count(out, "order\n") != 2 {
		t.Errorf("receive as the environment's bob: %d\n%s", code, out)
	}
	if out, code := hamq(t, "browse", "orders.cli", "--http", api); code == 0 || !strings.Contains(out, `user "bob" is not in an admin group`) {
		t.Errorf("browse as bob, no administrator: %d\n%s", code, out)
	}

	// A warm-up of 6 s outlasts the first progress line (every 5 s).
	out, code := hamq(t, "bench", "--url", url, "--http", api, "--user", "admin", "--password", adminPassword,
		"--warmup", "6s", "--count", "200", "--size", "64")
	if code != 0 || !regexp.MustCompile(`hamq bench: 5s: \d+ messages received \(\d+/s\)`).MatchString(out) {
		t.Errorf("bench: %d\n%s", code, out)
	}
	if got := adminGet(t, n, "/api/queues/hamq.bench", nil); got != 404 {
		t.Errorf("the bench's queue after the bench: %d, want 404 (removed)", got)
	}
	if out, _ := hamq(t, "-h"); !strings.Contains(out, "STOMP, MQTT or AMQP") {
		t.Errorf("hamq -h does not name AMQP among bench's protocols:\n%s", out)
	}
}

// TestCLIPlainURLFailsFast: with nothing listening, a plain tcp:// URL
// fails within seconds; a failover: URL keeps trying.
func TestCLIPlainURLFailsFast(t *testing.T) {
	addr := freePort(t)
	for _, cmd := range [][]string{{"send", "--body", "x"}, {"receive"}} {
		start := time.Now()
		out, code := hamq(t, append(cmd, "--url", "tcp://"+addr, "--destination", "/queue/q")...)
		if took := time.Since(start); code == 0 || took > 5*time.Second || !strings.Contains(out, "no broker at tcp://"+addr) {
			t.Errorf("%s to a plain URL with nothing there: exit %d after %v: %s", cmd, code, took.Round(time.Millisecond), out)
		}
	}
	c := exec.Command(hamqBin, "send", "--url", "failover:(tcp://"+addr+")", "--destination", "/queue/q", "--body", "x")
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- c.Wait() }()
	select {
	case err := <-done:
		t.Errorf("send to a failover: URL with nothing there gave up at once: %v", err)
	case <-time.After(4 * time.Second):
		c.Process.Kill()
		<-done
	}
}

// TestCLIReceivePrintsAsItArrives: hamq receive writes each message when
// it comes, not at its end, and --timeout 3 is three seconds.
func TestCLIReceivePrintsAsItArrives(t *testing.T) {
	n := startNode(t)
	c := exec.Command(hamqBin, "receive", "--url", "tcp://"+n.stomp, "--destination", "/queue/live", "--timeout", "3")
	out, err := c.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	lines := make(chan string)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	if out, code := hamq(t, "send", "--url", "tcp://"+n.stomp, "--destination", "/queue/live", "--body", "first"); code != 0 {
		t.Fatal(out)
	}
	var got time.Time
	select {
	case l := <-lines:
		got = time.Now()
		if l != "first" {
			t.Fatalf("receive printed %q", l)
		}
	case <-time.After(3 * time.Second):
		t.Fatal("receive printed nothing within 3s of the send")
	}
	for range lines {
	}
	if err := c.Wait(); err != nil {
		t.Fatal(err)
	}
	// The message came, then 3 s of nothing.
	if idle := time.Since(got); idle < 2500*time.Millisecond || idle > 5*time.Second {
		t.Errorf("receive --timeout 3 ended %v after the last message", idle.Round(time.Millisecond))
	}
}

// TestCLIBrowsePurgeDstatQuery: browse shows a queue's messages and
// leaves them there; query takes wildcards; dstat is a table; purge
// empties the queues a pattern names.
func TestCLIBrowsePurgeDstatQuery(t *testing.T) {
	n := startNode(t)
	api := "http://" + n.http
	for dest, count := range map[string]string{"/queue/orders.a": "3", "/queue/orders.b": "1", "/queue/other": "1"} {
		if out, code := hamq(t, "send", "--url", "tcp://"+n.stomp, "--destination", dest, "--count", count,
			"--body", "hello "+dest, "--header", "region=eu"); code != 0 {
			t.Fatal(out)
		}
	}
	out, code := hamq(t, "browse", "orders.a", "--http", api, "--offset", "1", "--limit", "1")
	if code != 0 || !strings.Contains(out, "Message 2 of 3") || strings.Contains(out, "Message 3") ||
		!strings.Contains(out, "region:") || !strings.Contains(out, "hello /queue/orders.a") {
		t.Errorf("browse orders.a --offset 1 --limit 1: %d\n%s", code, out)
	}
	var page struct {
		Total    int
		Messages []struct{ Body string }
	}
	if code := adminGet(t, n, "/api/queues/orders.a/messages?offset=2&limit=5", &page); code != 200 || page.Total != 3 ||
		len(page.Messages) != 1 || page.Messages[0].Body != "hello /queue/orders.a" {
		t.Errorf("GET /api/queues/orders.a/messages?offset=2&limit=5: %d %+v", code, page)
	}

	out, _ = hamq(t, "query", "-QQueue=orders.*", "--http", api)
	for _, want := range []string{"Name = orders.a\nQueueSize = 3\nEnqueueCount = 3\n", "Name = orders.b\nQueueSize = 1\nEnqueueCount = 1\n"} {
		if !strings.Contains(out, want) {
			t.Errorf("query -QQueue='orders.*' (browsing consumed nothing) lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "other") {
		t.Errorf("query -QQueue='orders.*' shows a queue it does not match:\n%s", out)
	}

	out, _ = hamq(t, "dstat", "queues", "--http", api)
	header := regexp.MustCompile(`(?m)^Name\s+Type\s+Queue Size\s+Consumer #\s+Enqueue #\s+Dequeue #\s+Dead-letter #\s+Memory %$`)
	row := regexp.MustCompile(`(?m)^orders\.a\s+queue\s+3\s+0\s+3\s+0\s+0\s+\d+$`)
	if !header.MatchString(out) || !row.MatchString(out) {
		t.Errorf("dstat queues:\n%s", out)
	}

	out, code = hamq(t, "purge", "orders.*", "--http", api)
	if code != 0 || !strings.Contains(out, "purged 3 message(s) from orders.a") || !strings.Contains(out, "purged 1 message(s) from orders.b") {
		t.Errorf("purge 'orders.*': %d\n%s", code, out)
	}
	var other struct{ Size int }
	adminGet(t, n, "/api/queues/other", &other)
	if out, _ := hamq(t, "query", "-QQueue=orders.a", "--http", api); !strings.Contains(out, "QueueSize = 0\n") || other.Size != 1 {
		t.Errorf("after the purge: other holds %d;\n%s", other.Size, out)
	}
}

// TestCLIConfigFileReported: start-up logs which file it loaded; a YAML
// syntax error is file:line: what, as every other configuration error.
func TestCLIConfigFileReported(t *testing.T) {
	n := startAuthNode(t, "")
	abs, _ := filepath.Abs(n.extra[1])
	if !strings.Contains(n.log.String(), `msg="configuration loaded" file=`+abs) {
		t.Errorf("the start-up log does not name %s:\n%s", abs, n.log)
	}
	cfg := filepath.Join(t.TempDir(), "hamq.yaml")
	os.WriteFile(cfg, []byte("broker:\n  name: x\nstomp:\n  address: [127.0.0.1:0\n"), 0o600)
	out, err := exec.Command(hamqBin, "start", "--config", cfg, "--data", t.TempDir()).CombinedOutput()
	if err == nil || !regexp.MustCompile(regexp.QuoteMeta(cfg)+`:\d+: `).Match(out) {
		t.Errorf("a YAML syntax error: %v %s; want %s:LINE: ...", err, out, cfg)
	}
}

// TestCLISendWithoutQuorum: a send that no quorum confirms is sent once
// and fails once, after cluster.confirmTimeout (here shorter than the
// ZooKeeper session timeout after which the master would step down for
// want of acknowledgements), with the broker's words, even with a
// failover: URL.
func TestCLISendWithoutQuorum(t *testing.T) {
	c, master := startClusterWith(t, "cluster:\n  confirmTimeout: 1s\n")
	for _, s := range c.others(master) {
		waitCaughtUp(t, s, master)
		s.kill()
	}
	start := time.Now()
	out, code := hamq(t, "send", "--url", c.failoverURL(), "--destination", "/queue/nq", "--body", "once")
	took := time.Since(start)
	if code == 0 || strings.Count(out, "is held by 1 of the 2 nodes needed") != 1 || took < time.Second || took > 10*time.Second {
		t.Fatalf("send without a quorum: exit %d after %v:\n%s", code, took.Round(time.Millisecond), out)
	}
	t.Logf("hamq send failed after %v: %s", took.Round(time.Millisecond), out)
	for _, s := range c.others(master) {
		s.start()
	}
	m, err := c.waitMaster(60 * time.Second)
	if err != nil {
		t.Fatal(err)
	}
	var q struct{ Enqueued int }
	adminGet(t, m, "/api/queues/nq", &q)
	if q.Enqueued > 1 {
		t.Errorf("the refused send was stored %d times", q.Enqueued)
	}
}

// TestDemoNamesAndRestarts: hamq demo names its nodes as hamq cluster status does, and
// prints the new pid of a node it restarts.
func TestDemoNamesAndRestarts(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	c := exec.CommandContext(ctx, hamqBin, "demo", "--dir", t.TempDir())
	c.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	c.Cancel = func() error { return syscall.Kill(-c.Process.Pid, syscall.SIGKILL) }
	out, err := c.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		c.Process.Signal(syscall.SIGINT) // the demo stops its nodes and ZooKeeper
		c.Wait()
	}()
	lines := make(chan string, 100)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	next := func(re *regexp.Regexp) []string {
		t.Helper()
		for {
			select {
			case l, ok := <-lines:
				if !ok {
					t.Fatalf("the demo ended before printing %s", re)
				}
				if m := re.FindStringSubmatch(l); m != nil {
					return m
				}
			case <-ctx.Done():
				t.Fatalf("the demo did not print %s", re)
			}
		}
	}
	nodeLine := regexp.MustCompile(`^node (\S+) \(pid (\d+)\): .* console (http://\S+)/admin/`)
	pids, admin := map[string]string{}, ""
	for range 3 {
		m := next(nodeLine)
		pids[m[1]], admin = m[2], m[3]
	}
	master := next(regexp.MustCompile(`master: node (\S+)`))[1]
	if pids[master] == "" {
		t.Fatalf("the demo's master %q is none of its nodes %v", master, pids)
	}
	var status string
	waitFor(t, "hamq cluster status to see every node", func() bool {
		var code int
		status, code = hamq(t, "cluster", "status", "--http", admin)
		return code == 0 && strings.Count(status, "slave") == 2
	})
	for name := range pids {
		if !strings.Contains(status, name) {
			t.Errorf("hamq cluster status does not name the demo's node %s:\n%s", name, status)
		}
	}
	var victim string
	for name := range pids {
		if name != master {
			victim = name
		}
	}
	var pid int
	fmt.Sscan(pids[victim], &pid)
	syscall.Kill(pid, syscall.SIGKILL)
	m := next(regexp.MustCompile(`node ` + regexp.QuoteMeta(victim) + ` restarted: pid (\d+)`))
	if _, err := os.Stat("/proc/" + m[1]); m[1] == pids[victim] || err != nil {
		t.Errorf("the restarted node's pid %s (was %s): %v", m[1], pids[victim], err)
	}
}

// TestREADMEUsingIt runs the README's "Using it" commands as a newcomer
// does: while the broker of its "two commands" runs, they use it rather
// than start a second one on the same data directory (and its hamq stop
// stops it); with none running, their own hamq start serves them. The
// commands are the README's own, on the default ports, but for go build
// (the binary under test stands in) and bench (measured elsewhere; it
// sends 100,000 messages).
func TestREADMEUsingIt(t *testing.T) {
	readme, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, section, _ := strings.Cut(string(readme), "\n## Using it\n")
	_, block, _ := strings.Cut(section, "```sh\n")
	block, _, _ = strings.Cut(block, "```")
	var script []string
	for _, l := range strings.Split(block, "\n") {
		if !strings.HasPrefix(l, "go build ") && !strings.HasPrefix(l, "./hamq bench") {
			script = append(script, l)
		}
	}
	if accepts("127.0.0.1:61613", nil) || accepts("127.0.0.1:8161", nil) {
		t.Fatal("this test needs hamq's default ports 61613 and 8161 free on 127.0.0.1, as the README's commands use them")
	}
	usingIt := func(dir string) {
		t.Helper()
		run := exec.Command("sh", "-ec", strings.Join(script, "\n"))
		run.Dir = dir
		run.Env = append(os.Environ(), "HAMQ_URL=", "HAMQ_HTTP=", "HAMQ_USER=", "HAMQ_PASSWORD=")
		out, err := run.CombinedOutput()
		if err != nil {
			t.Fatalf("the README's commands in %s: %v\n%s", dir, err, out)
		}
		for _, want := range []string{"EnqueueCount = 3", "Message 3 of 3", "hello\nhello\nhello\n", "orders"} {
			if !strings.Contains(string(out), want) {
				t.Errorf("the README's commands do not print %q:\n%s", want, out)
			}
		}
		// Whichever broker served them, their hamq stop ended it.
		waitFor(t, "the broker to stop", func() bool { return !accepts("127.0.0.1:61613", nil) })
	}
	dirWith := func() string {
		dir := t.TempDir()
		if err := os.Symlink(hamqBin, filepath.Join(dir, "hamq")); err != nil {
			t.Fatal(err)
		}
		// Should the commands fail before their hamq stop, the broker
		// their hamq start & left must not outlive the test.
		t.Cleanup(func() { exec.Command(hamqBin, "stop", "--data", filepath.Join(dir, "data")).Run() })
		return dir
	}

	// The first of the two commands: a broker in the foreground, data in ./data.
	dir := dirWith()
	first := exec.Command(hamqBin, "start")
	first.Dir = dir
	if err := first.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- first.Wait() }()
	t.Cleanup(func() {
		first.Process.Kill()
		<-exited
	})
	waitFor(t, "the broker of the two commands", func() bool { return accepts("127.0.0.1:61613", stompGreeting) })
	usingIt(dir)
	select {
	case err := <-exited:
		exited <- err
	case <-time.After(15 * time.Second):
		t.Fatal("the broker of the two commands still runs after the README's hamq stop")
	}

	usingIt(dirWith())
}
