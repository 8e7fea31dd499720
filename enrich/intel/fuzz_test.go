package intel

import (
	"strings"
	"testing"
)

// FuzzParse: any input parses or fails with a line number; never panics,
// and what parses is valid.
func FuzzParse(f *testing.F) {
	for _, s := range []string{
		"192.0.2.0/24 ; SBL1\n", "# c\n2001:db8::/32\n", `{"cidr":"192.0.2.0/24"}` + "\n", "{\n", "1.2.3.4/99\n",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		ps, err := Parse(strings.NewReader(s))
		if err != nil {
			return
		}
		for _, p := range ps {
			if !p.IsValid() || p != p.Masked() {
				t.Fatalf("entry %v", p)
			}
		}
	})
}
