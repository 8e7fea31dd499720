// Package intel fills src_lists and dst_lists with the names of the threat
// lists (Spamhaus DROP, FireHOL netsets, in-house block lists...) that hold
// a flow's addresses. Lists are files, read at start and reloaded when they
// change; a list that fails to load on reload keeps its previous version in
// service.
//
// All lists are flattened into one table mapping address ranges to the set
// of lists holding them, so a lookup is one binary search whatever the
// number of lists or entries, and its answer is a slice shared by every
// address held by the same lists: no allocation per flow.
package intel

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"math/bits"
	"net/netip"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/flowguard/flowguard/enrich/internal/addrtable"
	"github.com/flowguard/flowguard/enrich/internal/filewatch"
	"github.com/flowguard/flowguard/flow"
)

// MaxLists is how many lists one Lists holds.
const MaxLists = 64

// Stats are cumulative counters, for metrics.
type Stats struct {
	Reloads      uint64 // lists reloaded after their file changed
	ReloadErrors uint64 // reloads that failed (the previous version stayed)
}

// ListInfo describes one list in service.
type ListInfo struct {
	Name     string    `json:"name"`
	Path     string    `json:"path"`
	Entries  int       `json:"entries"`
	LoadedAt time.Time `json:"loaded_at"`
}

// Match is one list holding an address, with the entry that holds it.
type Match struct {
	List  string       `json:"list"`
	Entry netip.Prefix `json:"entry"`
}

// Lists is a set of named threat lists, safe for concurrent use.
type Lists struct {
	log   *slog.Logger
	state atomic.Pointer[state]

	mu    sync.Mutex // serialises Reload
	lists []*list    // sorted by name; bit i of a set is lists[i]

	reloads, reloadErrors atomic.Uint64
}

// state is one immutable generation: the flat table, whose values index
// combos, the list names of each set of lists that occurs.
type state struct {
	table   *addrtable.Table
	combos  [][]string
	entries [][]netip.Prefix // per list, for Matches
	info    []ListInfo
}

type list struct {
	name, path string
	prefixes   []netip.Prefix
	loadedAt   time.Time
	loaded     filewatch.Stamp
	failed     filewatch.Stamp
	missing    bool
}

// Open reads the lists (name → file path). Errors name the list, the
// file and the line.
func Open(lists map[string]string, log *slog.Logger) (*Lists, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if len(lists) > MaxLists {
		return nil, fmt.Errorf("%d lists: at most %d", len(lists), MaxLists)
	}
	l := &Lists{log: log}
	var errs []error
	for _, name := range slices.Sorted(maps.Keys(lists)) {
		li := &list{name: name, path: lists[name]}
		stamp, err := filewatch.Stat(li.path)
		if err == nil {
			li.prefixes, err = load(li.path)
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("list %q: %w", name, err))
			continue
		}
		li.loaded, li.loadedAt = stamp, time.Now()
		l.lists = append(l.lists, li)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	l.state.Store(l.build())
	return l, nil
}

func load(path string) ([]netip.Prefix, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	ps, err := Parse(f)
	if pe, ok := err.(*ParseError); ok {
		return nil, fmt.Errorf("%s:%d: %w", path, pe.Line, pe.Err)
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return ps, nil
}

// build flattens the lists into a new state.
func (l *Lists) build() *state {
	var b addrtable.Builder
	st := &state{}
	for i, li := range l.lists {
		for _, p := range li.prefixes {
			b.Add(p, 1<<i)
		}
		st.entries = append(st.entries, li.prefixes)
		st.info = append(st.info, ListInfo{Name: li.name, Path: li.path, Entries: len(li.prefixes), LoadedAt: li.loadedAt})
	}
	st.combos = [][]string{nil} // 0: no list
	st.table = b.Build(addrtable.Or, func(set uint64) uint32 {
		if set == 0 {
			return 0
		}
		names := make([]string, 0, bits.OnesCount64(set))
		for s := set; s != 0; s &= s - 1 {
			names = append(names, l.lists[bits.TrailingZeros64(s)].name)
		}
		st.combos = append(st.combos, names)
		return uint32(len(st.combos) - 1)
	})
	return st
}

// Lookup returns the names of the lists holding a, sorted, or nil. The
// slice is shared: callers must not modify it.
func (l *Lists) Lookup(a netip.Addr) []string {
	st := l.state.Load()
	return st.combos[st.table.Lookup(a)]
}

// Enrich sets src_lists and dst_lists.
func (l *Lists) Enrich(f *flow.Flow) {
	st := l.state.Load()
	f.SrcLists = st.combos[st.table.Lookup(f.SrcAddr)]
	f.DstLists = st.combos[st.table.Lookup(f.DstAddr)]
}

// Matches returns, for each list holding a, the entries that hold it, to
// explain a lookup. It scans the lists: not for the hot path.
func (l *Lists) Matches(a netip.Addr) []Match {
	var out []Match
	if !a.IsValid() {
		return out
	}
	a = a.Unmap()
	st := l.state.Load()
	for i, ps := range st.entries {
		for _, p := range ps {
			if p.Contains(a) {
				out = append(out, Match{List: st.info[i].Name, Entry: p})
			}
		}
	}
	return out
}

// Lists describes the lists in service, sorted by name.
func (l *Lists) Lists() []ListInfo {
	return slices.Clone(l.state.Load().info)
}

// Stats returns the counters so far.
func (l *Lists) Stats() Stats {
	return Stats{Reloads: l.reloads.Load(), ReloadErrors: l.reloadErrors.Load()}
}

// Reload reads the lists whose file changed since the last look and swaps
// the new table in at once. A list whose file is missing or fails to parse
// is logged and counted, and keeps its previous version; the error names
// the list and the file. A version that failed is not tried again until
// the file changes once more.
func (l *Lists) Reload() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	var errs []error
	changed := false
	for _, li := range l.lists {
		stamp, err := filewatch.Stat(li.path)
		if err != nil {
			if !li.missing {
				li.missing = true
				l.reloadErrors.Add(1)
				l.log.Error("intel: list file gone, keeping the loaded version", "list", li.name, "file", li.path, "err", err)
			}
			errs = append(errs, fmt.Errorf("list %q: %w", li.name, err))
			continue
		}
		li.missing = false
		if !stamp.Changed(li.loaded) || !stamp.Changed(li.failed) {
			continue
		}
		ps, err := load(li.path)
		if err != nil {
			li.failed = stamp
			l.reloadErrors.Add(1)
			l.log.Error("intel: list reload failed, keeping the previous version", "list", li.name, "file", li.path, "err", err)
			errs = append(errs, fmt.Errorf("list %q: %w", li.name, err))
			continue
		}
		li.prefixes, li.loaded, li.failed, li.loadedAt = ps, stamp, filewatch.Stamp{}, time.Now()
		changed = true
		l.reloads.Add(1)
		l.log.Info("intel: list reloaded", "list", li.name, "file", li.path, "entries", len(ps))
	}
	if changed {
		l.state.Store(l.build())
	}
	return errors.Join(errs...)
}

// Run polls the files every interval and reloads those that changed, until
// ctx is done. A non-positive interval disables polling.
func (l *Lists) Run(ctx context.Context, interval time.Duration) error {
	return filewatch.Poll(ctx, interval, l.Reload) // Reload logs and counts failures
}
