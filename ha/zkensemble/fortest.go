package zkensemble

import (
	"context"
	"time"
)

// TB is the part of testing.TB that ForTest uses. It is an interface so
// that this package, which `hamq demo` links, does not import testing.
type TB interface {
	Helper()
	Cleanup(func())
	TempDir() string
	Logf(format string, args ...any)
	Errorf(format string, args ...any)
	Fatalf(format string, args ...any)
	Failed() bool
}

// ForTest starts an ensemble of n members for a test and ends it when the
// test does. It fails the test, never skips it, when ZooKeeper is missing:
// a skipped HA test would pass on a machine that proves nothing. When the
// test has failed, the end of every member's log is logged, since the
// temporary directory holding the logs is removed.
func ForTest(t TB, n int) *Ensemble {
	t.Helper()
	began := time.Now()
	e, err := Start(context.Background(), Options{Dir: t.TempDir(), Members: n})
	if err != nil {
		t.Fatalf("%v", err)
	}
	t.Logf("zkensemble: %d members serving at %s after %v", n, e.Connect(), time.Since(began).Round(time.Millisecond))
	t.Cleanup(func() {
		if t.Failed() {
			for _, m := range e.members {
				t.Logf("zkensemble: member %d log ends:\n%s", m.id, m.logTail(2048))
			}
		}
		if err := e.Close(); err != nil {
			t.Errorf("%v", err)
		}
	})
	return e
}
