package rules

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// FuzzLoadBytes: any rule file loads or fails with file:line errors, never
// panics; what loads stays within the limits and evaluates without
// panicking.
func FuzzLoadBytes(f *testing.F) {
	seeds, _ := filepath.Glob("testdata/*/*.yaml")
	for _, s := range seeds {
		data, err := os.ReadFile(s)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Add([]byte(benchPack))
	flows := append(benchFlows(16), hostileFlows(16, 5)...)
	f.Fuzz(func(t *testing.T, data []byte) {
		set, err := LoadBytes("f.yaml", data)
		if err != nil {
			var el ErrorList
			if !errors.As(err, &el) || len(el) == 0 {
				t.Fatalf("want an ErrorList, got %T %v", err, err)
			}
			for _, e := range el {
				if e.File != "f.yaml" || e.Msg == "" {
					t.Fatalf("error without file or message: %+v", e)
				}
			}
		}
		if set == nil {
			t.Fatal("no set")
		}
		for _, r := range set.Rules {
			if r.Cost() > 2*DefaultLimits.MaxCost {
				t.Fatalf("%s: cost %d over the limit", r.ID, r.Cost())
			}
		}
		// The matcher's Mask says what each rule's Match says.
		m := NewMatcher(set.Rules)
		mask := make([]uint64, (len(set.Rules)+63)/64)
		for i := range flows {
			clear(mask)
			m.Mask(&flows[i], mask)
			for j, r := range set.Rules {
				if got, want := mask[j/64]&(1<<(j%64)) != 0, r.Match(&flows[i]); got != want {
					t.Fatalf("flow %d: rule %s: Mask says %v, Match %v", i, r.ID, got, want)
				}
			}
		}
	})
}
