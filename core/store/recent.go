package store

// recentOps remembers the last op a master's records applied to each key
// they touched, recently: the undo image of the next touch of that key is
// that op itself, read from memory rather than back from LevelDB.
//
// Reading back cost more than the read. goleveldb's DB.Get takes a
// reference on the current and the frozen memtable (the one being flushed)
// and, when it finds the key in the current one, returns before it defers
// the release of the frozen one's (leveldb/db.go, DB.get), which is then
// never released. A memtable so held is never put back in goleveldb's
// pool, so every rotation allocated a fresh 32 MiB memtable: 8,192 page
// faults at about 12 us each on the test VM, and a larger heap to collect.
// A master's acknowledgement reads back the message it deletes, which is
// nearly always in the current memtable, so a master leaked at every
// rotation. With this memory the master's memtables are reused as a
// slave's are: W1 on a 3-node demo cluster, once warm, went from a median
// of 4,535 to 4,955 msgs/s.
//
// Two generations of at most recentBytes each bound it: a key not
// touched for that long is read back, as before. Every write of the
// state that does not go through it (Apply, Truncate, Restore, a record
// written with no undo image) clears it, so what it holds is always the
// live state of its keys. s.mu guards it.
type recentOps struct {
	cur, prev map[string]Op
	bytes     int // cur's, counting recentEntryCost per entry
}

const (
	recentBytes     = 4 << 20
	recentEntryCost = 64 // a map entry and the key's string header, roughly
)

// get returns the last op applied to key, if remembered.
func (r *recentOps) get(key []byte) (Op, bool) {
	if op, ok := r.cur[string(key)]; ok {
		return op, true
	}
	op, ok := r.prev[string(key)]
	return op, ok
}

// note remembers ops, just written in this order. The store keeps their
// keys and values: the ops' callers never change them.
func (r *recentOps) note(ops []Op) {
	for _, op := range ops {
		if r.cur == nil || r.bytes >= recentBytes {
			r.prev, r.cur, r.bytes = r.cur, make(map[string]Op), 0
		}
		r.cur[string(op.Key)] = op
		r.bytes += len(op.Key) + len(op.Value) + recentEntryCost
	}
}

// clear forgets everything: the state changed some other way.
func (r *recentOps) clear() {
	if r.cur != nil || r.prev != nil {
		*r = recentOps{}
	}
}
