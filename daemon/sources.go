package daemon

import (
	"net/netip"

	"github.com/flowguard/flowguard/config"
	"github.com/flowguard/flowguard/ingest/collector"
	"github.com/flowguard/flowguard/ingest/netflow"
	"github.com/flowguard/flowguard/ingest/sflow"
)

// udpProtocol is a flow export protocol the listeners and replay decode.
// Adding one is its decoder in a folder of its own and one registerUDP
// call: the collector dispatches to it by detect, replay decodes it in
// captures of export traffic, and /metrics and /api/exporters show its
// exporters' rows.
type udpProtocol struct {
	name string
	// detect tells, from a datagram's first bytes, whether it is this
	// protocol's; the first protocol registered that claims it decodes it.
	detect func(p []byte) bool
	// newDecoder builds the decoder of one listener (or one replay) from
	// the config in service.
	newDecoder func(s decoderSettings) udpDecoder
}

// decoderSettings is what a protocol's decoder is built from: the config
// in service and the state every decoder of the process shares.
type decoderSettings struct {
	cfg    *config.Config
	budget *netflow.TemplateBudget
	onSkew func(netflow.ClockSkewEvent) // nil: not reported
}

// udpDecoder decodes one protocol's datagrams for one listener and reports
// its exporters.
type udpDecoder interface {
	collector.Decoder
	// rows returns one row per exporter and version (not yet bounded; see
	// exporterRows).
	rows() []exporterRow
	// release gives back what the decoder holds in shared budgets, once
	// its listener has stopped.
	release()
}

// udpProtocols is the registry, in detection order.
var udpProtocols []udpProtocol

// registerUDP adds a protocol to the registry (from an init function).
func registerUDP(p udpProtocol) { udpProtocols = append(udpProtocols, p) }

func init() {
	registerUDP(udpProtocol{name: "netflow", detect: isNetFlow, newDecoder: newNetFlowDecoder})
	registerUDP(udpProtocol{name: "sflow", detect: isSFlow, newDecoder: newSFlowDecoder})
}

// protocolDecoders builds one decoder of every registered protocol.
func protocolDecoders(s decoderSettings) []namedDecoder {
	out := make([]namedDecoder, len(udpProtocols))
	for i, p := range udpProtocols {
		out[i] = namedDecoder{udpProtocol: p, udpDecoder: p.newDecoder(s)}
	}
	return out
}

// namedDecoder is a built decoder and the protocol it belongs to.
type namedDecoder struct {
	udpProtocol
	udpDecoder
}

// collectorDecoders hands the decoders to a listener, dispatched by detect.
func collectorDecoders(decs []namedDecoder) collector.Decoders {
	var d collector.Decoders
	for _, n := range decs {
		d.ByDetect = append(d.ByDetect, collector.Detected{Detect: n.detect, Decoder: n.udpDecoder})
	}
	return d
}

func isNetFlow(p []byte) bool { return collector.Family(p) == collector.FamilyNetFlow }
func isSFlow(p []byte) bool   { return collector.Family(p) == collector.FamilySFlow }

// netflowDecoder adapts the NetFlow/IPFIX decoder to the registry.
type netflowDecoder struct{ *netflow.Decoder }

func newNetFlowDecoder(s decoderSettings) udpDecoder {
	nf, _ := decoderConfigs(s.cfg, s.budget, s.onSkew)
	return netflowDecoder{netflow.NewDecoder(nf)}
}

func (d netflowDecoder) release() { d.Release() }

func (d netflowDecoder) rows() []exporterRow {
	var rows []exporterRow
	for _, e := range d.Stats().Exporters {
		rows = append(rows, exporterRow{addr: e.Exporter, version: netflowVersion(e.Version), exporters: 1,
			packets: e.Packets, flows: e.Flows, errors: e.Errors, templateMisses: e.TemplateMisses,
			lost: e.LostFlows + e.LostPackets, templates: e.Templates, samplingRate: e.SamplingRate, clockSkew: e.ClockSkew, lastSeen: e.LastSeen})
	}
	return rows
}

// sflowDecoder adapts the sFlow decoder to the registry.
type sflowDecoder struct{ *sflow.Decoder }

func newSFlowDecoder(s decoderSettings) udpDecoder {
	_, sf := decoderConfigs(s.cfg, s.budget, s.onSkew)
	return sflowDecoder{sflow.NewDecoder(sf)}
}

func (d sflowDecoder) release() {}

// rows returns one row per exporter address, its agents summed.
func (d sflowDecoder) rows() []exporterRow {
	var rows []exporterRow
	at := map[netip.Addr]int{}
	for _, a := range d.Stats().Agents {
		r := exporterRow{addr: a.Exporter, version: "sflow5", exporters: 1, packets: a.Packets, flows: a.Flows,
			errors: a.Errors, lost: a.LostPackets, flowSamples: a.FlowSamples, counterSamples: a.CounterSamples,
			otherSamples: a.OtherSamples, samplingRate: a.SamplingRate, lastSeen: a.LastSeen}
		if i, ok := at[a.Exporter]; ok {
			rows[i].add(&r)
			rows[i].exporters = 1
			continue
		}
		at[a.Exporter] = len(rows)
		rows = append(rows, r)
	}
	return rows
}
