// Command livegroups sends NetFlow v9 (or IPFIX) to one or more
// collectors on loopback, spreading gen's background flows over many live
// groups: flow i comes from source address 10.0.0.0 + i mod --groups, so
// that every source (and source/destination pair) is a group of its own
// that stays live. Datagrams go to the targets in turn, as an exporter
// load-balanced over collectors would send them, so that every group's
// flows reach every collector. It serves bench/redis.sh.
//
//	go run ./bench/livegroups --to 127.0.0.1:32055,127.0.0.1:32065 --rate 400000 --groups 1000000 --duration 10s
package main

import (
	"flag"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strings"
	"time"

	"github.com/flowguard/flowguard/flow"
	"github.com/flowguard/flowguard/gen"
)

func main() {
	to := flag.String("to", "127.0.0.1:2055", "collector addresses, comma-separated (loopback only)")
	proto := flag.String("proto", "v9", "export protocol: v9 or ipfix")
	rate := flag.Float64("rate", 100000, "flows per second over all targets")
	groups := flag.Int("groups", 1000000, "distinct source addresses the flows are spread over (1 to 16M)")
	duration := flag.Duration("duration", 10*time.Second, "how long to send")
	flag.Parse()
	if err := run(*to, *proto, *rate, *groups, *duration); err != nil {
		fmt.Fprintln(os.Stderr, "livegroups:", err)
		os.Exit(1)
	}
}

func run(to, proto string, rate float64, groups int, duration time.Duration) error {
	p, err := gen.ParseProto(proto)
	if err != nil {
		return err
	}
	if rate <= 0 || groups < 1 || groups > 1<<24 || duration <= 0 {
		return fmt.Errorf("--rate and --duration must be positive, --groups 1 to %d", 1<<24)
	}
	var targets []*net.UDPAddr
	for _, s := range strings.Split(to, ",") {
		ap, err := netip.ParseAddrPort(strings.TrimSpace(s))
		if err != nil {
			return fmt.Errorf("--to %q: %w", s, err)
		}
		if err := gen.CheckLoopback(ap); err != nil {
			return err
		}
		targets = append(targets, net.UDPAddrFromAddrPort(ap))
	}
	conn, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 1, 1)})
	if err != nil {
		return err
	}
	defer conn.Close()
	_ = conn.SetWriteBuffer(4 << 20)
	// One encoder per target: each collector sees its own template and
	// sequence numbers, as from one exporter each.
	encs := make([]gen.Encoder, len(targets))
	for i := range encs {
		if encs[i], err = gen.NewEncoder(p, gen.EncoderConfig{SourceID: uint32(i + 1), TemplateEvery: time.Second}); err != nil {
			return err
		}
	}
	pool := gen.BackgroundFlows(1, 1<<16)
	const per = 24 // v9 records of gen's template in a 1400-byte datagram, with room for the template
	batch := make([]flow.Flow, per)
	var (
		buf          []byte
		sent, errs   uint64
		next, target int
		start        = time.Now()
	)
	for {
		now := time.Now()
		el := now.Sub(start)
		if el >= duration {
			break
		}
		due := uint64(rate * el.Seconds())
		if sent+per > due {
			time.Sleep(time.Duration((float64(sent+per)/rate - el.Seconds()) * 1e9))
			continue
		}
		for i := range batch {
			f := &batch[i]
			*f = pool[next%len(pool)]
			g := uint32(next % groups)
			f.SrcAddr = netip.AddrFrom4([4]byte{10, byte(g >> 16), byte(g >> 8), byte(g)})
			d := min(f.TimeFlowEnd.Sub(f.TimeFlowStart), time.Minute)
			f.TimeFlowEnd, f.TimeFlowStart = now, now.Add(-d)
			next++
		}
		var used int
		buf, used = encs[target].Encode(buf[:0], batch, now)
		if _, err := conn.WriteToUDP(buf, targets[target]); err != nil {
			errs++
		} else {
			sent += uint64(used)
		}
		next -= per - used
		target = (target + 1) % len(targets)
	}
	el := time.Since(start)
	fmt.Printf("sent %d flows over %d groups to %d collectors in %s: %.0f flows/s (asked %.0f), %d send errors\n",
		sent, min(groups, next), len(targets), el.Round(time.Millisecond), float64(sent)/el.Seconds(), rate, errs)
	return nil
}
