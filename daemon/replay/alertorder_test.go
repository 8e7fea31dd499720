package replay

import (
	"bytes"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/flowguard/flowguard/alert"
)

// The held alerts are bounded: at max, those held are written in order and
// the bound is said once on stderr; a paced replay (max 0) holds nothing.
func TestAlertOrderBound(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	var got []int
	var warn bytes.Buffer
	o := &alertOrder{max: 3, warn: &warn, write: func(a *alert.Alert) { got = append(got, int(a.FiredAt.Sub(t0)/time.Second)) }}
	for _, s := range []int{5, 1, 3, 9, 2, 7, 4} {
		o.add(&alert.Alert{FiredAt: t0.Add(time.Duration(s) * time.Second)})
		if len(o.held) >= 3 {
			t.Fatalf("%d alerts held, bound 3", len(o.held))
		}
	}
	o.flush()
	if want := []int{1, 3, 5, 2, 7, 9, 4}; !slices.Equal(got, want) {
		t.Errorf("written %v, want %v", got, want)
	}
	if n := strings.Count(warn.String(), "more than 3 alerts"); n != 1 {
		t.Errorf("%d warnings, want 1: %q", n, warn.String())
	}
	got = got[:0]
	paced := &alertOrder{write: func(a *alert.Alert) { got = append(got, int(a.FiredAt.Sub(t0)/time.Second)) }}
	paced.add(&alert.Alert{FiredAt: t0.Add(5 * time.Second)})
	if len(got) != 1 || len(paced.held) != 0 {
		t.Errorf("a paced replay held its alert: written %v, held %d", got, len(paced.held))
	}
}
