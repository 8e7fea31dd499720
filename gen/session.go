package gen

import (
	"math"
	"math/rand/v2"
	"net/netip"
	"slices"
	"time"
)

// Segment sizes: a TCP MSS on Ethernet, and the super-packets a capture on
// the sending or receiving host shows when TSO/GRO merge segments (as in
// testdata/upload.pcap).
const (
	mss = 1448
	gso = 64000
)

// conv builds the packets of one conversation between a client and a
// server, as a capture point between them sees it: the client's packets
// at the time it sends them, the server's one round trip later.
type conv struct {
	rng    *rand.Rand
	pkts   []packet
	t      int64 // ns since the scenario's start
	rtt    int64
	client netip.Addr
	server netip.Addr
	cport  uint16
	sport  uint16
	proto  uint8
	seq    [2]uint32 // next sequence number: client, server
}

func newConv(rng *rand.Rand, t int64, client, server netip.Addr, cport, sport uint16, proto uint8, rtt time.Duration) *conv {
	return &conv{
		rng: rng, t: t, rtt: int64(rtt), client: client, server: server,
		cport: cport, sport: sport, proto: proto,
		seq: [2]uint32{rng.Uint32(), rng.Uint32()},
	}
}

// emit adds one packet at time at; payload is the bytes above TCP or UDP.
func (c *conv) emit(at int64, fromClient bool, flags uint8, payload int) {
	p := packet{ts: at, proto: c.proto, flags: flags}
	dir := 0
	if fromClient {
		p.src, p.dst, p.sport, p.dport = c.client, c.server, c.cport, c.sport
	} else {
		p.src, p.dst, p.sport, p.dport = c.server, c.client, c.sport, c.cport
		dir = 1
	}
	hdr := ipv4Len + udpLen
	if c.proto == 6 {
		hdr = ipv4Len + tcpLen
		p.seq = c.seq[dir]
		if flags&0x10 != 0 {
			p.ack = c.seq[1-dir]
		}
		c.seq[dir] += uint32(payload)
		if flags&0x03 != 0 { // SYN and FIN take a sequence number
			c.seq[dir]++
		}
	}
	p.ipLen = uint16(min(hdr+payload, math.MaxUint16))
	c.pkts = append(c.pkts, p)
}

// TCP flags.
const (
	fin = 0x01
	syn = 0x02
	rst = 0x04
	psh = 0x08
	ack = 0x10
)

// handshake opens the TCP connection.
func (c *conv) handshake() {
	c.emit(c.t, true, syn, 0)
	c.emit(c.t+c.rtt, false, syn|ack, 0)
	c.t += c.rtt + 100*int64(time.Microsecond)
	c.emit(c.t, true, ack, 0)
}

// send moves n bytes in one direction in segments of at most seg bytes,
// paced at bps bits per second; the receiver acknowledges every second
// segment. It returns when the last acknowledgement is sent.
func (c *conv) send(fromClient bool, n int, bps float64, seg int) {
	if n <= 0 {
		return
	}
	start := c.t
	if !fromClient {
		start += c.rtt // the server's data reaches the capture point a round trip later
	}
	ackDelay := int64(200 * time.Microsecond)
	if fromClient {
		ackDelay = c.rtt // the server's acknowledgements come from afar
	}
	at := start
	for i := 0; n > 0; i++ {
		s := min(n, seg)
		n -= s
		flags := uint8(ack)
		if n == 0 {
			flags |= psh
		}
		c.emit(at, fromClient, flags, s)
		at += int64(float64(s+tcpLen+ipv4Len) * 8 / bps * 1e9)
		if i%2 == 1 || n == 0 {
			c.emit(at+ackDelay, !fromClient, ack, 0)
		}
	}
	c.t = at + ackDelay
}

// exchange is a request and its response.
func (c *conv) exchange(req, resp int, bps float64) {
	c.send(true, req, bps, mss)
	c.t += c.jitter(2 * time.Millisecond) // the server thinks
	c.send(false, resp, bps, mss)
}

// close ends the TCP connection from the client's side.
func (c *conv) close() {
	c.emit(c.t, true, fin|ack, 0)
	c.emit(c.t+c.rtt, false, fin|ack, 0)
	c.t += c.rtt + 100*int64(time.Microsecond)
	c.emit(c.t, true, ack, 0)
}

// udp is a request and, a round trip later, its response.
func (c *conv) udp(req, resp int) {
	c.emit(c.t, true, 0, req)
	if resp > 0 {
		c.emit(c.t+c.rtt, false, 0, resp)
	}
	c.t += c.rtt
}

func (c *conv) wait(d time.Duration) { c.t += int64(d) }

// jitter returns a random duration around d (between d/2 and 3d/2).
func (c *conv) jitter(d time.Duration) int64 {
	return int64(d)/2 + c.rng.Int64N(int64(d)+1)
}

// finish returns the packets in time order.
func (c *conv) finish() []packet {
	sortPackets(c.pkts)
	return c.pkts
}

// lognormal draws from a log-normal distribution with the given median.
func lognormal(rng *rand.Rand, median, sigma float64) float64 {
	return median * math.Exp(sigma*rng.NormFloat64())
}

// expDur draws an exponentially distributed duration of the given mean.
func expDur(rng *rand.Rand, mean time.Duration) time.Duration {
	return time.Duration(rng.ExpFloat64() * float64(mean))
}

func ephemeral(rng *rand.Rand) uint16 { return uint16(32768 + rng.IntN(28232)) }

// sortPackets puts packets, of one conversation or several, in time order.
func sortPackets(pkts []packet) {
	slices.SortStableFunc(pkts, func(a, b packet) int {
		switch {
		case a.ts < b.ts:
			return -1
		case a.ts > b.ts:
			return 1
		}
		return 0
	})
}
