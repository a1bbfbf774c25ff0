package chaos

import (
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"
)

// chaosConfig is TestChaos's configuration, from the environment.
type chaosConfig struct {
	duration time.Duration
	seed     uint64
	min      map[string]int
	report   string
	kinds    []faultKind // those to inject
}

func chaosConfigFromEnv() (chaosConfig, error) {
	cfg := chaosConfig{duration: defaultDuration, seed: uint64(time.Now().UnixNano()), min: map[string]int{},
		report: os.Getenv("HAMQ_CHAOS_REPORT")}
	if v := os.Getenv("HAMQ_CHAOS_DURATION"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			return cfg, fmt.Errorf("HAMQ_CHAOS_DURATION=%q: want a duration such as 35m", v)
		}
		cfg.duration = d
	}
	if v := os.Getenv("HAMQ_CHAOS_SEED"); v != "" {
		s, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			return cfg, fmt.Errorf("HAMQ_CHAOS_SEED=%q: want a number", v)
		}
		cfg.seed = s
	}
	var err error
	if cfg.min, err = parseMin(os.Getenv("HAMQ_CHAOS_MIN")); err != nil {
		return cfg, err
	}
	if cfg.kinds, err = parseKinds(os.Getenv("HAMQ_CHAOS_FAULTS")); err != nil {
		return cfg, err
	}
	for kind, n := range cfg.min {
		if n > 0 && !slices.ContainsFunc(cfg.kinds, func(k faultKind) bool { return k.name == kind }) {
			return cfg, fmt.Errorf("HAMQ_CHAOS_MIN asks for %s, which HAMQ_CHAOS_FAULTS leaves out", kind)
		}
	}
	return cfg, nil
}

// parseKinds reads a list of fault kinds; empty is all of them.
func parseKinds(v string) ([]faultKind, error) {
	if strings.TrimSpace(v) == "" {
		return faultKinds, nil
	}
	var out []faultKind
	for _, name := range strings.Split(v, ",") {
		name = strings.TrimSpace(name)
		if a, alias := faultAliases[name]; alias {
			name = a
		}
		i := slices.IndexFunc(faultKinds, func(k faultKind) bool { return k.name == name })
		if i < 0 {
			return nil, fmt.Errorf("HAMQ_CHAOS_FAULTS: no fault kind %q; kinds %s", name, strings.Join(kindNames(), ", "))
		}
		out = append(out, faultKinds[i])
	}
	return out, nil
}

// parseMin reads kind=count,kind=count.
func parseMin(v string) (map[string]int, error) {
	out := map[string]int{}
	for _, part := range strings.Split(v, ",") {
		if part = strings.TrimSpace(part); part == "" {
			continue
		}
		kind, count, ok := strings.Cut(part, "=")
		n, err := strconv.Atoi(count)
		if a, alias := faultAliases[kind]; alias {
			kind = a
		}
		if !ok || err != nil || n < 0 || !slices.Contains(kindNames(), kind) {
			return nil, fmt.Errorf("HAMQ_CHAOS_MIN: %q: want kind=count, kinds %s (pause is pause-long)", part, strings.Join(kindNames(), ", "))
		}
		out[kind] = n
	}
	return out, nil
}

// scheduler picks the next fault: every kind in turn, in an order shuffled
// afresh each round, unless the minimum counts need the time left.
type scheduler struct {
	rng   *rand.Rand
	kinds []faultKind
	min   map[string]int
	done  map[string]int
	spent map[string]time.Duration
	deck  []faultKind
}

func newScheduler(rng *rand.Rand, kinds []faultKind, min map[string]int) *scheduler {
	return &scheduler{rng: rng, kinds: kinds, min: min, done: map[string]int{}, spent: map[string]time.Duration{}}
}

// cost is a kind's average cycle so far, or its first guess.
func (s *scheduler) cost(k faultKind) time.Duration {
	if n := s.done[k.name]; n > 0 {
		return s.spent[k.name] / time.Duration(n)
	}
	return k.cost
}

// next picks a kind for a run with left time to go.
func (s *scheduler) next(left time.Duration) faultKind {
	var need time.Duration
	var short []faultKind
	for _, k := range s.kinds {
		if d := s.min[k.name] - s.done[k.name]; d > 0 {
			need += time.Duration(d) * s.cost(k)
			for range d {
				short = append(short, k)
			}
		}
	}
	if len(short) > 0 && need+need/4 >= left {
		return short[s.rng.IntN(len(short))]
	}
	if len(s.deck) == 0 {
		s.deck = slices.Clone(s.kinds)
		s.rng.Shuffle(len(s.deck), func(i, j int) { s.deck[i], s.deck[j] = s.deck[j], s.deck[i] })
	}
	k := s.deck[0]
	s.deck = s.deck[1:]
	return k
}

func (s *scheduler) record(k faultKind, took time.Duration) {
	s.done[k.name]++
	s.spent[k.name] += took
}

// unmet lists the kinds below their minimum.
func (s *scheduler) unmet() []string {
	var out []string
	for _, k := range kindNames() {
		if s.done[k] < s.min[k] {
			out = append(out, fmt.Sprintf("%s %d of %d", k, s.done[k], s.min[k]))
		}
	}
	return out
}
