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
	flows := benchFlows(16)
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
			for i := range flows {
				r.Match(&flows[i])
			}
		}
	})
}
