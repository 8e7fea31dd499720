package gen_test

import (
	"bytes"
	"testing"
	"time"

	"github.com/flowguard/flowguard/gen"
)

// The attack behaviours, alone and over the office mix, raise their
// alerts (and only what the truth explains) with the bundled rules, with
// the quirks that used to hide them: SYN|RST flows carrying thousands of
// SYNs, many reflectors, short logins.
func TestScenarioAttacksMatchTruth(t *testing.T) {
	for _, with := range [][]string{{gen.FloodRST}, {gen.Reflection}, {gen.BruteForce}, gen.Attacks} {
		var buf bytes.Buffer
		truth, err := gen.WriteScenario(&buf, gen.Scenario{Seed: 11, Duration: 40 * time.Second, With: with})
		if err != nil {
			t.Fatal(err)
		}
		if len(truth.Behaviours) != len(with) {
			t.Fatalf("%v: %d behaviours in the truth", with, len(truth.Behaviours))
		}
		alerts, _, _ := replay(t, buf.Bytes())
		checkTruth(t, truth, alerts)
	}
}

// The learning behaviours, alone and over the office mix, raise their
// alerts with the bundled learning rules: the beacon once its beats are
// in, the step-up once the host's baseline has warmed up.
func TestScenarioLearningMatchTruth(t *testing.T) {
	for _, with := range [][]string{{gen.Beacon}, {gen.StepUp}, append(append([]string(nil), gen.Behaviours...), gen.Learning...)} {
		var buf bytes.Buffer
		truth, err := gen.WriteScenario(&buf, gen.Scenario{Seed: 12, Duration: 40 * time.Second, With: with})
		if err != nil {
			t.Fatal(err)
		}
		alerts, _, _ := replay(t, buf.Bytes())
		checkTruth(t, truth, alerts)
	}
}
