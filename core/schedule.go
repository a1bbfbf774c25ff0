package core

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/robfig/cron/v3"

	"github.com/hamq/hamq/core/store"
)

// Scheduled delivery, as ActiveMQ's message properties ask for it: STOMP
// headers and MQTT 5 user properties of these names arrive as properties,
// and the AMQP front-end copies the annotations Artemis and Azure Service
// Bus clients send into the two x-opt- properties.
const (
	PropScheduledDelay  = "AMQ_SCHEDULED_DELAY"  // ms before the first delivery
	PropScheduledPeriod = "AMQ_SCHEDULED_PERIOD" // ms between deliveries
	PropScheduledRepeat = "AMQ_SCHEDULED_REPEAT" // deliveries after the first; negative: for ever
	PropScheduledCron   = "AMQ_SCHEDULED_CRON"   // five-field cron: a delivery at each match
	PropDeliveryTime    = "x-opt-delivery-time"  // absolute, unix ms
	PropDeliveryDelay   = "x-opt-delivery-delay" // ms
	// PropScheduledJobID names, on each delivery of a scheduled message,
	// the job it came from (ActiveMQ's scheduledJobId), for cancelling.
	PropScheduledJobID = "scheduledJobId"
)

// Errors of scheduled sends.
var (
	ErrBadSchedule            = errors.New("invalid schedule")
	ErrScheduledInTransaction = errors.New("a scheduled message cannot be sent in a transaction")
)

// schedule is when, and how often, a scheduled message is delivered.
type schedule struct {
	period time.Duration
	repeat int64 // deliveries still to come after the next; < 0: for ever
	cron   string
}

var cronParser = cron.NewParser(cron.Minute | cron.Hour | cron.Dom | cron.Month | cron.Dow | cron.Descriptor)

// scheduleOf reads m's scheduling properties: ok is false for a message to
// deliver now. first is its first delivery time.
func scheduleOf(m *Message, now time.Time) (sc schedule, first time.Time, ok bool, err error) {
	num := func(name string) (int64, bool, error) {
		v, found := m.Properties[name]
		if !found {
			return 0, false, nil
		}
		var n int64
		switch v := v.(type) {
		case int64:
			n = v
		case float64:
			n = int64(v)
		case string:
			if n, err = strconv.ParseInt(strings.TrimSpace(v), 10, 64); err != nil {
				return 0, false, fmt.Errorf("%w: %s %q is not a whole number", ErrBadSchedule, name, v)
			}
		default:
			return 0, false, fmt.Errorf("%w: %s is a %T, not a number", ErrBadSchedule, name, v)
		}
		return n, true, nil
	}
	delay, hasDelay, err := num(PropScheduledDelay)
	if err != nil {
		return sc, first, false, err
	}
	if d, has, err := num(PropDeliveryDelay); err != nil {
		return sc, first, false, err
	} else if has {
		delay, hasDelay = d, true
	}
	period, _, err := num(PropScheduledPeriod)
	if err != nil {
		return sc, first, false, err
	}
	repeat, hasRepeat, err := num(PropScheduledRepeat)
	if err != nil {
		return sc, first, false, err
	}
	at, hasAt, err := num(PropDeliveryTime)
	if err != nil {
		return sc, first, false, err
	}
	if delay < 0 || period < 0 {
		return sc, first, false, fmt.Errorf("%w: %s and %s may not be negative", ErrBadSchedule, PropScheduledDelay, PropScheduledPeriod)
	}
	sc.period = time.Duration(period) * time.Millisecond
	// Up to the next whole millisecond, the store's precision: never early.
	first = now.Add(time.Duration(delay)*time.Millisecond + time.Millisecond - 1).Truncate(time.Millisecond)
	if hasAt {
		first = time.UnixMilli(at)
	}
	if c, found := m.Properties[PropScheduledCron]; found {
		sc.cron = strings.TrimSpace(fmt.Sprint(c))
		spec, err := cronParser.Parse(sc.cron)
		if err != nil {
			return sc, first, false, fmt.Errorf("%w: %s %q: %v", ErrBadSchedule, PropScheduledCron, sc.cron, err)
		}
		// Each match delivers once; a repeat count limits the matches.
		sc.repeat = -1
		if hasRepeat {
			sc.repeat = repeat
		}
		return sc, spec.Next(first), true, nil
	}
	if sc.period > 0 && hasRepeat {
		sc.repeat = repeat
	}
	return sc, first, (hasDelay && delay > 0) || (hasAt && first.After(now)) || sc.repeat != 0, nil
}

// next is the delivery after the one due at due, or false when there is
// none. Missed deliveries (the cluster had no master) are made up, not
// skipped: a repeat count is a count.
func (sc schedule) next(due time.Time) (time.Time, bool) {
	if sc.repeat == 0 {
		return time.Time{}, false
	}
	if sc.cron != "" {
		spec, err := cronParser.Parse(sc.cron)
		if err != nil {
			return time.Time{}, false
		}
		return spec.Next(due), true
	}
	return due.Add(sc.period), true
}

// job is a scheduled message as the store keeps it:
//
//	t <due:8> <job id>    format 1, period ms, repeat (zigzag), cron, fired, message
type job struct {
	due   time.Time
	id    string
	sc    schedule
	fired uint64 // deliveries made
	value []byte // the stored record
	// scanned: read from the store by refill, perhaps before the commit
	// that stored it posted it to the inbox.
	scanned bool
	m       *Message
}

const prefixSchedule = 't'

func scheduleKey(due time.Time, id string) []byte {
	return appendName(binary.BigEndian.AppendUint64([]byte{prefixSchedule}, uint64(max(due.UnixMilli(), 0))), id)
}

func (j *job) key() []byte { return scheduleKey(j.due, j.id) }

func encodeJob(j *job) []byte {
	b := []byte{1}
	b = binary.AppendUvarint(b, uint64(j.sc.period/time.Millisecond))
	b = binary.AppendVarint(b, j.sc.repeat)
	b = appendName(b, j.sc.cron)
	b = binary.AppendUvarint(b, j.fired)
	return append(b, encodeMessage(j.m)...)
}

func decodeJob(k, v []byte) (*job, error) {
	if len(k) < 9 || k[0] != prefixSchedule {
		return nil, fmt.Errorf("schedule key %q: %w", k, errCorrupt)
	}
	kd := decoder{b: k[9:]}
	j := &job{due: time.UnixMilli(int64(binary.BigEndian.Uint64(k[1:9]))), id: kd.string(), value: v}
	d := decoder{b: v}
	if d.byte() != 1 {
		return nil, fmt.Errorf("schedule %q: %w", j.id, errCorrupt)
	}
	j.sc.period = time.Duration(d.uvarint()) * time.Millisecond
	if d.err == nil {
		r, n := binary.Varint(d.b)
		if n <= 0 {
			d.err = errCorrupt
		} else {
			j.sc.repeat, d.b = r, d.b[n:]
		}
	}
	j.sc.cron = d.string()
	j.fired = d.uvarint()
	if err := errors.Join(kd.err, d.err); err != nil {
		return nil, fmt.Errorf("schedule %q: %w", j.id, err)
	}
	m, err := decodeMessage(d.b)
	if err != nil {
		return nil, fmt.Errorf("schedule %q: %w", j.id, err)
	}
	j.m = m
	return j, nil
}

// scheduler delivers scheduled messages when they are due. The store holds
// every job, in due order; memory holds only a window of the earliest
// (schedWindow of them), so a million scheduled messages cost what their
// keys cost LevelDB, not the heap. A delivery is one store record that
// removes the job, adds its next one if it repeats, and sends the message:
// a master that dies around it has either done all of it or none, so a
// new master neither loses nor doubles a delivery.
type scheduler struct {
	b    *Broker
	wake chan struct{}

	mu     sync.Mutex
	window []*job // due order; the earliest jobs of all
	more   bool   // the store holds jobs after the window
	last   *store.Commit

	// inbox holds jobs stored since the run loop last looked: a commit's
	// callback runs on the committer, which must not wait for mu (held
	// across Submit and Wait).
	inboxMu sync.Mutex
	inbox   []*job

	// delivered holds the keys of scanned jobs delivered in the last
	// minute: the inbox may still bring one of them, which must not be
	// delivered again.
	delivered map[string]time.Time
	pruned    time.Time
}

const schedWindow = 4096

// fireBatch bounds the deliveries of one record, so that a burst of due
// jobs goes out in records of a size the log replicates promptly.
const fireBatch = 256

func newScheduler(b *Broker) *scheduler {
	return &scheduler{b: b, wake: make(chan struct{}, 1), more: true, delivered: map[string]time.Time{}}
}

// add stores a job for m, with extra ops in its record, and returns the
// commit to wait on.
func (sch *scheduler) add(m *Message, sc schedule, first time.Time, extra ...store.Op) (Confirmation, error) {
	j := &job{due: first, id: m.ID, sc: sc, m: m}
	if sc.repeat != 0 {
		// Every delivery of a repeating job is a message of its own.
		if j.m.Properties = maps.Clone(j.m.Properties); j.m.Properties == nil {
			j.m.Properties = map[string]any{}
		}
		j.m.Properties[PropScheduledJobID] = j.id
	}
	j.value = encodeJob(j)
	if len(j.value) > store.MaxRecordBytes {
		return nil, fmt.Errorf("%w: %d MiB to store, at most %d MiB", ErrTransactionTooBig, len(j.value)>>20, store.MaxRecordBytes>>20)
	}
	c := sch.b.st.SubmitThen(append([]store.Op{{Key: j.key(), Value: j.value}}, extra...), func(err error) {
		if err == nil {
			sch.post(j)
		}
	})
	return confirmation(c, nil)
}

// post hands a newly stored job to the run loop.
func (sch *scheduler) post(j *job) {
	sch.inboxMu.Lock()
	sch.inbox = append(sch.inbox, j)
	sch.inboxMu.Unlock()
	select {
	case sch.wake <- struct{}{}:
	default:
	}
}

// insert takes a stored job into the window when it belongs there; sch.mu
// is held.
func (sch *scheduler) insert(j *job) {
	if _, ok := sch.delivered[string(j.key())]; ok {
		delete(sch.delivered, string(j.key()))
		return
	}
	if sch.more && (len(sch.window) == 0 || !j.due.Before(sch.window[len(sch.window)-1].due)) {
		return // the window fills from the store in due order
	}
	i, _ := slices.BinarySearchFunc(sch.window, j, func(x, y *job) int { return bytes.Compare(x.key(), y.key()) })
	if i < len(sch.window) && sch.window[i].id == j.id && sch.window[i].due.Equal(j.due) {
		return // read from the store before its commit's callback ran
	}
	sch.window = slices.Insert(sch.window, i, j)
	if len(sch.window) > schedWindow {
		sch.window, sch.more = sch.window[:schedWindow], true
	}
}

// errStopScan ends a Scan early.
var errStopScan = errors.New("enough read")

// refill reads the earliest jobs from the store into an empty window.
// Called once the last delivery record is written, so nothing it reads has
// been delivered already.
func (sch *scheduler) refill() error {
	var w []*job
	err := sch.b.st.Scan([]byte{prefixSchedule}, func(k, v []byte) error {
		if len(w) == schedWindow {
			return errStopScan
		}
		// Scan's slices are the iterator's, valid only until it moves.
		j, err := decodeJob(bytes.Clone(k), bytes.Clone(v))
		if err != nil {
			return err
		}
		j.scanned = true
		w = append(w, j)
		return nil
	})
	if err != nil && !errors.Is(err, errStopScan) {
		return err
	}
	sch.window, sch.more = w, err != nil
	return nil
}

// run delivers jobs as they fall due until the broker closes.
func (sch *scheduler) run() {
	defer sch.b.running.Done()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		<-sch.b.stop
		cancel()
	}()
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		wait, err := sch.fire(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			sch.b.log.Error("cannot deliver scheduled messages; retrying in a second", "err", err)
			wait = time.Second
		}
		timer.Reset(wait)
		select {
		case <-ctx.Done():
			return
		case <-sch.wake:
			timer.Stop()
		case <-timer.C:
		}
	}
}

// fire delivers what is due, and says how long until the next job is.
func (sch *scheduler) fire(ctx context.Context) (time.Duration, error) {
	for {
		sch.mu.Lock()
		if last := sch.last; last != nil {
			// The window is refilled, and jobs cancelled, only from a
			// store that holds the last delivery record.
			sch.mu.Unlock()
			if err := last.Wait(ctx); err != nil {
				return 0, err
			}
			sch.mu.Lock()
			if sch.last == last {
				sch.last = nil
			}
		}
		sch.inboxMu.Lock()
		inbox := sch.inbox
		sch.inbox = nil
		sch.inboxMu.Unlock()
		for _, j := range inbox {
			sch.insert(j)
		}
		if time.Since(sch.pruned) > time.Second {
			for k, at := range sch.delivered {
				if time.Since(at) > time.Minute {
					delete(sch.delivered, k)
				}
			}
			sch.pruned = time.Now()
		}
		if len(sch.window) == 0 && sch.more {
			if err := sch.refill(); err != nil {
				sch.mu.Unlock()
				return 0, err
			}
		}
		now := time.Now()
		n := 0
		for n < len(sch.window) && n < fireBatch && !sch.window[n].due.After(now) {
			n++
		}
		if n == 0 {
			wait := time.Hour
			if len(sch.window) > 0 {
				wait = sch.window[0].due.Sub(now)
			}
			sch.mu.Unlock()
			return wait, nil
		}
		due := slices.Clone(sch.window[:n])
		sch.window = slices.Delete(sch.window, 0, n)
		c, nexts, err := sch.deliver(ctx, due)
		if err != nil {
			sch.window = slices.Insert(sch.window, 0, due...)
			sch.mu.Unlock()
			return 0, err
		}
		sch.last = c
		for _, j := range nexts {
			sch.insert(j)
		}
		sch.mu.Unlock()
	}
}

// deliver sends the due jobs' messages and replaces the jobs by their next
// ones in one record; sch.mu is held.
func (sch *scheduler) deliver(ctx context.Context, due []*job) (*store.Commit, []*job, error) {
	var sends []routed
	var ops []store.Op
	var nexts []*job
	for _, j := range due {
		ops = append(ops, store.Op{Key: j.key(), Delete: true})
		if j.scanned {
			sch.delivered[string(j.key())] = time.Now()
		}
		m := *j.m
		if j.sc.repeat != 0 || j.fired > 0 {
			m.ID = j.id + ":" + strconv.FormatUint(j.fired+1, 10)
		}
		r, err := sch.b.route(nil, &m)
		if err != nil {
			sch.b.log.Warn("a scheduled message's destination is gone; dropped", "job", j.id, "dest", m.Dest, "err", err)
		} else {
			sends = append(sends, r)
		}
		if at, ok := j.sc.next(j.due); ok {
			n := &job{due: at, id: j.id, sc: j.sc, fired: j.fired + 1, m: j.m}
			if n.sc.repeat > 0 {
				n.sc.repeat--
			}
			n.value = encodeJob(n)
			ops = append(ops, store.Op{Key: n.key(), Value: n.value})
			nexts = append(nexts, n)
		}
	}
	c, err := sch.b.commit(ctx, sends, nil, false, ops...)
	return c, nexts, err
}

// ScheduledMessage is a scheduled message as the admin API shows it.
type ScheduledMessage struct {
	JobID  string    `json:"jobId"`
	Next   time.Time `json:"next"`
	Period int64     `json:"periodMs,omitempty"`
	Repeat int64     `json:"repeat"` // deliveries after the next; -1: for ever
	Cron   string    `json:"cron,omitempty"`
	Fired  uint64    `json:"fired"`
	Dest   string    `json:"destination"`
	Size   int       `json:"size"`
}

// Scheduled lists scheduled messages in due order, from offset, at most
// limit of them, and how many there are in all.
func (b *Broker) Scheduled(offset, limit int) ([]ScheduledMessage, int, error) {
	var out []ScheduledMessage
	total := 0
	err := b.st.Scan([]byte{prefixSchedule}, func(k, v []byte) error {
		total++
		if total <= offset || len(out) >= limit {
			return nil
		}
		j, err := decodeJob(k, v)
		if err != nil {
			return err
		}
		out = append(out, ScheduledMessage{JobID: j.id, Next: j.due, Period: j.sc.period.Milliseconds(),
			Repeat: j.sc.repeat, Cron: j.sc.cron, Fired: j.fired, Dest: j.m.Dest.String(), Size: len(j.m.Body)})
		return nil
	})
	return out, total, err
}

// CancelScheduled removes a scheduled job (every delivery still to come);
// false when there is none of that id.
func (b *Broker) CancelScheduled(ctx context.Context, jobID string) (bool, error) {
	sch := b.sched
	sch.mu.Lock()
	defer sch.mu.Unlock()
	if last := sch.last; last != nil {
		if err := last.Wait(ctx); err != nil {
			return false, err
		}
	}
	var key []byte
	err := b.st.Scan([]byte{prefixSchedule}, func(k, v []byte) error {
		d := decoder{b: k[min(len(k), 9):]}
		if d.string() == jobID && d.err == nil {
			key = bytes.Clone(k)
			return errStopScan
		}
		return nil
	})
	if err != nil && !errors.Is(err, errStopScan) {
		return false, err
	}
	if key == nil {
		return false, nil
	}
	gone := func(j *job) bool { return j.id == jobID }
	sch.window = slices.DeleteFunc(sch.window, gone)
	sch.inboxMu.Lock()
	sch.inbox = slices.DeleteFunc(sch.inbox, gone)
	sch.inboxMu.Unlock()
	if err := b.st.Submit([]store.Op{{Key: key, Delete: true}}).Wait(ctx); err != nil {
		return false, err
	}
	return true, nil
}
