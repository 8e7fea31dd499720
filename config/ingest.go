package config

import (
	"errors"
	"fmt"
	"net/netip"
	"time"

	"github.com/flowguard/flowguard/ingest/admit"
	"github.com/flowguard/flowguard/ingest/kafka"
	"github.com/flowguard/flowguard/ingest/netflow"
	"github.com/flowguard/flowguard/ingest/sflow"
)

// Ingest holds the budgets that bound what hostile export datagrams can
// cost: flows per datagram, template fields and bytes, exporters and the
// rate at which new ones are admitted, the metrics series kept per
// exporter. Zero values take the defaults (see examples/flowguard.yaml).
type Ingest struct {
	// MaxFlowsPerDatagram bounds the flows one datagram gives; the rest
	// of the datagram is dropped and counted (default 2048).
	MaxFlowsPerDatagram int `yaml:"max_flows_per_datagram"`
	// MaxTemplateFields refuses v9/IPFIX templates of more fields
	// (default 128, as nProbe).
	MaxTemplateFields int `yaml:"max_template_fields"`
	// MinRecordBytes refuses templates of shorter records (default 4).
	MinRecordBytes int `yaml:"min_record_bytes"`
	// TemplateBytesPerExporter and TemplateBytesTotal bound the memory of
	// templates, per exporter and over all listeners, in bytes (default
	// 1 MiB and 64 MiB).
	TemplateBytesPerExporter int   `yaml:"template_bytes_per_exporter"`
	TemplateBytesTotal       int64 `yaml:"template_bytes_total"`
	// MaxExporters bounds the exporters (sFlow: agents) a listener keeps
	// state for (default 4096).
	MaxExporters int `yaml:"max_exporters"`
	// NewExportersPerSecond and NewExportersBurst: the rate at which new
	// exporters are admitted (default 200/s, burst 1000; a negative rate
	// admits without limit).
	NewExportersPerSecond float64 `yaml:"new_exporters_per_second"`
	NewExportersBurst     int     `yaml:"new_exporters_burst"`
	// ProbationIdle: an exporter that never sent a valid template or
	// record is forgotten after this long without a valid datagram
	// (default 1m); established exporters after the template lifetime.
	ProbationIdle Duration `yaml:"probation_idle"`
	// MetricsExporters: /metrics and /api/exporters show this many
	// exporters by name, the busiest (by flows) after the known ones
	// (sampling.exporters, enrich.exporters, single addresses in
	// listen[].allow); the rest are summed under exporter="other"
	// (default 64).
	MetricsExporters int `yaml:"metrics_exporters"`
	// Kafka, when set, consumes goflow2's flow messages from a Kafka
	// topic as a member of a consumer group (ingest/kafka).
	Kafka *kafka.Config `yaml:"kafka"`
}

// DefaultMetricsExporters is how many exporters /metrics names when
// ingest.metrics_exporters is not set.
const DefaultMetricsExporters = 64

// NetFlowConfig returns the NetFlow/IPFIX decoder configuration for this
// section; budget is shared by every listener's decoder.
func (i Ingest) NetFlowConfig(budget *netflow.TemplateBudget) netflow.Config {
	return netflow.Config{
		MaxExporters:             i.MaxExporters,
		MaxFlowsPerDatagram:      i.MaxFlowsPerDatagram,
		MaxTemplateFields:        i.MaxTemplateFields,
		MinRecordBytes:           i.MinRecordBytes,
		TemplateBytesPerExporter: i.TemplateBytesPerExporter,
		TemplateBudget:           budget,
		Admission:                i.admission(),
		ProbationIdle:            time.Duration(i.ProbationIdle),
	}
}

// SFlowConfig returns the sFlow decoder configuration for this section.
func (i Ingest) SFlowConfig() sflow.Config {
	return sflow.Config{MaxAgents: i.MaxExporters, Admission: i.admission(), ProbationIdle: time.Duration(i.ProbationIdle)}
}

func (i Ingest) admission() admit.Config {
	return admit.Config{Rate: i.NewExportersPerSecond, Burst: i.NewExportersBurst}
}

// MetricsLimit returns how many exporters /metrics names.
func (i Ingest) MetricsLimit() int {
	if i.MetricsExporters <= 0 {
		return DefaultMetricsExporters
	}
	return i.MetricsExporters
}

// KnownExporters returns the exporters the configuration names: those of
// sampling.exporters and enrich.exporters, and the single addresses of the
// listeners' allow lists. /metrics always shows them by name.
func (c *Config) KnownExporters() map[netip.Addr]bool {
	known := map[netip.Addr]bool{}
	for a := range c.Sampling.Exporters {
		if addr, err := netip.ParseAddr(a); err == nil {
			known[addr.Unmap()] = true
		}
	}
	for a := range c.Enrich.Exporters {
		if addr, err := netip.ParseAddr(a); err == nil {
			known[addr.Unmap()] = true
		}
	}
	for _, l := range c.Listen {
		for _, a := range l.Allow {
			if addr, err := netip.ParseAddr(a); err == nil {
				known[addr.Unmap()] = true
			} else if p, err := netip.ParsePrefix(a); err == nil && p.IsSingleIP() {
				known[p.Addr().Unmap()] = true
			}
		}
	}
	return known
}

// validate names every negative budget.
func (i Ingest) validate() error {
	var errs []error
	for _, f := range []struct {
		name string
		v    int64
	}{
		{"max_flows_per_datagram", int64(i.MaxFlowsPerDatagram)},
		{"max_template_fields", int64(i.MaxTemplateFields)},
		{"min_record_bytes", int64(i.MinRecordBytes)},
		{"template_bytes_per_exporter", int64(i.TemplateBytesPerExporter)},
		{"template_bytes_total", i.TemplateBytesTotal},
		{"max_exporters", int64(i.MaxExporters)},
		{"new_exporters_burst", int64(i.NewExportersBurst)},
		{"metrics_exporters", int64(i.MetricsExporters)},
	} {
		if f.v < 0 {
			errs = append(errs, errors.New("ingest."+f.name+": must be >= 0"))
		}
	}
	if i.MaxTemplateFields > 65535 {
		errs = append(errs, errors.New("ingest.max_template_fields: must be <= 65535"))
	}
	if i.Kafka != nil {
		if err := i.Kafka.Validate(); err != nil {
			errs = append(errs, fmt.Errorf("ingest.kafka: %w", err))
		}
	}
	return errors.Join(errs...)
}
