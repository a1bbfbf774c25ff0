package zkprobe

import (
	"context"
	"log/slog"
	"os"
	"testing"
	"time"

	"github.com/hamq/hamq/ha/zkensemble"
)

func TestProbe(t *testing.T) {
	dir := "/tmp/zkprobe/run"
	os.RemoveAll(dir)
	for _, n := range []int{1, 3} {
		began := time.Now()
		e, err := zkensemble.Start(context.Background(), zkensemble.Options{Dir: dir, Members: n, Logger: slog.New(slog.NewTextHandler(os.Stderr, nil))})
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("n=%d ready %v", n, time.Since(began))
		e.Close()
	}
}
