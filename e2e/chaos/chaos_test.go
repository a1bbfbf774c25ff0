package chaos

import (
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// defaultDuration keeps the package, focused tests included, within CI's
// time on two cores.
const defaultDuration = 45 * time.Second

// TestChaos runs every client against the cluster while faults chosen by
// a seeded generator come one after another, each healed and recovered
// from before the next; then it drains everything and checks the history.
func TestChaos(t *testing.T) {
	cfg, err := chaosConfigFromEnv()
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("HAMQ_CHAOS_SEED=%d HAMQ_CHAOS_DURATION=%v HAMQ_CHAOS_MIN=%v HAMQ_CHAOS_FAULTS=%s", cfg.seed, cfg.duration, cfg.min, os.Getenv("HAMQ_CHAOS_FAULTS"))
	rng := rand.New(rand.NewPCG(cfg.seed, cfg.seed>>32|1))
	var c *cluster
	if cfg.duration > 5*time.Minute {
		// A long run's witnesses hold much, and its slaves may have much
		// to catch up with.
		c = newClusterSized(t, longDataSize)
		c.recovery = time.Minute
	} else {
		c = newCluster(t)
	}
	if _, err := c.waitStable(c.recovery); err != nil {
		t.Fatal(err)
	}
	w := startLoad(t, c, chaosLoad)
	time.Sleep(2 * time.Second)

	sched := newScheduler(rng, cfg.kinds, cfg.min)
	var faults []Fault
	begin := time.Now()
	for i := 1; time.Since(begin) < cfg.duration; i++ {
		master, err := c.waitStable(10 * time.Second)
		if err != nil {
			t.Errorf("before fault %d: %v", i, err)
			break
		}
		k := sched.next(cfg.duration - time.Since(begin))
		f := Fault{Kind: k.name}
		cycle := time.Now()
		fr := &faultRun{c: c, rng: rng, rec: w.rec, master: master, f: &f}
		if err := k.run(fr); err != nil {
			t.Errorf("fault %d (%s on %s): %v", i, k.name, f.Target, err)
			f.Notes = append(f.Notes, "injecting: "+err.Error())
			if f.End.IsZero() {
				f.End = w.rec.now()
			}
		}
		if _, err := c.waitStable(c.recovery); err != nil {
			t.Errorf("fault %d (%s on %s): the cluster did not recover by itself: %v", i, k.name, f.Target, err)
			f.Notes = append(f.Notes, fmt.Sprintf("not recovered by itself within %v", c.recovery))
			notes, err := c.restore()
			f.Notes = append(f.Notes, notes...)
			if err != nil {
				faults = append(faults, f)
				t.Errorf("fault %d: the cluster did not recover even so: %v", i, err)
				break
			}
		}
		f.Recovered = w.rec.now()
		sched.record(k, time.Since(cycle))
		faults = append(faults, f)
		t.Logf("fault %d: %s on %s, healed after %v, recovered %v later%s", i, k.name, f.Target,
			f.End.Sub(f.Start).Round(time.Millisecond), f.Recovered.Sub(f.End).Round(time.Millisecond), notes(f.Notes))
	}
	if notes := c.healAll(); len(notes) > 0 {
		t.Logf("healing before the drain: %s", strings.Join(notes, "; "))
	}
	var h History
	if _, err := c.waitStable(c.recovery); err != nil {
		t.Errorf("before the drain: %v", err)
		h = w.abandon("no master with two caught-up slaves for the final drain")
	} else {
		h = w.finish()
	}
	h.Faults = faults
	writeFaults(filepath.Join(c.lab.dir, "history.jsonl"), faults)
	rep := Check(h, Limits{Kinds: kindNames(), Bounds: bounds(), Grace: 5 * time.Second})
	md := fmt.Sprintf("hamq chaos: seed %d, %v of faults (%d), %d node exits not caused by a fault\n\n%s",
		cfg.seed, cfg.duration, len(faults), c.exits(), rep.Markdown())
	t.Logf("\n%s", md)
	if cfg.report != "" {
		if err := os.WriteFile(cfg.report, []byte(md), 0o644); err != nil {
			t.Error(err)
		}
	}
	wrong, unflagged := scheduledWrong(h)
	if len(wrong) > 0 {
		t.Errorf("%d scheduled deliveries early or doubled: %s", len(wrong), strings.Join(wrong[:min(len(wrong), 10)], "; "))
	}
	t.Logf("scheduled flow: %d messages delivered again by a later master without redelivered:true", unflagged)
	if unmet := sched.unmet(); len(unmet) > 0 {
		t.Errorf("HAMQ_CHAOS_MIN not met within %v: %s", cfg.duration, strings.Join(unmet, ", "))
	}
	if tot := rep.Total(); rep.Failed() {
		t.Errorf("seed %d: lost %d, invented %d, dirty reads %d, late confirmations %d, rogue accepted %d, over the unavailability bound %d (problems above)",
			cfg.seed, tot.Lost, tot.Invented, tot.Dirty, tot.Late, tot.RogueAccepted, tot.OverBound)
	}
}

func notes(n []string) string {
	if len(n) == 0 {
		return ""
	}
	return ": " + strings.Join(n, "; ")
}
