package netflow

import (
	"fmt"
	"net/netip"
	"sync/atomic"
	"time"

	"github.com/flowguard/flowguard/ingest"
	"github.com/flowguard/flowguard/ingest/admit"
)

// Defaults of the budgets in Config. Real exporters send at most a few
// dozen records a datagram (softflowd 24-32, Cisco and Juniper ≤ ~60) and
// templates of tens of fields (nProbe refuses more than 128).
const (
	// DefaultMaxFlowsPerDatagram bounds the flows one datagram (and the
	// data sets a template releases from the pending buffer) may give.
	DefaultMaxFlowsPerDatagram = 2048
	// DefaultMaxTemplateFields bounds the fields of a template.
	DefaultMaxTemplateFields = 128
	// DefaultMinRecordBytes is the shortest data record a template may
	// describe.
	DefaultMinRecordBytes = 4
	// DefaultTemplateBytesPerExporter bounds the memory of one exporter's
	// templates.
	DefaultTemplateBytesPerExporter = 1 << 20
	// DefaultTemplateBytesTotal bounds the memory of all templates of the
	// decoders sharing a TemplateBudget.
	DefaultTemplateBytesTotal = 64 << 20
	// DefaultProbationIdle is how long an exporter that never sent a valid
	// template or record is kept without a valid datagram.
	DefaultProbationIdle = time.Minute
)

// Errors for input refused by a budget; they wrap ingest.ErrRejected.
var (
	ErrTooManyFlows     = fmt.Errorf("netflow: more flows in a datagram than allowed: %w", ingest.ErrRejected)
	ErrTemplateBudget   = fmt.Errorf("netflow: template over budget: %w", ingest.ErrRejected)
	ErrExporterRate     = fmt.Errorf("netflow: new exporters over the admission rate: %w", ingest.ErrRejected)
	ErrTooManyExporters = fmt.Errorf("netflow: too many exporters: %w", ingest.ErrRejected)
)

// TemplateBudget bounds the bytes of templates held by the decoders that
// share it (one per listener in the daemon). It is safe for concurrent use.
type TemplateBudget struct {
	limit int64
	used  atomic.Int64
}

// NewTemplateBudget returns a budget of limit bytes
// (DefaultTemplateBytesTotal when <= 0).
func NewTemplateBudget(limit int64) *TemplateBudget {
	if limit <= 0 {
		limit = DefaultTemplateBytesTotal
	}
	return &TemplateBudget{limit: limit}
}

// Used returns the bytes held now.
func (b *TemplateBudget) Used() int64 { return b.used.Load() }

// take reserves n bytes, or returns false when they would exceed the limit.
func (b *TemplateBudget) take(n int64) bool {
	if b.used.Add(n) > b.limit {
		b.used.Add(-n)
		return false
	}
	return true
}

// Rejections count what the decoder's budgets refused.
type Rejections struct {
	// Datagrams refused before decoding: from a new exporter over the
	// admission rate, or with the exporter table full of established
	// exporters.
	Rate, TableFull uint64
	// Evicted counts exporters on probation (no valid template or record
	// yet) evicted to make room for a new one.
	Evicted uint64
	// FlowsOverCap counts flow records not decoded because their datagram
	// had already given MaxFlowsPerDatagram; DatagramsOverCap the
	// datagrams concerned.
	FlowsOverCap, DatagramsOverCap uint64
	// Templates refused: too many fields, records shorter than
	// MinRecordBytes, over the exporter's or the shared byte budget, or
	// over the count per observation domain.
	TemplateFields, TemplateRecordLength      uint64
	TemplateExporterBytes, TemplateTotalBytes uint64
	TemplateCount                             uint64
}

// rejections are the live counters behind Rejections.
type rejections struct {
	flowsOverCap, datagramsOverCap    counter
	tmplFields, tmplRecordLen         counter
	tmplExporterBytes, tmplTotalBytes counter
	tmplCount                         counter
}

// Rejections returns the counters of refused input; safe from any
// goroutine.
func (d *Decoder) Rejections() Rejections {
	return Rejections{
		Rate:                  d.gate.RateRefused.Load(),
		TableFull:             d.gate.TableFullRefused.Load(),
		Evicted:               d.gate.Evicted.Load(),
		FlowsOverCap:          d.rej.flowsOverCap.Load(),
		DatagramsOverCap:      d.rej.datagramsOverCap.Load(),
		TemplateFields:        d.rej.tmplFields.Load(),
		TemplateRecordLength:  d.rej.tmplRecordLen.Load(),
		TemplateExporterBytes: d.rej.tmplExporterBytes.Load(),
		TemplateTotalBytes:    d.rej.tmplTotalBytes.Load(),
		TemplateCount:         d.rej.tmplCount.Load(),
	}
}

// ExporterCount returns how many exporters state is kept for; safe from
// any goroutine.
func (d *Decoder) ExporterCount() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return len(d.exporters)
}

// Release returns the bytes of the decoder's templates to the shared
// TemplateBudget; call it once the decoder is no longer used (a listener
// stopped by a reload), so that its templates stop counting.
func (d *Decoder) Release() {
	d.cfg.TemplateBudget.used.Add(-d.tmplBytes.Swap(0))
}

// TemplateBytes returns the bytes of templates this decoder holds.
func (d *Decoder) TemplateBytes() int64 { return d.tmplBytes.Load() }

// withBudgetDefaults fills the budgets cfg leaves at zero.
func (cfg *Config) withBudgetDefaults() {
	if cfg.MaxFlowsPerDatagram <= 0 {
		cfg.MaxFlowsPerDatagram = DefaultMaxFlowsPerDatagram
	}
	if cfg.MaxTemplateFields <= 0 {
		cfg.MaxTemplateFields = DefaultMaxTemplateFields
	}
	if cfg.MinRecordBytes <= 0 {
		cfg.MinRecordBytes = DefaultMinRecordBytes
	}
	if cfg.TemplateBytesPerExporter <= 0 {
		cfg.TemplateBytesPerExporter = DefaultTemplateBytesPerExporter
	}
	if cfg.TemplateBudget == nil {
		cfg.TemplateBudget = NewTemplateBudget(0)
	}
	if cfg.ProbationIdle <= 0 {
		cfg.ProbationIdle = DefaultProbationIdle
	}
}

// admitExporter creates the state of a new exporter if the admission gate
// lets it in, evicting the oldest exporter on probation when the table is
// full.
func (d *Decoder) admitExporter(addr netip.Addr, now int64) (*exporter, error) {
	switch d.gate.Admit(addr, now, len(d.exporters), d.cfg.MaxExporters, d.evictProbation) {
	case admit.Rate:
		return nil, ErrExporterRate
	case admit.TableFull:
		return nil, ErrTooManyExporters
	}
	e := &exporter{addr: addr, domains: make(map[domainKey]*domain), override: d.cfg.SamplingOverride[addr], lastSeen: now}
	d.mu.Lock()
	d.exporters[addr] = e
	d.mu.Unlock()
	return e, nil
}

// evictProbation removes exporter addr if it is still on probation.
func (d *Decoder) evictProbation(addr netip.Addr) bool {
	e := d.exporters[addr]
	if e == nil || e.established {
		return false
	}
	d.removeExporter(addr, e)
	return true
}

// onProbation tells whether addr is an exporter still on probation.
func (d *Decoder) onProbation(addr netip.Addr) bool {
	e := d.exporters[addr]
	return e != nil && !e.established
}

// removeExporter drops an exporter's state and returns its template bytes
// to the budgets.
func (d *Decoder) removeExporter(addr netip.Addr, e *exporter) {
	d.mu.Lock()
	delete(d.exporters, addr)
	d.mu.Unlock()
	if d.last == e {
		d.last = nil
	}
	d.releaseTemplateBytes(e, e.tmplBytes)
}

// templateFieldCount returns how many fields the template record raw (as
// delimited by templateExtent) declares.
func templateFieldCount(k tkind, raw []byte) int {
	switch k {
	case kV9Opts:
		return (int(raw[2])<<8 | int(raw[3]) + int(raw[4])<<8 | int(raw[5])) / 4
	default:
		return int(raw[2])<<8 | int(raw[3])
	}
}

// templateCost estimates the bytes a compiled template holds: its raw
// copy, its plan and the map entry and struct around them.
func templateCost(t *template) int64 {
	return int64(cap(t.raw) + 4*cap(t.fields) + 6*cap(t.fixed) + 160)
}

// admitTemplate checks a compiled template against the budgets; old is the
// template it replaces (nil when new). It charges the budgets and returns
// true, or counts the refusal and returns false.
func (d *Decoder) admitTemplate(e *exporter, t, old *template) bool {
	if t.minLen < d.cfg.MinRecordBytes {
		d.rej.tmplRecordLen.Add(1)
		return false
	}
	cost := templateCost(t)
	if old != nil {
		cost -= templateCost(old)
	}
	if cost > 0 && e.tmplBytes+cost > int64(d.cfg.TemplateBytesPerExporter) {
		d.rej.tmplExporterBytes.Add(1)
		return false
	}
	if cost > 0 && !d.cfg.TemplateBudget.take(cost) {
		d.rej.tmplTotalBytes.Add(1)
		return false
	}
	if cost <= 0 {
		d.cfg.TemplateBudget.used.Add(cost)
	}
	e.tmplBytes += cost
	d.tmplBytes.Add(cost)
	return true
}

// releaseTemplateBytes returns n bytes of e's templates to the budgets.
func (d *Decoder) releaseTemplateBytes(e *exporter, n int64) {
	if n == 0 {
		return
	}
	e.tmplBytes -= n
	d.tmplBytes.Add(-n)
	d.cfg.TemplateBudget.used.Add(-n)
}

// dropTemplate removes template id of a domain and returns its bytes.
func (d *Decoder) dropTemplate(e *exporter, s *versionStats, dm *domain, id uint16, t *template) {
	delete(dm.templates, id)
	s.templates.Add(-1)
	d.releaseTemplateBytes(e, templateCost(t))
}

// overCap counts the records of a data set left undecoded because the
// datagram reached MaxFlowsPerDatagram.
func (d *Decoder) overCap(t *template, rest []byte) {
	n := len(rest) / t.minLen
	if n == 0 {
		n = 1
	}
	d.rej.flowsOverCap.Add(uint64(n))
	if !d.capped {
		d.capped = true
		d.rej.datagramsOverCap.Add(1)
	}
}
