package engine

import (
	"math"
	"strconv"

	"github.com/flowguard/flowguard/alert"
	"github.com/flowguard/flowguard/rules"
)

// A baseline learns, per group, an exponentially weighted mean and
// variance of the group's window value. It samples once per window length
// (a step): the highest value the group reached during the step, folded
// in when the group's first flow of a later step comes. Steps in which a
// group has no flow are not sampled: the baseline is the group's normal
// when it is active. The weight of a sample is the larger of 1/n (a plain
// mean while few samples are in) and 1-2^(-Δt/half_life), Δt the event time
// since the season's previous sample. With seasonality each group keeps a
// mean per hour of the UTC day or per day of the week, and a value is
// compared with its own season's.
//
// A value exceeds the baseline when the season has Warmup samples and the
// value is above mean + k·spread (or factor × mean), the spread being at
// least a tenth of the mean so that a group whose value never varied does
// not fire on a one per cent rise.

// baseSlot is one season's learned mean and variance.
type baseSlot struct {
	mean, vari float64
	at         int64 // event time of the latest sample
	n          uint32
}

// baseGroup is one group's current step; its seasons are in
// baselineState.slots.
type baseGroup struct {
	step int64   // current step: event time / step length
	peak float64 // highest value of the current step, sampled when it ends
}

func (g *baseGroup) reset() { *g = baseGroup{step: math.MinInt64} }

type baselineState struct {
	r       *rules.Rule // for the unit of {mean} and {spread}
	b       *rules.Baseline
	step    int64 // ns
	seasons int   // slots per group
	groups  *learnGroups[baseGroup, *baseGroup]
	slots   []baseSlot // by group id × seasons

	// The latest comparison, for the alert it may fire.
	last struct {
		mean, spread, value float64
		n                   uint32
		season              int
	}
}

func newBaselineState(r *rules.Rule) *baselineState {
	step := int64(r.Window)
	if step <= 0 {
		step = int64(1e9)
	}
	return &baselineState{r: r, b: r.Baseline, step: step, seasons: r.Baseline.Seasonality.Slots(),
		groups: newLearnGroups[baseGroup](r.Baseline.MaxGroups)}
}

// group returns key's step and seasons, creating them.
func (s *baselineState) group(key []byte) (*baseGroup, []baseSlot, bool) {
	g, id, fresh := s.groups.getID(key)
	return g, s.seasonsFor(id, fresh), fresh
}

// seasonsFor returns group id's seasons, cleared when the group is fresh.
func (s *baselineState) seasonsFor(id int32, fresh bool) []baseSlot {
	lo := int(id) * s.seasons
	if lo+s.seasons > len(s.slots) {
		s.slots = append(s.slots, make([]baseSlot, lo+s.seasons-len(s.slots))...)
	}
	slots := s.slots[lo : lo+s.seasons : lo+s.seasons]
	if fresh {
		clear(slots)
	}
	return slots
}

// seasonsOf returns group id's seasons.
func (s *baselineState) seasonsOf(id int32) []baseSlot {
	lo := int(id) * s.seasons
	return s.slots[lo : lo+s.seasons]
}

// season is the season index of event time t.
func (s *baselineState) season(t int64) int {
	switch s.b.Seasonality {
	case rules.SeasonHour:
		return int(floorDivInt(t, 3600e9) % 24)
	case rules.SeasonWeekday:
		return int((floorDivInt(t, 86400e9) + 4) % 7) // 1970-01-01 was a Thursday; 0 is Sunday
	}
	return 0
}

func floorDivInt(a, b int64) int64 {
	q := a / b
	if a%b != 0 && (a < 0) != (b < 0) {
		q--
	}
	return q
}

// observe records value for key's group at now and reports whether it
// exceeds the group's learned normal. It allocates nothing once the group
// is held.
func (s *baselineState) observe(key []byte, now int64, value float64) bool {
	g, slots, _ := s.group(key)
	step := floorDivInt(now, s.step)
	switch {
	case g.step == math.MinInt64:
		g.step, g.peak = step, value
	case step > g.step:
		s.fold(g, slots)
		g.step, g.peak = step, value
	default: // this step, or an earlier one out of order: the step's peak
		g.peak = max(g.peak, value)
	}
	season := s.season(now)
	sl := &slots[season]
	if int(sl.n) < s.b.Warmup {
		return false
	}
	spread := math.Sqrt(sl.vari)
	bound := sl.mean + s.b.K*max(spread, sl.mean/10)
	if s.b.Factor > 0 {
		bound = s.b.Factor * sl.mean
	}
	s.last.mean, s.last.spread, s.last.value, s.last.n, s.last.season = sl.mean, spread, value, sl.n, season
	return value > bound
}

// fold adds the ended step's peak to the group's baseline.
func (s *baselineState) fold(g *baseGroup, slots []baseSlot) {
	t := g.step * s.step
	sl := &slots[s.season(t)]
	alpha := 1 / float64(sl.n+1)
	if sl.n > 0 && t > sl.at {
		alpha = max(alpha, 1-math.Exp2(-float64(t-sl.at)/float64(s.b.HalfLife)))
	}
	diff := g.peak - sl.mean
	incr := alpha * diff
	sl.mean += incr
	sl.vari = (1 - alpha) * (sl.vari + diff*incr)
	sl.at = t
	if sl.n < math.MaxUint32 {
		sl.n++
	}
}

func (s *baselineState) seasonName(i int) string {
	switch s.b.Seasonality {
	case rules.SeasonHour:
		return "hour " + strconv.Itoa(i)
	case rules.SeasonWeekday:
		return "weekday " + strconv.Itoa(i)
	}
	return "all"
}

func (s *baselineState) annotate(a *alert.Alert) {
	l := &s.last
	b := &alert.Baseline{Mean: round(l.mean), Spread: round(l.spread), Samples: int(l.n),
		Season: s.seasonName(l.season)}
	if l.spread > 0 {
		b.Deviation = round((l.value - l.mean) / l.spread)
	}
	a.Baseline = b
}

func (s *baselineState) text(name string) (string, bool) {
	l := &s.last
	switch name {
	case "mean":
		return valueText(round(l.mean), s.r), true
	case "spread":
		return valueText(round(l.spread), s.r), true
	case "deviation":
		if l.spread == 0 {
			return "inf", true
		}
		return strconv.FormatFloat(round((l.value-l.mean)/l.spread), 'f', -1, 64), true
	}
	return "", false
}

func (s *baselineState) counts() (int64, uint64) { return s.groups.counts() }

// summaries lists the groups by their latest season's mean, highest first.
func (s *baselineState) summaries(r *rules.Rule, n int) []LearnedGroup {
	var out learnedList
	s.groups.each(func(key []byte, id int32, g *baseGroup) {
		slots := s.seasonsOf(id)
		best := -1
		for i := range slots {
			if slots[i].n > 0 && (best < 0 || slots[i].at > slots[best].at) {
				best = i
			}
		}
		if best < 0 {
			return
		}
		sl := &slots[best]
		out.add(key, LearnedGroup{Mean: round(sl.mean),
			Spread: round(math.Sqrt(sl.vari)), Samples: int(sl.n), Season: s.seasonName(best)})
	})
	return out.first(r, n, func(g *LearnedGroup) float64 { return float64(g.Mean) })
}

func (s *baselineState) save(lr *LearnedRule) {
	s.groups.each(func(key []byte, id int32, g *baseGroup) {
		bg := BaselineGroup{Key: append([]byte(nil), key...), Step: g.step, Peak: g.peak}
		for i, sl := range s.seasonsOf(id) {
			if sl.n > 0 {
				bg.Seasons = append(bg.Seasons, BaselineSeason{Season: i, Mean: sl.mean, Var: sl.vari,
					N: sl.n, At: sl.at})
			}
		}
		lr.Baseline = append(lr.Baseline, bg)
	})
}

// load merges saved groups: a season keeps whichever of its own and the
// saved one has more samples.
func (s *baselineState) load(lr *LearnedRule) {
	for i := len(lr.Baseline) - 1; i >= 0; i-- { // stalest first: the LRU order survives
		bg := &lr.Baseline[i]
		g, id, fresh := s.groups.getIfRoom(bg.Key)
		if g == nil {
			continue // full: saved state never evicts a group
		}
		slots := s.seasonsFor(id, fresh)
		if fresh || bg.Step > g.step {
			g.step, g.peak = bg.Step, bg.Peak
		}
		for _, ss := range bg.Seasons {
			if ss.Season < 0 || ss.Season >= len(slots) || !finite(ss.Mean) || !finite(ss.Var) {
				continue // not what a baseline saves: a damaged or hostile file
			}
			if sl := &slots[ss.Season]; ss.N > sl.n || (ss.N == sl.n && ss.At > sl.at) {
				*sl = baseSlot{mean: ss.Mean, vari: max(ss.Var, 0), at: ss.At, n: ss.N}
			}
		}
	}
}

func finite(v float64) bool { return !math.IsNaN(v) && !math.IsInf(v, 0) }
