package e2e

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/go-stomp/stomp/v3"
)

// tmpfs mounts a small file system of its own on a new directory, so that
// a test can fill it; it fails the test unless run as root.
func tmpfs(t *testing.T, size string) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Fatal("filling a disk needs a tmpfs of its own: run the tests as root (CI does)")
	}
	dir := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size="+size, "tmpfs", dir).CombinedOutput(); err != nil {
		t.Fatalf("mount a tmpfs: %v: %s", err, out)
	}
	t.Cleanup(func() { exec.Command("umount", "-l", dir).Run() })
	return dir
}

// fill writes a file until the file system is full and returns it.
func fill(t *testing.T, dir string) string {
	t.Helper()
	path := filepath.Join(dir, "filler")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	chunk := make([]byte, 1<<20)
	for {
		if _, err := f.Write(chunk); err != nil {
			if !errors.Is(err, syscall.ENOSPC) {
				t.Fatal(err)
			}
			break
		}
	}
	// What is left of a last partial block too.
	for _, err := f.Write(chunk[:4096]); err == nil; _, err = f.Write(chunk[:4096]) {
	}
	return path
}

func brokerHealth(n *node) string {
	c := http.Client{Timeout: time.Second}
	resp, err := c.Get("http://" + n.http + "/api/broker")
	if err != nil {
		return err.Error()
	}
	defer resp.Body.Close()
	var b struct {
		Health string `json:"health"`
	}
	json.NewDecoder(resp.Body).Decode(&b)
	return b.Health
}

// TestStandaloneDiskFull: a standalone broker whose disk fills up refuses
// sends with an ERROR (never a receipt for what was not stored), says it
// is unhealthy, closes its client ports, and once space returns reopens
// its store and serves again by itself, without a restart. Every
// confirmed message is there, the unacknowledged ones come again, and
// the counters count what is stored.
func TestStandaloneDiskFull(t *testing.T) {
	n := newNode(t)
	n.data = tmpfs(t, "48m")
	n.start()
	conn, err := stomp.Dial("tcp", n.stomp)
	if err != nil {
		t.Fatal(err)
	}
	confirmed := 0
	for i := range 20 {
		if err := conn.Send("/queue/full", "text/plain", []byte(fmt.Sprintf("m%02d", i)), stomp.SendOpt.Receipt, stomp.SendOpt.Header("persistent", "true")); err != nil {
			t.Fatal(err)
		}
		confirmed++
	}
	filler := fill(t, n.data)
	refused := false
	pad := strings.Repeat("x", 1024)
	for i := range 1000 {
		err := conn.Send("/queue/full", "text/plain", []byte(fmt.Sprintf("late%03d-%s", i, pad)), stomp.SendOpt.Receipt, stomp.SendOpt.Header("persistent", "true"))
		if err != nil {
			t.Logf("send %d on a full disk: %v", i, err)
			refused = true
			break
		}
		// A send may still fit the blocks the journal had written ahead
		// (zeroAhead in core/store: 256 KiB) or LevelDB had allocated;
		// what does fit is stored, and must be there at the end.
		confirmed++
	}
	if !refused {
		t.Fatal("1000 sends of 1 KiB confirmed on a full disk")
	}
	deadline := time.Now().Add(10 * time.Second)
	for h := brokerHealth(n); !strings.Contains(h, "store"); h = brokerHealth(n) {
		if time.Now().After(deadline) {
			t.Fatalf("/api/broker health on a full disk: %q", h)
		}
		time.Sleep(100 * time.Millisecond)
	}
	for deadline := time.Now().Add(10 * time.Second); accepts(n.stomp, nil); time.Sleep(100 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the broker with a failed store still takes STOMP connections")
		}
	}
	if !strings.Contains(n.log.String(), "level=ERROR") {
		t.Error("nothing logged at ERROR about the failed store")
	}

	os.Remove(filler)
	for deadline := time.Now().Add(15 * time.Second); !n.serving(); time.Sleep(100 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the broker did not serve again once the disk had room:\n%s", n.log)
		}
	}
	if h := brokerHealth(n); h != "ok" {
		t.Errorf("/api/broker health after recovering: %q", h)
	}
	got := receiveAll(t, n, "/queue/full", "2")
	stored := 0
	for body, k := range got {
		stored += k
		if k > 1 {
			t.Errorf("%s received %d times", body, k)
		}
	}
	if stored < confirmed {
		t.Errorf("%d of %d confirmed messages after recovering", stored, confirmed)
	}
	t.Logf("confirmed %d before the failure, %d there after recovering", confirmed, stored)
	out, _ := hamq(t, "query", "-QQueue=full", "--http", "http://"+n.http)
	if !strings.Contains(out, fmt.Sprintf("EnqueueCount = %d\n", stored)) {
		t.Errorf("the counters count what is not stored (%d messages were):\n%s", stored, out)
	}
}
