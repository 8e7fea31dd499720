package netflow

import "github.com/flowguard/flowguard/ingest/internal/seqtrack"

// seqConventions follows an IPFIX domain's sequence numbers under the
// conventions exporters use. RFC 7011 says the header holds the count of
// data records sent before the message, options data records included;
// softflowd 1.1.0 sends the count after the message and leaves options
// records out. One tracker per convention sees every message, and the
// smallest loss (and restart count) of the four is reported: the right
// convention's, since a wrong one sees gaps that are not there. Both stay
// monotonic, as the minimum of monotonic counters.
type seqConventions struct {
	t              [4]seqtrack.Tracker // bit 0: count after the message; bit 1: data records only
	lost, restarts uint64              // reported so far
}

// observe records a message numbered seq holding all data and options
// data records, data of them data records (all < 0: unknown), and returns
// the newly lost records and restarts.
func (c *seqConventions) observe(seq uint32, all, data int) (lost, restarts uint64) {
	minLost, minRestarts := ^uint64(0), ^uint64(0)
	for v := range c.t {
		t := &c.t[v]
		t.MaxJump = 1 << 22
		n := all
		if v&2 != 0 {
			n = data
		}
		start := seq
		if v&1 != 0 && n > 0 {
			start -= uint32(n)
		}
		t.Observe(start, n)
		minLost = min(minLost, t.Lost)
		minRestarts = min(minRestarts, t.Restarts)
	}
	lost, restarts = minLost-c.lost, minRestarts-c.restarts
	c.lost, c.restarts = minLost, minRestarts
	return lost, restarts
}
