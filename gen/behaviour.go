package gen

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"time"
)

// Behaviours a scenario can inject.
const (
	Scan        = "scan"         // vertical SYN scan of one internal host from outside
	Sweep       = "sweep"        // an internal host probing port 445 on 120 internal hosts
	Exfil       = "exfil"        // 30 MB uploaded by an internal client to one outside host
	Flood       = "flood"        // SYN flood on an internal web server from spoofed sources
	HeavyHitter = "heavy-hitter" // one outside mirror sending 45 MB to a client
)

// Behaviours lists every behaviour, in the order a scenario places them.
var Behaviours = []string{HeavyHitter, Scan, Sweep, Exfil, Flood}

// Expected is an alert a scenario must raise: a rule of the bundled pack
// and the group it fires for (group_by field → value as alerts print it).
type Expected struct {
	Rule  string            `json:"rule"`
	Group map[string]string `json:"group"`
}

// BehaviourTruth describes one injected behaviour: what it is, when it
// ran, and the alert it must raise (Rule, Group), plus Also: other alerts
// the same traffic rightly raises.
type BehaviourTruth struct {
	Behaviour   string `json:"behaviour"`
	Description string `json:"description"`
	Expected
	Also    []Expected `json:"also,omitempty"`
	Start   time.Time  `json:"start"`
	End     time.Time  `json:"end"`
	Packets int        `json:"packets"`
	Bytes   uint64     `json:"bytes"` // IP bytes
}

// behaviour builds one behaviour's packets starting at t (ns since the
// scenario's start).
func behaviour(name string, rng *rand.Rand, t int64) ([]packet, BehaviourTruth, error) {
	switch name {
	case Scan:
		return scan(rng, t)
	case Sweep:
		return sweep(rng, t)
	case Exfil:
		return exfil(rng, t)
	case Flood:
		return flood(rng, t)
	case HeavyHitter:
		return heavyHitter(rng, t)
	}
	if pkts, bt, ok := attack(name, rng, t); ok {
		return pkts, bt, nil
	}
	if pkts, bt, ok := learning(name, rng, t); ok {
		return pkts, bt, nil
	}
	return nil, BehaviourTruth{}, fmt.Errorf("unknown behaviour %q (want %v)", name, Behaviours)
}

// Addresses of the actors.
var (
	scanner    = netip.MustParseAddr("203.0.113.201")
	scanTarget = netip.MustParseAddr("10.20.0.15")
	sweeper    = netip.MustParseAddr("10.10.3.66")
	exfilSrc   = netip.MustParseAddr("10.10.1.77")
	exfilDst   = netip.MustParseAddr("198.51.100.230")
	floodDst   = netip.MustParseAddr("10.20.0.80")
	mirror     = netip.MustParseAddr("198.51.100.240")
	mirrorUser = netip.MustParseAddr("10.10.2.44")
)

// Sizes, well past the bundled rules' thresholds.
const (
	scanPorts  = 300      // vertical-port-scan: 100 distinct ports in 1m
	sweepHosts = 120      // horizontal-host-sweep: 50 hosts in 5m
	exfilBytes = 30 << 20 // outbound-exfiltration: 20MB in 10m
	floodSYNs  = 22000    // syn-flood: 2k flows/s over 10s, so 20,000 SYNs within 10 s
	hhBytes    = 45 << 20 // heavy-hitter: 10MB and half of all bytes in 5m
)

func scan(rng *rand.Rand, t int64) ([]packet, BehaviourTruth, error) {
	// nmap -sS -p 1-1024 at 200 probes/s, stopped after scanPorts probes:
	// closed ports answer RST/ACK, 22, 80 and 443 answer SYN/ACK and the
	// scanner resets them.
	sport := ephemeral(rng)
	ports := rng.Perm(1024)[:scanPorts]
	var pkts []packet
	for i, p := range ports {
		port := uint16(p + 1)
		c := newConv(rng, t+int64(i)*int64(5*time.Millisecond), scanner, scanTarget, sport, port, 6, 20*time.Millisecond)
		c.emit(c.t, true, syn, 0)
		switch port {
		case 22, 80, 443:
			c.emit(c.t+c.rtt, false, syn|ack, 0)
			c.emit(c.t+c.rtt+int64(time.Millisecond), true, rst, 0)
		default:
			c.emit(c.t+c.rtt, false, rst|ack, 0)
		}
		pkts = append(pkts, c.finish()...)
	}
	return pkts, BehaviourTruth{
		Behaviour:   Scan,
		Description: fmt.Sprintf("SYN scan of %d ports of %s from %s at 200 probes/s", scanPorts, scanTarget, scanner),
		Expected:    Expected{Rule: "vertical-port-scan", Group: map[string]string{"src_addr": scanner.String(), "dst_addr": scanTarget.String()}},
		// more than 200 ports of one host: a port scan whoever scans
		Also: []Expected{{Rule: "distributed-port-scan", Group: map[string]string{"dst_addr": scanTarget.String()}}},
	}, nil
}

func sweep(rng *rand.Rand, t int64) ([]packet, BehaviourTruth, error) {
	// SMB probes to 10.30.0.1-120 at 50/s: a third of the hosts refuse,
	// one in ten accepts (and is reset), the rest do not answer.
	var pkts []packet
	for i := range sweepHosts {
		dst := netip.AddrFrom4([4]byte{10, 30, 0, byte(1 + i)})
		c := newConv(rng, t+int64(i)*int64(20*time.Millisecond), sweeper, dst, ephemeral(rng), 445, 6, time.Millisecond)
		c.emit(c.t, true, syn, 0)
		switch x := rng.IntN(30); {
		case x < 3:
			c.emit(c.t+c.rtt, false, syn|ack, 0)
			c.emit(c.t+2*c.rtt, true, rst, 0)
		case x < 13:
			c.emit(c.t+c.rtt, false, rst|ack, 0)
		}
		pkts = append(pkts, c.finish()...)
	}
	return pkts, BehaviourTruth{
		Behaviour:   Sweep,
		Description: fmt.Sprintf("%s probes TCP/445 on %d hosts of 10.30.0.0/24 at 50/s", sweeper, sweepHosts),
		Expected:    Expected{Rule: "horizontal-host-sweep", Group: map[string]string{"src_addr": sweeper.String(), "dst_port": "445"}},
	}, nil
}

func exfil(rng *rand.Rand, t int64) ([]packet, BehaviourTruth, error) {
	c := newConv(rng, t, exfilSrc, exfilDst, ephemeral(rng), 443, 6, 40*time.Millisecond)
	c.handshake()
	c.exchange(517, 4200, 50e6)
	c.send(true, exfilBytes, 40e6, gso) // about 6 s at 40 Mbit/s
	c.close()
	return c.finish(), BehaviourTruth{
		Behaviour:   Exfil,
		Description: fmt.Sprintf("%s uploads %d MiB to %s:443 at 40 Mbit/s", exfilSrc, exfilBytes>>20, exfilDst),
		Expected:    Expected{Rule: "outbound-exfiltration", Group: map[string]string{"src_addr": exfilSrc.String(), "dst_addr": exfilDst.String()}},
	}, nil
}

func flood(rng *rand.Rand, t int64) ([]packet, BehaviourTruth, error) {
	// Spoofed public sources, one SYN each, 5,500 a second; the target no
	// longer answers.
	pkts := make([]packet, 0, floodSYNs)
	for i := range floodSYNs {
		src := randomPublic(rng)
		c := newConv(rng, t+int64(i)*int64(time.Second)/5500, src, floodDst, ephemeral(rng), 443, 6, 0)
		c.emit(c.t, true, syn, 0)
		pkts = append(pkts, c.pkts...)
	}
	return pkts, BehaviourTruth{
		Behaviour:   Flood,
		Description: fmt.Sprintf("SYN flood of %d spoofed SYNs on %s:443 at 5,500/s", floodSYNs, floodDst),
		Expected:    Expected{Rule: "syn-flood", Group: map[string]string{"dst_addr": floodDst.String(), "dst_port": "443"}},
	}, nil
}

func heavyHitter(rng *rand.Rand, t int64) ([]packet, BehaviourTruth, error) {
	c := newConv(rng, t, mirrorUser, mirror, ephemeral(rng), 443, 6, 25*time.Millisecond)
	c.handshake()
	c.exchange(517, 4200, 100e6)
	c.send(true, 420, 100e6, mss)
	c.send(false, hhBytes, 80e6, gso) // received with GRO: 64 kB super-packets
	c.close()
	return c.finish(), BehaviourTruth{
		Behaviour:   HeavyHitter,
		Description: fmt.Sprintf("%s downloads %d MiB from %s at 80 Mbit/s", mirrorUser, hhBytes>>20, mirror),
		Expected:    Expected{Rule: "heavy-hitter", Group: map[string]string{"src_addr": mirror.String()}},
	}, nil
}

// randomPublic returns a random unicast address outside the private,
// shared, loopback, link-local, documentation and multicast ranges.
func randomPublic(rng *rand.Rand) netip.Addr {
	for {
		var b [4]byte
		v := rng.Uint32()
		b[0], b[1], b[2], b[3] = byte(v>>24), byte(v>>16), byte(v>>8), byte(v)
		switch {
		case b[0] == 0, b[0] == 10, b[0] == 127, b[0] >= 224,
			b[0] == 100 && b[1]&0xc0 == 64, b[0] == 169 && b[1] == 254,
			b[0] == 172 && b[1]&0xf0 == 16, b[0] == 192 && b[1] == 168,
			b[0] == 192 && b[1] == 0, b[0] == 198 && b[1]&0xfe == 18,
			b[0] == 198 && b[1] == 51, b[0] == 203 && b[1] == 0:
			continue
		}
		if b[3] == 0 || b[3] == 255 {
			continue
		}
		return netip.AddrFrom4(b)
	}
}
