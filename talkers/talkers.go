// Package talkers keeps the live top talkers of the flows the daemon
// receives: the sources, destinations, destination ports and AS numbers
// with the most bytes and packets over the last 1, 5 and 15 minutes.
//
// Memory is bounded whatever the traffic: each dimension and 30-second
// bucket of time is a table of a fixed number of keys, allocated up front;
// a full table forgets all but its heaviest keys (see table). The current
// bucket counts into larger tables (see live) and keeps only its heaviest
// keys when it closes. Counting a flow allocates nothing.
package talkers

import (
	"cmp"
	"encoding/binary"
	"math/rand/v2"
	"net/netip"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/flowguard/flowguard/flow"
)

// Bucket is the span of one bucket of time; windows are whole buckets.
const Bucket = 30 * time.Second

// Windows are the windows Top answers for.
var Windows = []time.Duration{time.Minute, 5 * time.Minute, 15 * time.Minute}

// buckets: 15 minutes of whole buckets and the current, partial one.
const buckets = int(15*time.Minute/Bucket) + 1

// DefaultCapacity is how many keys each closed bucket's table holds by
// default (256 by bytes and 256 by packets, more than MaxTop); the current
// bucket's hold LiveFactor times as many.
const DefaultCapacity = 512

// Dimension is what talkers are counted by.
type Dimension int

// The dimensions.
const (
	Sources Dimension = iota
	Destinations
	Ports // destination port and protocol
	ASNs  // source and destination AS: the enriched ASN when set, else the exporter's (BGP)
	dimensions
)

var dimensionNames = [dimensions]string{"sources", "destinations", "ports", "asns"}

func (d Dimension) String() string { return dimensionNames[d] }

// Ranking orders talkers.
type Ranking int

// The rankings.
const (
	ByBytes Ranking = iota
	ByPackets
	rankings
)

// bucket is a closed bucket: the heaviest keys of its time, by dimension
// (no index: they are only read, by Top).
type bucket struct {
	start int64 // unix seconds; 0: unused
	keys  [dimensions][]entry
}

// Talkers counts flows into buckets. Safe for concurrent use.
type Talkers struct {
	mu   sync.Mutex
	live *live // the current bucket
	b    [buckets]bucket
	// view is Top's scratch: the current bucket's keys as if it closed.
	view   [dimensions][]entry
	now    func() time.Time
	flows  uint64
	pruned uint64 // keys forgotten (the live tables count theirs until the bucket closes)
}

// New returns Talkers whose closed buckets' tables hold capacity keys each
// (0: DefaultCapacity); now is the clock (nil: time.Now).
func New(capacity int, now func() time.Time) *Talkers {
	if capacity <= 0 {
		capacity = DefaultCapacity
	}
	if now == nil {
		now = time.Now
	}
	t := &Talkers{now: now, live: newLive(capacity, rand.Uint64)}
	room := 2 * t.live.keep
	for i := range t.b {
		for d := range dimensions {
			t.b[i].keys[d] = make([]entry, 0, room)
		}
	}
	for d := range dimensions {
		t.view[d] = make([]entry, 0, room)
	}
	return t
}

// Handle counts a batch of flows (an ingest handler; it keeps nothing of
// the batch).
func (t *Talkers) Handle(batch []flow.Flow) {
	if len(batch) == 0 {
		return
	}
	now := t.now().Unix()
	start := now - now%int64(Bucket/time.Second)
	t.mu.Lock()
	if t.live.start != start {
		t.roll(start)
	}
	for i := range batch {
		t.live.count(&batch[i])
	}
	t.flows += uint64(len(batch))
	t.mu.Unlock()
}

// slot is the closed bucket of the time start.
func (t *Talkers) slot(start int64) *bucket {
	return &t.b[(start/int64(Bucket/time.Second))%int64(buckets)]
}

// roll closes the current bucket, keeping its heaviest keys in its slot,
// and starts the bucket of start.
func (t *Talkers) roll(start int64) {
	l := t.live
	if l.start != 0 {
		b := t.slot(l.start)
		t.pruned += l.close(&b.keys)
		b.start = l.start
	}
	for _, tb := range l.tables {
		t.pruned += tb.pruned
		tb.pruned = 0
	}
	l.reset()
	l.start = start
	if b := t.slot(start); b.start == start {
		// The clock went back to a bucket already closed: count on in it.
		for d, keys := range b.keys {
			for _, e := range keys {
				l.tables[d].merge(e.k, e.counts)
			}
		}
		b.start = 0
	}
}

// addrKey is a's key (small enough to be inlined).
func addrKey(a netip.Addr) key {
	b := a.As16()
	return key{hi: binary.BigEndian.Uint64(b[:8]), lo: binary.BigEndian.Uint64(b[8:])}
}

// Row is one talker over a window.
type Row struct {
	Key     string `json:"key"`
	Bytes   uint64 `json:"bytes"`
	Packets uint64 `json:"packets"`
	Flows   uint64 `json:"flows"`
}

// Top is the answer for one window and ranking.
type Top struct {
	Window       string `json:"window"`
	By           string `json:"by"`
	From         string `json:"from"` // RFC 3339: the start of the oldest bucket counted
	Sources      []Row  `json:"sources"`
	Destinations []Row  `json:"destinations"`
	Ports        []Row  `json:"ports"`
	ASNs         []Row  `json:"asns"`
}

// Stats are totals since New, and the keys held now.
type Stats struct {
	Flows  uint64 // flows counted
	Pruned uint64 // keys forgotten by full tables and by buckets closing (their counts were the lightest)
	Keys   int    // keys held now, in the current bucket and the closed ones: at most MaxKeys
}

// Stats returns the totals.
func (t *Talkers) Stats() Stats {
	t.mu.Lock()
	defer t.mu.Unlock()
	s := Stats{Flows: t.flows, Pruned: t.pruned}
	for _, tb := range t.live.tables {
		s.Pruned += tb.pruned
		s.Keys += tb.n
	}
	for i := range t.b {
		for _, keys := range t.b[i].keys {
			s.Keys += len(keys)
		}
	}
	return s
}

// MaxKeys is the most keys t ever holds, whatever it is sent: the room
// New allocated, in the current bucket's tables and the closed buckets'.
func (t *Talkers) MaxKeys() int {
	n := 0
	for _, tb := range t.live.tables {
		n += len(tb.ents)
	}
	for i := range t.b {
		for _, keys := range t.b[i].keys {
			n += cap(keys)
		}
	}
	return n
}

// Top returns the n highest talkers of each dimension over window (one of
// Windows: the current bucket and the whole buckets before it that end
// within the window) by the ranking.
func (t *Talkers) Top(window time.Duration, by Ranking, n int) Top {
	now := t.now().Unix()
	span := int64(Bucket / time.Second)
	cur := now - now%span
	from := now - int64(window/time.Second) - span + 1 // buckets ending after now-window
	from += (span - from%span) % span
	out := Top{Window: windowName(window), By: [...]string{"bytes", "packets"}[by],
		From: time.Unix(min(from, cur), 0).UTC().Format(time.RFC3339)}
	merged := make([]map[key]*Row, dimensions)
	for d := range merged {
		merged[d] = map[key]*Row{}
	}
	add := func(b *[dimensions][]entry) {
		for d, keys := range b {
			for _, e := range keys {
				r := merged[d][e.k]
				if r == nil {
					r = &Row{}
					merged[d][e.k] = r
				}
				r.Bytes += e.bytes
				r.Packets += e.packets
				r.Flows += e.flows
			}
		}
	}
	in := func(start int64) bool { return start != 0 && start >= from && start <= cur }
	t.mu.Lock()
	for i := range t.b {
		if b := &t.b[i]; in(b.start) {
			add(&b.keys)
		}
	}
	if in(t.live.start) {
		// The current bucket shows what it will keep when it closes.
		t.live.close(&t.view)
		add(&t.view)
	}
	t.mu.Unlock()
	lists := [dimensions]*[]Row{&out.Sources, &out.Destinations, &out.Ports, &out.ASNs}
	for d := range dimensions {
		rows := make([]Row, 0, len(merged[d]))
		for k, r := range merged[d] {
			r.Key = keyText(d, k)
			rows = append(rows, *r)
		}
		slices.SortFunc(rows, func(a, b Row) int {
			if by == ByPackets {
				if c := cmp.Compare(b.Packets, a.Packets); c != 0 {
					return c
				}
			}
			return cmp.Or(cmp.Compare(b.Bytes, a.Bytes), cmp.Compare(b.Packets, a.Packets), cmp.Compare(a.Key, b.Key))
		})
		*lists[d] = rows[:min(n, len(rows))]
	}
	return out
}

func windowName(w time.Duration) string {
	return strconv.Itoa(int(w/time.Minute)) + "m"
}

// ParseWindow reads "1m", "5m" or "15m".
func ParseWindow(s string) (time.Duration, bool) {
	for _, w := range Windows {
		if windowName(w) == s {
			return w, true
		}
	}
	return 0, false
}

func keyText(d Dimension, k key) string {
	switch d {
	case Sources, Destinations:
		var b [16]byte
		for i := range 8 {
			b[i] = byte(k.hi >> (56 - 8*i))
			b[8+i] = byte(k.lo >> (56 - 8*i))
		}
		return netip.AddrFrom16(b).Unmap().String()
	case Ports:
		return strconv.FormatUint(k.lo&0xffff, 10) + "/" + flow.ProtoName(uint8(k.lo>>16))
	default:
		return "AS" + strconv.FormatUint(k.lo, 10)
	}
}
