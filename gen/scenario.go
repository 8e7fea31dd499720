package gen

import (
	"container/heap"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"slices"
	"time"
)

// Scenario configures a scenario capture. Zero fields take the defaults
// noted.
type Scenario struct {
	Seed uint64
	// Start is the time of the capture's first moment (default
	// DefaultStart, so that a seed gives the same file on any day).
	Start time.Time
	// Duration is how long the background runs (default 60s). Behaviours
	// are placed at fixed fractions of it and never cut, so the capture
	// may run a few seconds longer when Duration is short.
	Duration time.Duration
	// BackgroundRate is the background's mean rate in packets per second
	// (default 200); NoBackground leaves it out.
	BackgroundRate float64
	NoBackground   bool
	// With lists the behaviours to inject (see Behaviours); nil injects
	// none.
	With []string
	// Snaplen cuts each frame, as tcpdump -s does (default 64: the headers and
	// 10 bytes of payload). IP
	// lengths stay true, so flows count the real bytes.
	Snaplen int
}

// DefaultStart is a Scenario's default start time.
var DefaultStart = time.Date(2026, 1, 5, 9, 0, 0, 0, time.UTC)

// Defaults of Scenario.
const (
	DefaultDuration       = 60 * time.Second
	DefaultBackgroundRate = 200
	DefaultSnaplen        = 64
)

// When each behaviour starts, as a fraction of the duration: apart enough
// that they do not blur into each other in the short windows, and the
// heavy hitter first so that the exfiltration that follows is not one
// too (see truth below).
var placement = map[string]float64{HeavyHitter: 0.10, Scan: 0.25, Sweep: 0.40, Exfil: 0.55, Flood: 0.70}

// Truth is a scenario's ground truth: what was generated and which alerts
// of the bundled rule pack (examples/rules) it must raise. The background
// must raise none.
type Truth struct {
	Generator      string           `json:"generator"`
	Seed           uint64           `json:"seed"`
	Start          time.Time        `json:"start"`
	Duration       string           `json:"duration"`
	BackgroundRate float64          `json:"background_rate_pps"`
	Snaplen        int              `json:"snaplen"`
	InternalNets   []string         `json:"internal_nets"`
	Packets        uint64           `json:"packets"`
	Bytes          uint64           `json:"bytes"` // IP bytes, as flows count them
	Background     BackgroundTruth  `json:"background"`
	Behaviours     []BehaviourTruth `json:"behaviours"`
}

// BackgroundTruth counts the background.
type BackgroundTruth struct {
	Sessions int    `json:"sessions"`
	Packets  uint64 `json:"packets"`
	Bytes    uint64 `json:"bytes"`
}

// Validate checks the configuration.
func (s Scenario) Validate() error {
	var errs []error
	if s.Duration < 0 {
		errs = append(errs, fmt.Errorf("duration: must be > 0, got %s", s.Duration))
	}
	if s.BackgroundRate < 0 {
		errs = append(errs, fmt.Errorf("background rate: must be >= 0, got %g", s.BackgroundRate))
	}
	if s.Snaplen != 0 && (s.Snaplen < etherLen+ipv4Len+tcpLen || s.Snaplen > 262144) {
		errs = append(errs, fmt.Errorf("snaplen: must be between %d and 262144, got %d", etherLen+ipv4Len+tcpLen, s.Snaplen))
	}
	seen := map[string]bool{}
	for _, b := range s.With {
		if _, ok := placement[b]; !ok {
			errs = append(errs, fmt.Errorf("behaviour %q: unknown (want one of %v)", b, Behaviours))
		} else if seen[b] {
			errs = append(errs, fmt.Errorf("behaviour %q: given twice", b))
		}
		seen[b] = true
	}
	return errors.Join(errs...)
}

func (s Scenario) withDefaults() Scenario {
	if s.Start.IsZero() {
		s.Start = DefaultStart
	}
	if s.Duration == 0 {
		s.Duration = DefaultDuration
	}
	if s.BackgroundRate == 0 {
		s.BackgroundRate = DefaultBackgroundRate
	}
	if s.Snaplen == 0 {
		s.Snaplen = DefaultSnaplen
	}
	return s
}

// WriteScenario writes the scenario as a pcap file to w and returns its
// ground truth.
func WriteScenario(w io.Writer, s Scenario) (*Truth, error) {
	if err := s.Validate(); err != nil {
		return nil, err
	}
	s = s.withDefaults()
	truth := &Truth{
		Generator: "flowguard gen scenario", Seed: s.Seed, Start: s.Start.UTC(), Duration: s.Duration.String(),
		BackgroundRate: s.BackgroundRate, Snaplen: s.Snaplen, InternalNets: []string{"10.0.0.0/8"},
		Behaviours: []BehaviourTruth{},
	}
	if s.NoBackground {
		truth.BackgroundRate = 0
	}
	pw := newPcapWriter(w, s.Snaplen, s.Start.UnixNano())
	q := &sessionQueue{}

	// Behaviours, each from its own random stream so that adding one
	// changes nothing else.
	for _, name := range slices.Concat(Behaviours, Attacks, Learning) {
		if !slices.Contains(s.With, name) {
			continue
		}
		at := int64(placement[name] * float64(s.Duration))
		pkts, bt, err := behaviour(name, rand.New(rand.NewPCG(s.Seed, hashName(name))), at)
		if err != nil {
			return nil, err
		}
		bt.Packets = len(pkts)
		for _, p := range pkts {
			bt.Bytes += uint64(p.ipLen)
		}
		bt.Start = s.Start.Add(time.Duration(pkts[0].ts)).UTC()
		bt.End = s.Start.Add(time.Duration(pkts[len(pkts)-1].ts)).UTC()
		truth.Behaviours = append(truth.Behaviours, bt)
		heap.Push(q, &session{pkts: pkts, behaviour: true})
	}
	addAlso(truth)

	// Background sessions arrive as a Poisson process whose rate gives
	// the packet rate asked for.
	bg := &background{rng: rand.New(rand.NewPCG(s.Seed, 1))}
	var next, end int64 = 0, int64(s.Duration)
	lambda := 0.0 // sessions per ns
	if !s.NoBackground {
		lambda = s.BackgroundRate / meanPackets(s.Seed, end) / 1e9
		next = int64(bg.rng.ExpFloat64() / lambda)
	}
	for {
		for lambda > 0 && next < end && (q.Len() == 0 || next <= q.peek()) {
			truth.Background.Sessions++
			heap.Push(q, &session{pkts: bg.session(next)})
			next += int64(bg.rng.ExpFloat64() / lambda)
		}
		if q.Len() == 0 {
			break
		}
		ss := (*q)[0]
		p := &ss.pkts[ss.next]
		if ss.behaviour || p.ts < end {
			pw.write(p)
			if !ss.behaviour {
				truth.Background.Packets++
				truth.Background.Bytes += uint64(p.ipLen)
			}
		}
		ss.next++
		if ss.next == len(ss.pkts) || (!ss.behaviour && ss.pkts[ss.next].ts >= end) {
			heap.Pop(q)
		} else {
			heap.Fix(q, 0)
		}
	}
	if err := pw.flush(); err != nil {
		return nil, err
	}
	truth.Packets, truth.Bytes = pw.packets, pw.bytes
	return truth, nil
}

// addAlso notes the alerts a behaviour raises besides its own. An upload
// of 30 MB is, on its own, also a heavy hitter (it carries more than half
// of the bytes of a quiet window); it is not when the 45 MB download of
// the heavy-hitter behaviour is in the same 5-minute window.
func addAlso(t *Truth) {
	var hh, ex *BehaviourTruth
	for i := range t.Behaviours {
		switch b := &t.Behaviours[i]; b.Behaviour {
		case HeavyHitter:
			hh = b
		case Exfil:
			ex = b
		}
	}
	if ex != nil && (hh == nil || ex.End.Sub(hh.Start) > 5*time.Minute) {
		ex.Also = append(ex.Also, Expected{Rule: "heavy-hitter", Group: map[string]string{"src_addr": ex.Group["src_addr"]}})
	}
}

// WriteScenarioFile writes the scenario to path and its truth, as
// indented JSON, to path + ".truth.json".
func WriteScenarioFile(path string, s Scenario) (*Truth, error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	truth, err := WriteScenario(f, s)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	js, err := json.MarshalIndent(truth, "", "  ")
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(path+".truth.json", append(js, '\n'), 0o644); err != nil {
		return nil, err
	}
	return truth, nil
}

// meanPackets estimates, from a sample, how many packets an average
// background session starting at a random time in [0, end) has before
// end: the factor that turns a packet rate into a session rate. Long
// sessions (SSH) are cut at the end, so it is less than a session's mean.
func meanPackets(seed uint64, end int64) float64 {
	bg := &background{rng: rand.New(rand.NewPCG(seed, 2))}
	const n = 2000
	total := 0
	for range n {
		start := bg.rng.Int64N(end)
		for _, p := range bg.session(start) {
			if p.ts < end {
				total++
			}
		}
	}
	return float64(max(total, 1)) / n
}

func hashName(s string) uint64 {
	h := uint64(14695981039346656037)
	for i := 0; i < len(s); i++ {
		h ^= uint64(s[i])
		h *= 1099511628211
	}
	return h
}

// session is one session's packets in time order, and how far they have
// been written.
type session struct {
	pkts      []packet
	next      int
	behaviour bool
}

// sessionQueue is a min-heap of sessions by their next packet's time.
type sessionQueue []*session

func (q sessionQueue) Len() int { return len(q) }
func (q sessionQueue) Less(i, j int) bool {
	return q[i].pkts[q[i].next].ts < q[j].pkts[q[j].next].ts
}
func (q sessionQueue) Swap(i, j int) { q[i], q[j] = q[j], q[i] }
func (q *sessionQueue) Push(x any)   { *q = append(*q, x.(*session)) }
func (q *sessionQueue) Pop() any {
	old := *q
	s := old[len(old)-1]
	old[len(old)-1] = nil
	*q = old[:len(old)-1]
	return s
}
func (q sessionQueue) peek() int64 { return q[0].pkts[q[0].next].ts }
