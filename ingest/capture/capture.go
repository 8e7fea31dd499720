// Package capture reads packets live from a network interface with
// AF_PACKET (memory-mapped TPACKET_V3, no cgo) and meters them into flows
// with the same meter as pcap replay, so a live capture and a replay of
// its pcap give the same flows.
//
// A filter is a tcpdump expression. flowguard has no BPF compiler of its
// own (libpcap would need cgo): it asks tcpdump (`tcpdump -ddd`) to compile
// the expression at start, so tcpdump must be installed to use one.
package capture

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os/exec"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/gopacket/gopacket/afpacket"
	"golang.org/x/net/bpf"

	"github.com/flowguard/flowguard/flow"
	"github.com/flowguard/flowguard/ingest"
	"github.com/flowguard/flowguard/ingest/meter"
	"github.com/flowguard/flowguard/ingest/pcap"
)

// Config configures a live capture.
type Config struct {
	Interface   string       `yaml:"interface"`   // e.g. eth0; required
	Filter      string       `yaml:"filter"`      // tcpdump expression (needs tcpdump installed)
	Promiscuous bool         `yaml:"promiscuous"` // see traffic not addressed to this host
	BlockSize   int          `yaml:"block_size"`  // ring block size in bytes (default 1 MiB)
	Blocks      int          `yaml:"blocks"`      // ring blocks (default 64: a 64 MiB ring)
	Meter       meter.Config `yaml:"-"`           // set from the config's meter section
}

// Validate checks the configuration.
func (c Config) Validate() error {
	var errs []error
	if c.Interface == "" {
		errs = append(errs, errors.New("interface: required"))
	}
	if c.BlockSize < 0 || (c.BlockSize > 0 && c.BlockSize%4096 != 0) {
		errs = append(errs, errors.New("block_size: must be a multiple of 4096"))
	}
	if c.Blocks < 0 {
		errs = append(errs, errors.New("blocks: must be > 0"))
	}
	return errors.Join(errs...)
}

// Stats counts what the capture saw.
type Stats struct {
	Packets     uint64 // frames read
	Bytes       uint64 // wire bytes of those frames
	NonIP       uint64 // frames without IP (ARP, ...)
	Malformed   uint64 // frames that did not decode
	KernelDrops uint64 // frames the kernel dropped (ring full)
	Meter       meter.Stats
}

// Capture is an open AF_PACKET socket.
type Capture struct {
	cfg Config
	tp  *afpacket.TPacket

	packets, bytes, nonIP, malformed, drops atomic.Uint64
	meterStats                              atomic.Pointer[meter.Stats]
}

// Open opens the socket and installs the filter, so that a missing
// interface, missing privileges (CAP_NET_RAW) or a bad filter fail at
// start.
func Open(cfg Config) (*Capture, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.BlockSize == 0 {
		cfg.BlockSize = 1 << 20
	}
	if cfg.Blocks == 0 {
		cfg.Blocks = 64
	}
	if cfg.Meter.Type == "" {
		cfg.Meter.Type = flow.TypeCapture
	}
	tp, err := afpacket.NewTPacket(
		afpacket.OptInterface(cfg.Interface),
		afpacket.OptFrameSize(afpacket.DefaultFrameSize),
		afpacket.OptBlockSize(cfg.BlockSize),
		afpacket.OptNumBlocks(cfg.Blocks),
		afpacket.OptPollTimeout(100*time.Millisecond),
		afpacket.TPacketVersion3,
	)
	if err != nil {
		return nil, fmt.Errorf("capture on %s: %w (needs CAP_NET_RAW)", cfg.Interface, err)
	}
	filter := cfg.Filter
	if ifi, err := net.InterfaceByName(cfg.Interface); err == nil && ifi.Flags&net.FlagLoopback != 0 {
		// On loopback AF_PACKET sees every packet twice, leaving and
		// arriving; keep the arriving copy, as tcpdump does.
		filter = "inbound"
		if cfg.Filter != "" {
			filter += " and (" + cfg.Filter + ")"
		}
	}
	if filter != "" {
		prog, err := inboundOnly, error(nil)
		if filter != "inbound" {
			prog, err = CompileFilter(cfg.Interface, filter)
		}
		if err == nil {
			err = tp.SetBPF(prog)
		}
		if err != nil {
			tp.Close()
			return nil, fmt.Errorf("capture on %s: filter: %w", cfg.Interface, err)
		}
	}
	if cfg.Promiscuous {
		if err := tp.SetPromiscuous(true); err != nil {
			tp.Close()
			return nil, fmt.Errorf("capture on %s: promiscuous: %w", cfg.Interface, err)
		}
	}
	return &Capture{cfg: cfg, tp: tp}, nil
}

// Name names the source.
func (c *Capture) Name() string { return "capture:" + c.cfg.Interface }

// Run reads frames until ctx is done, meters them and hands flows to h.
// With no traffic, the meter's clock still follows the wall clock so
// idle flows end on time. When ctx is done, what the ring still holds is
// read (for at most a second), the flows still open are flushed to h, and
// the socket is closed.
func (c *Capture) Run(ctx context.Context, h ingest.Handler) error {
	defer c.tp.Close()
	m, err := meter.New(c.cfg.Meter, h)
	if err != nil {
		return err
	}
	var pkt meter.Packet
	lastStats := time.Now()
	var draining time.Time // when ctx ended: read what the ring holds, then stop
	for {
		if ctx.Err() != nil && draining.IsZero() {
			draining = time.Now()
		}
		data, ci, err := c.tp.ZeroCopyReadPacketData()
		now := time.Now()
		if now.Sub(lastStats) > time.Second {
			c.snapshot(m)
			lastStats = now
		}
		if !draining.IsZero() && (err != nil || now.Sub(draining) > time.Second) {
			m.Flush()
			c.snapshot(m)
			return ctx.Err()
		}
		if err != nil {
			if errors.Is(err, afpacket.ErrTimeout) || errors.Is(err, afpacket.ErrPoll) {
				m.Advance(now.UnixNano())
				continue
			}
			m.Flush()
			c.snapshot(m)
			return fmt.Errorf("capture on %s: %w", c.cfg.Interface, err)
		}
		c.packets.Add(1)
		c.bytes.Add(uint64(ci.Length))
		_, res := pcap.DecodeFrame(pcap.LinkEthernet, data, uint32(ci.Length), &pkt)
		switch res {
		case pcap.FrameOK:
			pkt.Time = ci.Timestamp.UnixNano()
			m.Packet(&pkt)
		case pcap.FrameNonIP:
			c.nonIP.Add(1)
		default:
			c.malformed.Add(1)
		}
	}
}

func (c *Capture) snapshot(m *meter.Meter) {
	st := m.Stats()
	c.meterStats.Store(&st)
	if _, s3, err := c.tp.SocketStats(); err == nil {
		c.drops.Store(uint64(s3.Drops())) // afpacket accumulates
	}
}

// Stats returns the counters; safe from any goroutine (meter figures are
// at most a second old).
func (c *Capture) Stats() Stats {
	s := Stats{
		Packets:     c.packets.Load(),
		Bytes:       c.bytes.Load(),
		NonIP:       c.nonIP.Load(),
		Malformed:   c.malformed.Load(),
		KernelDrops: c.drops.Load(),
	}
	if p := c.meterStats.Load(); p != nil {
		s.Meter = *p
	}
	return s
}

// inboundOnly is tcpdump's "inbound" on Linux, written out so that loopback
// capture needs no tcpdump: drop packets whose type is PACKET_OUTGOING.
var inboundOnly = []bpf.RawInstruction{
	{Op: 0x28, K: 0xfffff004},      // ldh [SKF_AD_OFF + SKF_AD_PKTTYPE]
	{Op: 0x15, Jt: 0, Jf: 1, K: 4}, // jeq #PACKET_OUTGOING
	{Op: 0x06, K: 0},               // ret #0: drop
	{Op: 0x06, K: 262144},          // ret: accept the whole frame
}

// CompileFilter compiles a tcpdump expression for an interface into
// classic BPF by running `tcpdump -ddd`.
func CompileFilter(iface, expr string) ([]bpf.RawInstruction, error) {
	path, err := exec.LookPath("tcpdump")
	if err != nil {
		return nil, errors.New("compiling a filter needs tcpdump installed (apt-get install tcpdump)")
	}
	var stderr bytes.Buffer
	cmd := exec.Command(path, "-i", iface, "-ddd", expr)
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("%q: %s", expr, strings.TrimSpace(stderr.String()))
	}
	return parseDDD(out)
}

// parseDDD reads tcpdump -ddd output: a count, then "code jt jf k" lines.
func parseDDD(out []byte) ([]bpf.RawInstruction, error) {
	sc := bufio.NewScanner(bytes.NewReader(out))
	if !sc.Scan() {
		return nil, errors.New("tcpdump -ddd printed nothing")
	}
	n, err := strconv.Atoi(strings.TrimSpace(sc.Text()))
	if err != nil || n <= 0 {
		return nil, fmt.Errorf("tcpdump -ddd: bad count %q", sc.Text())
	}
	prog := make([]bpf.RawInstruction, 0, n)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) != 4 {
			return nil, fmt.Errorf("tcpdump -ddd: bad line %q", sc.Text())
		}
		var v [4]uint64
		for i := range f {
			if v[i], err = strconv.ParseUint(f[i], 10, 32); err != nil {
				return nil, fmt.Errorf("tcpdump -ddd: bad line %q", sc.Text())
			}
		}
		prog = append(prog, bpf.RawInstruction{Op: uint16(v[0]), Jt: uint8(v[1]), Jf: uint8(v[2]), K: uint32(v[3])})
	}
	if len(prog) != n {
		return nil, fmt.Errorf("tcpdump -ddd: %d instructions, expected %d", len(prog), n)
	}
	return prog, nil
}
