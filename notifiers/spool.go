package notifiers

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/flowguard/flowguard/alert"
)

// spool keeps alerts that could not be delivered yet as one JSON file
// each, named by a sequence number so that the directory lists in the
// order the alerts came. A file is written (to a temporary name, then
// renamed) before the alert is given up from memory and removed only
// after the notifier accepted it, so an alert survives an outage and a
// restart and is delivered once. A crash between delivery and removal
// sends it once more: delivery is at least once.
//
// Only the notifier's worker goroutine touches a spool.
type spool struct {
	dir string
	seq uint64
}

const spoolExt = ".json"

// openSpool creates dir if needed, removes half-written files and
// returns the spool and the files waiting in it, oldest first.
func openSpool(dir string) (*spool, []string, error) {
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, nil, fmt.Errorf("spool: %w", err)
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, nil, fmt.Errorf("spool: %w", err)
	}
	s := &spool{dir: dir}
	var files []string
	for _, e := range ents {
		name := e.Name()
		if strings.HasSuffix(name, ".tmp") {
			os.Remove(filepath.Join(dir, name))
			continue
		}
		if !strings.HasSuffix(name, spoolExt) {
			continue
		}
		n, err := strconv.ParseUint(strings.TrimSuffix(name, spoolExt), 10, 64)
		if err != nil {
			continue
		}
		if n >= s.seq {
			s.seq = n + 1
		}
		files = append(files, name)
	}
	sort.Strings(files) // fixed-width numbers: lexical order is numeric order
	return s, files, nil
}

// write persists a and returns its file name.
func (s *spool) write(a *alert.Alert) (string, error) {
	data, err := json.Marshal(a)
	if err != nil {
		return "", fmt.Errorf("spool: encoding alert %s: %w", a.ID, err)
	}
	name := fmt.Sprintf("%020d%s", s.seq, spoolExt)
	s.seq++
	tmp := filepath.Join(s.dir, name+".tmp")
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o640)
	if err != nil {
		return "", fmt.Errorf("spool: %w", err)
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
		return "", fmt.Errorf("spool: %w", err)
	}
	return name, nil
}

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
func (s *spool) remove(name string) error {
	if err := os.Remove(filepath.Join(s.dir, name)); err != nil && !os.IsNotExist(err) {
		return fmt.Errorf("spool: %w", err)
	}
	return nil
}

// quarantine moves an unreadable file aside so that it is not retried.
func (s *spool) quarantine(name string) {
	p := filepath.Join(s.dir, name)
	if err := os.Rename(p, p+".bad"); err != nil {
		os.Remove(p)
	}
}
