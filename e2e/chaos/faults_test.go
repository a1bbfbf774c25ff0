package chaos

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"strings"
	"time"
)

// faultKind is one kind of fault: run injects it on a stable cluster,
// holds it, heals it, and fills in the fault's target, start and end.
type faultKind struct {
	name string
	// bound is the longest the stop-and-wait producers may go without a
	// confirmation from the fault's start (see Limits.Bounds).
	bound time.Duration
	// cost is a first guess at a cycle's length (inject, hold, heal,
	// recover), for scheduling minimum counts; runs refine it.
	cost time.Duration
	run  func(fr *faultRun) error
}

// faultRun is one fault being injected into a stable cluster.
type faultRun struct {
	c      *cluster
	rng    *rand.Rand
	rec    *recorder
	master *node
	f      *Fault
}

func (fr *faultRun) note(format string, args ...any) {
	fr.f.Notes = append(fr.f.Notes, fmt.Sprintf(format, args...))
}

func (fr *faultRun) between(lo, hi time.Duration) time.Duration {
	return lo + time.Duration(fr.rng.Int64N(int64(hi-lo)+1))
}

func (fr *faultRun) slave() *node {
	others := fr.c.others(fr.master)
	return others[fr.rng.IntN(len(others))]
}

// The bounds: a cut or a pause must be over for clients within four
// session timeouts; a crash within the session timeout plus the time to
// elect, fence and let clients find the new master.
var faultKinds = []faultKind{
	{"master-kill", 4 * zkSessionTimeout, 9 * time.Second, masterKill},
	{"slave-kill", 2 * zkSessionTimeout, 6 * time.Second, slaveKill},
	{"zk-kill", 5 * zkSessionTimeout, 8 * time.Second, zkKill},
	{"all-kill", 10 * zkSessionTimeout, 10 * time.Second, allKill},
	{"pause-short", 4 * zkSessionTimeout, 4 * time.Second, pause(500*time.Millisecond, 1500*time.Millisecond)},
	{"pause-long", 4 * zkSessionTimeout, 7 * time.Second, pause(2500*time.Millisecond, 4*time.Second)},
	{"slave-cut", 4 * zkSessionTimeout, 14 * time.Second, slaveCut},
	{"zk-cut", 4 * zkSessionTimeout, 14 * time.Second, zkCut},
	{"disk-full", 5 * zkSessionTimeout, 12 * time.Second, diskFull},
	{"rogue", 2 * zkSessionTimeout, 3 * time.Second, rogue},
}

// faultAliases are other names HAMQ_CHAOS_MIN takes: "pause" is the
// pause around the session timeout.
var faultAliases = map[string]string{"pause": "pause-long"}

func kindNames() []string {
	var out []string
	for _, k := range faultKinds {
		out = append(out, k.name)
	}
	return out
}

func bounds() map[string]time.Duration {
	out := map[string]time.Duration{}
	for _, k := range faultKinds {
		out[k.name] = k.bound
	}
	return out
}

func (fr *faultRun) started(target string) {
	fr.f.Target, fr.f.Start = target, fr.rec.now()
}

func (fr *faultRun) healed() { fr.f.End = fr.rec.now() }

func masterKill(fr *faultRun) error {
	fr.started(fr.master.name)
	fr.master.kill()
	time.Sleep(fr.between(2*time.Second, 4*time.Second))
	err := fr.master.startErr()
	fr.healed()
	return err
}

func slaveKill(fr *faultRun) error {
	s := fr.slave()
	fr.started(s.name)
	s.kill()
	time.Sleep(fr.between(time.Second, 3*time.Second))
	err := s.startErr()
	fr.healed()
	return err
}

// zkKill kills a ZooKeeper member, the leader one time in two.
func zkKill(fr *faultRun) error {
	i := fr.rng.IntN(3)
	if fr.rng.IntN(2) == 0 {
		for j := range 3 {
			if mode, err := fr.c.zk.Mode(j); err == nil && mode == "leader" {
				i = j
			}
		}
	}
	mode, _ := fr.c.zk.Mode(i)
	fr.started(fmt.Sprintf("zk%d (%s)", i+1, mode))
	fr.c.killZK(i)
	time.Sleep(fr.between(2*time.Second, 5*time.Second))
	err := fr.c.restartZK(i)
	fr.healed()
	return err
}

func allKill(fr *faultRun) error {
	fr.started("n1,n2,n3")
	order := fr.rng.Perm(3)
	for _, i := range order {
		fr.c.nodes[i].kill()
	}
	time.Sleep(fr.between(time.Second, 2*time.Second))
	var err error
	for _, i := range order {
		if e := fr.c.nodes[i].startErr(); e != nil {
			err = e
		}
	}
	fr.healed()
	return err
}

func pause(lo, hi time.Duration) func(fr *faultRun) error {
	return func(fr *faultRun) error {
		d := fr.between(lo, hi)
		fr.started(fr.master.name)
		fr.master.pause()
		time.Sleep(d)
		fr.master.resume()
		fr.healed()
		fr.note("paused %v", d.Round(time.Millisecond))
		return nil
	}
}

// cut makes the master drop every packet to and from peers for a while.
func (fr *faultRun) cut(peers []*host, lo, hi time.Duration) error {
	d := fr.between(lo, hi)
	fr.started(fr.master.name)
	if err := fr.c.lab.drop(fr.master.host, peers...); err != nil {
		return err
	}
	time.Sleep(d)
	err := fr.c.lab.drop(fr.master.host)
	fr.healed()
	fr.note("cut %v", d.Round(time.Millisecond))
	return err
}

func slaveCut(fr *faultRun) error {
	var peers []*host
	for _, o := range fr.c.others(fr.master) {
		peers = append(peers, o.host)
	}
	return fr.cut(peers, 5*time.Second, 15*time.Second)
}

func zkCut(fr *faultRun) error {
	return fr.cut(fr.c.lab.zks, 5*time.Second, 15*time.Second)
}

func diskFull(fr *faultRun) error {
	d := fr.between(5*time.Second, 10*time.Second)
	fr.started(fr.master.name)
	pid := fr.master.pid()
	if err := fr.master.fill(); err != nil {
		return err
	}
	time.Sleep(d)
	err := fr.master.unfill()
	fr.healed()
	fr.note("full %v", d.Round(time.Millisecond))
	if fr.master.pid() != pid {
		fr.note("%s exited while its disk was full", fr.master.name)
	}
	return err
}

// rogue sends a replication HELLO from outside the cluster to the master
// or a slave: the node must not obey it.
func rogue(fr *faultRun) error {
	n := fr.master
	if fr.rng.IntN(2) == 0 {
		n = fr.slave()
	}
	before, err := n.status()
	if err != nil {
		return err
	}
	mark := n.logSize()
	fr.started(n.name)
	answer, err := rogueHello(n.bind())
	fr.healed()
	fr.note("%s answered %s", n.name, answer)
	if err != nil {
		fr.note("%v", err)
	}
	time.Sleep(time.Second)
	fr.f.RogueAccepted = rogueObeyed(fr.f, n, before, mark)
	return nil
}

// rogueObeyed says whether n changed its role or epoch, or logged being
// fenced by the rogue, since mark; it notes what it saw.
func rogueObeyed(f *Fault, n *node, before status, mark int64) bool {
	after, err := n.status()
	obeyed := false
	if err != nil {
		f.Notes = append(f.Notes, fmt.Sprintf("%s: status after: %v", n.name, err))
	} else if after.Role != before.Role || after.Epoch != before.Epoch {
		f.Notes = append(f.Notes, fmt.Sprintf("%s went from %s of epoch %d to %s of epoch %d", n.name, before.Role, before.Epoch, after.Role, after.Epoch))
		obeyed = true
	}
	for _, l := range n.linesSince(mark) {
		if strings.Contains(l, "fenced by a master") && strings.Contains(l, "rogue") {
			f.Notes = append(f.Notes, fmt.Sprintf("%s logged: %s", n.name, l))
			obeyed = true
		}
	}
	return obeyed
}

// rogueEpoch is far beyond any real epoch.
const rogueEpoch = 1 << 40

// rogueHello knocks twice at a node's replication address from outside
// the cluster, claiming the huge rogueEpoch, and says what came back each
// time: with the HELLO of the protocol's first version (4-byte
// big-endian length of type and payload, type 1, uvarint epoch,
// length-prefixed id "rogue"), which has no authentication; and with the
// current one (version 2, epoch, id, a 32-byte nonce), answering the
// node's challenge with a proof made without the cluster secret.
func rogueHello(addr string) (string, error) {
	old, err := rogueKnock(addr, func(conn net.Conn, r *bufio.Reader) error {
		payload := binary.AppendUvarint(nil, rogueEpoch)
		payload = appendBytes(payload, []byte("rogue"))
		return writeRepl(conn, 1, payload)
	})
	if err != nil {
		return "old HELLO: " + old, err
	}
	authed, err := rogueKnock(addr, func(conn net.Conn, r *bufio.Reader) error {
		payload := binary.AppendUvarint(nil, 2)
		payload = binary.AppendUvarint(payload, rogueEpoch)
		payload = appendBytes(payload, []byte("rogue"))
		payload = appendBytes(payload, make([]byte, 32))
		if err := writeRepl(conn, 1, payload); err != nil {
			return err
		}
		typ, _, err := readRepl(r)
		if err != nil || typ != 2 {
			return fmt.Errorf("no CHALLENGE to the HELLO (type %d): %v", typ, err)
		}
		return writeRepl(conn, 3, appendBytes(nil, make([]byte, 32))) // AUTH with a proof of nothing
	})
	return "old HELLO: " + old + "; authenticated HELLO without the secret: " + authed, err
}

// rogueKnock dials addr, has knock speak first, and reads the answer.
func rogueKnock(addr string, knock func(net.Conn, *bufio.Reader) error) (string, error) {
	conn, err := net.DialTimeout("tcp", addr, dialTimeout)
	if err != nil {
		return "nothing (dial failed)", err
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(2 * time.Second))
	r := bufio.NewReader(conn)
	if err := knock(conn, r); err != nil {
		return "nothing", err
	}
	typ, body, err := readRepl(r)
	if err == io.EOF {
		return "by closing the connection", nil
	}
	if err != nil {
		return "nothing", err
	}
	names := map[byte]string{4: "REFUSE", 5: "STATE"}
	name := names[typ]
	if name == "" {
		name = fmt.Sprintf("type %d", typ)
	}
	return fmt.Sprintf("%s %q", name, body[:min(len(body), 512)]), nil
}

func appendBytes(b, v []byte) []byte { return append(binary.AppendUvarint(b, uint64(len(v))), v...) }

// writeRepl writes one replication message: length of type and payload,
// type, payload.
func writeRepl(conn net.Conn, typ byte, payload []byte) error {
	msg := binary.BigEndian.AppendUint32(nil, uint32(len(payload)+1))
	_, err := conn.Write(append(append(msg, typ), payload...))
	return err
}

func readRepl(r *bufio.Reader) (byte, []byte, error) {
	var h [5]byte
	if _, err := io.ReadFull(r, h[:]); err != nil {
		return 0, nil, err
	}
	body := make([]byte, min(binary.BigEndian.Uint32(h[:4])-1, 4096))
	_, err := io.ReadFull(r, body)
	return h[4], body, err
}
