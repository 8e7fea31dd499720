package gen

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"time"
)

// Attack behaviours with the quirks real tools leave in flows. They are
// not in Behaviours (the default mix): ask for them with Scenario.With.
const (
	// FloodRST is an hping3-style SYN flood from 4 reused source ports:
	// the target answers each SYN with SYN/ACK and the attacker's kernel
	// resets it, so 4 flows read SYN|RST and carry every SYN.
	FloodRST = "flood-rst"
	// Reflection is DNS amplification: 60 open resolvers answer spoofed
	// ANY queries with 3,000-byte answers to one internal host.
	Reflection = "reflection"
	// BruteForce is an SSH password-guessing run: 60 short connections
	// from one outside host to one internal server in 3 s.
	BruteForce = "brute-force"
)

// Attacks lists the attack behaviours, in the order a scenario places
// them after Behaviours.
var Attacks = []string{BruteForce, FloodRST, Reflection}

// Actors and sizes of the attack behaviours.
var (
	floodRSTDst  = netip.MustParseAddr("10.20.0.81")
	floodRSTSrc  = netip.MustParseAddr("198.51.100.77")
	reflectVictm = netip.MustParseAddr("10.20.0.90")
	bruteSrc     = netip.MustParseAddr("198.51.100.66")
	bruteDst     = netip.MustParseAddr("10.20.0.22")
)

const (
	floodRSTSYNs  = 6000 // syn-flood: 100 SYN/s over 10 s; 2,000/s for 3 s
	reflectors    = 60   // amplification-reflectors: 20 in 1m
	reflectAnswer = 3000 // bytes above UDP: amplification-volume 1 Mbps over 10 s
	reflectEach   = 20   // answers per reflector, over 2 s: 3.6 MB
	bruteTries    = 60   // login-brute-force: 30 in 1m
)

func init() {
	placement[BruteForce] = 0.05
	placement[FloodRST] = 0.80
	placement[Reflection] = 0.90
}

// attack builds one attack behaviour, or reports that name is none.
func attack(name string, rng *rand.Rand, t int64) ([]packet, BehaviourTruth, bool) {
	switch name {
	case FloodRST:
		p, b := floodRST(rng, t)
		return p, b, true
	case Reflection:
		p, b := reflection(rng, t)
		return p, b, true
	case BruteForce:
		p, b := bruteForce(rng, t)
		return p, b, true
	}
	return nil, BehaviourTruth{}, false
}

func floodRST(rng *rand.Rand, t int64) ([]packet, BehaviourTruth) {
	convs := make([]*conv, 4)
	for k := range convs {
		convs[k] = newConv(rng, t, floodRSTSrc, floodRSTDst, uint16(1111+k), 80, 6, 200*time.Microsecond)
	}
	for i := range floodRSTSYNs {
		c := convs[i%4]
		at := t + int64(i)*int64(time.Second)/2000
		c.emit(at, true, syn, 0)
		c.emit(at+c.rtt, false, syn|ack, 0)
		c.emit(at+c.rtt+int64(50*time.Microsecond), true, rst, 0)
	}
	var pkts []packet
	for _, c := range convs {
		pkts = append(pkts, c.finish()...)
	}
	return pkts, BehaviourTruth{
		Behaviour:   FloodRST,
		Description: fmt.Sprintf("SYN flood of %d SYNs on %s:80 from 4 source ports of %s, each answered SYN/ACK and reset", floodRSTSYNs, floodRSTDst, floodRSTSrc),
		Expected:    Expected{Rule: "syn-flood", Group: map[string]string{"dst_addr": floodRSTDst.String(), "dst_port": "80"}},
	}
}

func reflection(rng *rand.Rand, t int64) ([]packet, BehaviourTruth) {
	var pkts []packet
	for r := range reflectors {
		c := newConv(rng, t+int64(r)*int64(time.Millisecond), reflectVictm, randomPublic(rng), 33333, 53, 17, 30*time.Millisecond)
		for i := range reflectEach {
			// the spoofed query never passes the victim's border: only
			// the answer does
			c.emit(c.t+int64(i)*int64(100*time.Millisecond), false, 0, reflectAnswer)
		}
		pkts = append(pkts, c.finish()...)
	}
	group := map[string]string{"dst_addr": reflectVictm.String(), "src_port": "53"}
	return pkts, BehaviourTruth{
		Behaviour:   Reflection,
		Description: fmt.Sprintf("DNS amplification on %s: %d resolvers, %d answers of %d bytes each in 2 s", reflectVictm, reflectors, reflectEach, reflectAnswer),
		Expected:    Expected{Rule: "amplification-volume", Group: group},
		Also:        []Expected{{Rule: "amplification-reflectors", Group: group}},
	}
}

func bruteForce(rng *rand.Rand, t int64) ([]packet, BehaviourTruth) {
	var pkts []packet
	for i := range bruteTries {
		c := newConv(rng, t+int64(i)*int64(50*time.Millisecond), bruteSrc, bruteDst, ephemeral(rng), 22, 6, time.Millisecond)
		c.handshake()
		c.exchange(0, 41, 100e6)  // the server's banner
		c.exchange(66, 16, 100e6) // client banner and a password, refused
		c.close()
		pkts = append(pkts, c.finish()...)
	}
	return pkts, BehaviourTruth{
		Behaviour:   BruteForce,
		Description: fmt.Sprintf("%d SSH logins from %s to %s:22 in 3 s", bruteTries, bruteSrc, bruteDst),
		Expected:    Expected{Rule: "login-brute-force", Group: map[string]string{"src_addr": bruteSrc.String(), "dst_addr": bruteDst.String(), "dst_port": "22"}},
	}
}
