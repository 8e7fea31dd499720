package main

import (
	"bytes"
	"path/filepath"
	"strings"
	"testing"

	"github.com/flowguard/flowguard/engine"
)

// replay --learn writes what the rules that learn learned from a capture
// (the file a daemon's learn.state_dir holds), loads it again in the next
// replay, and the tuning report shows the learned groups.
func TestReplayLearnWritesAndLoadsState(t *testing.T) {
	state := filepath.Join(t.TempDir(), "learned", engine.LearnedFile)
	capture := filepath.Join("..", "..", "testdata", "beacon.pcap")
	var out, errb bytes.Buffer
	if code := run([]string{"replay", "--learn", state, capture}, &out, &errb); code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	if !strings.Contains(errb.String(), "learned     beacon") || !strings.Contains(errb.String(), "dst_addr=203.0.113.80 dst_port=8080 src_addr=10.77.0.2") {
		t.Errorf("the tuning report lacks the learned beacon:\n%s", errb.String())
	}
	st, err := engine.ReadLearnedFile(state)
	if err != nil || st == nil {
		t.Fatalf("state: %v", err)
	}
	ids := map[string]bool{}
	for _, r := range st.Rules {
		ids[r.ID] = len(r.Baseline)+len(r.Terms)+len(r.Beacons) > 0
	}
	if !ids["beaconing"] || !ids["exfiltration-above-normal"] {
		t.Errorf("state holds %v", ids)
	}
	out.Reset()
	errb.Reset()
	if code := run([]string{"replay", "--learn", state, capture}, &out, &errb); code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	if !strings.Contains(errb.String(), "learned state of 4 rules loaded") {
		t.Errorf("the second replay did not load the state:\n%s", errb.String())
	}
}
