package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// beaconPair is the beacon of testdata/beacon.pcap
// (testdata/make-beacon-capture.sh): a python client calling a local HTTP
// server every 5 s +-10% for 5 minutes.
const beaconPair = "beaconing:dst_addr=203.0.113.80,dst_port=8080,src_addr=10.77.0.2"

// The beacon capture, replayed as packets, raises exactly one alert with
// the bundled rules: the beacon, with its interval and count. The ordinary
// traffic beside it (browsing at random intervals, a DNS poll every 5 s,
// an NTP poll every 8 s) raises none.
func TestReplayBeaconCapture(t *testing.T) {
	alerts, _, code := replayJSON(t, filepath.Join("..", "..", "testdata", "beacon.pcap"))
	if code != 0 {
		t.Fatalf("exit %d", code)
	}
	checkAttackAlerts(t, alerts, map[string]string{beaconPair: "T1071"})
	for _, a := range alerts {
		b, _ := a["beacon"].(map[string]any)
		ivl, _ := b["interval"].(float64)
		if n, _ := b["count"].(float64); ivl < 4.5 || ivl > 5.5 || n < 10 {
			t.Errorf("beacon %v: want an interval of about 5 s over 10 calls or more", b)
		}
	}
}

// No other committed capture raises a beacon alert: the office mix of
// scenario.pcap (internal clients polling NTP and DNS, browsing), the
// attacks, and the loopback captures' periodic traffic (an HTTP GET every
// 2 s, a DNS exchange a second) even when the rule is widened to any
// source.
func TestCommittedCapturesRaiseNoOtherBeacon(t *testing.T) {
	data, err := os.ReadFile(filepath.Join("..", "..", "examples", "rules", "learning.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	widened := strings.Replace(string(data), `where: "src_addr in internal_nets && outbound && !(dst_port in beacon_ignore_ports)"`,
		`where: "!(dst_port in beacon_ignore_ports)"`, 1)
	if widened == string(data) {
		t.Fatal("the beaconing rule's condition changed: update this test")
	}
	dir := t.TempDir()
	for _, f := range []string{"lists.yaml", "learning.yaml"} {
		src := filepath.Join("..", "..", "examples", "rules", f)
		b, _ := os.ReadFile(src)
		if f == "learning.yaml" {
			b = []byte(widened)
		}
		os.WriteFile(filepath.Join(dir, f), b, 0o644)
	}
	pcaps, _ := filepath.Glob(filepath.Join("..", "..", "testdata", "*.pcap"))
	if len(pcaps) < 10 {
		t.Fatalf("only %d captures", len(pcaps))
	}
	for _, p := range pcaps {
		if filepath.Base(p) == "beacon.pcap" {
			continue
		}
		for _, args := range [][]string{{p}, {"--rules", dir, p}} {
			alerts, _, _ := replayJSON(t, args...)
			for _, a := range alerts {
				if a["rule"] == "beaconing" {
					t.Errorf("%s %v: %s", filepath.Base(p), args[:len(args)-1], a["message"])
				}
			}
		}
	}
}

// The beacon capture metered by softflowd and exported as NetFlow v9 and
// IPFIX raises the same one alert: the exporter's flow start times and
// cumulative TCP flags (SYN) carry the connection starts.
func TestReplayBeaconCaptureExportedBySoftflowd(t *testing.T) {
	sf := softflowdPath(t)
	for _, v := range []string{"9", "10"} {
		t.Run("v"+v, func(t *testing.T) {
			pcap, _ := filepath.Abs(filepath.Join("..", "..", "testdata", "beacon.pcap"))
			export := filepath.Join(t.TempDir(), "export.pcap")
			captureSoftflowd(t, sf, pcap, v, export)
			alerts, _, code := replayJSON(t, export)
			if code != 0 {
				t.Fatalf("exit %d", code)
			}
			checkAttackAlerts(t, alerts, map[string]string{beaconPair: "T1071"})
		})
	}
}
