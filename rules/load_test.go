package rules

import (
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite the golden *.errors files")

func TestLoadGoodPack(t *testing.T) {
	set, err := Load("testdata/good")
	if err != nil {
		t.Fatalf("good pack: %v", err)
	}
	byID := map[string]*Rule{}
	for _, r := range set.Rules {
		byID[r.ID] = r
	}
	if len(set.Files) != 2 || len(set.Rules) != 10 || len(set.Disabled) != 1 || set.Disabled[0] != "old-rule" {
		t.Fatalf("files %v, %d rules, disabled %v", set.Files, len(set.Rules), set.Disabled)
	}
	type want struct {
		agg       Aggregate
		metric    string
		scale     float64
		rate      bool
		window    time.Duration
		threshold float64
		suppress  time.Duration
		groupBy   int
	}
	for id, w := range map[string]want{
		"vertical-port-scan": {Distinct, "", 1, false, time.Minute, 100, 10 * time.Minute, 2},
		"host-sweep":         {Distinct, "", 1, false, 5 * time.Minute, 50, 5 * time.Minute, 2},
		"exfil":              {Sum, "bytes", 1, false, time.Hour, 500e6, time.Hour, 1},
		"flood":              {Sum, "packets", 1, true, 10 * time.Second, 100e3, 10 * time.Second, 1},
		"link-saturation":    {Sum, "bytes", 8, true, 30 * time.Second, 1e9, 30 * time.Second, 1},
		"many-flows":         {Sum, "", 1, false, time.Minute, 10e3, time.Minute, 1},
		"heavy-hitter":       {Top, "bytes", 1, false, 5 * time.Minute, 0, 5 * time.Minute, 1},
		"telnet-out":         {PerFlow, "", 1, false, 0, 0, 5 * time.Minute, 0},
	} {
		r := byID[id]
		if r == nil {
			t.Errorf("%s: missing", id)
			continue
		}
		metric := ""
		if r.Metric != nil {
			metric = r.Metric.Name
		}
		got := want{r.Aggregate, metric, r.Scale, r.Rate, r.Window, r.Threshold, r.Suppress, len(r.GroupBy)}
		if got != w {
			t.Errorf("%s:\n got %+v\nwant %+v", id, got, w)
		}
	}
	vps := byID["vertical-port-scan"]
	if vps.Name != "Vertical port scan" || vps.DistinctField.Name != "dst_port" || len(vps.Exceptions) != 1 ||
		vps.Notify[0] != "soc-webhook" || vps.Tags[0] != "T1046" || vps.Line != 2 || vps.Column != 5 {
		t.Errorf("vertical-port-scan: %+v", vps)
	}
	if hh := byID["heavy-hitter"]; hh.TopK != 10 || hh.TopShare != 0.2 {
		t.Errorf("heavy-hitter: k %d share %v", hh.TopK, hh.TopShare)
	}
	if byID["exfil"].Name != "exfil" {
		t.Errorf("name should default to the id")
	}
}

// Each testdata/bad/X.yaml yields exactly the errors in X.errors (run
// with -update to rewrite them after a deliberate change).
func TestLoadBadGolden(t *testing.T) {
	files, _ := filepath.Glob("testdata/bad/*.yaml")
	if len(files) == 0 {
		t.Fatal("no fixtures")
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			_, err := Load(f)
			var el ErrorList
			if !errors.As(err, &el) {
				t.Fatalf("want an ErrorList, got %v", err)
			}
			got := err.Error() + "\n"
			golden := strings.TrimSuffix(f, ".yaml") + ".errors"
			if *update {
				if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatal(err)
			}
			if got != string(want) {
				t.Errorf("errors differ (-got, +want):\n%s", lineDiff(got, string(want)))
			}
		})
	}
}

func lineDiff(got, want string) string {
	g, w := strings.Split(got, "\n"), strings.Split(want, "\n")
	inG, inW := map[string]bool{}, map[string]bool{}
	for _, l := range g {
		inG[l] = true
	}
	for _, l := range w {
		inW[l] = true
	}
	var b strings.Builder
	for _, l := range g {
		if !inW[l] {
			b.WriteString("- " + l + "\n")
		}
	}
	for _, l := range w {
		if !inG[l] {
			b.WriteString("+ " + l + "\n")
		}
	}
	if b.Len() == 0 {
		return "(same lines, different order)\n" + got
	}
	return b.String()
}

func TestDuplicatesAcrossFiles(t *testing.T) {
	set, err := Load("testdata/dup")
	want := `testdata/dup/b.yaml:2:3: lists.shared: "shared" is already defined at testdata/dup/a.yaml:2:3
testdata/dup/b.yaml:4:9: rule "same-id": id: duplicate id "same-id", first defined at testdata/dup/a.yaml:4:9`
	if err == nil || err.Error() != want {
		t.Fatalf("got:\n%v\nwant:\n%s", err, want)
	}
	// The valid rules of every file still load.
	if len(set.Rules) != 2 || set.Rules[0].ID != "same-id" || set.Rules[0].File != "testdata/dup/a.yaml" || set.Rules[1].ID != "other" {
		t.Fatalf("rules: %+v", set.Rules)
	}
}

func TestLoadPathErrors(t *testing.T) {
	dir := t.TempDir()
	_, err := Load(filepath.Join(dir, "missing.yaml"), dir)
	var el ErrorList
	if !errors.As(err, &el) || len(el) != 2 {
		t.Fatalf("got %v", err)
	}
	if !strings.Contains(el[1].Error(), "no *.yaml or *.yml files") {
		t.Errorf("got %v", el[1])
	}
}

func TestMacroRecursion(t *testing.T) {
	for _, tc := range []struct{ name, yaml, want string }{
		{"self", `
macros:
  a: a && syn
rules:
  - id: r
    severity: low
    where: a
`, `m.yaml:3:6: macros.a: recursive macro: a → a
m.yaml:7:12: rule "r": where: macro "a" has errors`},
		{"cycle", `
macros:
  a: b || syn
  b: "c"
  c: a
rules:
  - id: r
    severity: low
    where: syn && c
`, `m.yaml:3:6: macros.a: macro "b" has errors
m.yaml:4:7: macros.b: macro "c" has errors
m.yaml:5:6: macros.c: recursive macro: c → a → b → c
m.yaml:9:19: rule "r": where: macro "c" has errors`},
		{"nested ok", `
macros:
  a: b && c
  b: syn
  c: "!b || ack"
rules:
  - id: r
    severity: low
    where: a and a
`, ``},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := LoadBytes("m.yaml", []byte(tc.yaml))
			got := ""
			if err != nil {
				got = err.Error()
			}
			if got != tc.want {
				t.Errorf("got:\n%s\nwant:\n%s", got, tc.want)
			}
		})
	}
}

func TestRuleErrorFormat(t *testing.T) {
	e := &Error{File: "rules/scans.yaml", Line: 12, Column: 5, Rule: "port-scan", Field: "threshold", Msg: "must be > 0"}
	if got, want := e.Error(), `rules/scans.yaml:12:5: rule "port-scan": threshold: must be > 0`; got != want {
		t.Errorf("got %s", got)
	}
	e = &Error{File: "a.yaml", Line: 3, Column: 3, Field: "lists.nets[1]", Msg: "bad"}
	if got, want := e.Error(), `a.yaml:3:3: lists.nets[1]: bad`; got != want {
		t.Errorf("got %s", got)
	}
}

func TestLoadFS(t *testing.T) {
	set, err := LoadFS(os.DirFS("testdata"), "good")
	if err != nil || len(set.Rules) != 10 || set.Files[0] != "good/lists.yaml" {
		t.Fatalf("%v %+v", err, set)
	}
}
