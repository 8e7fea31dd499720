package netflow

import (
	"encoding/binary"
	"errors"
	"github.com/flowguard/flowguard/ingest/internal/seqtrack"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/flowguard/flowguard/flow"
	"github.com/flowguard/flowguard/ingest/admit"
)

// Defaults for Config's zero values.
const (
	// DefaultTemplateTTL is how long a template lives without a refresh.
	// Exporters commonly resend templates every 30 minutes or less (Cisco
	// IOS: 30 min; softflowd and nprobe: every few packets or seconds), and
	// RFC 7011 §8.4 asks for a lifetime of several refresh intervals.
	DefaultTemplateTTL = 90 * time.Minute
	// DefaultPendingMax is how many data sets are held, per decoder, while
	// their template is unknown.
	DefaultPendingMax = 1024
	// DefaultMaxExporters bounds the exporters a decoder keeps state for.
	DefaultMaxExporters = 4096
)

// pendingBytesMax bounds the bytes held in pending data sets, whatever
// PendingMax says.
const pendingBytesMax = 8 << 20

// Config configures a Decoder. The zero value is usable.
type Config struct {
	// TemplateTTL: templates (and an exporter's whole state) expire when
	// not refreshed for this long, measured on the datagrams' clock (now).
	// DefaultTemplateTTL when 0.
	TemplateTTL time.Duration
	// PendingMax is how many data sets, in total, are held while their
	// template is unknown; the oldest is dropped (and counted) when full.
	// DefaultPendingMax when 0; negative holds none.
	PendingMax int
	// SamplingOverride forces the sampling rate of an exporter, whatever
	// it announces.
	SamplingOverride map[netip.Addr]uint32
	// DefaultSampling is the rate used when an exporter announces none (1
	// when 0).
	DefaultSampling uint32
	// MaxExporters bounds the exporters state is kept for; datagrams from
	// further ones evict the oldest exporter on probation, or are
	// rejected with ErrTooManyExporters when every one is established.
	// DefaultMaxExporters when 0.
	MaxExporters int
	// ClockCorrection places each exporter's flows on the collector's
	// clock by the exporter's measured offset (see clockskew.go). The
	// offset is measured, and shown in Stats, either way.
	ClockCorrection bool
	// ClockSkewWarning is the skew OnClockSkew reports
	// (DefaultClockSkewWarning when 0; negative: never).
	ClockSkewWarning time.Duration
	// OnClockSkew, when set, is called (on the decoding goroutine) when an
	// exporter domain's skew passes ClockSkewWarning and when it is back
	// within half of it: once each way, not per datagram.
	OnClockSkew func(ClockSkewEvent)

	// Budgets against hostile input (see budget.go; defaults when 0).
	// MaxFlowsPerDatagram bounds the flows one Decode call gives; the
	// rest of the datagram is counted and dropped (ErrTooManyFlows).
	MaxFlowsPerDatagram int
	// MaxTemplateFields and MinRecordBytes refuse templates of more
	// fields, or of shorter records, than real exporters send.
	MaxTemplateFields, MinRecordBytes int
	// TemplateBytesPerExporter bounds one exporter's templates in bytes;
	// TemplateBudget bounds all templates of the decoders sharing it.
	TemplateBytesPerExporter int
	TemplateBudget           *TemplateBudget
	// Admission limits the rate at which new exporters get state.
	Admission admit.Config
	// ProbationIdle: an exporter that never sent a valid template or
	// record is dropped after this long without a valid datagram
	// (established ones after TemplateTTL).
	ProbationIdle time.Duration
}

// Errors Decode returns. They are sentinels (no allocation per bad
// datagram) and are counted per exporter and version in Stats.
var (
	ErrTruncated   = errors.New("netflow: datagram truncated")
	ErrVersion     = errors.New("netflow: unknown version")
	ErrMalformed   = errors.New("netflow: malformed datagram")
	ErrTemplate    = errors.New("netflow: malformed template")
	ErrAggregation = errors.New("netflow: unsupported v8 aggregation")
)

// Decoder decodes export datagrams. Decode must be called from one
// goroutine; Stats may be called from any.
type Decoder struct {
	cfg Config
	ttl int64 // ns

	mu        sync.Mutex // guards inserts into and deletes from exporters, against Stats
	exporters map[netip.Addr]*exporter
	last      *exporter // cache: most datagrams come from the exporter before
	gate      *admit.Gate[netip.Addr]
	rej       rejections
	tmplBytes atomic.Int64 // bytes of the templates held
	recsLeft  int          // records the datagram being decoded may still give
	capped    bool         // the datagram being decoded reached its cap

	pending   pendingQueue
	shift     int64 // the datagram's clock correction (ns), for its header
	reports   clockReports
	nextSweep int64
	st        recState
	scratch   flow.Flow // options records decode into it
}

// NewDecoder returns a Decoder configured by cfg (zero fields take their
// defaults).
func NewDecoder(cfg Config) *Decoder {
	if cfg.TemplateTTL <= 0 {
		cfg.TemplateTTL = DefaultTemplateTTL
	}
	if cfg.PendingMax == 0 {
		cfg.PendingMax = DefaultPendingMax
	}
	if cfg.PendingMax < 0 {
		cfg.PendingMax = 0
	}
	if cfg.MaxExporters <= 0 {
		cfg.MaxExporters = DefaultMaxExporters
	}
	if cfg.DefaultSampling == 0 {
		cfg.DefaultSampling = 1
	}
	if cfg.ClockSkewWarning == 0 {
		cfg.ClockSkewWarning = DefaultClockSkewWarning
	}
	cfg.withBudgetDefaults()
	return &Decoder{
		gate:      admit.New[netip.Addr](cfg.Admission),
		cfg:       cfg,
		ttl:       int64(cfg.TemplateTTL),
		exporters: make(map[netip.Addr]*exporter),
		pending:   pendingQueue{max: cfg.PendingMax},
	}
}

// version slots for per-version state and stats.
const (
	slotV1 = iota
	slotV5
	slotV7
	slotV8
	slotV9
	slotIPFIX
	slotOther
	nslots
)

var slotVersion = [nslots]uint16{1, 5, 7, 8, 9, 10, 0}

func slotOf(version uint16) int {
	switch version {
	case 1:
		return slotV1
	case 5:
		return slotV5
	case 7:
		return slotV7
	case 8:
		return slotV8
	case 9:
		return slotV9
	case 10:
		return slotIPFIX
	}
	return slotOther
}

// domainKey names a template and sequence space within an exporter: the
// version and the observation domain (IPFIX), source id (v9) or engine
// type<<8|id (v5, v7, v8; aggregation<<16 added for v8).
type domainKey struct {
	version uint16
	id      uint32
}

// domain is the state of one observation domain.
type domain struct {
	templates map[uint16]*template
	samplers  map[uint64]uint32 // sampler / selector id → rate, from options data
	rate      uint32            // domain-wide rate from options data or the v5 header; 0 unknown
	sysInitMs int64             // IPFIX systemInitTimeMilliseconds from options data; 0 unknown
	seq       seqtrack.Tracker
	conv      seqConventions // IPFIX only
	clock     clockEstimate
	lastSeen  int64
}

// exporter is the state kept per exporter address.
type exporter struct {
	addr     netip.Addr
	override uint32 // configured sampling rate, 0 none
	domains  map[domainKey]*domain
	lastKey  domainKey
	lastDom  *domain
	overflow *domain // shared by the domains beyond maxDomains
	stats    [nslots]atomic.Pointer[versionStats]
	lastSeen int64 // the last valid datagram (or admission)
	// established: a valid template or record came; until then the
	// exporter is on probation and may be evicted for a new one.
	established bool
	tmplBytes   int64 // bytes of its templates (templateCost)
}

func (d *Decoder) exporter(addr netip.Addr, now int64) (*exporter, error) {
	if e := d.last; e != nil && e.addr == addr {
		return e, nil
	}
	e := d.exporters[addr]
	if e == nil {
		var err error
		if e, err = d.admitExporter(addr, now); err != nil {
			return nil, err
		}
	}
	d.last = e
	return e, nil
}

func (e *exporter) domain(k domainKey, now int64) *domain {
	if e.lastDom != nil && e.lastKey == k {
		e.lastDom.lastSeen = now
		return e.lastDom
	}
	dm := e.domains[k]
	if dm == nil && len(e.domains) >= maxDomains {
		// An exporter claiming this many observation domains is broken or
		// hostile: the rest share one, bounded like any other.
		if e.overflow == nil {
			e.overflow = &domain{}
			e.overflow.seq.MaxJump = 1 << 22
		}
		e.overflow.lastSeen = now
		return e.overflow
	}
	if dm == nil {
		dm = &domain{}
		switch k.version {
		case 9:
			dm.seq.MaxJump = 1 << 16 // packets
		default:
			dm.seq.MaxJump = 1 << 22 // records
		}
		e.domains[k] = dm
	}
	dm.lastSeen = now
	e.lastKey, e.lastDom = k, dm
	return dm
}

func (e *exporter) vstats(slot int) *versionStats {
	s := e.stats[slot].Load()
	if s == nil {
		s = &versionStats{}
		e.stats[slot].Store(s)
	}
	return s
}

// maxDomains bounds the observation domains (and engines) kept per
// exporter.
const maxDomains = 256

// sweepEvery is how often (on the datagrams' clock) expired templates and
// idle exporters are removed, at most.
const sweepEvery = int64(time.Minute)

// sweep drops templates, domains and exporters not refreshed within the
// TTL, and pending sets older than it.
func (d *Decoder) sweep(now int64) {
	if now < d.nextSweep {
		return
	}
	d.nextSweep = now + min(sweepEvery, int64(d.cfg.ProbationIdle)/2, d.ttl/2)
	limit := now - d.ttl
	probationLimit := now - int64(d.cfg.ProbationIdle)
	d.pending.expire(limit)
	for addr, e := range d.exporters {
		if e.lastSeen < limit || !e.established && e.lastSeen < probationLimit {
			d.removeExporter(addr, e)
			continue
		}
		for k, dm := range e.domains {
			for id, t := range dm.templates {
				if t.lastSeen < limit {
					d.dropTemplate(e, e.vstats(slotOf(k.version)), dm, id, t)
				}
			}
			if dm.lastSeen < limit {
				delete(e.domains, k)
				if e.lastDom == dm {
					e.lastDom = nil
				}
			}
		}
	}
	d.gate.Prune(d.onProbation)
}

// Decode decodes one export datagram from exporter src received at now,
// appending flows to out and returning it. The version (1, 5, 7, 8, 9 or
// 10 for IPFIX) is detected per datagram. A malformed datagram returns an
// error (one of the Err* sentinels, counted in Stats); flows appended from
// the complete sets or records before the damage are kept in out. Flows of
// data sets held for their template are appended by the Decode call that
// brings the template. Decode never panics on any input.
func (d *Decoder) Decode(src netip.AddrPort, now time.Time, payload []byte, out []flow.Flow) ([]flow.Flow, error) {
	nowNs := now.UnixNano()
	d.sweep(nowNs)
	addr := src.Addr().Unmap()
	e, err := d.exporter(addr, nowNs)
	if err != nil {
		return out, err
	}
	if len(payload) < 2 {
		s := e.vstats(slotOther)
		s.packets.Add(1)
		s.errors.Add(1)
		return out, ErrTruncated
	}
	version := binary.BigEndian.Uint16(payload)
	slot := slotOf(version)
	s := e.vstats(slot)
	s.packets.Add(1)
	s.lastSeen.Store(nowNs)
	d.shift = d.exporterClock(e, s, payload, nowNs)
	n0 := len(out)
	d.recsLeft, d.capped = d.cfg.MaxFlowsPerDatagram, false
	switch version {
	case 1:
		out, err = d.decodeV1(e, now, payload, out)
	case 5:
		out, err = d.decodeV5(e, now, payload, out)
	case 7:
		out, err = d.decodeV7(e, now, payload, out)
	case 8:
		out, err = d.decodeV8(e, now, payload, out)
	case 9:
		out, err = d.decodeV9(e, s, now, payload, out)
	case 10:
		out, err = d.decodeIPFIX(e, s, now, payload, out)
	default:
		err = ErrVersion
	}
	if err == nil && d.capped {
		err = ErrTooManyFlows
	}
	switch {
	case err == nil:
		e.lastSeen = nowNs
		if !e.established && (len(out) > n0 || e.tmplBytes > 0) {
			e.established = true
		}
	case errors.Is(err, ErrTooManyFlows):
		// Counted in Rejections; the exporter is not made established
		// by an oversized datagram.
	default:
		s.errors.Add(1)
	}
	s.flows.Add(uint64(len(out) - n0))
	return out, err
}

// rate returns the sampling rate for a flow: the configured override, else
// what the exporter announced (announced, 0 when nothing), else the
// configured default.
func (d *Decoder) rate(e *exporter, announced uint32) uint32 {
	switch {
	case e.override != 0:
		return e.override
	case announced != 0:
		return announced
	}
	return d.cfg.DefaultSampling
}

// finish sets the exporter fields common to every decoded flow and
// renormalises the volume.
func finish(f *flow.Flow, typ string, e *exporter, seq uint32, rate uint32, now time.Time) {
	f.Type = typ
	f.SamplerAddress = e.addr
	f.SequenceNum = seq
	f.SamplingRate = rate
	f.TimeReceived = now
	f.Renormalise()
}

// grow returns out extended by one zero Flow and a pointer to it.
func grow(out []flow.Flow) ([]flow.Flow, *flow.Flow) {
	out = append(out, flow.Flow{})
	return out, &out[len(out)-1]
}
