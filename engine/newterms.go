package engine

import (
	"strings"
	"sync/atomic"

	"github.com/cespare/xxhash/v2"

	"github.com/flowguard/flowguard/alert"
	"github.com/flowguard/flowguard/flow"
	"github.com/flowguard/flowguard/rules"
)

// A new_terms rule keeps, per group, the hashes of the values of its
// field(s) the group has shown and when each was last seen, in an
// open-addressing table that grows up to MaxTerms terms. A term is new
// when the group has not shown it within History; it fires once the group
// has been learning for Learning since its first flow. Past MaxTerms the
// terms older than History go first, then the least recently seen, each
// counted as evicted.

// termEntry is one term: its hash (0: empty slot) and when it was last seen.
type termEntry struct {
	hash uint64
	seen int64
}

// termGroup is the terms of one group.
type termGroup struct {
	first int64       // the group's first flow: learning ends Learning after it
	set   []termEntry // power-of-two open-addressing table, or nil
	n     int
}

func (g *termGroup) reset() {
	clear(g.set) // the table is kept for the next group to use this slot
	g.first, g.n = 0, 0
}

type termsState struct {
	t           *rules.NewTerms
	groups      *learnGroups[termGroup, *termGroup]
	item        []byte
	termEvicted atomic.Uint64

	last struct { // the latest new term, for its alert
		term  string
		known int
	}
}

func newTermsState(r *rules.Rule) *termsState {
	return &termsState{t: r.NewTerms, groups: newLearnGroups[termGroup](r.NewTerms.MaxGroups)}
}

// termHash hashes the term of f.
func (s *termsState) termHash(f *flow.Flow) uint64 {
	s.item = s.item[:0]
	for _, fd := range s.t.Fields {
		s.item = fd.AppendKey(s.item, f)
	}
	h := xxhash.Sum64(s.item)
	if h == 0 {
		h = 1
	}
	return h
}

// observe records f's term for key's group at now and reports whether it
// is new and the group past its learning. It allocates nothing once the
// group's table has grown, except when it reports true.
func (s *termsState) observe(key []byte, f *flow.Flow, now int64) bool {
	g, fresh := s.groups.get(key)
	if fresh {
		g.first = now
	}
	g.first = min(g.first, now)
	isNew := s.see(g, s.termHash(f), now)
	if !isNew || now < g.first+int64(s.t.Learning) {
		return false
	}
	var b strings.Builder
	for i, fd := range s.t.Fields {
		if i > 0 {
			b.WriteByte(',')
		}
		b.Write(fd.AppendText(nil, f))
	}
	s.last.term, s.last.known = b.String(), g.n-1
	return true
}

// see records term h at now and reports whether the group had not shown
// it within the history.
func (s *termsState) see(g *termGroup, h uint64, now int64) bool {
	if i, ok := g.find(h); ok {
		e := &g.set[i]
		isNew := e.seen <= now-int64(s.t.History)
		e.seen = max(e.seen, now)
		return isNew
	}
	s.insert(g, h, now)
	return true
}

// find returns h's slot and whether it holds h.
func (g *termGroup) find(h uint64) (int, bool) {
	if len(g.set) == 0 {
		return 0, false
	}
	mask := uint64(len(g.set) - 1)
	for i := h & mask; ; i = (i + 1) & mask {
		switch g.set[i].hash {
		case h:
			return int(i), true
		case 0:
			return int(i), false
		}
	}
}

func (s *termsState) insert(g *termGroup, h uint64, seen int64) {
	if g.n >= s.t.MaxTerms {
		s.evictTerm(g, seen)
	}
	if (g.n+1)*2 > len(g.set) {
		g.grow(max(8, 2*len(g.set)))
	}
	i, _ := g.find(h)
	g.set[i] = termEntry{hash: h, seen: seen}
	g.n++
}

// evictTerm drops the terms older than the history, or else the least
// recently seen one.
func (s *termsState) evictTerm(g *termGroup, now int64) {
	cutoff := now - int64(s.t.History)
	removed := false
	for i := 0; i < len(g.set); {
		if e := &g.set[i]; e.hash != 0 && e.seen <= cutoff {
			g.remove(i) // the backward shift may move another entry to i: look at i again
			s.termEvicted.Add(1)
			removed = true
			continue
		}
		i++
	}
	if removed {
		return
	}
	oldest := -1
	for i := range g.set {
		if e := &g.set[i]; e.hash != 0 && (oldest < 0 || e.seen < g.set[oldest].seen) {
			oldest = i
		}
	}
	if oldest >= 0 {
		g.remove(oldest)
		s.termEvicted.Add(1)
	}
}

// remove empties slot i, shifting later entries of its probe run back.
func (g *termGroup) remove(i int) {
	mask := uint64(len(g.set) - 1)
	hole := uint64(i)
	for j := (hole + 1) & mask; g.set[j].hash != 0; j = (j + 1) & mask {
		home := g.set[j].hash & mask
		if (j-home)&mask >= (j-hole)&mask {
			g.set[hole] = g.set[j]
			hole = j
		}
	}
	g.set[hole] = termEntry{}
	g.n--
}

func (g *termGroup) grow(size int) {
	old := g.set
	g.set = make([]termEntry, size)
	for _, e := range old {
		if e.hash != 0 {
			i, _ := g.find(e.hash)
			g.set[i] = e
		}
	}
}

func (s *termsState) annotate(a *alert.Alert) {
	names := make([]string, len(s.t.Fields))
	for i, fd := range s.t.Fields {
		names[i] = fd.Name
	}
	a.Threshold = 1
	a.NewTerm = &alert.NewTerm{Field: strings.Join(names, ","), Term: s.last.term, Known: s.last.known}
}

func (s *termsState) text(name string) (string, bool) {
	if name == "term" {
		return s.last.term, true
	}
	return "", false
}

func (s *termsState) counts() (int64, uint64) {
	n, ev := s.groups.counts()
	return n, ev + s.termEvicted.Load()
}

// summaries lists the groups by the number of terms they showed, most first.
func (s *termsState) summaries(r *rules.Rule, n int) []LearnedGroup {
	var out learnedList
	s.groups.each(func(key []byte, _ int32, g *termGroup) {
		out.add(key, LearnedGroup{Terms: g.n})
	})
	return out.first(r, n, func(g *LearnedGroup) float64 { return float64(g.Terms) })
}

func (s *termsState) save(lr *LearnedRule) {
	s.groups.each(func(key []byte, _ int32, g *termGroup) {
		tg := TermsGroup{Key: append([]byte(nil), key...), First: g.first}
		for _, e := range g.set {
			if e.hash != 0 {
				tg.Terms = append(tg.Terms, TermSeen{Hash: e.hash, Seen: e.seen})
			}
		}
		lr.Terms = append(lr.Terms, tg)
	})
}

// load merges saved groups: the union of the terms, each at its latest.
func (s *termsState) load(lr *LearnedRule) {
	for i := len(lr.Terms) - 1; i >= 0; i-- {
		tg := &lr.Terms[i]
		g, _, fresh := s.groups.getIfRoom(tg.Key)
		if g == nil {
			continue // full: saved state never evicts a group
		}
		if fresh || tg.First < g.first {
			g.first = tg.First
		}
		for _, t := range tg.Terms {
			if t.Hash == 0 {
				continue
			}
			if j, ok := g.find(t.Hash); ok {
				g.set[j].seen = max(g.set[j].seen, t.Seen)
			} else {
				s.insert(g, t.Hash, t.Seen)
			}
		}
	}
}
