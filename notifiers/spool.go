package notifiers

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/flowguard/flowguard/alert"
)

// spool keeps alerts waiting for delivery as one JSON file each, named
// by a sequence number so that the directory lists in the order the
// alerts came. A file is written (to a temporary name, then renamed) as
// soon as the alert arrives (write-ahead) and removed only after the
// notifier accepted it, so an alert survives a full queue, an outage, a
// shutdown and a crash of the process. A crash between delivery and
// removal sends it once more: delivery is at least once.
//
// The spooler goroutine writes; the worker reads and removes (and writes
// what is left at shutdown, once the spooler has stopped).
type spool struct {
	dir   string
	seq   *atomic.Uint64 // shared by every spool of this process on dir
	bytes atomic.Int64   // size of the files in the spool
}

// spoolSeqs gives every spool of one directory in this process the same
// sequence, so that a dispatcher built by a reload, while the old one
// still delivers, never writes over the old one's files.
var spoolSeqs = struct {
	sync.Mutex
	m map[string]*atomic.Uint64
}{m: map[string]*atomic.Uint64{}}

// spoolOpen reports whether a spool of this process already uses dir.
func spoolOpen(dir string) bool {
	if abs, err := filepath.Abs(dir); err == nil {
		dir = abs
	}
	spoolSeqs.Lock()
	defer spoolSeqs.Unlock()
	return spoolSeqs.m[dir] != nil
}

func spoolSeq(dir string, atLeast uint64) *atomic.Uint64 {
	if abs, err := filepath.Abs(dir); err == nil {
		dir = abs
	}
	spoolSeqs.Lock()
	defer spoolSeqs.Unlock()
	s := spoolSeqs.m[dir]
	if s == nil {
		s = &atomic.Uint64{}
		spoolSeqs.m[dir] = s
	}
	for {
		cur := s.Load()
		if cur >= atLeast || s.CompareAndSwap(cur, atLeast) {
			return s
		}
	}
}

// spoolFile is one waiting alert on disk.
type spoolFile struct {
	name string
	size int64
}

const spoolExt = ".json"

// openSpool creates dir if needed, removes half-written files and
// returns the spool and the files waiting in it, oldest first.
func openSpool(dir string) (*spool, []spoolFile, error) {
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, nil, fmt.Errorf("spool: %w", err)
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, nil, fmt.Errorf("spool: %w", err)
	}
	s := &spool{dir: dir}
	var (
		files []spoolFile
		next  uint64
	)
	// Half-written files are a crash's leftovers, unless another spool of
	// this process (the dispatcher a reload replaces) is writing them.
	shared := spoolOpen(dir)
	for _, e := range ents {
		name := e.Name()
		if strings.HasSuffix(name, ".tmp") {
			if !shared {
				os.Remove(filepath.Join(dir, name))
			}
			continue
		}
		if !strings.HasSuffix(name, spoolExt) {
			continue
		}
		n, err := strconv.ParseUint(strings.TrimSuffix(name, spoolExt), 10, 64)
		if err != nil {
			continue
		}
		if n >= next {
			next = n + 1
		}
		var size int64
		if info, err := e.Info(); err == nil {
			size = info.Size()
		}
		files = append(files, spoolFile{name, size})
		s.bytes.Add(size)
	}
	// Fixed-width numbers: lexical order is numeric order.
	sort.Slice(files, func(i, j int) bool { return files[i].name < files[j].name })
	s.seq = spoolSeq(dir, next)
	return s, files, nil
}

// write persists a and returns its file; maxBytes bounds the spool's
// size (errSpoolFull beyond).
func (s *spool) write(a *alert.Alert, maxBytes int64) (spoolFile, error) {
	data, err := a.MarshalJSON() // not json.Marshal: it would re-scan the output
	if err != nil {
		return spoolFile{}, fmt.Errorf("spool: encoding alert %s: %w", a.ID, err)
	}
	size := int64(len(data) + 1)
	if s.bytes.Load()+size > maxBytes {
		return spoolFile{}, errSpoolFull
	}
	name := fmt.Sprintf("%020d%s", s.seq.Add(1)-1, spoolExt)
	tmp := filepath.Join(s.dir, name+".tmp")
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o640)
	if err != nil {
		return spoolFile{}, fmt.Errorf("spool: %w", err)
	}
	// No fsync: the spool is for outages and restarts, and a crash of the
	// process keeps what the kernel holds; syncing every alert would cap
	// a storm at the disk's sync rate.
	_, err = f.Write(append(data, '\n'))
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, filepath.Join(s.dir, name))
	}
	if err != nil {
		os.Remove(tmp)
		return spoolFile{}, fmt.Errorf("spool: %w", err)
	}
	s.bytes.Add(size)
	return spoolFile{name, size}, nil
}

// errSpoolFull is write's answer when spool_max_bytes would be exceeded.
var errSpoolFull = errors.New("spool: spool_max_bytes reached")

// read loads the alert in file.
func (s *spool) read(name string) (*alert.Alert, error) {
	data, err := os.ReadFile(filepath.Join(s.dir, name))
	if err != nil {
		return nil, fmt.Errorf("spool: %w", err)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber() // keep group values' digits as they were
	a := &alert.Alert{}
	if err := dec.Decode(a); err != nil {
		return nil, fmt.Errorf("spool: %s: %w", name, err)
	}
	return a, nil
}

// remove forgets a delivered (or given up) alert.
func (s *spool) remove(f spoolFile) error {
	err := os.Remove(filepath.Join(s.dir, f.name))
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("spool: %w", err)
	}
	s.bytes.Add(-f.size)
	return nil
}

// quarantine moves an unreadable file aside so that it is not retried.
func (s *spool) quarantine(f spoolFile) {
	p := filepath.Join(s.dir, f.name)
	if err := os.Rename(p, p+".bad"); err != nil {
		os.Remove(p)
	}
	s.bytes.Add(-f.size)
}
