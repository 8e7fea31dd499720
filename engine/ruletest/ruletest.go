// Package ruletest runs rule test cases: a folder holding flows.jsonl (flows
// in flowguard's or goflow2's JSON) and expected.jsonl (the alerts the rules
// must raise on them, each line a partial alert: only the keys it gives are
// compared). Every alert raised must be expected and every expected alert
// raised, so a fixture also catches other rules of the pack firing by
// mistake.
package ruletest

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"

	"github.com/flowguard/flowguard/alert"
	"github.com/flowguard/flowguard/engine"
	"github.com/flowguard/flowguard/flow"
	"github.com/flowguard/flowguard/ingest/flowfile"
	"github.com/flowguard/flowguard/rules"
)

// Input and expectation file names inside a case folder.
const (
	FlowsFile    = "flows.jsonl"
	ExpectedFile = "expected.jsonl"
)

// Result is the outcome of one case.
type Result struct {
	Case       string   // the case folder
	Alerts     int      // alerts raised
	Missing    []string // expected alerts not raised (as their JSON)
	Unexpected []string // alerts raised but not expected (rule and group)
	Err        error    // the case could not run
}

// Passed reports whether the case ran and matched.
func (r Result) Passed() bool { return r.Err == nil && len(r.Missing) == 0 && len(r.Unexpected) == 0 }

// String says how the case went, with every difference.
func (r Result) String() string {
	var b strings.Builder
	alerts := fmt.Sprintf("%d alerts", r.Alerts)
	if r.Alerts == 1 {
		alerts = "1 alert"
	}
	switch {
	case r.Err != nil:
		fmt.Fprintf(&b, "FAIL %s: %v", r.Case, r.Err)
	case r.Passed():
		fmt.Fprintf(&b, "ok   %s (%s)", r.Case, alerts)
	default:
		fmt.Fprintf(&b, "FAIL %s (%s)", r.Case, alerts)
		for _, m := range r.Missing {
			fmt.Fprintf(&b, "\n     missing:    %s", m)
		}
		for _, u := range r.Unexpected {
			fmt.Fprintf(&b, "\n     unexpected: %s", u)
		}
	}
	return b.String()
}

// FindCases returns the case folders under dir/tests/ (a rules folder) or
// dir itself when it holds flows.jsonl.
func FindCases(dir string) ([]string, error) {
	if _, err := os.Stat(filepath.Join(dir, FlowsFile)); err == nil {
		return []string{dir}, nil
	}
	matches, err := filepath.Glob(filepath.Join(dir, "tests", "*", FlowsFile))
	if err != nil {
		return nil, err
	}
	var cases []string
	for _, m := range matches {
		cases = append(cases, filepath.Dir(m))
	}
	sort.Strings(cases)
	return cases, nil
}

// Run runs one case against a rule set.
func Run(set *rules.Set, dir string) Result { return RunContext(context.Background(), set, dir) }

// RunContext is Run stopping when ctx ends (Ctrl-C): reading flows.jsonl
// ends at once and the result's Err is ctx's error.
func RunContext(ctx context.Context, set *rules.Set, dir string) Result {
	res := Result{Case: dir}
	want, err := readExpected(filepath.Join(dir, ExpectedFile))
	if err != nil {
		res.Err = err
		return res
	}
	var got []*alert.Alert
	eng, err := engine.New(engine.Config{Emit: func(a *alert.Alert) { got = append(got, a) }}, set)
	if err != nil {
		res.Err = err
		return res
	}
	src, err := flowfile.Open(filepath.Join(dir, FlowsFile), flowfile.Options{})
	if err != nil {
		res.Err = err
		return res
	}
	if err := src.Run(ctx, func(b []flow.Flow) { eng.Process(b) }); err != nil {
		res.Err = err
		return res
	}
	if st := src.Stats(); st.Malformed > 0 {
		res.Err = fmt.Errorf("%s: %d malformed lines", FlowsFile, st.Malformed)
		return res
	}
	res.Alerts = len(got)
	used := make([]bool, len(got))
	for _, w := range want {
		found := false
		for i, a := range got {
			if !used[i] && matches(w.fields, a) {
				used[i], found = true, true
				break
			}
		}
		if !found {
			res.Missing = append(res.Missing, fmt.Sprintf("line %d: %s", w.line, w.raw))
		}
	}
	for i, a := range got {
		if !used[i] {
			res.Unexpected = append(res.Unexpected, fmt.Sprintf(`{"rule":%q,"group":%s,"value":%s}`,
				a.Rule, mustJSON(a.Group), alert.FormatNumber(a.Value)))
		}
	}
	return res
}

type expectation struct {
	line   int
	raw    string
	fields map[string]any
}

func readExpected(path string) ([]expectation, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil // no file: no alert expected
	}
	if err != nil {
		return nil, err
	}
	var out []expectation
	sc := bufio.NewScanner(bytes.NewReader(data))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") || strings.HasPrefix(line, "//") {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			return nil, fmt.Errorf("%s:%d: %w", path, n, err)
		}
		if _, ok := m["rule"]; !ok {
			return nil, fmt.Errorf("%s:%d: an expected alert needs at least \"rule\"", path, n)
		}
		out = append(out, expectation{line: n, raw: line, fields: m})
	}
	return out, sc.Err()
}

// matches compares the keys an expectation gives with the alert's JSON.
func matches(want map[string]any, a *alert.Alert) bool {
	var got map[string]any
	if err := json.Unmarshal(mustJSON(a), &got); err != nil {
		return false
	}
	for k, v := range want {
		if !reflect.DeepEqual(got[k], v) {
			return false
		}
	}
	return true
}

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err) // alerts and groups always encode
	}
	return b
}
