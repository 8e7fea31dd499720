package main

// A toy file format, added in this file alone plus one file.Register call:
// replay detects it from its content and runs its flows through the rules.

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/flowguard/flowguard/flow"
	"github.com/flowguard/flowguard/ingest"
	"github.com/flowguard/flowguard/ingest/file"
)

var toyFormat = file.Register(file.Kind{Name: "toy flows", Describe: "toy flows",
	Detect: func(head []byte) bool { return bytes.HasPrefix(head, []byte("TOYFLOWS\n")) }, Open: openToyFlows})

// A toy file: "TOYFLOWS", then a line a flow: source, destination,
// destination port, Unix seconds.
func openToyFlows(in file.Input, _ file.Options) (file.Source, error) {
	return &toyFlows{in: in}, nil
}

type toyFlows struct {
	in    file.Input
	stats ingest.Stats
}

func (s *toyFlows) Name() string        { return s.in.Path }
func (s *toyFlows) Stats() ingest.Stats { return s.stats }

func (s *toyFlows) Run(ctx context.Context, h ingest.Handler) error {
	defer s.in.Close()
	sc := bufio.NewScanner(s.in.Reader)
	sc.Scan() // TOYFLOWS
	for sc.Scan() && ctx.Err() == nil {
		s.stats.Packets++
		var src, dst string
		var port uint16
		var at int64
		if _, err := fmt.Sscan(sc.Text(), &src, &dst, &port, &at); err != nil {
			s.stats.Malformed++
			continue
		}
		t := time.Unix(at, 0)
		f := flow.Flow{Type: "TOY", SrcAddr: netip.MustParseAddr(src), DstAddr: netip.MustParseAddr(dst), SrcPort: 40000, DstPort: port,
			TimeFlowStart: t, TimeFlowEnd: t, Packets: 1, Bytes: 44, RawPackets: 1, RawBytes: 44, SamplingRate: 1}
		f.SetProto(flow.ProtoTCP)
		f.SetTCPFlags(flow.TCPSyn)
		f.Renormalise()
		h([]flow.Flow{f})
		s.stats.Flows++
	}
	return sc.Err()
}

func TestToyFileFormatReplayed(t *testing.T) {
	var b strings.Builder
	b.WriteString("TOYFLOWS\n")
	t0 := time.Date(2026, 11, 27, 9, 0, 0, 0, time.UTC).Unix()
	for p := 1; p <= 150; p++ { // a port scan past the bundled rule's 100 ports
		fmt.Fprintf(&b, "198.51.100.23 10.20.30.40 %d %d\n", p, t0+int64(p)/10)
	}
	path := filepath.Join(t.TempDir(), "scan.toy")
	os.WriteFile(path, []byte(b.String()), 0o644)
	var out, errb bytes.Buffer
	if code := run([]string{"replay", "--format", "json", path}, &out, &errb); code != 0 {
		t.Fatalf("replay: exit %d\n%s", code, errb.String())
	}
	if !strings.Contains(errb.String(), path+": "+toyFormat.String()+", 150 records, 150 flows") {
		t.Errorf("replay summary:\n%s", errb.String())
	}
	alerts := alertsOf(t, out.Bytes())
	if len(alerts) != 1 || alerts[0]["rule"] != "vertical-port-scan" {
		t.Errorf("alerts: %v", alerts)
	}
}
