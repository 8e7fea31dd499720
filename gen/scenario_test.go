package gen_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/flowguard/flowguard/alert"
	"github.com/flowguard/flowguard/engine"
	"github.com/flowguard/flowguard/engine/tuning"
	"github.com/flowguard/flowguard/examples"
	"github.com/flowguard/flowguard/flow"
	"github.com/flowguard/flowguard/gen"
	"github.com/flowguard/flowguard/ingest/pcap"
	"github.com/flowguard/flowguard/rules"
)

// replay runs a capture through the bundled rules, as flowguard replay
// does, and returns the alerts and the tuning report.
func replay(t testing.TB, capture []byte) ([]*alert.Alert, *tuning.Report, pcap.Stats) {
	t.Helper()
	set, err := rules.LoadFS(examples.Rules, "rules")
	if err != nil {
		t.Fatal(err)
	}
	col := tuning.New(set, tuning.Config{})
	var alerts []*alert.Alert
	eng, err := engine.New(engine.Config{
		Observe: col.Observe,
		Emit:    func(a *alert.Alert) { alerts = append(alerts, a); col.OnAlert(a) },
	}, set)
	if err != nil {
		t.Fatal(err)
	}
	rd, err := pcap.New(bytes.NewReader(capture), "scenario.pcap", pcap.Config{})
	if err != nil {
		t.Fatal(err)
	}
	var totals tuning.Totals
	if err := rd.Run(context.Background(), func(b []flow.Flow) { totals.Add(b); eng.Process(b) }); err != nil {
		t.Fatal(err)
	}
	eng.Flush()
	st := rd.Stats()
	totals.DecodeErrors = st.Malformed + st.Truncated
	return alerts, col.Report(totals), st
}

func matches(e gen.Expected, a *alert.Alert) bool {
	if a.Rule != e.Rule || len(a.Group) != len(e.Group) {
		return false
	}
	for k, v := range e.Group {
		if fmt.Sprint(a.Group[k]) != v {
			return false
		}
	}
	return true
}

// checkTruth checks that every behaviour raised its alert and that every
// alert is one a behaviour explains.
func checkTruth(t *testing.T, truth *gen.Truth, alerts []*alert.Alert) {
	t.Helper()
	for _, b := range truth.Behaviours {
		found := false
		for _, a := range alerts {
			found = found || matches(b.Expected, a)
		}
		if !found {
			t.Errorf("%s: no %s alert for %v", b.Behaviour, b.Rule, b.Group)
		}
	}
	for _, a := range alerts {
		explained := false
		for _, b := range truth.Behaviours {
			explained = explained || matches(b.Expected, a)
			for _, e := range b.Also {
				explained = explained || matches(e, a)
			}
		}
		if !explained {
			t.Errorf("unexpected alert: %s", a.Text())
		}
	}
}

func TestScenarioAlertsMatchTruth(t *testing.T) {
	for _, tc := range []struct {
		name string
		with []string
	}{
		{"all", gen.Behaviours},
		{"background", nil},
		{"exfil-alone", []string{gen.Exfil}},
		{"scan-sweep", []string{gen.Scan, gen.Sweep}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var buf bytes.Buffer
			truth, err := gen.WriteScenario(&buf, gen.Scenario{Seed: 7, Duration: 40 * time.Second, With: tc.with})
			if err != nil {
				t.Fatal(err)
			}
			alerts, rep, st := replay(t, buf.Bytes())
			if st.Packets != truth.Packets || st.Malformed+st.Truncated+st.NonIP != 0 {
				t.Errorf("read %d packets (%d malformed, %d truncated, %d non-IP), wrote %d", st.Packets, st.Malformed, st.Truncated, st.NonIP, truth.Packets)
			}
			if rep.Totals.Bytes != truth.Bytes || rep.Totals.Packets != truth.Packets {
				t.Errorf("flows hold %d packets, %d bytes; truth says %d, %d", rep.Totals.Packets, rep.Totals.Bytes, truth.Packets, truth.Bytes)
			}
			checkTruth(t, truth, alerts)
			if len(tc.with) == 0 && len(alerts) != 0 {
				t.Errorf("background raised %d alerts", len(alerts))
			}
			if testing.Verbose() {
				var b strings.Builder
				rep.WriteText(&b)
				t.Logf("%d packets, %d bytes of capture\n%s", truth.Packets, buf.Len(), b.String())
			}
		})
	}
}

func TestScenarioDeterministic(t *testing.T) {
	var a, b bytes.Buffer
	cfg := gen.Scenario{Seed: 3, Duration: 30 * time.Second, With: []string{gen.Scan}}
	if _, err := gen.WriteScenario(&a, cfg); err != nil {
		t.Fatal(err)
	}
	if _, err := gen.WriteScenario(&b, cfg); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a.Bytes(), b.Bytes()) {
		t.Fatal("same seed, different captures")
	}
}

func TestDefaultScenarioSize(t *testing.T) {
	if testing.Short() {
		t.Skip("writes the default scenario")
	}
	path := filepath.Join(t.TempDir(), "out.pcap")
	truth, err := gen.WriteScenarioFile(path, gen.Scenario{With: gen.Behaviours})
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(path + ".truth.json"); err != nil {
		t.Fatal(err)
	}
	// 1.5 MB of it is the SYN flood: 22,000 frames of 70 bytes.
	if fi.Size() > 2.6e6 {
		t.Errorf("default scenario is %d bytes", fi.Size())
	}
	bgRate := float64(truth.Background.Packets) / 60
	if bgRate < 150 || bgRate > 250 {
		t.Errorf("background ran at %.0f packets/s, want about 200", bgRate)
	}
	t.Logf("default scenario: %d bytes, %d packets (%d background, %d sessions)", fi.Size(), truth.Packets, truth.Background.Packets, truth.Background.Sessions)
}

func TestScenarioValidate(t *testing.T) {
	err := gen.Scenario{With: []string{"scan", "worm", "scan"}, BackgroundRate: -1}.Validate()
	if err == nil {
		t.Fatal("no error")
	}
	for _, want := range []string{`behaviour "worm": unknown`, `behaviour "scan": given twice`, "background rate"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
}

// Every seed's scenario, at the defaults `flowguard gen scenario` uses,
// raises the alert of each behaviour in its truth file. The packet meter
// ends single-packet flows after its 15 s idle timeout, so a SYN flood's
// flows reach a 10 s rate rule 15 s late: they count because the engine
// allows lateness.
func TestScenarioSeeds(t *testing.T) {
	if testing.Short() {
		t.Skip("ten default scenarios")
	}
	for seed := uint64(1); seed <= 10; seed++ {
		t.Run(fmt.Sprint("seed", seed), func(t *testing.T) {
			var buf bytes.Buffer
			truth, err := gen.WriteScenario(&buf, gen.Scenario{Seed: seed, With: gen.Behaviours})
			if err != nil {
				t.Fatal(err)
			}
			if len(truth.Behaviours) != len(gen.Behaviours) {
				t.Fatalf("truth holds %d behaviours, want %d", len(truth.Behaviours), len(gen.Behaviours))
			}
			alerts, _, _ := replay(t, buf.Bytes())
			checkTruth(t, truth, alerts)
		})
	}
}
