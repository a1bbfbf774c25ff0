package store

import (
	"github.com/syndtr/goleveldb/leveldb/storage"
)

// zeroAhead is how far past its end a synced journal is kept written with
// zeros, and zeroAhead/2 how little of that may be left before the next
// sync writes more.
//
// An fsync that follows an append must also commit the file's new size
// and blocks through the filesystem's journal; one that follows an
// overwrite of blocks already written and synced flushes the data alone.
// On this project's reference VM (ext4) a 10 KiB append and fsync took a
// mean of 227 µs, the same write into zeros synced ahead 133 µs, counting
// the syncs that also wrote the next zeros (256 KiB at a time there: one
// in 25, 0.4 ms each). Here each such sync writes 128-256 KiB. A
// stop-and-wait producer pays one sync per message.
const zeroAhead = 256 << 10

// zeros is only ever read.
var zeros [zeroAhead]byte

// zeroAheadStorage hands LevelDB journals that keep zeros synced ahead of
// their end (zeroAheadWriter). Every other file is the storage's own.
//
// A journal that was not closed (a crash) ends in up to zeroAhead bytes of
// zeros. LevelDB's journal reader drops each zero block as corrupt, which
// it also logs to LevelDB's LOG, and reads on: records are never written
// into them, so nothing is dropped that was written. The journal is read
// in non-strict mode (the default, which openStorage keeps).
type zeroAheadStorage struct{ storage.Storage }

// journalFile is what a journal needs of its file: the file storage's
// writer is an *os.File underneath and has all of it.
type journalFile interface {
	storage.Writer
	WriteAt(b []byte, off int64) (int, error)
	Truncate(size int64) error
}

func (s zeroAheadStorage) Create(fd storage.FileDesc) (storage.Writer, error) {
	w, err := s.Storage.Create(fd)
	if err != nil || fd.Type != storage.TypeJournal {
		return w, err
	}
	if f, ok := w.(journalFile); ok {
		return &zeroAheadWriter{journalFile: f}, nil
	}
	return w, nil
}

// zeroAheadWriter is a journal that writes zeros ahead of its end before a
// sync, once what is left of them runs low, so that the syncs after it
// overwrite blocks the filesystem holds already.
type zeroAheadWriter struct {
	journalFile
	end     int64 // bytes LevelDB wrote
	zeroed  int64 // the file is written through here
	noZeros bool  // writing zeros failed (a full disk): sync as written
}

func (w *zeroAheadWriter) Write(p []byte) (int, error) {
	n, err := w.journalFile.Write(p)
	w.end += int64(n)
	return n, err
}

func (w *zeroAheadWriter) Sync() error {
	if !w.noZeros && w.zeroed-w.end < zeroAhead/2 {
		from := max(w.zeroed, w.end)
		n, err := w.WriteAt(zeros[:w.end+zeroAhead-from], from)
		w.zeroed = from + int64(n)
		// The journal's own writes report a full disk; the zeros only
		// make syncs cheaper.
		w.noZeros = err != nil
	}
	return w.journalFile.Sync()
}

// Close cuts the zeros off, so that a journal closed in order ends where
// its records do. A cut that fails leaves zeros the reader skips, as
// after a crash.
func (w *zeroAheadWriter) Close() error {
	if w.zeroed > w.end {
		w.Truncate(w.end)
	}
	return w.journalFile.Close()
}
