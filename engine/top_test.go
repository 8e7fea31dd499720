package engine

import (
	"bytes"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/cespare/xxhash/v2"
)

// topModel is topTracker without its shortcut: every offer scans the
// entries for the one to replace.
type topModel struct{ e []topEntry }

func (m *topModel) observe(key []byte, v float64, at, size int64) {
	for i := range m.e {
		if bytes.Equal(m.e[i].key, key) {
			m.e[i].value, m.e[i].at = v, at
			return
		}
	}
	if len(m.e) < topGroupsPerRule {
		m.e = append(m.e, topEntry{key: slices.Clone(key), value: v, at: at})
		return
	}
	i := 0
	for j := 1; j < len(m.e); j++ {
		if m.e[j].at < at-size || (m.e[i].at >= at-size && m.e[j].value < m.e[i].value) {
			i = j
		}
	}
	if m.e[i].at >= at-size && m.e[i].value >= v {
		return
	}
	m.e[i] = topEntry{key: slices.Clone(key), value: v, at: at}
}

// The tracker's shortcut (a value at most the lowest kept, while no kept
// group's window has passed, is turned away without a scan) keeps the
// same groups as offering every value to a scan: random offers of 40
// groups whose values rise and fall, with time jumping past the window now
// and then.
func TestTopTrackerShortcut(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	const size = 1000
	for round := range 20 {
		var tr topTracker
		var m topModel
		at := int64(0)
		for i := range 20000 {
			at += r.Int64N(3)
			if r.IntN(500) == 0 {
				at += size + r.Int64N(size)
			}
			key := []byte{byte(r.IntN(40)), 7}
			v := float64(r.IntN(100 + round*50))
			tr.observe(key, xxhash.Sum64(key), v, at, size)
			m.observe(key, v, at, size)
			if tr.n != len(m.e) {
				t.Fatalf("round %d offer %d: %d groups kept, the model %d", round, i, tr.n, len(m.e))
			}
			for j, en := range m.e {
				got := tr.e[j]
				if !bytes.Equal(got.key, en.key) || got.value != en.value || got.at != en.at {
					t.Fatalf("round %d offer %d: entry %d is %v=%v at %d, the model's %v=%v at %d",
						round, i, j, got.key, got.value, got.at, en.key, en.value, en.at)
				}
			}
		}
	}
}
