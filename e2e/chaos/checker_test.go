package chaos

import (
	"strings"
	"testing"
	"time"
)

// A hand-made history: t0 is its start; at(s) is t0 plus s seconds.
var t0 = time.Date(2026, 12, 6, 11, 0, 0, 0, time.UTC)

func at(s float64) time.Time { return t0.Add(time.Duration(s * float64(time.Second))) }

type hist struct{ History }

func newHist() *hist {
	return &hist{History{Witnessed: map[string]bool{"stomp": true}, StopAndWait: map[string]bool{"s1": true}, End: at(100)}}
}

func (h *hist) ev(k Kind, s float64, id string, attempt int, node string) *hist {
	client := map[Kind]string{Deliver: "live", Witness: "witness", Ack: "live"}[k]
	if client == "" {
		client = "s1"
	}
	h.Events = append(h.Events, Event{Kind: k, Flow: "stomp", Client: client, ID: id, Attempt: attempt, Node: node, At: at(s)})
	return h
}

// sent is a message sent, confirmed by node, delivered live once and
// witnessed.
func (h *hist) sent(s float64, id, node string) *hist {
	return h.ev(Send, s, id, 1, node).ev(Confirm, s+0.01, id, 1, node).ev(Deliver, s+0.02, id, 1, node).ev(Witness, 90, id, 1, node)
}

// fault adds a fault; recovered 0 is a fault the cluster never recovered from.
func (h *hist) fault(kind string, start, end, recovered float64) *hist {
	f := Fault{Kind: kind, Target: "n1", Start: at(start), End: at(end)}
	if recovered > 0 {
		f.Recovered = at(recovered)
	}
	h.Faults = append(h.Faults, f)
	return h
}

var limits = Limits{Kinds: []string{"master-kill", "slave-cut"}, Bounds: map[string]time.Duration{"master-kill": 5 * time.Second}, Grace: 5 * time.Second}

func row(t *testing.T, r Report, kind string) Row {
	t.Helper()
	for _, row := range r.Rows {
		if row.Kind == kind {
			return row
		}
	}
	t.Fatalf("no row %q in %+v", kind, r.Rows)
	return Row{}
}

func TestCheckCleanHistory(t *testing.T) {
	h := newHist().sent(1, "a", "n1").sent(2, "b", "n1").fault("master-kill", 3, 5, 6).sent(7, "c", "n2")
	h.ev(Deliver, 8, "c", 1, "n2") // again, flagged
	h.Events[len(h.Events)-1].Redelivered = true
	h.Promotions = []Promotion{{Node: "n1", Epoch: 1, At: at(0.5)}, {Node: "n2", Epoch: 2, At: at(5.5)}}
	r := Check(h.History, limits)
	if r.Failed() {
		t.Fatalf("a clean history failed:\n%s", r.Markdown())
	}
	none, kill := row(t, r, None), row(t, r, "master-kill")
	if none.Sent != 2 || none.Confirmed != 2 || kill.Sent != 1 || kill.Faults != 1 || kill.Duplicates != 1 || kill.Redelivered != 1 {
		t.Fatalf("rows:\n%s", r.Markdown())
	}
	// Confirmations at 2.01 (before the fault at 3) and 7.01: 4.01 s.
	if got := kill.Max(); got != 4010*time.Millisecond {
		t.Fatalf("unavailable %v, want 4.01s", got)
	}
	if r.Total().Sent != 3 || len(r.Rows) != 4 {
		t.Fatalf("total: %+v", r.Total())
	}
}

func TestCheckLost(t *testing.T) {
	h := newHist().fault("slave-cut", 1, 10, 12)
	h.ev(Send, 2, "a", 1, "n1").ev(Confirm, 2.1, "a", 1, "n1")                                // never delivered
	h.ev(Send, 3, "b", 1, "n1").ev(Confirm, 3.1, "b", 1, "n1").ev(Deliver, 3.2, "b", 1, "n1") // not in the witness
	h.ev(Send, 4, "c", 1, "n1").ev(Unknown, 4.1, "c", 1, "n1")                                // not confirmed: may go
	r := Check(h.History, limits)
	cut := row(t, r, "slave-cut")
	// b is also a dirty read: delivered live, not in the witness.
	if cut.Lost != 2 || cut.Dirty != 1 || cut.Unknown != 1 || !r.Failed() {
		t.Fatalf("rows:\n%s", r.Markdown())
	}
	if !strings.Contains(strings.Join(r.Problems, "\n"), "lost: a ") {
		t.Fatalf("problems: %q", r.Problems)
	}
}

func TestCheckInvented(t *testing.T) {
	h := newHist().sent(1, "a", "n1")
	h.ev(Deliver, 2, "ghost", 1, "n1") // never sent
	h.ev(Deliver, 3, "a", 2, "n1")     // an attempt never made
	h.ev(Witness, 90, "a", 1, "n1")
	h.Events[len(h.Events)-1].Bad = "header names b"
	h.Events = append(h.Events, Event{Kind: Deliver, Flow: "mqtt", Client: "live", ID: "a", Attempt: 1, Node: "n1", At: at(4)})
	r := Check(h.History, limits)
	if got := row(t, r, None).Invented; got != 4 {
		t.Fatalf("invented %d, want 4:\n%s", got, r.Markdown())
	}
}

func TestCheckDirtyReadByAttempt(t *testing.T) {
	// Attempt 1 went unanswered and was delivered, then dropped by a
	// failover; attempt 2 was stored. The witness holds only attempt 2.
	h := newHist()
	h.ev(Send, 1, "a", 1, "n1").ev(Deliver, 1.01, "a", 1, "n1").ev(Unknown, 2, "a", 1, "n1")
	h.ev(Send, 3, "a", 2, "n2").ev(Confirm, 3.01, "a", 2, "n2").ev(Deliver, 3.02, "a", 2, "n2").ev(Witness, 90, "a", 2, "")
	r := Check(h.History, limits)
	if tot := r.Total(); tot.Dirty != 1 || tot.Lost != 0 || tot.Duplicates != 1 {
		t.Fatalf("rows:\n%s", r.Markdown())
	}
	// Without a witness for the flow, nothing is dirty.
	h.Witnessed = nil
	h.Events = h.Events[:len(h.Events)-1]
	if r := Check(h.History, limits); r.Failed() {
		t.Fatalf("unwitnessed:\n%s", r.Markdown())
	}
}

func TestCheckLateConfirmations(t *testing.T) {
	h := newHist()
	h.Promotions = []Promotion{{Node: "n1", Epoch: 1, At: at(1)}, {Node: "n2", Epoch: 2, At: at(10)}, {Node: "n1", Epoch: 3, At: at(20)}}
	for _, c := range []struct {
		s    float64
		node string
		late bool
	}{
		{5, "n1", false},       // n1 leads
		{10.0005, "n1", false}, // within the log's millisecond
		{10.5, "n1", true},     // after n2's promotion
		{11, "n2", false},      // n2 leads
		{19, "n1", true},
		{21, "n1", false}, // n1 promoted again
		{22, "n2", true},
		{0.5, "n3", false}, // before any promotion
	} {
		id := "m" + strings.ReplaceAll(time.Duration(c.s*float64(time.Second)).String(), ".", "_")
		h.ev(Send, c.s-0.0001, id, 1, c.node).ev(Confirm, c.s, id, 1, c.node).ev(Deliver, c.s+0.001, id, 1, c.node).ev(Witness, 90, id, 1, c.node)
	}
	r := Check(h.History, limits)
	if got := r.Total().Late; got != 3 {
		t.Fatalf("late %d, want 3:\n%s", got, r.Markdown())
	}
}

func TestCheckUnavailability(t *testing.T) {
	h := newHist().fault("master-kill", 10, 11, 15)
	for _, s := range []float64{9.9, 12, 12.1, 20} {
		id := time.Duration(s * float64(time.Second)).String()
		h.sent(s, id, "n1")
	}
	// A producer that is not stop-and-wait does not count.
	h.Events = append(h.Events, Event{Kind: Confirm, Flow: "stomp", Client: "p1", ID: "x", Attempt: 1, At: at(16)})
	r := Check(h.History, limits)
	kill := row(t, r, "master-kill")
	if got := kill.Max(); got != 7900*time.Millisecond || kill.OverBound != 1 || !r.Failed() {
		t.Fatalf("unavailable %v (want 7.9s), over bound %d:\n%s", got, kill.OverBound, r.Markdown())
	}
	// A fault the cluster never recovered from lasts until the end.
	h = newHist().fault("slave-cut", 10, 20, 0)
	h.sent(5, "a", "n1")
	if got := row(t, Check(h.History, limits), "slave-cut").Max(); got != 90*time.Second {
		t.Fatalf("unrecovered: %v, want 90s", got)
	}
	// Producers that stopped after the cluster recovered leave no gap.
	h = newHist().fault("zk-cut", 10, 30, 31)
	h.sent(5, "a", "n1").sent(12, "b", "n2").sent(30.99, "c", "n2")
	if got := row(t, Check(h.History, limits), "zk-cut").Max(); got != 18990*time.Millisecond {
		t.Fatalf("stopped producers: %v, want 18.99s", got)
	}
	// The next fault's outage is not this one's.
	h = newHist().fault("slave-kill", 10, 11, 12).fault("master-kill", 12, 13, 14)
	h.sent(11.49, "a", "n1").sent(18, "b", "n2")
	r = Check(h.History, limits)
	if kill, skill := row(t, r, "master-kill"), row(t, r, "slave-kill"); skill.Max() != 1500*time.Millisecond || kill.Max() != 6010*time.Millisecond {
		t.Fatalf("slave-kill %v (want 1.5s), master-kill %v (want 6.01s):\n%s", skill.Max(), kill.Max(), r.Markdown())
	}
}

func TestCheckAttribution(t *testing.T) {
	h := newHist().fault("slave-cut", 10, 20, 21).fault("master-kill", 40, 41, 43)
	h.sent(9, "before", "n1").sent(15, "during", "n1").sent(25.9, "grace", "n1").sent(26.1, "after", "n1").sent(42, "kill", "n2")
	r := Check(h.History, limits)
	if none, cut, kill := row(t, r, None), row(t, r, "slave-cut"), row(t, r, "master-kill"); none.Sent != 2 || cut.Sent != 2 || kill.Sent != 1 {
		t.Fatalf("rows:\n%s", r.Markdown())
	}
}

func TestCheckRogue(t *testing.T) {
	h := newHist()
	h.Faults = []Fault{{Kind: "rogue", Target: "n2", Start: at(1), End: at(2), Recovered: at(2), RogueAccepted: true, Notes: []string{"epoch 3 -> 1099511627776"}}}
	r := Check(h.History, limits)
	if row(t, r, "rogue").RogueAccepted != 1 || !r.Failed() || !strings.Contains(r.Markdown(), "1099511627776") {
		t.Fatalf("rows:\n%s", r.Markdown())
	}
}

func TestBody(t *testing.T) {
	b := Body(MessageID("r1", "s1", 42), 3)
	id, attempt, ok := ParseBody(b)
	if !ok || id != "r1-s1-000042" || attempt != 3 {
		t.Fatalf("ParseBody(%q) = %q, %d, %v", b, id, attempt, ok)
	}
	for _, bad := range [][]byte{nil, []byte("x"), []byte("a#0|"), append(b[:len(b)-1:len(b)-1], 'X'), []byte("a#b|")} {
		if _, _, ok := ParseBody(bad); ok {
			t.Errorf("ParseBody(%q) accepted", bad)
		}
	}
}

func TestCheckIncomplete(t *testing.T) {
	h := newHist()
	h.ev(Send, 1, "a", 1, "n1").ev(Confirm, 1.1, "a", 1, "n1").ev(Deliver, 1.2, "a", 1, "n1")
	h.Incomplete = "no master after the faults"
	r := Check(h.History, limits)
	if tot := r.Total(); tot.Lost != 0 || tot.Dirty != 0 || !r.Failed() || !strings.Contains(r.Markdown(), "INCOMPLETE") {
		t.Fatalf("incomplete history:\n%s", r.Markdown())
	}
}
