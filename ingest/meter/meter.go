package meter

import (
	"errors"
	"fmt"
	"math"
	"net/netip"
	"time"

	"github.com/flowguard/flowguard/flow"
	"github.com/flowguard/flowguard/ingest"
)

// Defaults for the zero fields of Config.
const (
	DefaultActiveTimeout   = 60 * time.Second
	DefaultIdleTimeout     = 15 * time.Second
	DefaultTCPCloseTimeout = 2 * time.Second
	DefaultMaxFlows        = 1 << 18
	DefaultBatchSize       = 256
)

// Config sets the meter's timeouts and limits. A zero field takes its
// default (see the Default constants and the package documentation).
type Config struct {
	// Type is the exporter type of the flows: flow.TypePcap (the default)
	// for replayed files, flow.TypeCapture for live capture.
	Type string
	// ActiveTimeout cuts a flow that has lasted this long since its first
	// packet.
	ActiveTimeout time.Duration
	// IdleTimeout expires a flow that has seen no packet for this long.
	IdleTimeout time.Duration
	// TCPCloseTimeout expires a TCP flow that has seen a FIN or RST and no
	// packet since for this long.
	TCPCloseTimeout time.Duration
	// MaxFlows bounds the flow table; when full, the flow idle longest is
	// forced out.
	MaxFlows int
	// BatchSize is how many flows are handed to the handler at once.
	BatchSize int
}

// DefaultConfig returns the configuration that the zero Config stands for.
func DefaultConfig() Config {
	return Config{
		Type:            flow.TypePcap,
		ActiveTimeout:   DefaultActiveTimeout,
		IdleTimeout:     DefaultIdleTimeout,
		TCPCloseTimeout: DefaultTCPCloseTimeout,
		MaxFlows:        DefaultMaxFlows,
		BatchSize:       DefaultBatchSize,
	}
}

// withDefaults returns c with its zero fields set to their defaults.
func (c Config) withDefaults() Config {
	d := DefaultConfig()
	if c.Type == "" {
		c.Type = d.Type
	}
	if c.ActiveTimeout == 0 {
		c.ActiveTimeout = d.ActiveTimeout
	}
	if c.IdleTimeout == 0 {
		c.IdleTimeout = d.IdleTimeout
	}
	if c.TCPCloseTimeout == 0 {
		c.TCPCloseTimeout = d.TCPCloseTimeout
	}
	if c.MaxFlows == 0 {
		c.MaxFlows = d.MaxFlows
	}
	if c.BatchSize == 0 {
		c.BatchSize = d.BatchSize
	}
	return c
}

// Validate reports every invalid field at once. Zero fields are valid: they
// take their defaults.
func (c Config) Validate() error {
	var errs []error
	for _, d := range []struct {
		name string
		v    time.Duration
	}{
		{"active_timeout", c.ActiveTimeout},
		{"idle_timeout", c.IdleTimeout},
		{"tcp_close_timeout", c.TCPCloseTimeout},
	} {
		if d.v < 0 {
			errs = append(errs, fmt.Errorf("%s: must be > 0, got %v", d.name, d.v))
		}
	}
	if c.MaxFlows < 0 || c.MaxFlows > math.MaxInt32 {
		errs = append(errs, fmt.Errorf("max_flows: must be between 1 and %d, got %d", math.MaxInt32, c.MaxFlows))
	}
	if c.BatchSize < 0 {
		errs = append(errs, fmt.Errorf("batch_size: must be > 0, got %d", c.BatchSize))
	}
	switch c.Type {
	case "", flow.TypePcap, flow.TypeCapture:
	default:
		errs = append(errs, fmt.Errorf("type: must be %s or %s, got %q", flow.TypePcap, flow.TypeCapture, c.Type))
	}
	return errors.Join(errs...)
}

// Packet is what the meter needs of one packet, decoded by the caller.
type Packet struct {
	// Time is the packet's capture time in nanoseconds since the Unix epoch.
	Time     int64
	Src, Dst netip.Addr
	// SrcPort and DstPort are the transport ports; for ICMP and ICMPv6,
	// SrcPort is 0 and DstPort is type*256+code.
	SrcPort, DstPort uint16
	Proto            uint8
	TCPFlags         uint8
	// Length is the IP length (header and payload) from the IP header.
	Length uint32
}

// Stats counts what the meter did. Expired* add up to Flows.
type Stats struct {
	Packets       uint64 // packets metered
	Flows         uint64 // flows handed to the handler
	Created       uint64 // flows created
	Active        int    // flows in the table now
	Peak          int    // most flows in the table at once
	ExpiredActive uint64 // cut by ActiveTimeout
	ExpiredIdle   uint64 // expired by IdleTimeout
	ExpiredTCP    uint64 // expired by TCPCloseTimeout after FIN or RST
	ExpiredForced uint64 // forced out because the table was full
	ExpiredFlush  uint64 // emitted by Flush
}

// key identifies a flow: 40 bytes without padding or pointers. Addresses
// are kept in their 16-byte form, with flags in meta for IPv4 (IPv6 zones
// are dropped: packets off the wire have none).
type key struct {
	src, dst [16]byte
	meta     uint64 // srcIs4<<41 | dstIs4<<40 | proto<<32 | src_port<<16 | dst_port
}

const (
	metaSrc4 = 1 << 41
	metaDst4 = 1 << 40
)

func makeKey(p *Packet) key {
	k := key{src: p.Src.As16(), dst: p.Dst.As16(), meta: uint64(p.Proto)<<32 | uint64(p.SrcPort)<<16 | uint64(p.DstPort)}
	if p.Src.Is4() {
		k.meta |= metaSrc4
	}
	if p.Dst.Is4() {
		k.meta |= metaDst4
	}
	return k
}

func addr(b *[16]byte, is4 bool) netip.Addr {
	if is4 {
		return netip.AddrFrom4([4]byte(b[12:]))
	}
	return netip.AddrFrom16(*b)
}

// slab holds the entries in fixed chunks, so that growing it never copies
// (or clears again) the entries it has.
type slab struct {
	chunks []*[chunkSize]entry
	n      int32
}

const (
	chunkBits = 12
	chunkSize = 1 << chunkBits
)

func (s *slab) at(i int32) *entry { return &s.chunks[i>>chunkBits][i&(chunkSize-1)] }

func (s *slab) alloc() int32 {
	if int(s.n>>chunkBits) == len(s.chunks) {
		s.chunks = append(s.chunks, new([chunkSize]entry))
	}
	s.n++
	return s.n - 1
}

const none = -1

// Lists that order the flows by the time their deadline counts from.
const (
	listIdle  = iota // by last touch, expires after IdleTimeout
	listClose        // TCP flows past FIN/RST, by last touch, after TCPCloseTimeout
	listStart        // every flow by creation, expires after ActiveTimeout
	nLists
)

// links are one entry's neighbours in a doubly linked list of slab indices.
type links struct{ prev, next int32 }

type entry struct {
	key     key
	first   int64 // first packet time
	last    int64 // last packet time
	created int64 // clock when created: orders listStart
	touched int64 // clock when last seen: orders listIdle and listClose
	bytes   uint64
	packets uint64
	hash    uint32 // the key's table hash
	flags   uint8
	list    uint8 // listIdle or listClose
	ln      [2]links
}

// lnk returns which of an entry's links serve list l.
func lnk(l int) int {
	if l == listStart {
		return 1
	}
	return 0
}

type list struct{ head, tail int32 }

// Meter aggregates packets into flows and hands expired flows to a handler.
type Meter struct {
	cfg     Config
	h       ingest.Handler
	active  int64 // timeouts in ns
	idle    int64
	closeT  int64
	table   table
	slab    slab
	free    []int32
	lists   [nLists]list
	clock   int64 // latest packet time seen
	next    int64 // earliest deadline of any list head
	batch   []flow.Flow
	stats   Stats
	started bool
}

// New returns a meter that hands expired flows to h.
func New(cfg Config, h ingest.Handler) (*Meter, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("meter: %w", err)
	}
	if h == nil {
		return nil, errors.New("meter: nil handler")
	}
	cfg = cfg.withDefaults()
	m := &Meter{
		cfg:    cfg,
		h:      h,
		active: int64(cfg.ActiveTimeout),
		idle:   int64(cfg.IdleTimeout),
		closeT: int64(cfg.TCPCloseTimeout),
		table:  newTable(min(cfg.MaxFlows, 4096)),
		batch:  make([]flow.Flow, 0, cfg.BatchSize),
		next:   math.MaxInt64,
	}
	for i := range m.lists {
		m.lists[i] = list{none, none}
	}
	return m, nil
}

// Config returns the configuration in force, defaults filled in.
func (m *Meter) Config() Config { return m.cfg }

// Stats returns the meter's counters.
func (m *Meter) Stats() Stats {
	s := m.stats
	s.Active = m.table.n
	return s
}

// Packet meters one packet. The packet is not kept.
func (m *Meter) Packet(p *Packet) {
	if p.Time > m.clock || !m.started {
		m.clock = p.Time
		m.started = true
	}
	if m.clock >= m.next {
		m.expire()
	}
	m.stats.Packets++
	k := makeKey(p)
	h := m.table.hash(&k)
	var i int32
	if pos, ok := m.table.find(&m.slab, &k, h); ok {
		i = int32(uint32(m.table.slots[pos]) - 1)
	} else {
		i = m.create(&k, h, pos, p.Time)
	}
	e := m.slab.at(i)
	if p.Time < e.first {
		e.first = p.Time
	}
	if p.Time > e.last {
		e.last = p.Time
	}
	e.bytes += uint64(p.Length)
	e.packets++
	e.flags |= p.TCPFlags
	e.touched = m.clock
	if e.list == listIdle && p.Proto == flow.ProtoTCP && p.TCPFlags&(flow.TCPFin|flow.TCPRst) != 0 {
		m.unlink(listIdle, i)
		e.list = listClose
		m.append(listClose, i)
		m.deadline(m.clock + m.closeT)
	} else if m.lists[e.list].tail != i {
		m.unlink(int(e.list), i)
		m.append(int(e.list), i)
	}
}

// Advance moves the meter's clock to t (nanoseconds since the Unix epoch)
// when t is later, expires what is due and hands any flows waiting in the
// batch to the handler. A live source calls it with the wall clock when
// packets are scarce; a replay does not need it.
func (m *Meter) Advance(t int64) {
	if t > m.clock || !m.started {
		m.clock = t
		m.started = true
	}
	if m.clock >= m.next {
		m.expire()
	}
	m.send()
}

// Flush expires every flow, oldest first, and hands the partial batch to the
// handler. Call it at the end of the input; the meter stays usable.
func (m *Meter) Flush() {
	for l := m.lists[listStart].head; l != none; l = m.lists[listStart].head {
		m.emit(l)
		m.stats.ExpiredFlush++
	}
	m.next = math.MaxInt64
	m.send()
}

// create adds a flow for k, forcing out the flow idle longest when the table
// is full, and returns its slab index.
func (m *Meter) create(k *key, h, pos uint32, t int64) int32 {
	if m.table.n >= m.cfg.MaxFlows {
		v := m.lists[listIdle].head
		if c := m.lists[listClose].head; c != none && (v == none || m.slab.at(c).touched < m.slab.at(v).touched) {
			v = c
		}
		m.emit(v)
		m.stats.ExpiredForced++
		pos, _ = m.table.find(&m.slab, k, h) // the removal may have moved the free slot
	}
	var i int32
	if n := len(m.free); n > 0 {
		i = m.free[n-1]
		m.free = m.free[:n-1]
	} else {
		i = m.slab.alloc()
	}
	*m.slab.at(i) = entry{key: *k, hash: h, first: t, last: t, created: m.clock, touched: m.clock, list: listIdle}
	m.table.insert(pos, h, i)
	m.append(listIdle, i)
	m.append(listStart, i)
	m.deadline(m.clock + min(m.idle, m.active))
	m.stats.Created++
	if n := m.table.n; n > m.stats.Peak {
		m.stats.Peak = n
	}
	return i
}

// deadline lowers the next expiry check to t.
func (m *Meter) deadline(t int64) {
	if t < m.next {
		m.next = t
	}
}

// expire emits every flow whose deadline the clock has reached and computes
// the next deadline.
func (m *Meter) expire() {
	now := m.clock
	for _, x := range [...]struct {
		l       int
		timeout int64
		count   *uint64
	}{
		{listStart, m.active, &m.stats.ExpiredActive},
		{listIdle, m.idle, &m.stats.ExpiredIdle},
		{listClose, m.closeT, &m.stats.ExpiredTCP},
	} {
		for i := m.lists[x.l].head; i != none; i = m.lists[x.l].head {
			e := m.slab.at(i)
			t := e.touched
			if x.l == listStart {
				t = e.created
			}
			if now-t < x.timeout {
				break
			}
			m.emit(i)
			*x.count++
		}
	}
	m.next = math.MaxInt64
	if i := m.lists[listStart].head; i != none {
		m.deadline(m.slab.at(i).created + m.active)
	}
	if i := m.lists[listIdle].head; i != none {
		m.deadline(m.slab.at(i).touched + m.idle)
	}
	if i := m.lists[listClose].head; i != none {
		m.deadline(m.slab.at(i).touched + m.closeT)
	}
}

// emit removes flow i from the table and appends it to the batch, sending
// the batch when it is full.
func (m *Meter) emit(i int32) {
	e := m.slab.at(i)
	if len(m.batch) == cap(m.batch) {
		m.send()
	}
	m.batch = m.batch[:len(m.batch)+1]
	f := &m.batch[len(m.batch)-1]
	*f = flow.Flow{
		Type:          m.cfg.Type,
		SamplingRate:  1,
		TimeReceived:  time.Unix(0, m.clock).UTC(),
		TimeFlowStart: time.Unix(0, e.first).UTC(),
		TimeFlowEnd:   time.Unix(0, e.last).UTC(),
		SrcAddr:       addr(&e.key.src, e.key.meta&metaSrc4 != 0),
		DstAddr:       addr(&e.key.dst, e.key.meta&metaDst4 != 0),
		SrcPort:       uint16(e.key.meta >> 16),
		DstPort:       uint16(e.key.meta),
		RawBytes:      e.bytes,
		RawPackets:    e.packets,
	}
	f.SetProto(uint8(e.key.meta >> 32))
	f.SetTCPFlags(e.flags)
	f.Renormalise()
	m.stats.Flows++

	pos, _ := m.table.find(&m.slab, &e.key, e.hash)
	m.table.remove(pos)
	m.unlink(int(e.list), i)
	m.unlink(listStart, i)
	m.free = append(m.free, i)
}

// send hands the batch to the handler when it holds any flow.
func (m *Meter) send() {
	if len(m.batch) > 0 {
		m.h(m.batch)
		m.batch = m.batch[:0]
	}
}

func (m *Meter) append(l int, i int32) {
	ln := &m.slab.at(i).ln[lnk(l)]
	ls := &m.lists[l]
	ln.prev, ln.next = ls.tail, none
	if ls.tail != none {
		m.slab.at(ls.tail).ln[lnk(l)].next = i
	} else {
		ls.head = i
	}
	ls.tail = i
}

func (m *Meter) unlink(l int, i int32) {
	ln := &m.slab.at(i).ln[lnk(l)]
	ls := &m.lists[l]
	if ln.prev != none {
		m.slab.at(ln.prev).ln[lnk(l)].next = ln.next
	} else {
		ls.head = ln.next
	}
	if ln.next != none {
		m.slab.at(ln.next).ln[lnk(l)].prev = ln.prev
	} else {
		ls.tail = ln.prev
	}
	ln.prev, ln.next = none, none
}
