package sflow

import (
	"cmp"
	"encoding/binary"
	"errors"
	"fmt"
	"github.com/flowguard/flowguard/ingest/internal/seqtrack"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/flowguard/flowguard/flow"
	"github.com/flowguard/flowguard/ingest"
	"github.com/flowguard/flowguard/ingest/admit"
)

// DefaultMaxAgents bounds the agents a decoder keeps state for.
const DefaultMaxAgents = 4096

// Config configures a Decoder. The zero value is usable.
type Config struct {
	// SamplingOverride forces the sampling rate of an exporter (the
	// datagram's source address), whatever its samples say.
	SamplingOverride map[netip.Addr]uint32
	// DefaultSampling is the rate used for samples that state 0 (1 when 0).
	DefaultSampling uint32
	// MaxAgents bounds the (exporter, agent, sub-agent) triples state is
	// kept for; datagrams from further ones are rejected with
	// ErrTooManyAgents. DefaultMaxAgents when 0.
	MaxAgents int
	// AgentTTL: the state of an agent not heard from for this long is
	// dropped (30 minutes when 0).
	AgentTTL time.Duration
	// Admission limits the rate at which new agents get state; an agent
	// that never sent a valid datagram is dropped after ProbationIdle
	// (one minute when 0) and evicted first when the table is full.
	Admission     admit.Config
	ProbationIdle time.Duration
}

// Errors Decode returns, counted in Stats. They are sentinels: a flood of
// bad datagrams allocates nothing.
var (
	ErrTruncated     = errors.New("sflow: datagram truncated")
	ErrVersion       = errors.New("sflow: not an sFlow v5 datagram")
	ErrMalformed     = errors.New("sflow: malformed datagram")
	ErrTooManyAgents = fmt.Errorf("sflow: too many agents: %w", ingest.ErrRejected)
	ErrAgentRate     = fmt.Errorf("sflow: new agents over the admission rate: %w", ingest.ErrRejected)
)

// agentKey names an sFlow sub-agent as seen from one exporter address.
type agentKey struct {
	exporter netip.Addr
	agent    netip.Addr
	subAgent uint32
}

// agent is the state and counters of one sub-agent.
type agent struct {
	key      agentKey
	override uint32
	seq      seqtrack.Tracker
	lastSeen int64 // decoder goroutine only
	// established: a valid datagram came; until then the agent is on
	// probation and may be evicted for a new one.
	established bool

	packets, flows, errors atomic.Uint64
	flowSamples, counters  atomic.Uint64
	otherSamples           atomic.Uint64
	lostPackets, restarts  atomic.Uint64
	samplingRate           atomic.Uint32
	lastSeenNs             atomic.Int64
}

// Decoder decodes sFlow v5 datagrams. Decode must be called from one
// goroutine; Stats may be called from any.
type Decoder struct {
	cfg       Config
	ttl       int64
	mu        sync.Mutex // guards inserts into and deletes from agents, against Stats
	agents    map[agentKey]*agent
	last      *agent
	nextSweep int64
	gate      *admit.Gate[agentKey]
	malformed atomic.Uint64 // datagrams too short to name their agent
}

// NewDecoder returns a Decoder configured by cfg.
func NewDecoder(cfg Config) *Decoder {
	if cfg.DefaultSampling == 0 {
		cfg.DefaultSampling = 1
	}
	if cfg.MaxAgents <= 0 {
		cfg.MaxAgents = DefaultMaxAgents
	}
	if cfg.AgentTTL <= 0 {
		cfg.AgentTTL = 30 * time.Minute
	}
	if cfg.ProbationIdle <= 0 {
		cfg.ProbationIdle = time.Minute
	}
	return &Decoder{cfg: cfg, ttl: int64(cfg.AgentTTL), agents: make(map[agentKey]*agent), gate: admit.New[agentKey](cfg.Admission)}
}

// Stats is a snapshot of a Decoder's counters.
type Stats struct {
	// Agents holds one entry per exporter address, agent and sub-agent,
	// ordered by exporter, agent, sub-agent.
	Agents []AgentStats
	// Rejected counts datagrams refused from new agents (RejectedRate:
	// over the admission rate; the rest: the table was full of
	// established agents); Malformed those too short or of another
	// version to name their agent; Evicted agents on probation evicted to
	// make room for a new one.
	Rejected, RejectedRate, Malformed, Evicted uint64
}

// AgentStats are the counters of one sFlow sub-agent.
type AgentStats struct {
	Exporter netip.Addr // the datagrams' source address
	Agent    netip.Addr // the agent address the datagrams carry
	SubAgent uint32
	Packets  uint64 // datagrams
	Flows    uint64 // flows decoded (one per flow sample)
	Errors   uint64 // malformed datagrams
	// FlowSamples, CounterSamples and OtherSamples count samples by kind
	// (other: drop samples, enterprise formats), whatever became of them.
	FlowSamples, CounterSamples, OtherSamples uint64
	// LostPackets counts datagrams the agent numbered but that never came;
	// Restarts sequence jumps taken as an agent restart.
	LostPackets, Restarts uint64
	// SamplingRate is the rate applied to the last flow sample.
	SamplingRate uint32
	LastSeen     time.Time
}

// Stats returns a snapshot of the counters; safe during Decode.
func (d *Decoder) Stats() Stats {
	st := Stats{RejectedRate: d.gate.RateRefused.Load(), Malformed: d.malformed.Load(), Evicted: d.gate.Evicted.Load()}
	st.Rejected = st.RejectedRate + d.gate.TableFullRefused.Load()
	d.mu.Lock()
	for k, a := range d.agents {
		as := AgentStats{
			Exporter: k.exporter, Agent: k.agent, SubAgent: k.subAgent,
			Packets: a.packets.Load(), Flows: a.flows.Load(), Errors: a.errors.Load(),
			FlowSamples: a.flowSamples.Load(), CounterSamples: a.counters.Load(), OtherSamples: a.otherSamples.Load(),
			LostPackets: a.lostPackets.Load(), Restarts: a.restarts.Load(),
			SamplingRate: a.samplingRate.Load(),
		}
		if ns := a.lastSeenNs.Load(); ns != 0 {
			as.LastSeen = time.Unix(0, ns).UTC()
		}
		st.Agents = append(st.Agents, as)
	}
	d.mu.Unlock()
	slices.SortFunc(st.Agents, func(a, b AgentStats) int {
		if c := a.Exporter.Compare(b.Exporter); c != 0 {
			return c
		}
		if c := a.Agent.Compare(b.Agent); c != 0 {
			return c
		}
		return cmp.Compare(a.SubAgent, b.SubAgent)
	})
	return st
}

func (d *Decoder) agent(k agentKey, now int64) (*agent, error) {
	if a := d.last; a != nil && a.key == k {
		return a, nil
	}
	if now >= d.nextSweep {
		d.nextSweep = now + min(int64(time.Minute), int64(d.cfg.ProbationIdle)/2)
		d.sweep(now)
	}
	a := d.agents[k]
	if a == nil {
		switch d.gate.Admit(k, now, len(d.agents), d.cfg.MaxAgents, d.evictProbation) {
		case admit.Rate:
			return nil, ErrAgentRate
		case admit.TableFull:
			return nil, ErrTooManyAgents
		}
		a = &agent{key: k, override: d.cfg.SamplingOverride[k.exporter], lastSeen: now}
		a.seq.MaxJump = 1 << 16
		d.mu.Lock()
		d.agents[k] = a
		d.mu.Unlock()
	}
	d.last = a
	return a, nil
}

func (d *Decoder) sweep(now int64) {
	for k, a := range d.agents {
		if a.lastSeen < now-d.ttl || !a.established && a.lastSeen < now-int64(d.cfg.ProbationIdle) {
			d.remove(k, a)
		}
	}
	d.gate.Prune(func(k agentKey) bool { a := d.agents[k]; return a != nil && !a.established })
}

// remove drops an agent's state.
func (d *Decoder) remove(k agentKey, a *agent) {
	d.mu.Lock()
	delete(d.agents, k)
	d.mu.Unlock()
	if d.last == a {
		d.last = nil
	}
}

// evictProbation removes agent k if it is still on probation.
func (d *Decoder) evictProbation(k agentKey) bool {
	a := d.agents[k]
	if a == nil || a.established {
		return false
	}
	d.remove(k, a)
	return true
}

// reader reads XDR (big-endian, 4-byte aligned) data without allocating.
type reader struct {
	b   []byte
	bad bool
}

func (r *reader) u32() uint32 {
	if len(r.b) < 4 {
		r.bad, r.b = true, nil
		return 0
	}
	v := binary.BigEndian.Uint32(r.b)
	r.b = r.b[4:]
	return v
}

// bytes returns the next n bytes, consuming them and their padding to 4.
func (r *reader) bytes(n uint32) []byte {
	p := (uint64(n) + 3) &^ 3
	if uint64(len(r.b)) < p {
		r.bad, r.b = true, nil
		return nil
	}
	v := r.b[:n]
	r.b = r.b[p:]
	return v
}

func (r *reader) addr() netip.Addr {
	switch r.u32() {
	case 1:
		if b := r.bytes(4); b != nil {
			return netip.AddrFrom4([4]byte(b))
		}
	case 2:
		if b := r.bytes(16); b != nil {
			return netip.AddrFrom16([16]byte(b))
		}
	case 0: // unknown
	default:
		r.bad = true
	}
	return netip.Addr{}
}

// Sample and record formats (enterprise 0).
const (
	fmtFlowSample         = 1
	fmtCounterSample      = 2
	fmtExpandedFlow       = 3
	fmtExpandedCounter    = 4
	recRawHeader          = 1
	recIPv4               = 3
	recIPv6               = 4
	recExtendedRouter     = 1002
	recExtendedGateway    = 1003
	headerEthernet        = 1
	headerIPv4            = 11
	headerIPv6            = 12
	maxSamplesPerDatagram = 1 << 12
)

// Decode decodes one sFlow v5 datagram from exporter src received at now,
// appending one flow per flow sample to out and returning it. A malformed
// datagram returns an error (counted in Stats); the flows of the samples
// before the damage stay in out. Decode never panics on any input.
func (d *Decoder) Decode(src netip.AddrPort, now time.Time, payload []byte, out []flow.Flow) ([]flow.Flow, error) {
	r := reader{b: payload}
	if r.u32() != 5 {
		d.malformed.Add(1)
		if r.bad {
			return out, ErrTruncated
		}
		return out, ErrVersion
	}
	agentAddr := r.addr()
	subAgent := r.u32()
	seq := r.u32()
	r.u32() // uptime
	nsamples := r.u32()
	if r.bad {
		d.malformed.Add(1)
		return out, ErrTruncated
	}
	nowNs := now.UnixNano()
	a, err := d.agent(agentKey{exporter: src.Addr().Unmap(), agent: agentAddr.Unmap(), subAgent: subAgent}, nowNs)
	if err != nil {
		return out, err
	}
	a.lastSeenNs.Store(nowNs)
	a.packets.Add(1)
	n0 := len(out)
	out, err = d.samples(a, &r, nsamples, seq, now, out)
	a.flows.Add(uint64(len(out) - n0))
	if err != nil {
		a.errors.Add(1)
		return out, err
	}
	a.lastSeen, a.established = nowNs, true
	lost, restart := a.seq.Observe(seq, 1)
	a.lostPackets.Add(lost)
	if restart {
		a.restarts.Add(1)
	}
	return out, nil
}

func (d *Decoder) samples(a *agent, r *reader, n, seq uint32, now time.Time, out []flow.Flow) ([]flow.Flow, error) {
	if n > maxSamplesPerDatagram {
		return out, ErrMalformed
	}
	var flows, counters, other uint64
	var rate uint32
	defer func() {
		a.flowSamples.Add(flows)
		a.counters.Add(counters)
		a.otherSamples.Add(other)
		if rate != 0 {
			a.samplingRate.Store(rate)
		}
	}()
	for range n {
		format := r.u32()
		body := reader{b: r.bytes(r.u32())}
		if r.bad {
			return out, ErrTruncated
		}
		switch format {
		case fmtFlowSample, fmtExpandedFlow:
			flows++
			var f *flow.Flow
			out = append(out, flow.Flow{})
			f = &out[len(out)-1]
			if !d.flowSample(a, &body, format == fmtExpandedFlow, f) {
				out = out[:len(out)-1]
				return out, ErrMalformed
			}
			rate = f.SamplingRate
			f.SequenceNum = seq
			f.TimeReceived, f.TimeFlowStart, f.TimeFlowEnd = now, now, now
		case fmtCounterSample, fmtExpandedCounter:
			counters++
		default:
			other++
		}
	}
	return out, nil
}

// flowSample decodes a flow sample into f.
//
//	compact (0:1):  sequence, source_id (type<<24|index), sampling_rate, sample_pool, drops,
//	                input, output (format<<30|value), records
//	expanded (0:3): sequence, source_id_type, source_id_index, sampling_rate, sample_pool, drops,
//	                input_format, input_value, output_format, output_value, records
func (d *Decoder) flowSample(a *agent, r *reader, expanded bool, f *flow.Flow) bool {
	r.u32() // sequence
	r.u32() // source id (type)
	if expanded {
		r.u32() // source id index
	}
	rate := r.u32()
	r.u32() // sample pool
	r.u32() // drops
	var in, out uint32
	if expanded {
		inFmt, inVal, outFmt, outVal := r.u32(), r.u32(), r.u32(), r.u32()
		if inFmt == 0 {
			in = ifIndex(inVal)
		}
		if outFmt == 0 {
			out = ifIndex(outVal)
		}
	} else {
		inV, outV := r.u32(), r.u32()
		if inV>>30 == 0 {
			in = ifIndex(inV)
		}
		if outV>>30 == 0 {
			out = ifIndex(outV)
		}
	}
	nrec := r.u32()
	if r.bad || nrec > maxSamplesPerDatagram {
		return false
	}
	f.InIf, f.OutIf = in, out
	var st sampleState
	for range nrec {
		format := r.u32()
		rec := reader{b: r.bytes(r.u32())}
		if r.bad {
			return false
		}
		switch format {
		case recRawHeader:
			proto, frameLen := rec.u32(), rec.u32()
			rec.u32() // stripped
			hdr := rec.bytes(rec.u32())
			if rec.bad {
				return false
			}
			st.frameLen, st.haveHeader = uint64(frameLen), true
			switch proto {
			case headerEthernet:
				parseEthernet(hdr, f)
			case headerIPv4, headerIPv6:
				parseIP(hdr, f)
			}
		case recIPv4, recIPv6:
			length, proto := rec.u32(), rec.u32()
			var src, dst netip.Addr
			if format == recIPv4 {
				if b := rec.bytes(8); b != nil {
					src, dst = netip.AddrFrom4([4]byte(b[:4])), netip.AddrFrom4([4]byte(b[4:]))
				}
			} else if b := rec.bytes(32); b != nil {
				src, dst = netip.AddrFrom16([16]byte(b[:16])), netip.AddrFrom16([16]byte(b[16:]))
			}
			sport, dport, flags := rec.u32(), rec.u32(), rec.u32()
			if rec.bad {
				return false
			}
			if !st.haveHeader {
				st.ipLen = uint64(length)
				f.SrcAddr, f.DstAddr = src, dst
				f.SrcPort, f.DstPort = uint16(sport), uint16(dport)
				f.SetProto(uint8(proto))
				f.SetTCPFlags(uint8(flags))
			}
		case recExtendedRouter:
			nh := rec.addr()
			srcMask, dstMask := rec.u32(), rec.u32()
			if rec.bad {
				return false
			}
			if nh.IsValid() && !nh.IsUnspecified() {
				f.NextHop = nh.Unmap()
			}
			st.srcMask, st.dstMask = srcMask, dstMask
		case recExtendedGateway:
			nh := rec.addr()
			rec.u32() // the router's own AS
			srcAS := rec.u32()
			rec.u32() // src peer AS
			var dstAS uint32
			for segs := rec.u32(); segs > 0 && !rec.bad; segs-- {
				rec.u32() // segment type
				n := rec.u32()
				if n > 1024 {
					return false
				}
				for ; n > 0 && !rec.bad; n-- {
					dstAS = rec.u32()
				}
			}
			if rec.bad {
				return false
			}
			f.SrcAS, f.DstAS = srcAS, dstAS
			if !f.NextHop.IsValid() && nh.IsValid() && !nh.IsUnspecified() {
				f.NextHop = nh.Unmap()
			}
		}
	}
	if st.srcMask != 0 && f.SrcAddr.IsValid() {
		f.SrcNet, _ = f.SrcAddr.Prefix(int(st.srcMask))
	}
	if st.dstMask != 0 && f.DstAddr.IsValid() {
		f.DstNet, _ = f.DstAddr.Prefix(int(st.dstMask))
	}
	f.RawPackets = 1
	f.RawBytes = st.frameLen
	if !st.haveHeader {
		f.RawBytes = st.ipLen
	}
	switch {
	case a.override != 0:
		rate = a.override
	case rate == 0:
		rate = d.cfg.DefaultSampling
	}
	f.Type = flow.TypeSFlow5
	f.SamplerAddress = a.key.agent
	if !f.SamplerAddress.IsValid() {
		f.SamplerAddress = a.key.exporter
	}
	f.SamplingRate = rate
	f.Renormalise()
	return true
}

// ifIndex maps the interface value of format 0 to in_if / out_if:
// 0x3FFFFFFF means "internal" (the agent itself), which has no ifIndex.
func ifIndex(v uint32) uint32 {
	if v == 0x3FFFFFFF {
		return 0
	}
	return v
}

type sampleState struct {
	haveHeader       bool
	frameLen, ipLen  uint64
	srcMask, dstMask uint32
}
