package gen

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"time"

	"github.com/flowguard/flowguard/flow"
)

// BackgroundFlows returns n flows of the scenario background (both
// directions of each session, as a flow probe would meter them), with
// times relative to DefaultStart. Stream cycles through such a pool.
func BackgroundFlows(seed uint64, n int) []flow.Flow {
	return backgroundFlows(context.Background(), seed, n)
}

// backgroundFlows is BackgroundFlows that stops early, returning what it
// has, once ctx is done: a large pool takes seconds to make on a slow or
// race-instrumented build, and Ctrl-C must not wait for it.
func backgroundFlows(ctx context.Context, seed uint64, n int) []flow.Flow {
	bg := &background{rng: rand.New(rand.NewPCG(seed, 1))}
	base := DefaultStart.UnixNano()
	out := make([]flow.Flow, 0, n+1)
	var t int64
	for len(out) < n {
		if len(out)%1024 == 0 && ctx.Err() != nil {
			break
		}
		t += int64(bg.rng.ExpFloat64() * 1e8)
		pkts := bg.session(t)
		first := pkts[0]
		var dirs [2]flow.Flow
		for i := range pkts {
			p := &pkts[i]
			d := 0
			if p.src != first.src || p.sport != first.sport {
				d = 1
			}
			f := &dirs[d]
			if f.RawPackets == 0 {
				f.SrcAddr, f.DstAddr, f.SrcPort, f.DstPort = p.src, p.dst, p.sport, p.dport
				f.SetProto(p.proto)
				f.TimeFlowStart = time.Unix(0, base+p.ts).UTC()
				f.SamplingRate = 1
			}
			f.RawPackets++
			f.RawBytes += uint64(p.ipLen)
			f.TCPFlags |= p.flags
			f.TimeFlowEnd = time.Unix(0, base+p.ts).UTC()
		}
		for i := range dirs {
			if f := &dirs[i]; f.RawPackets > 0 && len(out) < n {
				f.SetTCPFlags(f.TCPFlags)
				f.Renormalise()
				out = append(out, *f)
			}
		}
	}
	return out
}

// StreamConfig configures Stream. Zero fields take the defaults noted.
type StreamConfig struct {
	// To is the collector's address; it must be a loopback address
	// (127.0.0.0/8 or ::1).
	To    netip.AddrPort
	Proto Proto
	// Rate is the flows sent per second (default 100,000); a negative
	// rate sends as fast as the socket takes them.
	Rate float64
	// Count and Duration bound the stream (defaults 1,000,000 flows and
	// 60s); it stops at the first reached.
	Count    uint64
	Duration time.Duration
	// Exporters is the number of exporters the flows are spread over,
	// each with its own socket (127.0.1.k for IPv4), sequence numbers and
	// templates (default 1).
	Exporters int
	// Seed picks the background flows; Pool is how many distinct flows
	// are cycled through (default 50,000), with fresh times and ports.
	Seed uint64
	Pool int
	// Encoder configures every exporter's encoder (SourceID and Agent are
	// set per exporter).
	Encoder EncoderConfig
}

// StreamStats tells what Stream sent.
type StreamStats struct {
	Flows     uint64
	Datagrams uint64
	Bytes     uint64 // UDP payload bytes
	Errors    uint64 // datagrams the socket refused
	Elapsed   time.Duration
}

// Rate is the achieved flows per second.
func (s StreamStats) Rate() float64 {
	if s.Elapsed <= 0 {
		return 0
	}
	return float64(s.Flows) / s.Elapsed.Seconds()
}

// CheckLoopback refuses any address outside 127.0.0.0/8 and ::1: the
// generator is a load for local collectors, never for a network.
func CheckLoopback(ap netip.AddrPort) error {
	a := ap.Addr().Unmap()
	if !a.IsLoopback() {
		return fmt.Errorf("%s is not a loopback address: flowguard gen sends only to 127.0.0.0/8 or ::1", ap)
	}
	if ap.Port() == 0 {
		return fmt.Errorf("%s: port 0", ap)
	}
	return nil
}

// flowsPerDatagram is the most flows one datagram of p holds.
func flowsPerDatagram(p Proto, maxSize int) int {
	switch p {
	case NetFlowV5:
		return min(v5MaxRecords, (maxSize-24)/48)
	case NetFlowV9:
		return (maxSize - 20 - 4) / recordSize(v9Fields)
	case IPFIX:
		return (maxSize - 16 - 4) / recordSize(ipfixFields)
	}
	return (maxSize - 28) / sflowSampleLen
}

// exporter is one sending socket with its encoder.
type exporter struct {
	conn *net.UDPConn
	enc  Encoder
}

// Stream sends background flows to a loopback collector at cfg.Rate until
// cfg.Count flows are sent, cfg.Duration passes or ctx is done. It paces
// itself by sleeping between small bursts, never spinning, and returns
// what it sent.
func Stream(ctx context.Context, cfg StreamConfig) (StreamStats, error) {
	var st StreamStats
	if err := CheckLoopback(cfg.To); err != nil {
		return st, err
	}
	if cfg.Proto == 0 {
		return st, errors.New("no protocol")
	}
	if cfg.Rate == 0 {
		cfg.Rate = 100000
	}
	if cfg.Count == 0 {
		cfg.Count = 1000000
	}
	if cfg.Duration <= 0 {
		cfg.Duration = 60 * time.Second
	}
	cfg.Exporters = min(max(cfg.Exporters, 1), 250)
	if cfg.Pool <= 0 {
		cfg.Pool = 50000
	}
	maxSize := cfg.Encoder.MaxSize
	if maxSize == 0 {
		maxSize = 1400
	}
	maxSize = max(maxSize, 256)
	per := max(flowsPerDatagram(cfg.Proto, maxSize)-1, 1) // leave room for a template

	to := net.UDPAddrFromAddrPort(cfg.To)
	exps := make([]exporter, cfg.Exporters)
	for i := range exps {
		local := &net.UDPAddr{IP: net.IPv6loopback}
		if cfg.To.Addr().Unmap().Is4() {
			local = &net.UDPAddr{IP: net.IPv4(127, 0, 1, byte(i+1))}
		}
		conn, err := net.ListenUDP("udp", local)
		if err != nil {
			for _, e := range exps[:i] {
				e.conn.Close()
			}
			return st, fmt.Errorf("exporter %d: %w", i+1, err)
		}
		_ = conn.SetWriteBuffer(4 << 20)
		ec := cfg.Encoder
		ec.SourceID = uint32(i + 1)
		ec.Agent = netip.AddrFrom4([4]byte{127, 0, 1, byte(i + 1)})
		enc, err := NewEncoder(cfg.Proto, ec)
		if err != nil {
			return st, err
		}
		exps[i] = exporter{conn: conn, enc: enc}
	}
	defer func() {
		for _, e := range exps {
			e.conn.Close()
		}
	}()

	pool := backgroundFlows(ctx, cfg.Seed, cfg.Pool)
	if ctx.Err() != nil {
		return st, nil
	}
	batch := make([]flow.Flow, per)
	var (
		buf      []byte
		next     int    // pool index
		cycle    uint16 // times around the pool
		start    = time.Now()
		lastSend = start
		exp      int
	)
	const (
		maxWait  = 20 * time.Millisecond  // longest a due flow waits for company
		minSleep = 500 * time.Microsecond // shorter sleeps would spin
	)
	for st.Flows < cfg.Count {
		if ctx.Err() != nil {
			break
		}
		now := time.Now()
		el := now.Sub(start)
		if el >= cfg.Duration {
			break
		}
		avail := cfg.Count - st.Flows
		if cfg.Rate > 0 {
			due := min(uint64(cfg.Rate*el.Seconds()), cfg.Count)
			avail = due - min(due, st.Flows)
		}
		if avail < uint64(per) && (avail == 0 || now.Sub(lastSend) < maxWait) {
			wait := time.Duration((float64(st.Flows+uint64(per))/cfg.Rate - el.Seconds()) * 1e9)
			time.Sleep(min(max(wait, minSleep), maxWait))
			continue
		}
		n := int(min(avail, uint64(per)))
		for i := range n {
			f := &batch[i]
			*f = pool[next]
			stamp(f, now, cycle)
			if next++; next == len(pool) {
				next, cycle = 0, cycle+1
			}
		}
		e := &exps[exp]
		exp = (exp + 1) % len(exps)
		var used int
		buf, used = e.enc.Encode(buf[:0], batch[:n], now)
		if _, err := e.conn.WriteToUDP(buf, to); err != nil {
			st.Errors++
		} else {
			st.Datagrams++
			st.Bytes += uint64(len(buf))
			st.Flows += uint64(used)
		}
		lastSend = now
	}
	st.Elapsed = time.Since(start)
	return st, nil
}

// stamp gives a pooled flow the export time: it ends now, lasts what it
// lasted (at most a minute), and its client port moves with each cycle
// through the pool so that flows do not repeat exactly.
func stamp(f *flow.Flow, now time.Time, cycle uint16) {
	d := min(f.TimeFlowEnd.Sub(f.TimeFlowStart), time.Minute)
	f.TimeFlowEnd = now
	f.TimeFlowStart = now.Add(-d)
	f.TimeReceived = now
	if cycle == 0 {
		return
	}
	switch {
	case f.SrcPort >= 32768:
		f.SrcPort = 32768 + (f.SrcPort-32768+cycle*7919)%28232
	case f.DstPort >= 32768:
		f.DstPort = 32768 + (f.DstPort-32768+cycle*7919)%28232
	}
}

// StreamMix returns n flows as Stream sends them at rate flows per second
// from start (a pool of pool flows cycled through, each datagram's flows
// stamped with its send time), without sending anything: the workload of
// `make bench-e2e` for benchmarks that skip the sockets.
func StreamMix(seed uint64, pool, n int, rate float64, start time.Time) []flow.Flow {
	src := BackgroundFlows(seed, pool)
	per := max(flowsPerDatagram(NetFlowV9, 1400)-1, 1)
	out := make([]flow.Flow, n)
	var (
		next  int
		cycle uint16
	)
	for i := range out {
		now := start.Add(time.Duration(float64(i-i%per) / rate * 1e9))
		out[i] = src[next]
		stamp(&out[i], now, cycle)
		if next++; next == len(src) {
			next, cycle = 0, cycle+1
		}
	}
	return out
}
