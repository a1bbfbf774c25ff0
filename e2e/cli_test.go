package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func TestCLIStatusQueryStop(t *testing.T) {
	n := startNode(t)
	url := "--url=tcp://" + n.stomp
	if out, code := hamq(t, "status", "--data", n.data); code != 0 || !strings.Contains(out, "running") {
		t.Fatalf("status: %d %s", code, out)
	}
	if out, code := hamq(t, "send", url, "--destination", "/queue/testQueue", "--count", "5", "--body", "hi"); code != 0 {
		t.Fatalf("send: %d %s", code, out)
	}
	out, code := hamq(t, "query", "-QQueue=testQueue", "--http", "http://"+n.http)
	if code != 0 {
		t.Fatalf("query: %d %s", code, out)
	}
	for _, want := range []string{"Name = testQueue", "QueueSize = 5", "EnqueueCount = 5", "DequeueCount = 0", "ConsumerCount = 0"} {
		if !strings.Contains(out+"\n", want+"\n") {
			t.Errorf("query output lacks %q:\n%s", want, out)
		}
	}
	if out, code := hamq(t, "queues", "--http", "http://"+n.http); code != 0 || !strings.Contains(out, "testQueue") {
		t.Errorf("queues: %d %s", code, out)
	}
	out, code = hamq(t, "receive", url, "--destination", "/queue/testQueue", "--count", "5")
	if code != 0 || strings.Count(out, "hi") != 5 {
		t.Errorf("receive: %d %q", code, out)
	}
	if out, code := hamq(t, "stop", "--data", n.data); code != 0 {
		t.Fatalf("stop: %d %s", code, out)
	}
	if err := <-n.done; err != nil {
		t.Errorf("hamq exited with %v after stop", err)
	}
	n.cmd = nil
	if out, code := hamq(t, "status", "--data", n.data); code != 3 {
		t.Errorf("status of a stopped broker: %d %s", code, out)
	}
}

func TestSigtermKeepsPersistent(t *testing.T) {
	n := startNode(t)
	if out, code := hamq(t, "send", "--url=tcp://"+n.stomp, "--destination", "/queue/keep", "--count", "20", "--body", "x"); code != 0 {
		t.Fatalf("send: %s", out)
	}
	if err := n.stop(); err != nil {
		t.Fatalf("SIGTERM exit: %v\n%s", err, n.log)
	}
	if _, err := os.Stat(filepath.Join(n.data, "hamq.pid")); !os.IsNotExist(err) {
		t.Errorf("pid file left behind: %v", err)
	}
	n.start()
	out, _ := hamq(t, "query", "-QQueue=keep", "--http", "http://"+n.http)
	if !strings.Contains(out, "QueueSize = 20") {
		t.Fatalf("after restart:\n%s", out)
	}
}

func TestBadConfigNamesFileLineKey(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "hamq.yaml")
	os.WriteFile(cfg, []byte("broker:\n  name: x\nstomp:\n  maxFrameSize: 12xyz\n"), 0o600)
	out, err := exec.Command(hamqBin, "start", "--config", cfg, "--data", filepath.Join(dir, "data")).CombinedOutput()
	if err == nil {
		t.Fatal("hamq started with a bad config")
	}
	want := cfg + `:4: stomp.maxFrameSize: "12xyz" is not a size`
	if !strings.Contains(string(out), want) {
		t.Fatalf("output %q lacks %q", out, want)
	}
}

func TestSecondBrokerOnSameDataRefused(t *testing.T) {
	n := startNode(t)
	out, err := exec.Command(hamqBin, "start", "--data", n.data, "--stomp", "off", "--http", "off").CombinedOutput()
	if err == nil || !strings.Contains(string(out), "is in use by another hamq") {
		t.Fatalf("second broker on the same data: %v %s", err, out)
	}
}
