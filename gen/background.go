package gen

import (
	"math/rand/v2"
	"net/netip"
	"time"
)

// The background: internal clients (10.10.1.0/24 and 10.10.2.0/24) talking
// to outside servers, one session at a time, sessions arriving at random
// (a Poisson process). The mix, by sessions:
//
//	DNS    45%  UDP to a public resolver; a query of 30-60 bytes, an
//	            answer 16-200 bytes longer, 5-30 ms later
//	HTTPS  35%  TLS handshake, then 1-4 request/response exchanges a few
//	            seconds apart (responses log-normal, median 15 kB, up to
//	            2 MB, at a median 20 Mbit/s), an idle keep-alive, close
//	HTTP    9%  one exchange, responses log-normal around 8 kB
//	NTP     7%  one 48-byte request and answer to a public time server
//	SSH     4%  key exchange and login, then an interactive session
//	            (median 45 s, keystrokes ~0.8 s apart, echoed, with
//	            occasional command output)
//
// Outside servers are drawn from TEST-NET-2 and TEST-NET-3 (198.51.100.0/24,
// 203.0.113.0/24, hosts .1 to .199), the popular ones more often; resolvers
// and time servers are the well-known public ones. No session of the
// background comes near the bundled rules' thresholds.
type background struct {
	rng *rand.Rand
}

var (
	resolvers   = []netip.Addr{netip.MustParseAddr("1.1.1.1"), netip.MustParseAddr("8.8.8.8"), netip.MustParseAddr("9.9.9.9")}
	timeServers = []netip.Addr{netip.MustParseAddr("162.159.200.1"), netip.MustParseAddr("162.159.200.123")}
)

// client returns one of the 240 internal clients.
func (b *background) client() netip.Addr {
	i := b.rng.IntN(240)
	return netip.AddrFrom4([4]byte{10, 10, byte(1 + i/120), byte(10 + i%120)})
}

// server returns an outside server, the low-numbered ones more often.
func (b *background) server() netip.Addr {
	f := b.rng.Float64()
	i := int(f * f * 398)
	if i < 199 {
		return netip.AddrFrom4([4]byte{198, 51, 100, byte(1 + i)})
	}
	return netip.AddrFrom4([4]byte{203, 0, 113, byte(1 + i - 199)})
}

func (b *background) rtt() time.Duration {
	return time.Duration(lognormal(b.rng, float64(30*time.Millisecond), 0.5))
}

// session builds one background session starting at t (ns).
func (b *background) session(t int64) []packet {
	switch x := b.rng.Float64(); {
	case x < 0.45:
		return b.dns(t)
	case x < 0.80:
		return b.https(t)
	case x < 0.89:
		return b.http(t)
	case x < 0.96:
		return b.ntp(t)
	default:
		return b.ssh(t)
	}
}

func (b *background) dns(t int64) []packet {
	rng := b.rng
	rtt := time.Duration(5+rng.IntN(25)) * time.Millisecond
	c := newConv(rng, t, b.client(), resolvers[rng.IntN(len(resolvers))], ephemeral(rng), 53, 17, rtt)
	q := 30 + rng.IntN(31)
	c.udp(q, q+16+rng.IntN(185))
	return c.finish()
}

func (b *background) ntp(t int64) []packet {
	rng := b.rng
	port := uint16(123)
	if rng.IntN(2) == 0 {
		port = ephemeral(rng) // sntp and chrony's client mode
	}
	c := newConv(rng, t, b.client(), timeServers[rng.IntN(len(timeServers))], port, 123, 17, b.rtt())
	c.udp(48, 48)
	return c.finish()
}

func (b *background) bandwidth() float64 {
	return min(lognormal(b.rng, 20e6, 0.8), 200e6)
}

func (b *background) response(median float64) int {
	return int(min(max(lognormal(b.rng, median, 1.6), 200), 2e6))
}

func (b *background) https(t int64) []packet {
	rng := b.rng
	c := newConv(rng, t, b.client(), b.server(), ephemeral(rng), 443, 6, b.rtt())
	bw := b.bandwidth()
	c.handshake()
	c.exchange(517, 3000+rng.IntN(2500), bw) // ClientHello; ServerHello, certificates
	c.send(true, 126, bw, mss)               // key exchange, Finished
	for n := 1 + rng.IntN(4); n > 0; n-- {
		c.wait(expDur(rng, 2*time.Second))
		c.exchange(300+rng.IntN(900), b.response(15e3), bw)
	}
	c.wait(time.Duration(500+rng.IntN(14500)) * time.Millisecond) // keep-alive
	c.close()
	return c.finish()
}

func (b *background) http(t int64) []packet {
	rng := b.rng
	c := newConv(rng, t, b.client(), b.server(), ephemeral(rng), 80, 6, b.rtt())
	c.handshake()
	c.exchange(350+rng.IntN(300), b.response(8e3), b.bandwidth())
	c.close()
	return c.finish()
}

func (b *background) ssh(t int64) []packet {
	rng := b.rng
	server := b.server()
	c := newConv(rng, t, b.client(), server, ephemeral(rng), 22, 6, b.rtt())
	bw := b.bandwidth()
	c.handshake()
	c.exchange(21+rng.IntN(20), 21+rng.IntN(20), bw) // version strings
	c.exchange(1400+rng.IntN(200), 1000+rng.IntN(200), bw)
	c.exchange(44, 500+rng.IntN(600), bw) // key exchange
	c.exchange(16, 16, bw)                // NEWKEYS
	for range 3 {                         // authentication
		c.exchange(60+rng.IntN(500), 30+rng.IntN(60), bw)
	}
	end := c.t + int64(min(lognormal(rng, float64(45*time.Second), 0.8), float64(10*time.Minute)))
	for c.t < end {
		c.wait(expDur(rng, 800*time.Millisecond))
		c.emit(c.t, true, psh|ack, 36)
		if rng.IntN(20) == 0 { // a command's output
			c.send(false, int(lognormal(rng, 4e3, 1)), bw, mss)
		} else {
			c.emit(c.t+c.rtt, false, psh|ack, 36)
			c.t += c.rtt
		}
	}
	c.close()
	return c.finish()
}
