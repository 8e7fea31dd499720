package daemon

import (
	"net/netip"
	"testing"
	"time"

	"github.com/flowguard/flowguard/flow"
)

// A protocol whose records carry no time, and whose decoder stamps none
// (as a broken exporter's or decoder's flows would arrive): the engine
// skips them and /metrics counts them.
func init() {
	registerUDP(udpProtocol{name: "timeless", detect: isTimeless, newDecoder: func(decoderSettings) udpDecoder { return timelessDecoder{} }})
}

func isTimeless(p []byte) bool { return len(p) >= 4 && string(p[:4]) == "BARE" }

// timelessDecoder makes one flow of each byte after "BARE".
type timelessDecoder struct{}

func (timelessDecoder) Decode(src netip.AddrPort, _ time.Time, p []byte, out []flow.Flow) ([]flow.Flow, error) {
	for i := range p[4:] {
		out = append(out, flow.Flow{Type: "BARE", SamplerAddress: src.Addr(), SrcAddr: src.Addr(),
			DstAddr: netip.MustParseAddr("10.0.0.1"), DstPort: uint16(i + 1), Proto: 6, Packets: 1, Bytes: 40})
	}
	return out, nil
}

func (timelessDecoder) rows() []exporterRow { return nil }
func (timelessDecoder) release()            {}

func TestFlowsWithoutTimeMetric(t *testing.T) {
	d := runDaemon(t, "")
	d.send(t, "127.0.0.1", []byte("BARE12345"))
	d.waitMetric(t, "flowguard_engine_flows_without_time_total", 5)
	if v := scrapeMetric(t, d.http, "flowguard_watermark_seconds"); v != 0 {
		t.Errorf("flowguard_watermark_seconds %v, want 0: no flow had a time to advance it", v)
	}
}
