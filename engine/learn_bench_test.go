package engine

import (
	"io/fs"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/flowguard/flowguard/examples"
	"github.com/flowguard/flowguard/flow"
	"github.com/flowguard/flowguard/rules"
)

// fixedPack loads the bundled pack without the rules that learn
// (learning.yaml), plus extra rule files.
func fixedPack(b *testing.B, extra string) *rules.Set {
	entries, err := fs.ReadDir(examples.Rules, "rules")
	if err != nil {
		b.Fatal(err)
	}
	var files []string
	for _, en := range entries {
		if n := en.Name(); strings.HasSuffix(n, ".yaml") && n != "learning.yaml" {
			files = append(files, "rules/"+n)
		}
	}
	set, err := rules.LoadFS(examples.Rules, files...)
	if err != nil {
		b.Fatal(err)
	}
	if extra != "" {
		more, err := rules.LoadBytes("twins.yaml", []byte(extra))
		if err != nil {
			b.Fatal(err)
		}
		set.Rules = append(set.Rules, more.Rules...)
	}
	return set
}

// BenchmarkEngineFixedPack is BenchmarkEngineExamplePack without the
// rules that learn: the pack before them.
func BenchmarkEngineFixedPack(b *testing.B) { benchmarkPack(b, fixedPack(b, "")) }

// learningTwins are the learning rules of the bundled pack as fixed
// thresholds over the same flows and groups: what the same detections
// cost without learning.
const learningTwins = `
lists:
  twin_internal: [10.0.0.0/8, 172.16.0.0/12, 192.168.0.0/16, 100.64.0.0/10, 169.254.0.0/16, fc00::/7, fe80::/10]
  twin_servers: [10.0.0.0/8, 172.16.0.0/12, 192.168.0.0/16, 100.64.0.0/10, fc00::/7]
  twin_ignore: [53, 67, 68, 123, 137, 138, 161, 162, 514, 1900, 5353]
rules:
  - {id: twin-volume, severity: high, where: "src_addr in twin_internal && !(dst_addr in twin_internal)",
     sum: bytes, group_by: [src_addr], window: 10m, threshold: 50MB}
  - {id: twin-countries, severity: medium, where: "src_addr in twin_servers && !(dst_addr in twin_internal) && dst_country != \"\"",
     distinct: dst_country, group_by: [src_addr], window: 1d, threshold: 20}
  - {id: twin-asns, severity: low, where: "src_addr in twin_servers && !(dst_addr in twin_internal) && dst_asn != 0",
     distinct: dst_asn, group_by: [src_addr], window: 1d, threshold: 50}
  - {id: twin-calls, severity: high, where: "src_addr in twin_internal && !(dst_addr in twin_internal) && !(dst_port in twin_ignore) && (proto != 6 || syn)",
     count: flows, group_by: [src_addr, dst_addr, dst_port], window: 1h, threshold: 100}
`

// BenchmarkEngineFixedTwinPack is the bundled pack with its learning rules
// replaced by their fixed-threshold twins (learningTwins).
func BenchmarkEngineFixedTwinPack(b *testing.B) { benchmarkPack(b, fixedPack(b, learningTwins)) }

// BenchmarkLearningRule is one learning rule of each kind alone over 1,000
// groups that come back (steady state: no group created or evicted), a
// flow every 100 ms of event time.
func BenchmarkLearningRule(b *testing.B) {
	for _, tc := range []struct{ name, rule string }{
		{"baseline", "sum: bytes\n    group_by: [src_addr]\n    window: 1m\n    threshold: 1MB\n    baseline: {k: 4}"},
		{"baseline-hourly", "sum: bytes\n    group_by: [src_addr]\n    window: 1m\n    threshold: 1MB\n    baseline: {seasonality: hour}"},
		{"new-terms", "group_by: [src_addr]\n    new_terms: {field: dst_port}"},
		{"beacon", "beacon: {min_count: 10}"},
	} {
		b.Run(tc.name, func(b *testing.B) {
			set, err := rules.LoadBytes("bench.yaml", []byte("rules:\n  - id: r\n    severity: low\n    "+tc.rule+"\n"))
			if err != nil {
				b.Fatal(err)
			}
			e, err := New(Config{}, set)
			if err != nil {
				b.Fatal(err)
			}
			flows := make([]flow.Flow, 1<<14)
			for i := range flows {
				src := netip.AddrFrom4([4]byte{10, 0, byte(i % 1000 >> 8), byte(i % 1000)})
				flows[i] = synAt(src.String(), "203.0.113.5", uint16(443+i%4), t0.Add(time.Duration(i)*100*time.Millisecond), 1000)
			}
			e.Process(flows)
			span := time.Duration(len(flows)) * 100 * time.Millisecond
			batch := make([]flow.Flow, 256)
			b.ReportAllocs()
			b.ResetTimer()
			for i, round := 0, 1; i < b.N; round++ {
				for j := 0; j < len(flows) && i < b.N; j += len(batch) {
					n := min(copy(batch, flows[j:]), b.N-i)
					for k := range batch[:n] {
						shift := time.Duration(round) * span
						batch[k].TimeFlowEnd = batch[k].TimeFlowEnd.Add(shift)
						batch[k].TimeFlowStart = batch[k].TimeFlowStart.Add(shift)
					}
					e.Process(batch[:n])
					i += n
				}
			}
		})
	}
}
