package netflow

import (
	"cmp"
	"net/netip"
	"slices"
	"sync/atomic"
	"time"
)

type counter = atomic.Uint64

// versionStats are the counters of one exporter and version, written by
// the decoding goroutine and read by Stats.
type versionStats struct {
	packets, flows, errors counter
	templateMisses         counter
	pendingDropped         counter
	lostFlows, lostPackets counter
	restarts               counter
	templates              atomic.Int64
	samplingRate           atomic.Uint32
	clockSkew              atomic.Int64 // ns, the estimate of the domain last measured
	lastSeen               atomic.Int64
}

// Stats is a snapshot of a Decoder's counters.
type Stats struct {
	// Exporters holds one entry per exporter address and version seen,
	// ordered by address then version.
	Exporters []ExporterStats
	// Rejected counts datagrams refused from new exporters: over the
	// admission rate, or with the table full of established exporters
	// (Rejections tells them apart).
	Rejected uint64
	// Rejections count what the budgets refused.
	Rejections Rejections
	// TemplateBytes is the memory of the templates held now.
	TemplateBytes int64
	// ExporterCount is how many exporters state is kept for.
	ExporterCount int
	// Pending is how many data sets wait for their template now.
	Pending int
}

// ExporterStats are the counters of one exporter and NetFlow version.
type ExporterStats struct {
	Exporter netip.Addr
	// Version is 1, 5, 7, 8, 9 or 10 (IPFIX); 0 gathers datagrams of an
	// unknown version or too short to have one.
	Version uint16
	Packets uint64 // datagrams
	Flows   uint64 // flows decoded
	Errors  uint64 // malformed datagrams
	// TemplateMisses counts data sets whose template was unknown when they
	// arrived (held in the pending buffer, or dropped when it is off).
	TemplateMisses uint64
	// PendingDropped counts data sets dropped from the pending buffer: it
	// was full, or their template never came within the TTL.
	PendingDropped uint64
	// LostFlows counts flow records the exporter numbered but that never
	// arrived (v5, v7, v8, IPFIX); LostPackets counts export datagrams
	// likewise (v9, which numbers packets).
	LostFlows   uint64
	LostPackets uint64
	// Restarts counts sequence jumps taken as an exporter restart.
	Restarts uint64
	// Templates is how many templates (data and options) are held.
	Templates int
	// SamplingRate is the rate applied to the last flow (after override
	// and default).
	SamplingRate uint32
	// ClockSkew is the exporter's clock minus the collector's, as
	// estimated for the observation domain (source id, engine) that sent
	// last: export header time against receive time, median of recent
	// datagrams (export delay included).
	ClockSkew time.Duration
	LastSeen  time.Time
}

// Stats returns a snapshot of the counters. It is safe to call
// concurrently with Decode.
func (d *Decoder) Stats() Stats {
	var st Stats
	d.mu.Lock()
	st.ExporterCount = len(d.exporters)
	for addr, e := range d.exporters {
		for slot := range e.stats {
			s := e.stats[slot].Load()
			if s == nil {
				continue
			}
			es := ExporterStats{
				Exporter:       addr,
				Version:        slotVersion[slot],
				Packets:        s.packets.Load(),
				Flows:          s.flows.Load(),
				Errors:         s.errors.Load(),
				TemplateMisses: s.templateMisses.Load(),
				PendingDropped: s.pendingDropped.Load(),
				LostFlows:      s.lostFlows.Load(),
				LostPackets:    s.lostPackets.Load(),
				Restarts:       s.restarts.Load(),
				Templates:      int(s.templates.Load()),
				SamplingRate:   s.samplingRate.Load(),
				ClockSkew:      time.Duration(s.clockSkew.Load()),
			}
			if ns := s.lastSeen.Load(); ns != 0 {
				es.LastSeen = time.Unix(0, ns).UTC()
			}
			st.Exporters = append(st.Exporters, es)
		}
	}
	d.mu.Unlock()
	st.Rejections = d.Rejections()
	st.Rejected = st.Rejections.Rate + st.Rejections.TableFull
	st.TemplateBytes = d.TemplateBytes()
	st.Pending = int(d.pending.held.Load())
	slices.SortFunc(st.Exporters, func(a, b ExporterStats) int {
		if c := a.Exporter.Compare(b.Exporter); c != 0 {
			return c
		}
		return cmp.Compare(a.Version, b.Version)
	})
	return st
}
