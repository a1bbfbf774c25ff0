package chaos

import (
	"math/rand/v2"
	"testing"
	"time"
)

func TestParseMin(t *testing.T) {
	got, err := parseMin("master-kill=50, slave-cut=20,zk-cut=20,pause=20")
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]int{"master-kill": 50, "slave-cut": 20, "zk-cut": 20, "pause-long": 20}
	if len(got) != len(want) {
		t.Fatalf("parseMin = %v, want %v", got, want)
	}
	for k, v := range want {
		if got[k] != v {
			t.Fatalf("parseMin = %v, want %v", got, want)
		}
	}
	for _, bad := range []string{"master-kill", "nosuch=1", "zk-cut=-1", "zk-cut=x"} {
		if _, err := parseMin(bad); err == nil {
			t.Errorf("parseMin(%q) accepted", bad)
		}
	}
	if kinds, err := parseKinds("pause,rogue"); err != nil || len(kinds) != 2 || kinds[0].name != "pause-long" {
		t.Errorf("parseKinds: %v, %v", kinds, err)
	}
}

// TestSchedulerMeetsMinimums: a 35-minute run asked for the long run's
// minimums gets them, every kind comes up, and the same seed gives the
// same faults.
func TestSchedulerMeetsMinimums(t *testing.T) {
	min, _ := parseMin("master-kill=50,slave-cut=20,zk-cut=20,pause=20")
	run := func(seed uint64) (map[string]int, []string) {
		s := newScheduler(rand.New(rand.NewPCG(seed, 1)), faultKinds, min)
		var order []string
		for left := 35 * time.Minute; left > 0; {
			k := s.next(left)
			took := k.cost + k.cost/5 // cycles run a little longer than guessed
			s.record(k, took)
			left -= took
			order = append(order, k.name)
		}
		if unmet := s.unmet(); len(unmet) > 0 {
			t.Errorf("seed %d: unmet %v", seed, unmet)
		}
		return s.done, order
	}
	done, order := run(1)
	for _, k := range faultKinds {
		if done[k.name] == 0 {
			t.Errorf("no %s in %v", k.name, done)
		}
	}
	if len(order) < 110 {
		t.Errorf("%d faults in 35 minutes, want 110 or more", len(order))
	}
	_, again := run(1)
	if len(again) != len(order) || again[0] != order[0] || again[len(again)-1] != order[len(order)-1] {
		t.Error("the same seed scheduled different faults")
	}
	t.Logf("%d faults: %v", len(order), done)
}
