package daemon

import (
	"cmp"
	"net/netip"
	"slices"
	"time"
)

// otherExporters labels the row that sums the exporters /metrics and
// /api/exporters do not name.
const otherExporters = "other"

// exporterRow is one exporter and version of a listener as /metrics and
// /api/exporters show it; the "other" row sums several exporters.
type exporterRow struct {
	addr      netip.Addr // invalid for the "other" row
	exporter  string
	version   string
	exporters int // how many exporters the row sums

	packets, flows, errors, templateMisses, lost uint64
	flowSamples, counterSamples, otherSamples    uint64
	templates                                    int
	samplingRate                                 uint32
	clockSkew                                    time.Duration // NetFlow/IPFIX; not summed into "other"
	lastSeen                                     time.Time
}

// add sums r into o (the "other" row).
func (o *exporterRow) add(r *exporterRow) {
	o.exporters += r.exporters
	o.packets += r.packets
	o.flows += r.flows
	o.errors += r.errors
	o.templateMisses += r.templateMisses
	o.lost += r.lost
	o.flowSamples += r.flowSamples
	o.counterSamples += r.counterSamples
	o.otherSamples += r.otherSamples
	o.templates += r.templates
	if r.lastSeen.After(o.lastSeen) {
		o.lastSeen = r.lastSeen
	}
}

// exporterRows returns a listener's exporters, bounded: the known ones
// (named in the configuration) and the limit busiest others by flows keep
// rows of their own; the rest are summed per version under "other". A
// storm of spoofed sources so costs a scrape at most one row per version.
func exporterRows(l *listener, known map[netip.Addr]bool, limit int) []exporterRow {
	var rows []exporterRow
	for _, n := range l.decs { // every registered protocol
		rows = append(rows, n.rows()...)
	}
	// Rank the addresses that are not known by their flows, all versions.
	flows := map[netip.Addr]uint64{}
	for i := range rows {
		if !known[rows[i].addr] {
			flows[rows[i].addr] += rows[i].flows
		}
	}
	named := map[netip.Addr]bool{}
	if len(flows) > limit {
		ranked := make([]netip.Addr, 0, len(flows))
		for a := range flows {
			ranked = append(ranked, a)
		}
		slices.SortFunc(ranked, func(a, b netip.Addr) int {
			if c := cmp.Compare(flows[b], flows[a]); c != 0 {
				return c
			}
			return a.Compare(b)
		})
		for _, a := range ranked[:limit] {
			named[a] = true
		}
	} else {
		for a := range flows {
			named[a] = true
		}
	}
	out := rows[:0]
	other := map[string]*exporterRow{}
	for i := range rows {
		r := rows[i]
		if known[r.addr] || named[r.addr] {
			r.exporter = r.addr.String()
			out = append(out, r)
			continue
		}
		o := other[r.version]
		if o == nil {
			o = &exporterRow{exporter: otherExporters, version: r.version}
			other[r.version] = o
		}
		o.add(&r)
	}
	for _, o := range other {
		out = append(out, *o)
	}
	slices.SortFunc(out, func(a, b exporterRow) int {
		if (a.exporter == otherExporters) != (b.exporter == otherExporters) {
			if a.exporter == otherExporters {
				return 1
			}
			return -1
		}
		if c := a.addr.Compare(b.addr); c != 0 {
			return c
		}
		return cmp.Compare(a.version, b.version)
	})
	return out
}
