package chaos

import (
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"
)

// Limits are what Check holds a run to.
type Limits struct {
	// Kinds orders the table's rows; a kind not listed gets a row after them.
	Kinds []string
	// Bounds is, per fault kind, the longest the stop-and-wait producers
	// may go without a confirmation from the moment the fault starts; a
	// kind without a bound has none.
	Bounds map[string]time.Duration
	// Grace: a message first sent this soon after a fault healed (or,
	// when later, after the cluster recovered from it) counts as the
	// fault's.
	Grace time.Duration
}

// None is the row of what happened outside every fault.
const None = "none"

// Row is one line of the table: a fault kind, None, or "total".
type Row struct {
	Kind   string
	Faults int
	// Sent and Confirmed count messages (not attempts) first sent while
	// the row's faults were in force.
	Sent, Confirmed int
	// The violations: confirmed messages never delivered (or missing from
	// their witness), deliveries of what was never sent, messages with an
	// attempt delivered live that the witness does not hold, confirmations from a master
	// after another was promoted, rogue peers a node obeyed, faults whose
	// unavailability passed the bound.
	Lost, Invented, Dirty, Late, RogueAccepted, OverBound int
	// Unavailable holds, per fault, the longest time without a
	// confirmation from the stop-and-wait producers from the fault's start
	// until the cluster recovered.
	Unavailable []time.Duration
	Bound       time.Duration
	// Duplicates count messages a live consumer got more than once;
	// Redelivered the copies flagged as redeliveries.
	Duplicates, Redelivered int
	// Unknown, Failed and Hung count attempts without a confirmation: the
	// connection ended first, the cluster refused, the producer gave up.
	Unknown, Failed, Hung int
}

// Violations is the sum of what must be zero.
func (r Row) Violations() int {
	return r.Lost + r.Invented + r.Dirty + r.Late + r.RogueAccepted + r.OverBound
}

// Report is what Check found.
type Report struct {
	Rows []Row // the kinds, None, then "total"
	// Incomplete is the history's: losses and dirty reads were not counted.
	Incomplete string
	// Problems explain the violations, a few of each kind.
	Problems []string
}

// Total is the last row.
func (r Report) Total() Row { return r.Rows[len(r.Rows)-1] }

// Failed says whether any violation was found, or the history was too
// incomplete to tell.
func (r Report) Failed() bool { return r.Total().Violations() > 0 || r.Incomplete != "" }

// maxExamples bounds the problems listed per violation kind.
const maxExamples = 10

// logSlack is the precision of a log line's time (milliseconds): a
// promotion logged at .123 happened before .124.
const logSlack = time.Millisecond

type attemptInfo struct {
	sent time.Time
	node string
}

type message struct {
	id, flow, client string
	first            time.Time
	attempts         map[int]attemptInfo
	confirmed        bool
	confirmedBy      string
	live             map[int]int // attempt -> copies delivered live
	liveCount        int
	witness          map[int]bool
}

// Check reads a history against the limits.
func Check(h History, lim Limits) Report {
	c := newChecker(h, lim)
	c.messages()
	c.deliveries()
	c.outcomes()
	c.late()
	c.unavailability()
	c.faults()
	return c.report()
}

type checker struct {
	h        History
	lim      Limits
	faultsBy []Fault // by start
	rows     []Row
	index    map[string]int
	msgs     map[string]*message
	order    []*message
	problems map[string][]string
}

func newChecker(h History, lim Limits) *checker {
	c := &checker{h: h, lim: lim, index: map[string]int{}, msgs: map[string]*message{}, problems: map[string][]string{}}
	c.faultsBy = slices.Clone(h.Faults)
	slices.SortStableFunc(c.faultsBy, func(a, b Fault) int { return a.Start.Compare(b.Start) })
	kinds := slices.Clone(lim.Kinds)
	for _, f := range c.faultsBy {
		if !slices.Contains(kinds, f.Kind) {
			kinds = append(kinds, f.Kind)
		}
	}
	for _, k := range append(kinds, None) {
		c.index[k] = len(c.rows)
		c.rows = append(c.rows, Row{Kind: k, Bound: lim.Bounds[k]})
	}
	return c
}

// row is the row of what happened at t: the fault in force then, or the
// one that healed (or recovered) at most Grace before, else None.
func (c *checker) row(t time.Time) *Row {
	i := sort.Search(len(c.faultsBy), func(i int) bool { return c.faultsBy[i].Start.After(t) }) - 1
	if i >= 0 {
		f := c.faultsBy[i]
		end := f.End
		if f.Recovered.After(end) {
			end = f.Recovered
		}
		if !t.After(end.Add(c.lim.Grace)) {
			return &c.rows[c.index[f.Kind]]
		}
	}
	return &c.rows[c.index[None]]
}

func (c *checker) problem(kind, format string, args ...any) {
	c.problems[kind] = append(c.problems[kind], fmt.Sprintf(format, args...))
}

func stamp(t time.Time) string { return t.Format("15:04:05.000") }

// messages indexes the sends.
func (c *checker) messages() {
	for _, e := range c.h.Events {
		if e.Kind != Send {
			continue
		}
		m := c.msgs[e.ID]
		if m == nil {
			m = &message{id: e.ID, flow: e.Flow, client: e.Client, first: e.At, attempts: map[int]attemptInfo{}, live: map[int]int{}, witness: map[int]bool{}}
			c.msgs[e.ID] = m
			c.order = append(c.order, m)
			c.row(e.At).Sent++
		}
		if _, again := m.attempts[e.Attempt]; !again {
			m.attempts[e.Attempt] = attemptInfo{sent: e.At, node: e.Node}
		}
	}
}

// deliveries matches what consumers and witnesses got to what was sent.
func (c *checker) deliveries() {
	for _, e := range c.h.Events {
		if e.Kind != Deliver && e.Kind != Witness {
			continue
		}
		m := c.msgs[e.ID]
		why := e.Bad
		switch {
		case why != "":
		case m == nil:
			why = "never sent"
		case m.flow != e.Flow:
			why = "sent on flow " + m.flow
		default:
			if _, ok := m.attempts[e.Attempt]; !ok {
				why = fmt.Sprintf("attempt %d never sent", e.Attempt)
			}
		}
		if why != "" {
			at := e.At
			if m != nil {
				at = m.first
			}
			c.row(at).Invented++
			c.problem("invented", "invented: %s#%d %s by %s on %s at %s: %s", e.ID, e.Attempt, e.Kind, e.Client, e.Node, stamp(e.At), why)
			continue
		}
		if e.Kind == Witness {
			m.witness[e.Attempt] = true
			continue
		}
		m.live[e.Attempt]++
		m.liveCount++
		if e.Redelivered {
			c.row(e.At).Redelivered++
		}
	}
}

// outcomes counts what producers heard, and finds what was confirmed and
// lost, read dirty or delivered twice.
func (c *checker) outcomes() {
	for _, e := range c.h.Events {
		m := c.msgs[e.ID]
		if m == nil || e.Kind < Confirm || e.Kind > Unknown {
			continue
		}
		at := e.At
		if a, ok := m.attempts[e.Attempt]; ok {
			at = a.sent
		}
		r := c.row(at)
		switch e.Kind {
		case Confirm:
			if !m.confirmed {
				m.confirmed, m.confirmedBy = true, fmt.Sprintf("%s at %s", e.Node, stamp(e.At))
			}
		case Fail:
			r.Failed++
		case Unknown:
			r.Unknown++
			if e.Hung {
				r.Hung++
			}
		}
	}
	for _, m := range c.order {
		r := c.row(m.first)
		witnessed := c.h.Witnessed[m.flow]
		if m.liveCount > 1 {
			r.Duplicates++
		}
		if m.confirmed {
			r.Confirmed++
		}
		if c.h.Incomplete != "" {
			continue
		}
		if m.confirmed {
			switch {
			case m.liveCount == 0:
				r.Lost++
				c.problem("lost", "lost: %s (%s, first sent %s to %s, confirmed by %s) never delivered", m.id, m.flow, stamp(m.first), m.attempts[1].node, m.confirmedBy)
			case witnessed && len(m.witness) == 0:
				r.Lost++
				c.problem("lost", "lost: %s (%s, first sent %s, confirmed by %s) is not in the witness", m.id, m.flow, stamp(m.first), m.confirmedBy)
			}
		}
		if !witnessed {
			continue
		}
		// An attempt delivered live must be in the witness: another
		// attempt of the same message there does not make up for it.
		var dirty []int
		for attempt, n := range m.live {
			if n > 0 && !m.witness[attempt] {
				dirty = append(dirty, attempt)
			}
		}
		if len(dirty) > 0 {
			slices.Sort(dirty)
			a := m.attempts[dirty[0]]
			c.row(m.first).Dirty++
			c.problem("dirty", "dirty read: %s (%s, attempts %v, the first sent %s to %s) was delivered live but is not in the witness", m.id, m.flow, dirty, stamp(a.sent), a.node)
		}
	}
}

// Late lists the confirmations a node gave after another node was
// promoted later than the node's own last promotion, each with the
// promotion it came after.
func Late(h History) []LateConfirmation {
	promos := slices.Clone(h.Promotions)
	slices.SortStableFunc(promos, func(a, b Promotion) int { return a.At.Compare(b.At) })
	var out []LateConfirmation
	for _, e := range h.Events {
		if e.Kind != Confirm {
			continue
		}
		var own, latest *Promotion
		for i := range promos {
			p := &promos[i]
			if p.At.After(e.At) {
				break
			}
			if p.Node == e.Node {
				own = p
			}
			if p.At.Add(logSlack).Before(e.At) {
				latest = p
			}
		}
		if latest == nil || latest.Node == e.Node || (own != nil && !latest.At.After(own.At)) {
			continue
		}
		l := LateConfirmation{Event: e, After: *latest}
		if own != nil {
			l.Own = *own
		}
		out = append(out, l)
	}
	return out
}

// LateConfirmation is a confirmation Event from a node whose own last
// promotion (Own; zero if none) came before another's (After).
type LateConfirmation struct {
	Event      Event
	Own, After Promotion
}

func (c *checker) late() {
	for _, l := range Late(c.h) {
		e := l.Event
		c.row(e.At).Late++
		own := "never"
		if !l.Own.At.IsZero() {
			own = fmt.Sprintf("at %s (epoch %d)", stamp(l.Own.At), l.Own.Epoch)
		}
		c.problem("late", "late confirmation: %s#%d confirmed by %s to %s at %s; %s was promoted at %s (epoch %d), %s last %s",
			e.ID, e.Attempt, e.Node, e.Client, stamp(e.At), l.After.Node, stamp(l.After.At), l.After.Epoch, e.Node, own)
	}
}

// unavailability measures, per fault, the longest stretch without any
// stop-and-wait producer's confirmation, from the fault's start until the
// cluster recovered (or, when it never did, until the next fault or the
// end).
func (c *checker) unavailability() {
	var confirms []time.Time
	for _, e := range c.h.Events {
		if e.Kind == Confirm && c.h.StopAndWait[e.Client] {
			confirms = append(confirms, e.At)
		}
	}
	slices.SortFunc(confirms, time.Time.Compare)
	if len(c.h.StopAndWait) == 0 {
		return // nothing to measure with
	}
	for i, f := range c.faultsBy {
		// The next fault's start bounds this one's measure: a gap that
		// goes on past it is the next fault's doing.
		limit := c.h.End
		if i+1 < len(c.faultsBy) {
			limit = c.faultsBy[i+1].Start
		}
		end := f.End
		if f.Recovered.After(end) {
			end = f.Recovered
		}
		if f.Recovered.IsZero() || end.After(limit) {
			end = limit
		}
		gap, from := time.Duration(0), f.Start
		for j := sort.Search(len(confirms), func(j int) bool { return confirms[j].After(f.Start) }); ; j++ {
			if j == len(confirms) {
				// The producers stopped: the cluster was unavailable at
				// most until it recovered.
				gap = max(gap, end.Sub(from))
				break
			}
			if !confirms[j].Before(limit) {
				gap = max(gap, limit.Sub(from))
				break
			}
			gap = max(gap, confirms[j].Sub(from))
			if !confirms[j].Before(end) {
				break
			}
			from = confirms[j]
		}
		r := &c.rows[c.index[f.Kind]]
		r.Unavailable = append(r.Unavailable, gap)
		if r.Bound > 0 && gap > r.Bound {
			r.OverBound++
			c.problem("unavailable", "unavailable: %s on %s at %s: no confirmation for %v, bound %v", f.Kind, f.Target, stamp(f.Start), gap.Round(time.Millisecond), r.Bound)
		}
	}
}

func (c *checker) faults() {
	for _, f := range c.faultsBy {
		r := &c.rows[c.index[f.Kind]]
		r.Faults++
		if f.RogueAccepted {
			r.RogueAccepted++
			c.problem("rogue", "rogue accepted: %s at %s: %s", f.Target, stamp(f.Start), strings.Join(f.Notes, "; "))
		}
	}
}

func (c *checker) report() Report {
	total := Row{Kind: "total"}
	for _, r := range c.rows {
		total.Faults += r.Faults
		total.Sent += r.Sent
		total.Confirmed += r.Confirmed
		total.Lost += r.Lost
		total.Invented += r.Invented
		total.Dirty += r.Dirty
		total.Late += r.Late
		total.RogueAccepted += r.RogueAccepted
		total.OverBound += r.OverBound
		total.Unavailable = append(total.Unavailable, r.Unavailable...)
		total.Duplicates += r.Duplicates
		total.Redelivered += r.Redelivered
		total.Unknown += r.Unknown
		total.Failed += r.Failed
		total.Hung += r.Hung
	}
	rep := Report{Rows: append(c.rows, total), Incomplete: c.h.Incomplete}
	for _, kind := range []string{"lost", "invented", "dirty", "late", "rogue", "unavailable"} {
		ps := c.problems[kind]
		rep.Problems = append(rep.Problems, ps[:min(len(ps), maxExamples)]...)
		if len(ps) > maxExamples {
			rep.Problems = append(rep.Problems, fmt.Sprintf("... and %d more %s", len(ps)-maxExamples, kind))
		}
	}
	return rep
}

// Median and Max of a row's unavailability (0 without faults).
func (r Row) Median() time.Duration {
	if len(r.Unavailable) == 0 {
		return 0
	}
	s := slices.Sorted(slices.Values(r.Unavailable))
	return s[len(s)/2]
}

func (r Row) Max() time.Duration {
	if len(r.Unavailable) == 0 {
		return 0
	}
	return slices.Max(r.Unavailable)
}

// Markdown is the table, then the problems.
func (r Report) Markdown() string {
	var b strings.Builder
	if r.Incomplete != "" {
		fmt.Fprintf(&b, "INCOMPLETE: %s; losses and dirty reads were not counted.\n\n", r.Incomplete)
	}
	b.WriteString("| fault | n | sent | confirmed | lost | invented | dirty reads | late confirms | rogue accepted | unavailable median | unavailable max | bound | over bound | duplicates | redelivered | unknown | failed | hung |\n")
	b.WriteString("|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|\n")
	for _, row := range r.Rows {
		bound := "-"
		if row.Bound > 0 {
			bound = row.Bound.String()
		}
		med, mx := "-", "-"
		if len(row.Unavailable) > 0 {
			med, mx = seconds(row.Median()), seconds(row.Max())
		}
		fmt.Fprintf(&b, "| %s | %d | %d | %d | %d | %d | %d | %d | %d | %s | %s | %s | %d | %d | %d | %d | %d | %d |\n",
			row.Kind, row.Faults, row.Sent, row.Confirmed, row.Lost, row.Invented, row.Dirty, row.Late, row.RogueAccepted,
			med, mx, bound, row.OverBound, row.Duplicates, row.Redelivered, row.Unknown, row.Failed, row.Hung)
	}
	if len(r.Problems) > 0 {
		b.WriteString("\nProblems:\n\n")
		for _, p := range r.Problems {
			b.WriteString("- " + p + "\n")
		}
	}
	return b.String()
}

func seconds(d time.Duration) string { return fmt.Sprintf("%.2fs", d.Seconds()) }
