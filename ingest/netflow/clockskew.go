package netflow

import (
	"encoding/binary"
	"net/netip"
	"sync/atomic"
	"time"
)

// Exporter clocks. Every NetFlow/IPFIX header carries the exporter's clock
// at export time (v1/v5/v7/v8: unix_secs + unix_nsecs; v9: unix_secs;
// IPFIX: export time, seconds); the collector knows when the datagram
// arrived. Their difference, the offset, is the exporter's skew minus the
// export delay. It is estimated per exporter domain (address + version +
// source id / observation domain / engine) as the median of the last
// clockSamples datagrams' offsets, so one datagram, forged or broken,
// cannot move it, and a genuine change of clock is taken once most recent
// datagrams agree.
//
// With Config.ClockCorrection, the flows of a datagram are placed on the
// collector's clock: their start and end move by the offset (the header
// carries the shift into every time the datagram gives), when it is
// larger than ClockDeadBand (normal jitter and export delay change
// nothing). A datagram whose own offset is further than clockStepTolerance
// from the estimate (a forged header, or the first datagrams after the
// exporter's clock stepped) is placed by its own offset instead: its flows
// land on the collector's clock too, and its offset, one sample among
// nine, leaves the median where it was.

const (
	// ClockDeadBand is the offset below which an exporter's flows keep
	// their times: v9 headers have whole seconds, and export takes time.
	ClockDeadBand = 2 * time.Second
	// DefaultClockSkewWarning is the skew that reports an exporter's clock
	// as wrong (Config.OnClockSkew), when Config.ClockSkewWarning is 0.
	DefaultClockSkewWarning = 10 * time.Second
	// clockSamples is how many recent datagrams' offsets the median is
	// taken over, per domain.
	clockSamples = 9
	// clockStepTolerance is how far a datagram's offset may be from the
	// estimate and still be corrected by the estimate.
	clockStepTolerance = 10 * time.Second
	// clockReportHold is how long (on the receive clock) a domain's
	// reported state stays before it may change again: an exporter
	// flapping its clock logs at most once a minute.
	clockReportHold = time.Minute
	// clockReportBurst is how many reports a decoder gives per
	// clockReportHold over all its exporters: a storm of spoofed
	// exporters with wrong clocks cannot flood the log either. Reports
	// beyond it are counted (ClockWarningsSuppressed).
	clockReportBurst = 10
)

// clockReports limits a decoder's skew reports.
type clockReports struct {
	from       int64 // receive time (ns) the current period began
	n          int   // reports given in it
	suppressed atomic.Uint64
}

// allow reports whether one more report fits the period of nowNs.
// Receive times of one batch can be slightly out of order (kernel stamps
// beside read times), so only a step back of more than a period starts a
// new one.
func (r *clockReports) allow(nowNs int64) bool {
	hold := int64(clockReportHold)
	if r.from == 0 || nowNs-r.from >= hold || nowNs < r.from-hold {
		r.from, r.n = nowNs, 0
	}
	if r.n >= clockReportBurst {
		r.suppressed.Add(1)
		return false
	}
	r.n++
	return true
}

// ClockWarningsSuppressed counts the skew reports (Config.OnClockSkew) not
// given because more than 10 were due within a minute. Safe from any
// goroutine.
func (d *Decoder) ClockWarningsSuppressed() uint64 { return d.reports.suppressed.Load() }

// ClockSkewEvent reports that an exporter domain's estimated skew passed
// the warning bound (Over) or came back within half of it.
type ClockSkewEvent struct {
	Exporter netip.Addr
	Version  uint16
	Domain   uint32 // source id (v9), observation domain (IPFIX), engine type<<8|id (v5, v8)
	Skew     time.Duration
	Over     bool
}

// clockEstimate is the clock state of one exporter domain.
type clockEstimate struct {
	samples  [clockSamples]int64 // offsets (ns), a ring
	sorted   [clockSamples]int64 // the same, in order
	n, next  int
	offset   int64 // median of samples (ns)
	warned   bool  // |offset| passed the warning bound, reported
	reported int64 // receive time (ns) warned last changed, 0 never
}

// observe adds one datagram's offset and returns the new estimate. The
// samples are also kept sorted (sorted[:n]): the oldest taken out, the new
// one put in its place, rather than a sort per datagram.
func (c *clockEstimate) observe(off int64) int64 {
	n := c.n
	if n == clockSamples {
		old := c.samples[c.next]
		i := 0
		for c.sorted[i] != old {
			i++
		}
		copy(c.sorted[i:n], c.sorted[i+1:n])
		n--
	}
	c.samples[c.next] = off
	c.next = (c.next + 1) % clockSamples
	j := n
	for ; j > 0 && c.sorted[j-1] > off; j-- {
		c.sorted[j] = c.sorted[j-1]
	}
	c.sorted[j] = off
	c.n = n + 1
	s := c.sorted[:c.n]
	m := s[c.n/2]
	if c.n%2 == 0 {
		// Evidence split evenly: take the middle sample that corrects
		// less.
		if lo := s[c.n/2-1]; abs(lo) < abs(m) {
			m = lo
		}
	}
	c.offset = m
	return m
}

// applied returns the offset to correct a datagram whose own offset is
// own, given the estimate.
func (c *clockEstimate) applied(own int64) int64 {
	if abs(own-c.offset) > int64(clockStepTolerance) {
		return own
	}
	return c.offset
}

func abs(v int64) int64 {
	if v < 0 {
		return -v
	}
	return v
}

// headerClock reads the export time (Unix ns) and the domain of a datagram
// whose header is complete; ok is false otherwise.
func headerClock(p []byte) (ns int64, key domainKey, ok bool) {
	if len(p) < 16 {
		return 0, key, false
	}
	version := binary.BigEndian.Uint16(p)
	key.version = version
	switch version {
	case 1:
		return legacyExportNs(p), key, true
	case 5:
		if len(p) < v5Header {
			return 0, key, false
		}
		key.id = uint32(binary.BigEndian.Uint16(p[20:]))
		return legacyExportNs(p), key, true
	case 7:
		if len(p) < v7Header {
			return 0, key, false
		}
		return legacyExportNs(p), key, true
	case 8:
		if len(p) < v8Header {
			return 0, key, false
		}
		key.id = uint32(p[22])<<16 | uint32(binary.BigEndian.Uint16(p[20:]))
		return legacyExportNs(p), key, true
	case 9:
		if len(p) < 20 {
			return 0, key, false
		}
		key.id = binary.BigEndian.Uint32(p[16:])
		return int64(binary.BigEndian.Uint32(p[8:])) * 1e9, key, true
	case 10:
		key.id = binary.BigEndian.Uint32(p[12:])
		return int64(binary.BigEndian.Uint32(p[4:])) * 1e9, key, true
	}
	return 0, key, false
}

func legacyExportNs(p []byte) int64 {
	return int64(binary.BigEndian.Uint32(p[8:]))*1e9 + int64(binary.BigEndian.Uint32(p[12:])%1e9)
}

// exporterClock measures the offset of the datagram p received at nowNs,
// updates its domain's estimate and reports a change of state. It returns
// what to add to the datagram's flow times (ns): with correction on and
// the offset past the dead band, minus the offset; else 0. It runs before
// the datagram is decoded, so that its flows are built on the collector's
// clock at no cost per flow.
func (d *Decoder) exporterClock(e *exporter, s *versionStats, p []byte, nowNs int64) int64 {
	exp, key, ok := headerClock(p)
	if !ok {
		return 0
	}
	dm := e.domain(key, nowNs)
	c := &dm.clock
	own := exp - nowNs
	est := c.observe(own)
	s.clockSkew.Store(est)
	d.reportSkew(e, key, c, est, nowNs)
	if !d.cfg.ClockCorrection {
		return 0
	}
	off := c.applied(own)
	if abs(off) <= int64(ClockDeadBand) {
		return 0
	}
	return -off
}

// reportSkew calls Config.OnClockSkew once when a domain's skew passes the
// warning bound, and once when it is back within half of it; at most one
// change per clockReportHold per domain, and clockReportBurst reports per
// clockReportHold per decoder.
func (d *Decoder) reportSkew(e *exporter, key domainKey, c *clockEstimate, est, nowNs int64) {
	bound := int64(d.cfg.ClockSkewWarning)
	if bound <= 0 || d.cfg.OnClockSkew == nil {
		return
	}
	if c.reported != 0 && nowNs-c.reported < int64(clockReportHold) {
		return
	}
	over := abs(est) > bound
	back := abs(est) <= bound/2
	if (over && !c.warned) || (back && c.warned) {
		c.warned, c.reported = over, nowNs
		if !d.reports.allow(nowNs) {
			return
		}
		d.cfg.OnClockSkew(ClockSkewEvent{Exporter: e.addr, Version: key.version, Domain: key.id, Skew: time.Duration(est), Over: over})
	}
}
