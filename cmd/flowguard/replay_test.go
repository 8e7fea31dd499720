package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"testing"
)

// replayJSON runs `flowguard replay --format json` in-process and returns
// the alerts and the exit code.
func replayJSON(t *testing.T, args ...string) ([]map[string]any, []byte, int) {
	t.Helper()
	var out, errb bytes.Buffer
	code := run(append([]string{"replay", "--format", "json"}, args...), &out, &errb)
	var alerts []map[string]any
	sc := bufio.NewScanner(bytes.NewReader(out.Bytes()))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var a map[string]any
		if err := json.Unmarshal(sc.Bytes(), &a); err != nil {
			t.Fatalf("alert line is not JSON: %v: %s", err, sc.Text())
		}
		alerts = append(alerts, a)
	}
	if code != 0 {
		t.Logf("stderr: %s", errb.String())
	}
	return alerts, out.Bytes(), code
}

func hasTag(a map[string]any, tag string) bool {
	tags, _ := a["tags"].([]any)
	for _, x := range tags {
		if x == tag {
			return true
		}
	}
	return false
}

func group(a map[string]any) map[string]any {
	g, _ := a["group"].(map[string]any)
	return g
}

// The real captures of testdata/ (see testdata/README.md) raise exactly
// the detections they were made for, with the bundled rules, and nothing
// on their ordinary traffic.
func TestReplayRealCaptures(t *testing.T) {
	cases := []struct {
		file string
		want []string // rule:group, in any order, and nothing else
	}{
		{"portscan.pcap", []string{
			"vertical-port-scan:dst_addr=127.0.0.9,src_addr=127.0.0.5",
			"distributed-port-scan:dst_addr=127.0.0.9", // 2,000 ports of one host
		}},
		{"hostsweep.pcap", []string{
			"horizontal-host-sweep:dst_port=22,src_addr=127.0.0.6",
			"horizontal-host-sweep:dst_port=445,src_addr=127.0.0.6",
			"horizontal-host-sweep:dst_port=3389,src_addr=127.0.0.6",
		}},
		{"upload.pcap", []string{
			"outbound-exfiltration:dst_addr=127.0.0.30,src_addr=127.0.0.7",
			"heavy-hitter:src_addr=127.0.0.7",
		}},
		{"normal.pcap", nil},
	}
	for _, c := range cases {
		t.Run(c.file, func(t *testing.T) {
			all, _, code := replayJSON(t, filepath.Join("..", "..", "testdata", c.file))
			if code != 0 {
				t.Fatalf("exit %d", code)
			}
			alerts := fired(all) // escalations are the same alerts
			got := map[string]bool{}
			for _, a := range alerts {
				got[key(a)] = true
				if strings.Contains(a["rule"].(string), "scan") || strings.Contains(a["rule"].(string), "sweep") {
					if !hasTag(a, "T1046") {
						t.Errorf("%s lacks T1046: %v", a["rule"], a["tags"])
					}
				}
			}
			if len(got) != len(alerts) {
				t.Errorf("%d alerts for %d distinct rule/groups: suppression failed", len(alerts), len(got))
			}
			for _, w := range c.want {
				if !got[w] {
					t.Errorf("missing alert %s", w)
				}
				delete(got, w)
			}
			for k := range got {
				t.Errorf("unexpected alert %s", k)
			}
		})
	}
}

func key(a map[string]any) string {
	var parts []string
	for k, v := range group(a) {
		b, _ := json.Marshal(v)
		parts = append(parts, k+"="+strings.Trim(string(b), `"`))
	}
	sort.Strings(parts)
	return a["rule"].(string) + ":" + strings.Join(parts, ",")
}

// The alert JSON carries every field of the contract, and event times.
func TestAlertJSONContract(t *testing.T) {
	alerts, _, _ := replayJSON(t, filepath.Join("..", "..", "testdata", "portscan.pcap"))
	if len(alerts) == 0 {
		t.Fatal("no alert")
	}
	a := alerts[0]
	for _, k := range []string{"id", "rule", "name", "severity", "tags", "group", "value", "threshold", "window",
		"first_seen", "last_seen", "fired_at", "message", "enrichment", "sampling_rate", "samples"} {
		if _, ok := a[k]; !ok {
			t.Errorf("alert lacks %q", k)
		}
	}
	if !strings.HasPrefix(a["fired_at"].(string), "2026-11-27T21:40:") {
		t.Errorf("fired_at %v is not the capture's own time", a["fired_at"])
	}
	samples, _ := a["samples"].([]any)
	if len(samples) == 0 || len(samples) > 5 {
		t.Errorf("%d samples", len(samples))
	}
}

// Replaying the same input twice gives byte-identical alerts.
func TestReplayTwiceIsByteIdentical(t *testing.T) {
	demo := filepath.Join("..", "..", "testdata", "demo.pcap")
	_, a, _ := replayJSON(t, demo)
	_, b, _ := replayJSON(t, demo)
	if len(a) == 0 {
		t.Fatal("the demo raised no alert")
	}
	if !bytes.Equal(a, b) {
		t.Fatalf("two replays differ:\n%s\n---\n%s", a, b)
	}
}

// A bad rule file exits 2 and names every error as file:line:col.
func TestBadRulesExit2WithEveryError(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.yaml")
	os.WriteFile(bad, []byte(`rules:
  - id: one
    severity: urgent
    where: "dst_prot == 22"
  - id: two
    severity: high
    distinct: dst_port
    group_by: [src_adr]
    window: 1m
    threshold: 0
`), 0o644)
	var out, errb bytes.Buffer
	code := run([]string{"rules", "validate", bad}, &out, &errb)
	if code != 2 {
		t.Fatalf("exit %d, want 2; stderr %s", code, errb.String())
	}
	lines := regexp.MustCompile(`(?m)^`+regexp.QuoteMeta(bad)+`:\d+:\d+: rule "(one|two)": `).FindAllString(errb.String(), -1)
	if len(lines) < 4 {
		t.Fatalf("want 4 errors as file:line:col, got %d:\n%s", len(lines), errb.String())
	}
	// replay refuses the same rules with exit 2 too.
	code = run([]string{"replay", "--rules", bad, filepath.Join("..", "..", "testdata", "normal.pcap")}, &out, &errb)
	if code != 2 {
		t.Fatalf("replay with bad rules: exit %d, want 2", code)
	}
}

// `rules test` passes on the bundled pack and fails, saying how, when a
// fixture expects what does not happen.
func TestRulesTest(t *testing.T) {
	var out, errb bytes.Buffer
	if code := run([]string{"rules", "test", filepath.Join("..", "..", "examples", "rules")}, &out, &errb); code != 0 {
		t.Fatalf("bundled pack: exit %d\n%s%s", code, out.String(), errb.String())
	}
	// A copy of the pack whose scan fixture expects a different value.
	dir := t.TempDir()
	copyDir(t, filepath.Join("..", "..", "examples", "rules"), dir)
	exp := filepath.Join(dir, "tests", "vertical-port-scan", "expected.jsonl")
	os.WriteFile(exp, []byte(`{"rule":"vertical-port-scan","value":99}`+"\n"), 0o644)
	out.Reset()
	code := run([]string{"rules", "test", dir}, &out, &errb)
	if code != 1 {
		t.Fatalf("exit %d, want 1", code)
	}
	s := out.String()
	if !strings.Contains(s, "FAIL") || !strings.Contains(s, `missing:    line 1: {"rule":"vertical-port-scan","value":99}`) ||
		!strings.Contains(s, `unexpected: {"rule":"vertical-port-scan","group":{"dst_addr":"10.1.2.3","src_addr":"203.0.113.50"},"value":100}`) {
		t.Fatalf("output does not say how the case failed:\n%s", s)
	}
}

func copyDir(t *testing.T, from, to string) {
	t.Helper()
	err := filepath.WalkDir(from, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(from, p)
		if d.IsDir() {
			return os.MkdirAll(filepath.Join(to, rel), 0o755)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(to, rel), b, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
}

// With GeoIP databases in the config, alerts carry enrichment of their
// group's addresses, and rules on countries fire (the test database puts
// 127.0.0.5, the scanner, in KP; see enrich/geoip/geoiptest).
func TestReplayWithEnrichment(t *testing.T) {
	geo, _ := filepath.Abs(filepath.Join("..", "..", "enrich", "geoip", "testdata"))
	cfg := filepath.Join(t.TempDir(), "flowguard.yaml")
	os.WriteFile(cfg, []byte("enrich:\n  geoip:\n    databases:\n"+
		"      - "+filepath.Join(geo, "flowguard-test-City.mmdb")+"\n"+
		"      - "+filepath.Join(geo, "flowguard-test-ASN.mmdb")+"\n"), 0o644)
	alerts, _, code := replayJSON(t, "-c", cfg, filepath.Join("..", "..", "testdata", "portscan.pcap"))
	if code != 0 {
		t.Fatalf("exit %d", code)
	}
	var scan, country map[string]any
	for _, a := range alerts {
		switch a["rule"] {
		case "vertical-port-scan":
			scan = a
		case "blocked-country":
			// The scanner's flows and the target's answers both fire;
			// alerts come in time order, the answers' may come last.
			if country == nil || group(a)["src_addr"] == "127.0.0.5" {
				country = a
			}
		}
	}
	if scan == nil || country == nil {
		t.Fatalf("want a scan and a blocked-country alert, got %d alerts", len(alerts))
	}
	src := scan["enrichment"].(map[string]any)["src_addr"].(map[string]any)
	if src["country"] != "KP" || src["asn"] != float64(64500) || src["as_org"] != "Example Org" {
		t.Errorf("scanner enrichment %v", src)
	}
	if g := group(country); g["src_addr"] != "127.0.0.5" {
		t.Errorf("blocked-country group %v", g)
	}
}

// A pcap of captured flow export (softflowd's NetFlow v9 and IPFIX,
// pmacct's sFlow) replays as the flows it carried: the scan inside is
// found. With --export-ports none the datagrams are metered as UDP.
func TestReplayCapturedExport(t *testing.T) {
	for _, f := range []string{
		filepath.Join("..", "..", "ingest", "netflow", "testdata", "export-v9.pcap"),
		filepath.Join("..", "..", "ingest", "netflow", "testdata", "export-ipfix.pcap"),
		filepath.Join("..", "..", "ingest", "sflow", "testdata", "pmacctd-sfprobe.pcap"),
	} {
		t.Run(filepath.Base(f), func(t *testing.T) {
			all, _, code := replayJSON(t, f)
			var alerts []map[string]any
			for _, a := range fired(all) {
				// the scan covers 2,000 ports: the target-side rule sees it too
				if a["rule"] != "distributed-port-scan" {
					alerts = append(alerts, a)
				}
			}
			if code != 0 || len(alerts) != 1 || alerts[0]["rule"] != "vertical-port-scan" || group(alerts[0])["src_addr"] != "127.0.0.5" {
				t.Fatalf("exit %d, alerts %v", code, alerts)
			}
			alerts, _, _ = replayJSON(t, "--export-ports", "none", f)
			if len(alerts) != 0 {
				t.Fatalf("metered export datagrams raised %d alerts", len(alerts))
			}
		})
	}
}

// The tuning summary (--stats json) of the committed scenario capture
// (made by `flowguard gen scenario`, ground truth beside it) names each
// injected behaviour's rule as fired for its group, and shows near misses
// of the background.
func TestReplayTuningSummaryOnScenario(t *testing.T) {
	pcap := filepath.Join("..", "..", "testdata", "scenario.pcap")
	var truth struct {
		Behaviours []struct {
			Behaviour string            `json:"behaviour"`
			Rule      string            `json:"rule"`
			Group     map[string]string `json:"group"`
			Also      []struct {
				Rule string `json:"rule"`
			} `json:"also"`
		} `json:"behaviours"`
	}
	b, err := os.ReadFile(pcap + ".truth.json")
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &truth); err != nil || len(truth.Behaviours) < 4 {
		t.Fatalf("truth: %v (%d behaviours)", err, len(truth.Behaviours))
	}
	var out, errb bytes.Buffer
	if code := run([]string{"replay", "--format", "json", "--stats", "json", pcap}, &out, &errb); code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	var rep struct {
		Totals struct{ Flows uint64 } `json:"totals"`
		Rules  []struct {
			Rule       string                           `json:"rule"`
			Alerts     int                              `json:"alerts"`
			Fired      []struct{ Group map[string]any } `json:"fired"`
			NearMisses []struct{ Group map[string]any } `json:"near_misses"`
		} `json:"rules"`
	}
	if err := json.Unmarshal(errb.Bytes(), &rep); err != nil {
		t.Fatalf("stderr is not the JSON report: %v\n%s", err, errb.String())
	}
	if rep.Totals.Flows == 0 {
		t.Error("no flows in the totals")
	}
	for _, bh := range truth.Behaviours {
		found := false
		for _, r := range rep.Rules {
			if r.Rule != bh.Rule {
				continue
			}
			for _, f := range r.Fired {
				match := true
				for k, v := range bh.Group {
					if fmt.Sprint(f.Group[k]) != v {
						match = false
					}
				}
				found = found || match
			}
			if bh.Rule == "vertical-port-scan" && len(r.NearMisses) == 0 {
				t.Errorf("%s: no near misses from the background", r.Rule)
			}
		}
		if !found {
			t.Errorf("%s: rule %s did not fire for %v", bh.Behaviour, bh.Rule, bh.Group)
		}
	}
	// The alerts on stdout agree with the truth too: every alert belongs
	// to an injected behaviour (or its noted side effect).
	for _, a := range alertsOf(t, out.Bytes()) {
		ok := false
		for _, bh := range truth.Behaviours {
			ok = ok || a["rule"] == bh.Rule
			for _, also := range bh.Also {
				ok = ok || a["rule"] == also.Rule
			}
		}
		if !ok && a["rule"] != "heavy-hitter" {
			t.Errorf("alert %v %v is no injected behaviour", a["rule"], a["group"])
		}
	}
}

// replay --notify sends the alerts to the config's notifiers too (here a
// real HTTP receiver behind a webhook notifier).
func TestReplayToLiveNotifiers(t *testing.T) {
	var mu sync.Mutex
	var got []map[string]any
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var a map[string]any
		json.NewDecoder(r.Body).Decode(&a)
		mu.Lock()
		got = append(got, a)
		mu.Unlock()
	}))
	defer srv.Close()
	cfg := filepath.Join(t.TempDir(), "flowguard.yaml")
	os.WriteFile(cfg, []byte("notifiers:\n  - {name: hook, type: webhook, url: "+srv.URL+"}\n"), 0o644)
	alerts, _, code := replayJSON(t, "-c", cfg, "--notify", "--speed", "1000", filepath.Join("..", "..", "testdata", "portscan.pcap"))
	if code != 0 || len(fired(alerts)) != 2 { // vertical-port-scan, distributed-port-scan (and their escalations)
		t.Fatalf("exit %d, %d alerts on stdout", code, len(fired(alerts)))
	}
	mu.Lock()
	defer mu.Unlock()
	if len(got) != len(alerts) {
		t.Fatalf("the webhook received %v", got)
	}
	for i := range got {
		if got[i]["rule"] != alerts[i]["rule"] || got[i]["id"] != alerts[i]["id"] {
			t.Fatalf("the webhook received %v", got)
		}
	}
}
