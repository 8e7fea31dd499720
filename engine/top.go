package engine

import (
	"bytes"
	"sort"
	"time"

	"github.com/flowguard/flowguard/flow"
)

// topGroupsPerRule is how many groups each rule remembers as its highest.
const topGroupsPerRule = 5

// topTracker remembers a rule's highest groups by their latest window
// value, for the status API. Only values of at least a tenth of the
// threshold are offered, so ordinary flows cost one comparison.
type topTracker struct {
	e [topGroupsPerRule]topEntry
	n int
	// Of the entries, once all are taken: the smallest value and the
	// oldest time. A value of a new group at most low, while no entry's
	// window has passed, changes nothing, found without a scan.
	low    float64
	oldest int64
}

type topEntry struct {
	hash  uint64 // of key: most comparisons end on it
	key   []byte
	value float64
	at    int64
}

// observe offers key (whose hash is h) at value v, seen at event time at,
// for a window of size ns.
func (t *topTracker) observe(key []byte, h uint64, v float64, at, size int64) {
	for i := range t.n {
		if t.e[i].hash == h && bytes.Equal(t.e[i].key, key) {
			t.e[i].value, t.e[i].at = v, at
			t.bounds()
			return
		}
	}
	if t.n == len(t.e) && v <= t.low && t.oldest >= at-size {
		return
	}
	i := t.n
	if t.n == len(t.e) {
		// Replace the smallest, or one whose window has passed.
		i = 0
		for j := 1; j < t.n; j++ {
			if t.e[j].at < at-size || (t.e[i].at >= at-size && t.e[j].value < t.e[i].value) {
				i = j
			}
		}
		if t.e[i].at >= at-size && t.e[i].value >= v {
			return
		}
	} else {
		t.n++
	}
	t.e[i] = topEntry{hash: h, key: append(t.e[i].key[:0], key...), value: v, at: at}
	t.bounds()
}

// bounds sets low and oldest from the entries.
func (t *topTracker) bounds() {
	if t.n < len(t.e) {
		return
	}
	t.low, t.oldest = t.e[0].value, t.e[0].at
	for _, en := range t.e[1:] {
		t.low, t.oldest = min(t.low, en.value), min(t.oldest, en.at)
	}
}

// GroupValue is one of a rule's highest groups.
type GroupValue struct {
	Group    map[string]any `json:"group"`
	Value    float64        `json:"value"`
	LastSeen time.Time      `json:"last_seen"`
}

// TopGroups returns the rule's highest groups whose latest value is still
// within the window, highest first. Call it through Pipeline.Do (or from
// the goroutine that calls Process).
func (e *Engine) TopGroups(id string) []GroupValue {
	if e.par != nil {
		return e.par.owner(id).TopGroups(id)
	}
	var out []GroupValue
	for _, rs := range e.rules {
		if rs.r.ID != id {
			continue
		}
		for _, en := range rs.top.e[:rs.top.n] {
			if en.at < e.watermark-int64(rs.r.Window) {
				continue
			}
			g, ok := flow.DecodeGroup(rs.r.GroupBy, en.key)
			if !ok {
				continue
			}
			out = append(out, GroupValue{Group: g, Value: round(en.value), LastSeen: time.Unix(0, en.at).UTC()})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Value > out[j].Value })
	return out
}
