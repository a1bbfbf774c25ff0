package zkensemble

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// member is one ZooKeeper server: its ports, its directory, and the
// process running it, if any.
type member struct {
	id                     int // ZooKeeper's myid, from 1
	dir                    string
	client, peer, election int

	cmd     *exec.Cmd
	exited  chan struct{} // closed once cmd has been waited for
	waitErr error         // cmd.Wait's result, readable after exited
	logFrom int64         // size of the log when cmd started
}

func (m *member) addr() string   { return "127.0.0.1:" + strconv.Itoa(m.client) }
func (m *member) logPath() string { return filepath.Join(m.dir, "zookeeper.log") }

func (m *member) running() bool {
	if m.cmd == nil {
		return false
	}
	select {
	case <-m.exited:
		return false
	default:
		return true
	}
}

// writeConfig writes zoo.cfg and myid for m as a member of all. Rewritten
// on every Start, so that a kept Dir can be reused with new ports.
func (m *member) writeConfig(all []*member, tick time.Duration) error {
	data := filepath.Join(m.dir, "data")
	if err := os.MkdirAll(data, 0o755); err != nil {
		return fmt.Errorf("zkensemble: %w", err)
	}
	ms := tick.Milliseconds()
	cfg := []string{
		// A short tick lets sessions as short as 2 ticks exist (the
		// server clamps session timeouts to 2..20 ticks), so that tests
		// see expiry and failover in about a second.
		"tickTime=" + strconv.FormatInt(ms, 10),
		"initLimit=20", "syncLimit=5",
		"maxSessionTimeout=" + strconv.FormatInt(40*ms, 10),
		"dataDir=" + data,
		"clientPort=" + strconv.Itoa(m.client),
		"clientPortAddress=127.0.0.1",
		// The admin server would take :8080, once per member.
		"admin.enableServer=false",
		"4lw.commands.whitelist=srvr,ruok",
		// The transaction log is preallocated in 64 MB steps by default:
		// 1 MB keeps several ensembles per test run small on disk.
		"preAllocSize=1024",
		// Members live on one machine and die together with it; fsync
		// would only slow every write of the tests. A kill -9 still loses
		// nothing, since the page cache survives it.
		"forceSync=no",
	}
	if len(all) > 1 {
		for _, o := range all {
			cfg = append(cfg, fmt.Sprintf("server.%d=127.0.0.1:%d:%d", o.id, o.peer, o.election))
		}
	}
	if err := os.WriteFile(filepath.Join(m.dir, "zoo.cfg"), []byte(strings.Join(cfg, "\n")+"\n"), 0o644); err != nil {
		return fmt.Errorf("zkensemble: %w", err)
	}
	if err := os.WriteFile(filepath.Join(data, "myid"), []byte(strconv.Itoa(m.id)+"\n"), 0o644); err != nil {
		return fmt.Errorf("zkensemble: %w", err)
	}
	return nil
}

// jvmFlags keep a member small and quick to start: CI has 2 cores and
// tests run several ensembles at once, and a member needs neither a big
// heap nor the optimising compiler to serve a test's few requests.
var jvmFlags = []string{
	"-Xms16m", "-Xmx96m",
	"-XX:+UseSerialGC",
	"-XX:TieredStopAtLevel=1",
	"-XX:+ExitOnOutOfMemoryError",
	// No hsperfdata files in /tmp for every JVM.
	"-XX:-UsePerfData",
	"-Djava.net.preferIPv4Stack=true",
	"-Dorg.slf4j.simpleLogger.showDateTime=true",
	"-Dorg.slf4j.simpleLogger.dateTimeFormat=HH:mm:ss.SSS",
}

// start runs m's JVM, its output appended to m's log.
func (m *member) start(inst install) error {
	logf, err := os.OpenFile(m.logPath(), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("zkensemble: %w", err)
	}
	// The child holds its own descriptor; ours is not needed past Start.
	defer logf.Close()
	from, err := logf.Seek(0, io.SeekEnd)
	if err != nil {
		return fmt.Errorf("zkensemble: %w", err)
	}
	fmt.Fprintf(logf, "=== zkensemble: starting member %d at %s\n", m.id, time.Now().Format(time.RFC3339Nano))
	args := append(append([]string{}, jvmFlags...),
		"-cp", inst.classpath,
		"org.apache.zookeeper.server.quorum.QuorumPeerMain",
		filepath.Join(m.dir, "zoo.cfg"))
	cmd := exec.Command(inst.java, args...)
	cmd.Dir = m.dir // hs_err files and the like land with the member
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = sysProcAttr()
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("zkensemble: start member %d: %w", m.id, err)
	}
	m.cmd, m.exited, m.waitErr, m.logFrom = cmd, make(chan struct{}), nil, from
	// Ends when the process does; Close makes sure it does.
	go func(exited chan struct{}) {
		m.waitErr = cmd.Wait()
		close(exited)
	}(m.exited)
	return nil
}

// stop signals m's process and waits for it to end; past grace it is
// killed. grace 0 means SIGKILL at once.
func (m *member) stop(grace time.Duration) error {
	if !m.running() {
		return nil
	}
	if grace > 0 {
		if err := m.cmd.Process.Signal(syscall.SIGTERM); err != nil && !errors.Is(err, os.ErrProcessDone) {
			grace = 0
		}
	}
	if grace > 0 {
		t := time.NewTimer(grace)
		defer t.Stop()
		select {
		case <-m.exited:
			return nil
		case <-t.C:
		}
	}
	if err := m.cmd.Process.Kill(); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("zkensemble: kill member %d (pid %d): %w", m.id, m.cmd.Process.Pid, err)
	}
	// A SIGKILLed process always ends; the wait is for the kernel to reap
	// it and release its ports before a Restart binds them again.
	<-m.exited
	return nil
}

// logTail returns the end of m's log, for errors that must say why a
// member did not come up.
func (m *member) logTail(max int) string {
	f, err := os.Open(m.logPath())
	if err != nil {
		return fmt.Sprintf("(no log: %v)", err)
	}
	defer f.Close()
	if st, err := f.Stat(); err == nil && st.Size() > int64(max) {
		f.Seek(st.Size()-int64(max), io.SeekStart)
	}
	b, _ := io.ReadAll(f)
	if i := bytes.IndexByte(b, '\n'); i >= 0 && len(b) == max {
		b = b[i+1:] // start at a whole line
	}
	return string(b)
}

// logMentions reports whether m's log since its last start contains s,
// such as the BindException that says another process took a port.
func (m *member) logMentions(s string) bool {
	f, err := os.Open(m.logPath())
	if err != nil {
		return false
	}
	defer f.Close()
	if _, err := f.Seek(m.logFrom, io.SeekStart); err != nil {
		return false
	}
	b, err := io.ReadAll(f)
	return err == nil && bytes.Contains(b, []byte(s))
}
