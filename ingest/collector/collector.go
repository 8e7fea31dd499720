// Package collector receives flow export datagrams (NetFlow v1/v5/v7/v8/v9,
// IPFIX, sFlow v5) on UDP sockets and hands decoded flows on. One socket
// may carry several versions: the version is read from each datagram.
//
// Datagrams are read in batches (recvmmsg on Linux), never one system call
// per flow, and decoded on the listener's goroutine by per-listener
// decoders that keep templates per exporter.
package collector

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync/atomic"
	"time"

	"github.com/flowguard/flowguard/flow"
	"github.com/flowguard/flowguard/ingest"
)

// Decoder decodes one export datagram from src, appending flows to out.
type Decoder interface {
	Decode(src netip.AddrPort, now time.Time, payload []byte, out []flow.Flow) ([]flow.Flow, error)
}

// Decoders are the decoders a listener dispatches to by version. A nil
// decoder means datagrams of that family are counted as unsupported.
type Decoders struct {
	NetFlow Decoder // NetFlow v1, v5, v7, v8, v9 and IPFIX
	SFlow   Decoder // sFlow v5
	// ByDetect are protocols told by their own test of the first bytes,
	// tried in order on datagrams neither NetFlow nor SFlow takes: a
	// registry of protocols hands its decoders here.
	ByDetect []Detected
}

// Detected is a decoder for the datagrams Detect claims.
type Detected struct {
	Detect  func(p []byte) bool
	Decoder Decoder
}

// Config configures one UDP listener.
type Config struct {
	Name       string   `yaml:"name"`        // for logs and metrics (default: the address)
	Address    string   `yaml:"address"`     // host:port, e.g. ":2055" or "127.0.0.1:4739"
	ReadBuffer int      `yaml:"read_buffer"` // socket receive buffer in bytes (default 8 MiB)
	Allow      []string `yaml:"allow"`       // exporter addresses or CIDRs allowed; empty allows all
	Batch      int      `yaml:"batch"`       // datagrams per read (default 64)
}

// Defaults.
const (
	DefaultReadBuffer = 8 << 20
	DefaultBatch      = 64
	// MaxReadBuffer bounds read_buffer: a process with CAP_NET_ADMIN is
	// granted what it asks, past net.core.rmem_max, in kernel memory.
	MaxReadBuffer = 1 << 30
	maxDatagram   = 65535
	flowBatch     = 256
	// flowRoom: a batch is handed on before a datagram is decoded into
	// it when less room than this is left in its buffer, so that a sink's
	// buffer is seldom outgrown (datagrams of 64 flows or more are rare).
	flowRoom = 64
)

// Validate checks the configuration and names the field at fault.
func (c Config) Validate() error {
	var errs []error
	if _, err := net.ResolveUDPAddr("udp", c.Address); err != nil || c.Address == "" {
		errs = append(errs, fmt.Errorf("address: %q is not host:port", c.Address))
	}
	if c.ReadBuffer < 0 || c.ReadBuffer > MaxReadBuffer {
		errs = append(errs, fmt.Errorf("read_buffer: must be between 0 and %d", MaxReadBuffer))
	}
	if _, err := parseAllow(c.Allow); err != nil {
		errs = append(errs, err)
	}
	if c.Batch < 0 || c.Batch > 1024 {
		errs = append(errs, errors.New("batch: must be between 1 and 1024"))
	}
	return errors.Join(errs...)
}

// Stats counts what a listener received.
type Stats struct {
	Datagrams   uint64 // datagrams read
	Bytes       uint64 // bytes read
	Flows       uint64 // flows decoded and handed on
	Denied      uint64 // datagrams from exporters outside Allow
	Malformed   uint64 // datagrams a decoder could not decode
	Rejected    uint64 // datagrams a decoder refused by a budget (see its Rejections)
	Unsupported uint64 // datagrams of no known version (or no decoder for it)
	ReadErrors  uint64 // failed reads
	KernelDrops uint64 // datagrams the kernel dropped for a full socket buffer (Linux)
}

// Listener is one bound UDP socket.
type Listener struct {
	cfg   Config
	allow []netip.Prefix
	conn  *net.UDPConn
	dec   Decoders
	port  int
	// stamped: the kernel stamps datagrams with their arrival time, the
	// receive time handed to decoders (else the time a batch is read).
	stamped bool
	// readBuffer: the receive buffer the kernel granted (0: not known).
	readBuffer int

	datagrams, bytes, flows, denied, malformed, unsupported, readErrors atomic.Uint64
	rejected                                                            atomic.Uint64
	lastErr                                                             atomic.Pointer[string]
}

// Listen binds the socket at once, so that a port in use is an error at
// start, not later.
func Listen(cfg Config, dec Decoders) (*Listener, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Name == "" {
		cfg.Name = cfg.Address
	}
	if cfg.ReadBuffer == 0 {
		cfg.ReadBuffer = DefaultReadBuffer
	}
	if cfg.Batch == 0 {
		cfg.Batch = DefaultBatch
	}
	addr, err := net.ResolveUDPAddr("udp", cfg.Address)
	if err != nil {
		return nil, fmt.Errorf("listener %s: %w", cfg.Name, err)
	}
	conn, err := net.ListenUDP("udp", addr)
	if err != nil {
		return nil, fmt.Errorf("listener %s: %w", cfg.Name, err)
	}
	// The kernel may grant less than asked (net.core.rmem_max, without
	// CAP_NET_ADMIN); ReadBuffer tells, and drops show in KernelDrops.
	granted := setReadBuffer(conn, cfg.ReadBuffer)
	allow, _ := parseAllow(cfg.Allow)
	l := &Listener{cfg: cfg, allow: allow, conn: conn, dec: dec, readBuffer: granted}
	l.stamped = stampArrivals(conn) // from the first datagram on
	if ua, ok := conn.LocalAddr().(*net.UDPAddr); ok {
		l.port = ua.Port
	}
	return l, nil
}

// Close releases the socket of a listener that will not Run.
func (l *Listener) Close() error { return l.conn.Close() }

// Name returns the listener's name.
func (l *Listener) Name() string { return l.cfg.Name }

// Addr returns the bound address (useful with port 0).
func (l *Listener) Addr() net.Addr { return l.conn.LocalAddr() }

// Stats returns the listener's counters; safe from any goroutine.
func (l *Listener) Stats() Stats {
	return Stats{
		Datagrams:   l.datagrams.Load(),
		Bytes:       l.bytes.Load(),
		Flows:       l.flows.Load(),
		Denied:      l.denied.Load(),
		Malformed:   l.malformed.Load(),
		Rejected:    l.rejected.Load(),
		Unsupported: l.unsupported.Load(),
		ReadErrors:  l.readErrors.Load(),
		KernelDrops: kernelDrops(l.port),
	}
}

// ReadBuffer returns the socket's receive buffer: the size the kernel
// granted (0 where it is not known) and the size asked (read_buffer). On
// Linux a process without CAP_NET_ADMIN is granted net.core.rmem_max at
// the most.
func (l *Listener) ReadBuffer() (granted, asked int) { return l.readBuffer, l.cfg.ReadBuffer }

// LastError returns the last decode error seen, for logs and status.
func (l *Listener) LastError() string {
	if p := l.lastErr.Load(); p != nil {
		return *p
	}
	return ""
}

// datagramReader reads datagrams in batches: recvmmsg on Linux
// (recv_linux.go), golang.org/x/net's batch reads elsewhere.
type datagramReader interface {
	// ReadBatch blocks until at least one datagram has come and returns
	// those read; the slice and the buffers it points into are reused by
	// the next call.
	ReadBatch() ([]received, error)
}

// received is one datagram read: its source (the zero AddrPort when the
// source could not be read: the datagram is skipped), payload and control
// messages.
type received struct {
	src    netip.AddrPort
	p, oob []byte
}

// Run reads and decodes datagrams until ctx is done, handing flows to h in
// batches. It closes the socket when it returns.
func (l *Listener) Run(ctx context.Context, h ingest.Handler) error {
	return l.RunSink(ctx, &handlerSink{h: h, buf: make([]flow.Flow, 0, flowBatch*2)})
}

// handlerSink lends one buffer over and over to a Handler.
type handlerSink struct {
	h   ingest.Handler
	buf []flow.Flow
}

func (s *handlerSink) Buffer() *[]flow.Flow { s.buf = s.buf[:0]; return &s.buf }
func (s *handlerSink) Hand(b *[]flow.Flow)  { s.buf = *b; s.h(*b) }

// RunSink is Run decoding straight into the buffers s lends: a batch is
// handed on once it holds flowBatch flows or its buffer has little room
// left, and at the end of each read of datagrams.
func (l *Listener) RunSink(ctx context.Context, s ingest.Sink) error {
	stop := context.AfterFunc(ctx, func() { l.conn.Close() })
	defer stop()
	defer l.conn.Close()

	oob := 0
	if l.stamped {
		oob = rxTimeOOB
	}
	rd, err := newDatagramReader(l.conn, l.cfg.Batch, oob)
	if err != nil {
		return fmt.Errorf("listener %s: %w", l.cfg.Name, err)
	}
	out := s.Buffer()
	hand := func() {
		l.flows.Add(uint64(len(*out))) // counted once a batch, before it is handed on
		s.Hand(out)
		out = s.Buffer()
	}
	// spill: once a datagram outgrew a lent buffer (its decoder's append
	// reallocated), this listener decodes into that larger buffer of its
	// own and copies into lent ones, rather than allocating anew for every
	// such datagram (large datagrams keep coming from the same exporters,
	// or from a hostile sender).
	var spill []flow.Flow
	copyIn := func(fl []flow.Flow) {
		for len(fl) > 0 {
			if len(*out) == cap(*out) && len(*out) > 0 {
				hand()
			}
			k := min(cap(*out)-len(*out), len(fl))
			if k == 0 { // a sink lending no room at all
				k = len(fl)
			}
			*out = append(*out, fl[:k]...)
			fl = fl[k:]
		}
	}
	for {
		got, err := rd.ReadBatch()
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				return ctx.Err()
			}
			l.readErrors.Add(1)
			continue
		}
		now := time.Now()
		for i := range got {
			m := &got[i]
			src := m.src
			if !src.IsValid() {
				continue
			}
			if len(*out) > 0 && cap(*out)-len(*out) < flowRoom {
				hand()
			}
			at, p := arrival(m.oob, now), m.p
			if spill != nil {
				spill = l.datagram(src, at, p, spill[:0])
				copyIn(spill)
			} else {
				lent := *out
				*out = l.datagram(src, at, p, *out)
				if cap(*out) != cap(lent) { // outgrown: lent still holds its own flows
					spill = *out
					*out = lent
					copyIn(spill[len(lent):])
				}
			}
			if len(*out) >= flowBatch {
				hand()
			}
		}
		if len(*out) > 0 {
			hand()
		}
	}
}

// datagram counts, filters and decodes one datagram.
func (l *Listener) datagram(src netip.AddrPort, now time.Time, p []byte, out []flow.Flow) []flow.Flow {
	l.datagrams.Add(1)
	l.bytes.Add(uint64(len(p)))
	if len(l.allow) > 0 && !allowed(l.allow, src.Addr()) {
		l.denied.Add(1)
		return out
	}
	var dec Decoder
	switch Family(p) {
	case FamilyNetFlow:
		dec = l.dec.NetFlow
	case FamilySFlow:
		dec = l.dec.SFlow
	}
	for i := 0; dec == nil && i < len(l.dec.ByDetect); i++ {
		if l.dec.ByDetect[i].Detect(p) {
			dec = l.dec.ByDetect[i].Decoder
		}
	}
	if dec == nil {
		l.unsupported.Add(1)
		return out
	}
	res, err := dec.Decode(src, now, p, out)
	if errors.Is(err, ingest.ErrRejected) {
		l.rejected.Add(1)
	} else if err != nil {
		l.malformed.Add(1)
		s := fmt.Sprintf("%s: %v", src, err)
		l.lastErr.Store(&s)
	}
	return res
}

// parseAllow reads addresses and CIDRs; a bare address allows that host.
func parseAllow(list []string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for i, s := range list {
		if p, err := netip.ParsePrefix(s); err == nil {
			out = append(out, p.Masked())
			continue
		}
		a, err := netip.ParseAddr(s)
		if err != nil {
			return nil, fmt.Errorf("allow[%d]: %q is neither an address nor a CIDR", i, s)
		}
		out = append(out, netip.PrefixFrom(a, a.BitLen()))
	}
	return out, nil
}

func allowed(nets []netip.Prefix, a netip.Addr) bool {
	for _, p := range nets {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// Export families, read from a datagram's first bytes.
const (
	FamilyUnknown = iota
	FamilyNetFlow
	FamilySFlow
)

// Family tells NetFlow/IPFIX (a 16-bit version 1, 5, 7, 8, 9 or 10) from
// sFlow (a 32-bit version 5) by the datagram's first bytes.
func Family(p []byte) int {
	if len(p) < 4 {
		return FamilyUnknown
	}
	v := uint16(p[0])<<8 | uint16(p[1])
	switch v {
	case 1, 5, 7, 8, 9, 10:
		return FamilyNetFlow
	case 0:
		if p[2] == 0 && p[3] == 5 {
			return FamilySFlow
		}
	}
	return FamilyUnknown
}
