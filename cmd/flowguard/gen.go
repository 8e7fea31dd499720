package main

import (
	"context"
	"fmt"
	"io"
	"net/netip"
	"os"
	"os/signal"
	"strings"
	"time"

	"github.com/flowguard/flowguard/gen"
)

const genUsage = `Usage:
  flowguard gen scenario -o FILE.pcap [--seed N] [--duration 60s] [--background-rate 200]
                         [--with scan,sweep,exfil,flood,heavy-hitter]
      write a scenario capture and its ground truth (FILE.pcap.truth.json)
  flowguard gen stream [--to 127.0.0.1:2055] [--proto v5|v9|ipfix|sflow] [--rate 100000]
                       [--count 1000000] [--duration 60s] [--exporters 1]
      send background flows to a collector on loopback at a steady rate

Run 'flowguard gen scenario --help' or 'flowguard gen stream --help' for all options.
`

// cmdGen makes synthetic traffic: scenario captures and flow export
// streams (package gen).
func cmdGen(args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, genUsage)
		return usagef("gen: scenario or stream?")
	}
	switch args[0] {
	case "scenario":
		return cmdGenScenario(args[1:], stdout, stderr)
	case "stream":
		return cmdGenStream(args[1:], stdout, stderr)
	case "help", "-h", "--help":
		fmt.Fprint(stdout, genUsage)
		return nil
	}
	return unknownCommand("gen", args[0], []string{"scenario", "stream"})
}

const scenarioSynopsis = `flowguard gen scenario -o FILE.pcap [options]

Writes a pcap of background traffic (internal clients in 10.10.0.0/16 on
web, TLS, DNS, NTP and SSH with outside servers) plus the behaviours asked
for, and FILE.pcap.truth.json naming, for each behaviour, the rule of the
bundled pack it must fire and the group. The same seed gives the same file.
Replay it with: flowguard replay --format json --stats json FILE.pcap > alerts.jsonl 2> tuning.json
(alerts as JSON lines on stdout, the tuning report as JSON on stderr).`

func cmdGenScenario(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("gen scenario", scenarioSynopsis, stdout, stderr)
	out := fs.String("o", "", "output pcap file (required)")
	seed := fs.Uint64("seed", 1, "random seed")
	duration := fs.Duration("duration", gen.DefaultDuration, "length of the background")
	rate := fs.Float64("background-rate", gen.DefaultBackgroundRate, "background packets per second (0: none)")
	with := fs.String("with", strings.Join(gen.Behaviours, ","), "behaviours to inject, comma-separated (\"\" for none): "+strings.Join(gen.Behaviours, ", ")+"; attacks, on request: "+strings.Join(gen.Attacks, ", ")+
		"; for the rules that learn, on request (they run past the duration): "+strings.Join(gen.Learning, ", "))
	snaplen := fs.Int("snaplen", gen.DefaultSnaplen, "bytes kept of each frame (IP lengths stay true)")
	start := fs.String("start", gen.DefaultStart.Format(time.RFC3339), "time of the first packet (RFC 3339)")
	pos, err := parseInterleaved(fs, args)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return usagef("gen scenario: unexpected argument %q", pos[0])
	}
	if *out == "" {
		fs.Usage()
		return usagef("gen scenario: -o FILE is required")
	}
	t0, err := time.Parse(time.RFC3339, *start)
	if err != nil {
		return usagef("--start: %v", err)
	}
	if *duration <= 0 {
		return usagef("--duration: must be > 0, got %s", *duration)
	}
	s := gen.Scenario{Seed: *seed, Start: t0, Duration: *duration, BackgroundRate: *rate, Snaplen: *snaplen}
	if *rate == 0 {
		s.NoBackground = true
	}
	for _, b := range strings.Split(*with, ",") {
		if b = strings.TrimSpace(b); b != "" {
			s.With = append(s.With, b)
		}
	}
	if err := s.Validate(); err != nil {
		return usagef("gen scenario: %v", err)
	}
	truth, err := gen.WriteScenarioFile(*out, s)
	if err != nil {
		return err
	}
	size := int64(0)
	if fi, err := os.Stat(*out); err == nil {
		size = fi.Size()
	}
	fmt.Fprintf(stderr, "%s: %d packets (%d background), %d IP bytes, %d bytes of capture; truth in %s.truth.json\n",
		*out, truth.Packets, truth.Background.Packets, truth.Bytes, size, *out)
	for _, b := range truth.Behaviours {
		fmt.Fprintf(stderr, "  %-13s %s at %s → %s %s\n", b.Behaviour, b.Description, b.Start.Format(time.TimeOnly), b.Rule, groupString(b.Group))
	}
	return nil
}

func groupString(g map[string]string) string {
	var parts []string
	for _, k := range []string{"src_addr", "dst_addr", "dst_port"} {
		if v, ok := g[k]; ok {
			parts = append(parts, k+"="+v)
		}
	}
	return strings.Join(parts, " ")
}

const streamSynopsis = `flowguard gen stream [options]

Sends background flows as NetFlow v5, v9, IPFIX or sFlow v5 datagrams to a
collector on this machine, paced at --rate flows per second, until --count
flows are sent or --duration passes. Only loopback destinations
(127.0.0.0/8, ::1) are accepted. v9 and IPFIX send their template first and
every --template-interval. With sFlow, each flow is one packet sample.`

func cmdGenStream(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("gen stream", streamSynopsis, stdout, stderr)
	to := fs.String("to", "127.0.0.1:2055", "collector address (loopback only)")
	proto := fs.String("proto", "v9", "export protocol: v5, v9, ipfix or sflow")
	rate := fs.Float64("rate", 100000, "flows per second (< 0: as fast as possible)")
	count := fs.Uint64("count", 1000000, "flows to send at most")
	duration := fs.Duration("duration", 60*time.Second, "time to send for at most")
	exporters := fs.Int("exporters", 1, "number of exporters (sockets 127.0.1.1, 127.0.1.2, ...)")
	seed := fs.Uint64("seed", 1, "random seed of the flows")
	tmpl := fs.Duration("template-interval", 10*time.Second, "v9/IPFIX template resend interval")
	sampling := fs.Uint("sampling-rate", 1, "sampling rate announced (v5 header, sFlow samples)")
	pos, err := parseInterleaved(fs, args)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return usagef("gen stream: unexpected argument %q", pos[0])
	}
	p, err := gen.ParseProto(*proto)
	if err != nil {
		return usagef("--proto: %v", err)
	}
	ap, err := parseLoopback(*to)
	if err != nil {
		return usagef("--to: %v", err)
	}
	if *rate == 0 || *count == 0 || *duration <= 0 || *exporters < 1 || *exporters > 250 || *tmpl <= 0 {
		return usagef("gen stream: --rate, --count, --duration and --template-interval must be non-zero, --exporters 1 to 250")
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	st, err := gen.Stream(ctx, gen.StreamConfig{
		To: ap, Proto: p, Rate: *rate, Count: *count, Duration: *duration, Exporters: *exporters, Seed: *seed,
		Encoder: gen.EncoderConfig{TemplateEvery: *tmpl, SamplingRate: uint32(*sampling)},
	})
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "sent %d flows in %d datagrams (%d bytes) to %s as %s in %s: %.0f flows/s (asked %.0f), %d send errors\n",
		st.Flows, st.Datagrams, st.Bytes, ap, p, st.Elapsed.Round(time.Millisecond), st.Rate(), *rate, st.Errors)
	if ctx.Err() != nil {
		return errInterrupted
	}
	return nil
}

// parseLoopback parses host:port and refuses anything but loopback.
func parseLoopback(s string) (netip.AddrPort, error) {
	if host, port, ok := strings.Cut(s, ":"); ok && host == "localhost" {
		s = "127.0.0.1:" + port
	}
	ap, err := netip.ParseAddrPort(s)
	if err != nil {
		return ap, fmt.Errorf("%q: want IP:PORT on loopback, as in 127.0.0.1:2055 or [::1]:2055", s)
	}
	return ap, gen.CheckLoopback(ap)
}
