package gen

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"time"
)

// Behaviours for the rules that learn (examples/rules/learning.yaml). They
// are not in the default mix: ask for them with Scenario.With. They run
// longer than a default scenario (the capture then runs until they end):
// a beacon needs its beats, a baseline its warm-up.
const (
	// Beacon is an internal host calling one outside address over HTTPS
	// every 10 s (+-10%) for 16 beats, about the same bytes each time.
	Beacon = "beacon"
	// StepUp is an internal host uploading about 1 MB every 10 minutes
	// (100 kB at random times, to 4 outside addresses) for 2.5 hours,
	// then ten times as much for 20 minutes.
	StepUp = "step-up"
)

// Learning lists the behaviours for the learning rules, in the order a
// scenario places them after Attacks.
var Learning = []string{Beacon, StepUp}

// Actors and sizes of the learning behaviours.
var (
	beaconSrc = netip.MustParseAddr("10.10.4.19")
	beaconDst = netip.MustParseAddr("203.0.113.150")
	stepSrc   = netip.MustParseAddr("10.10.5.23")
)

const (
	beaconBeats    = 16
	beaconEvery    = 10 * time.Second
	stepNormal     = 150 * time.Minute
	stepHigh       = 20 * time.Minute
	stepUploadMean = time.Minute
	stepUpload     = 100_000
)

// learningBehaviours are the learning behaviours: where a scenario places
// each (a fraction of its duration) and how it is built.
var learningBehaviours = map[string]struct {
	at    float64
	build func(*rand.Rand, int64) ([]packet, BehaviourTruth)
}{
	Beacon: {0.15, beacon},
	StepUp: {0.02, stepUp},
}

func init() {
	for name, b := range learningBehaviours {
		placement[name] = b.at
	}
}

// learning builds one learning behaviour, or reports that name is none.
func learning(name string, rng *rand.Rand, t int64) ([]packet, BehaviourTruth, bool) {
	b, ok := learningBehaviours[name]
	if !ok {
		return nil, BehaviourTruth{}, false
	}
	pkts, bt := b.build(rng, t)
	return pkts, bt, true
}

func beacon(rng *rand.Rand, t int64) ([]packet, BehaviourTruth) {
	var pkts []packet
	at := t
	for range beaconBeats {
		c := newConv(rng, at, beaconSrc, beaconDst, ephemeral(rng), 443, 6, 30*time.Millisecond)
		c.handshake()
		c.exchange(310+rng.IntN(20), 1200+rng.IntN(60), 20e6)
		c.close()
		pkts = append(pkts, c.finish()...)
		at += int64(float64(beaconEvery) * (0.9 + 0.2*rng.Float64()))
	}
	sortPackets(pkts)
	return pkts, BehaviourTruth{
		Behaviour: Beacon,
		Description: fmt.Sprintf("%s calls %s:443 every %v +-10%% (%d times, ~1.5 kB each)", beaconSrc, beaconDst,
			beaconEvery, beaconBeats),
		Expected: Expected{Rule: "beaconing", Group: map[string]string{"src_addr": beaconSrc.String(),
			"dst_addr": beaconDst.String(), "dst_port": "443"}},
	}
}

func stepUp(rng *rand.Rand, t int64) ([]packet, BehaviourTruth) {
	var pkts []packet
	end, high := t+int64(stepNormal+stepHigh), t+int64(stepNormal)
	for at := t; at < end; {
		size := stepUpload * (8 + rng.IntN(5)) / 10
		gap := rng.ExpFloat64() * float64(stepUploadMean)
		if at >= high {
			gap /= 10 // ten uploads where there was one
		}
		dst := netip.AddrFrom4([4]byte{198, 51, 100, byte(181 + rng.IntN(4))})
		c := newConv(rng, at, stepSrc, dst, ephemeral(rng), 443, 6, 20*time.Millisecond)
		c.handshake()
		c.send(true, size, 50e6, gso)
		c.close()
		pkts = append(pkts, c.finish()...)
		at += int64(gap) + int64(time.Second)
	}
	sortPackets(pkts)
	return pkts, BehaviourTruth{
		Behaviour: StepUp,
		Description: fmt.Sprintf("%s uploads ~1 MB per 10 minutes to 198.51.100.181-184 for %v, then ten times as much for %v",
			stepSrc, stepNormal, stepHigh),
		Expected: Expected{Rule: "exfiltration-above-normal", Group: map[string]string{"src_addr": stepSrc.String()}},
	}
}
