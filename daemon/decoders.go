package daemon

import (
	"log/slog"
	"net/netip"
	"time"

	"github.com/flowguard/flowguard/config"
	"github.com/flowguard/flowguard/ingest/netflow"
	"github.com/flowguard/flowguard/ingest/sflow"
)

// decoderConfigs returns the NetFlow/IPFIX and sFlow decoder settings the
// configuration gives (ingest budgets, sampling overrides, exporter
// clocks): `run` and `replay` decode export datagrams alike with them.
// budget is shared by every decoder of the process; onSkew, when not nil,
// hears when an exporter's clock passes the warning bound and comes back.
func decoderConfigs(cfg *config.Config, budget *netflow.TemplateBudget, onSkew func(netflow.ClockSkewEvent)) (netflow.Config, sflow.Config) {
	override := map[netip.Addr]uint32{}
	for a, r := range cfg.Sampling.Exporters {
		override[netip.MustParseAddr(a)] = r // validated with the config
	}
	nf, sf := cfg.Ingest.NetFlowConfig(budget), cfg.Ingest.SFlowConfig()
	nf.SamplingOverride, nf.DefaultSampling = override, cfg.Sampling.Default
	sf.SamplingOverride, sf.DefaultSampling = override, cfg.Sampling.Default
	nf.ClockCorrection, nf.ClockSkewWarning, nf.OnClockSkew = cfg.ExporterClock.Corrects(), cfg.ExporterClock.Warning(), onSkew
	return nf, sf
}

// logSkew returns the hook that logs an exporter's clock passing the
// warning bound, and coming back, once each (listener names where the
// datagrams came in).
func logSkew(log *slog.Logger, listener string, correcting bool) func(netflow.ClockSkewEvent) {
	return func(e netflow.ClockSkewEvent) {
		attrs := []any{"listener", listener, "exporter", e.Exporter.String(), "version", netflowVersion(e.Version),
			"domain", e.Domain, "clock_skew_seconds", e.Skew.Round(time.Millisecond).Seconds()}
		switch {
		case !e.Over:
			log.Info("exporter clock back within the skew bound", attrs...)
		case correcting:
			log.Warn("exporter clock skewed: its flows are placed on the collector's clock by the measured offset", attrs...)
		default:
			log.Warn("exporter clock skewed: its flow times are used as sent (exporter_clock.correction is off)", attrs...)
		}
	}
}
