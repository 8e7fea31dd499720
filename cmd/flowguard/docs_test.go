package main

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/flowguard/flowguard/flow"
)

func readDoc(t *testing.T, name string) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("..", "..", "docs", name))
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

// docNames returns the `names` in the first column of a Markdown table.
func docNames(doc string) map[string]bool {
	names := map[string]bool{}
	re := regexp.MustCompile("`([a-z_]+)`")
	for _, line := range strings.Split(doc, "\n") {
		if !strings.HasPrefix(line, "| `") {
			continue
		}
		first := strings.SplitN(line, "|", 3)[1]
		for _, m := range re.FindAllStringSubmatch(first, -1) {
			names[m[1]] = true
		}
	}
	return names
}

// Every field of flow.Flow (its name in rules) has a row in
// docs/flow-fields.md, and every row names a field.
func TestDocsFlowFields(t *testing.T) {
	documented := docNames(readDoc(t, "flow-fields.md"))
	fields := map[string]bool{}
	ft := reflect.TypeFor[flow.Flow]()
	for i := range ft.NumField() {
		name := ft.Field(i).Tag.Get("expr")
		fields[name] = true
		if !documented[name] {
			t.Errorf("flow field %s (%s) is not in docs/flow-fields.md", name, ft.Field(i).Type)
		}
	}
	for name := range documented {
		if !fields[name] {
			t.Errorf("docs/flow-fields.md documents %s, which flow.Flow lacks", name)
		}
	}
}

// Every flowguard_* metric a running daemon exposes is in docs/metrics.md
// with its type and labels, and every metric documented there is exposed.
// The daemon runs with what makes every family appear: a Redis store, an
// alertmanager notifier, a spooling webhook, flows of three protocols.
func TestDocsMetricsAndRoutes(t *testing.T) {
	redis := startRedis(t)
	tmp := t.TempDir()
	d := startDaemon(t, fmt.Sprintf(`store: redis://%s/0
notifiers:
  - {name: f, type: file, path: %s}
  - {name: hook, type: webhook, url: "http://127.0.0.1:1/x", delivery: {spool_dir: %s}}
  - {name: am, type: alertmanager, urls: ["http://127.0.0.1:1"]}
`, redis, filepath.Join(tmp, "alerts.jsonl"), filepath.Join(tmp, "spool")))
	for _, proto := range []string{"v9", "v5", "sflow"} {
		out, err := exec.Command(binary(t), "gen", "stream", "--to", fmt.Sprintf("127.0.0.1:%d", d.udp), "--proto", proto,
			"--count", "500", "--rate", "-1").CombinedOutput()
		if err != nil {
			t.Fatalf("gen stream --proto %s: %v\n%s", proto, err, out)
		}
	}
	resp, err := http.Get("http://" + d.http + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()

	// name → type and labels, from the exposition.
	type family struct {
		typ    string
		labels map[string]bool
	}
	exposed := map[string]*family{}
	for _, m := range regexp.MustCompile(`(?m)^# TYPE (flowguard_\w+) (\w+)$`).FindAllStringSubmatch(string(body), -1) {
		exposed[m[1]] = &family{typ: m[2], labels: map[string]bool{}}
	}
	for _, m := range regexp.MustCompile(`(?m)^(flowguard_\w+)\{([^}]*)\}`).FindAllStringSubmatch(string(body), -1) {
		if f := exposed[m[1]]; f != nil {
			for _, kv := range regexp.MustCompile(`(\w+)="`).FindAllStringSubmatch(m[2], -1) {
				f.labels[kv[1]] = true
			}
		}
	}
	if len(exposed) < 60 {
		t.Fatalf("only %d flowguard_ families on /metrics:\n%s", len(exposed), body)
	}
	doc := readDoc(t, "metrics.md")
	rowRE := regexp.MustCompile("(?m)^\\| `(flowguard_\\w+)` \\| (\\w+) \\| ([^|]*) \\|")
	documented := map[string]bool{}
	for _, m := range rowRE.FindAllStringSubmatch(doc, -1) {
		name, typ := m[1], m[2]
		documented[name] = true
		f := exposed[name]
		if f == nil {
			t.Errorf("docs/metrics.md lists %s, which the daemon does not expose", name)
			continue
		}
		if typ != f.typ {
			t.Errorf("%s is a %s, docs/metrics.md says %s", name, f.typ, typ)
		}
		var labels []string
		for l := range f.labels {
			labels = append(labels, "`"+l+"`")
		}
		sort.Strings(labels)
		if got, want := strings.TrimSpace(m[3]), strings.Join(labels, ", "); got != want {
			t.Errorf("%s has labels %q, docs/metrics.md says %q", name, want, got)
		}
	}
	for name := range exposed {
		if !documented[name] {
			t.Errorf("the daemon exposes %s, which docs/metrics.md does not list", name)
		}
	}

	// Every route the code registers is documented, and every documented
	// route answers.
	api := readDoc(t, "http-api.md")
	headRE := regexp.MustCompile(`(?m)^## GET (/\S*)$`)
	var documentedRoutes []string
	for _, m := range headRE.FindAllStringSubmatch(api, -1) {
		documentedRoutes = append(documentedRoutes, m[1])
	}
	for _, route := range registeredRoutes(t) {
		found := false
		for _, r := range documentedRoutes {
			found = found || r == route
		}
		if !found {
			t.Errorf("the daemon serves %s, which docs/http-api.md has no \"## GET %s\" for", route, route)
		}
	}
	for _, route := range documentedRoutes {
		resp, err := http.Get("http://" + d.http + route)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Errorf("GET %s (documented): %d", route, resp.StatusCode)
		}
	}
}

// registeredRoutes finds the paths the daemon's code hands to an HTTP mux:
// string literals "/..." or "GET /..." in calls of Handle or HandleFunc in
// the non-test Go files of the repository.
func registeredRoutes(t *testing.T) []string {
	t.Helper()
	root := filepath.Join("..", "..")
	callRE := regexp.MustCompile(`Handle(?:Func)?\("(?:[A-Z]+ )?(/[^"]*)"`)
	seen := map[string]bool{}
	err := filepath.WalkDir(root, func(path string, e os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if e.IsDir() && (e.Name() == ".git" || e.Name() == "testdata") {
			return filepath.SkipDir
		}
		if e.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		for _, m := range callRE.FindAllStringSubmatch(string(data), -1) {
			seen[m[1]] = true
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	var routes []string
	for r := range seen {
		routes = append(routes, r)
	}
	sort.Strings(routes)
	if len(routes) < 4 {
		t.Fatalf("found only %v registered", routes)
	}
	return routes
}
