package engine

import (
	"math"
	"sort"
	"strconv"

	"github.com/flowguard/flowguard/alert"
	"github.com/flowguard/flowguard/flow"
	"github.com/flowguard/flowguard/rules"
)

// A beacon rule keeps, per group (source, destination, destination port by
// default), the start times and bytes of its latest rules.BeaconHistory
// connections: flows of a TCP connection that carry SYN (or no flags at
// all), any flow of other protocols. Starts within half of MinInterval of
// one another are one beat (their bytes add up). When a start arrives that
// is the group's latest, MinInterval to (MaxMissed+1)×MaxInterval after the
// previous one, and the group holds MinCount starts, its intervals are
// scored:
//
//   - the period P is their median;
//   - an interval d is a hit when it is m×P (m from 1 to MaxMissed+1: m-1
//     beats missed) within Jitter×P×√m;
//   - the interval score is the hits over the intervals plus the missed
//     beats (a missed beat counts as a miss), the size score 1 minus the
//     median absolute deviation of the beats' bytes over their median
//     (floored at 0);
//   - the score is 3/4 the interval score plus 1/4 the size score.
//
// The rule fires when P lies within [MinInterval, MaxInterval] and the
// score reaches MinScore; a group that fired is not scored again for the
// rule's suppress (its alert would be suppressed). Long-lived connections re-exported every active
// timeout have no SYN after the first record and so are no beacon.

// beaconGroup is one group's latest connection starts, oldest first.
type beaconGroup struct {
	n     int   // first: a new group's insert touches one cache line
	quiet int64 // after the group fired: not scored again before this time
	beats [rules.BeaconHistory]beat
}

// beat is one connection start (or starts merged into one) and its bytes.
type beat struct {
	t    int64
	size float64
}

func (g *beaconGroup) reset() { g.n, g.quiet = 0, 0 }

type beaconState struct {
	b        *rules.Beacon
	suppress int64 // the rule's cooldown: a group that fired is not scored for as long
	groups   *learnGroups[beaconGroup, *beaconGroup]
	last     beaconScore // the latest scoring that fired
}

// beaconScore is what scoring a group found.
type beaconScore struct {
	period, interval, jitter float64 // ns, ns, fraction
	count, missed            int
	score, sizeScore         float64
	first, latest            int64
}

func newBeaconState(r *rules.Rule) *beaconState {
	return &beaconState{b: r.Beacon, suppress: int64(r.Suppress), groups: newLearnGroups[beaconGroup](r.Beacon.MaxPairs)}
}

// observe records f as a connection start of key's group (at its start
// time, else now) and reports whether the group now beacons. It allocates
// nothing once the group is held.
func (s *beaconState) observe(key []byte, f *flow.Flow, now int64) bool {
	if f.Proto == 6 && f.TCPFlags != 0 && f.TCPFlags&flow.TCPSyn == 0 {
		return false // a later record of a connection already started
	}
	t := now
	if !f.TimeFlowStart.IsZero() {
		t = f.TimeFlowStart.UnixNano()
	}
	g, _ := s.groups.get(key)
	size := float64(f.Bytes)
	merge := int64(s.b.MinInterval) / 2
	// Where t goes: after the starts at or before it.
	p := g.n
	for p > 0 && g.beats[p-1].t > t {
		p--
	}
	if p > 0 && t-g.beats[p-1].t < merge {
		g.beats[p-1].size += size
		return false
	}
	if p < g.n && g.beats[p].t-t < merge {
		g.beats[p].size += size
		return false
	}
	if g.n == len(g.beats) {
		if p == 0 {
			return false // older than every start held
		}
		copy(g.beats[:], g.beats[1:])
		g.n--
		p--
	}
	copy(g.beats[p+1:g.n+1], g.beats[p:g.n])
	g.beats[p] = beat{t: t, size: size}
	g.n++
	if p != g.n-1 || g.n < s.b.MinCount {
		return false
	}
	if d := t - g.beats[p-1].t; d < int64(s.b.MinInterval) || d > int64(s.b.MaxInterval)*int64(s.b.MaxMissed+1) || t < g.quiet {
		return false
	}
	sc, ok := s.score(g)
	if ok {
		s.last = sc
		g.quiet = t + s.suppress // its alert would be suppressed until then: spare the scoring
	}
	return ok
}

// score scores g's intervals and sizes, and reports whether they beacon.
func (s *beaconState) score(g *beaconGroup) (beaconScore, bool) {
	var ivl [rules.BeaconHistory]float64
	n := g.n - 1
	for i := range n {
		ivl[i] = float64(g.beats[i+1].t - g.beats[i].t)
	}
	sorted := ivl
	period := median(sorted[:n])
	sc := beaconScore{period: period, count: g.n, first: g.beats[0].t, latest: g.beats[g.n-1].t}
	if period < float64(s.b.MinInterval) || period > float64(s.b.MaxInterval) {
		return sc, false
	}
	hits := 0
	var dev, sum float64
	for _, d := range ivl[:n] {
		m := math.Round(d / period)
		if m < 1 || m > float64(s.b.MaxMissed+1) || math.Abs(d-m*period) > s.b.Jitter*period*math.Sqrt(m) {
			continue
		}
		hits++
		sc.missed += int(m) - 1
		dev += math.Abs(d/m - period)
		sum += d / m
	}
	if hits == 0 {
		return sc, false
	}
	var sizes [rules.BeaconHistory]float64
	for i := range g.n {
		sizes[i] = g.beats[i].size
	}
	mid := median(sizes[:g.n])
	sc.sizeScore = 1
	if mid > 0 {
		var absdev [rules.BeaconHistory]float64
		for i := range g.n {
			absdev[i] = math.Abs(g.beats[i].size - mid)
		}
		sc.sizeScore = max(0, 1-median(absdev[:g.n])/mid)
	}
	sc.interval = sum / float64(hits)
	sc.jitter = dev / float64(hits) / period
	sc.score = (3*float64(hits)/float64(n+sc.missed) + sc.sizeScore) / 4
	return sc, sc.score >= s.b.MinScore
}

// median sorts v in place (insertion sort: v is short) and returns its
// median.
func median(v []float64) float64 {
	for i := 1; i < len(v); i++ {
		for j := i; j > 0 && v[j] < v[j-1]; j-- {
			v[j], v[j-1] = v[j-1], v[j]
		}
	}
	if len(v) == 0 {
		return 0
	}
	if len(v)%2 == 1 {
		return v[len(v)/2]
	}
	return (v[len(v)/2-1] + v[len(v)/2]) / 2
}

func (s *beaconState) annotate(a *alert.Alert) {
	l := &s.last
	a.Threshold = float64(s.b.MinCount)
	a.Beacon = &alert.Beacon{Interval: round(l.interval / 1e9), Jitter: round(l.jitter), Count: l.count,
		Missed: l.missed, Score: round(l.score), SizeScore: round(l.sizeScore)}
}

func (s *beaconState) text(name string) (string, bool) {
	l := &s.last
	switch name {
	case "interval":
		return formatSeconds(l.interval / 1e9), true
	case "jitter":
		return formatPercent(l.jitter), true
	case "count":
		return strconv.Itoa(l.count), true
	case "score":
		return strconv.FormatFloat(round(l.score), 'f', -1, 64), true
	}
	return "", false
}

func (s *beaconState) counts() (int64, uint64) { return s.groups.counts() }

// summaries scores every group holding MinCount starts, best first.
func (s *beaconState) summaries(r *rules.Rule, n int) []LearnedGroup {
	var out learnedList
	s.groups.each(func(key []byte, _ int32, g *beaconGroup) {
		if g.n < s.b.MinCount {
			return
		}
		sc, _ := s.score(g)
		out.add(key, LearnedGroup{Interval: round(sc.interval / 1e9),
			Jitter: round(sc.jitter), Count: sc.count, Score: round(sc.score)})
	})
	return out.first(r, n, func(g *LearnedGroup) float64 { return float64(g.Score) })
}

func (s *beaconState) save(lr *LearnedRule) {
	s.groups.each(func(key []byte, _ int32, g *beaconGroup) {
		bg := BeaconGroup{Key: append([]byte(nil), key...), Starts: make([]int64, g.n), Sizes: make([]float64, g.n)}
		for i, b := range g.beats[:g.n] {
			bg.Starts[i], bg.Sizes[i] = b.t, b.size
		}
		lr.Beacons = append(lr.Beacons, bg)
	})
}

// load merges saved groups: a group keeps whichever of its own and the
// saved starts end later.
func (s *beaconState) load(lr *LearnedRule) {
	for i := len(lr.Beacons) - 1; i >= 0; i-- {
		bg := &lr.Beacons[i]
		k := min(len(bg.Starts), len(bg.Sizes), rules.BeaconHistory)
		if k == 0 {
			continue
		}
		starts, sizes := bg.Starts[len(bg.Starts)-k:], bg.Sizes[len(bg.Sizes)-k:]
		if !sort.SliceIsSorted(starts, func(a, b int) bool { return starts[a] < starts[b] }) {
			continue
		}
		g, _, fresh := s.groups.getIfRoom(bg.Key)
		if g == nil {
			continue // full: saved state never evicts a group
		}
		if !fresh && g.n > 0 && g.beats[g.n-1].t >= starts[k-1] {
			continue
		}
		g.n = k
		for i := range k {
			g.beats[i] = beat{t: starts[i], size: sizes[i]}
		}
	}
}
