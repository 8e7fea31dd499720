package pcap

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"sync"
	"time"

	"github.com/flowguard/flowguard/flow"
	"github.com/flowguard/flowguard/ingest"
	"github.com/flowguard/flowguard/ingest/meter"
)

// DefaultBufferSize is the read buffer's size when Config.BufferSize is 0.
const DefaultBufferSize = 1 << 20

// publishEvery is how many packets Run handles between publishing its
// counters to Stats (and checking ctx).
const publishEvery = 4096

// Config configures a Reader.
type Config struct {
	// Meter configures the flow meter; its Type defaults to flow.TypePcap.
	Meter meter.Config
	// Datagram, when set, is offered every UDP packet (first fragments
	// only) before it is metered, with the packet's time, its addresses and
	// ports, and the UDP payload as captured (the snaplen may have cut it).
	// When it returns true the packet is consumed: it is counted in
	// Stats.Datagrams and not metered. It is how captured NetFlow, IPFIX
	// or sFlow export traffic is decoded instead of metered. payload is
	// only valid during the call.
	Datagram func(ts time.Time, src, dst netip.AddrPort, payload []byte) bool
	// BufferSize is the read buffer's size in bytes (DefaultBufferSize
	// when 0). It grows when a single record needs more.
	BufferSize int
}

// Stats counts what a Reader read and skipped.
type Stats struct {
	Packets         uint64    // packet records read
	Bytes           uint64    // their lengths on the wire
	BytesRead       int64     // bytes of the file read so far, for progress
	Size            int64     // the file's size, when known (Open of a regular file); else 0
	Metered         uint64    // packets handed to the meter
	Datagrams       uint64    // packets consumed by Config.Datagram
	NonIP           uint64    // frames that carry neither IPv4 nor IPv6 (ARP, LLDP, ...)
	UnsupportedLink uint64    // packets on a link type this package does not decode
	Malformed       uint64    // packets whose headers contradict themselves
	Truncated       uint64    // packets cut before the headers the meter needs
	First, Last     time.Time // first and last packet time (file order)
	Meter           meter.Stats
}

// Ingest returns the counters common to all sources. Malformed counts
// malformed and truncated packets.
func (s Stats) Ingest() ingest.Stats {
	return ingest.Stats{Packets: s.Packets, Flows: s.Meter.Flows, Malformed: s.Malformed + s.Truncated}
}

// Reader reads a pcap or pcapng file, meters its packets into flows and
// hands them to a handler. It is an ingest.Source.
type Reader struct {
	name   string
	cfg    Config
	closer io.Closer
	size   int64
	fr     fileReader
	ran    bool

	mu        sync.Mutex
	published Stats
}

var _ ingest.Source = (*Reader)(nil)

// Open opens the capture file at path and reads its header. Close releases
// the file.
func Open(path string, cfg Config) (*Reader, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("pcap: %w", err)
	}
	var size int64
	if fi, err := f.Stat(); err == nil && fi.Mode().IsRegular() {
		size = fi.Size()
	}
	r, err := newReader(f, path, cfg)
	if err != nil {
		f.Close()
		return nil, err
	}
	r.closer, r.size = f, size
	r.published.Size = size
	return r, nil
}

// New returns a Reader of the capture in r, whose header it reads. name
// names the input in errors and in Name.
func New(r io.Reader, name string, cfg Config) (*Reader, error) {
	return newReader(r, name, cfg)
}

func newReader(r io.Reader, name string, cfg Config) (*Reader, error) {
	if err := cfg.Meter.Validate(); err != nil {
		return nil, fmt.Errorf("pcap: %w", err)
	}
	if cfg.BufferSize < 0 {
		return nil, fmt.Errorf("pcap: buffer_size: must be >= 0, got %d", cfg.BufferSize)
	}
	if cfg.BufferSize == 0 {
		cfg.BufferSize = DefaultBufferSize
	}
	rd := &Reader{name: name, cfg: cfg}
	if err := rd.fr.open(r, cfg.BufferSize); err != nil {
		return nil, fmt.Errorf("pcap: %s: %w", name, err)
	}
	rd.published.BytesRead = rd.fr.pos
	return rd, nil
}

// Name returns "pcap:" and the file's name.
func (r *Reader) Name() string { return "pcap:" + r.name }

// Close closes the file that Open opened.
func (r *Reader) Close() error {
	if r.closer != nil {
		return r.closer.Close()
	}
	return nil
}

// Stats returns the counters as last published by Run (every few thousand
// packets and at the end). It is safe to call while Run runs, e.g. to draw
// a progress bar from BytesRead and Size.
func (r *Reader) Stats() Stats {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.published
}

// Run reads every packet, meters it and hands the flows to h, flushing the
// meter at the end of the file. It returns nil at the end of the file,
// ctx.Err() when cancelled (flows still in the meter are dropped), and an
// error wrapping io.ErrUnexpectedEOF for a file cut inside a record or
// describing the corruption for a file whose framing breaks; in those two
// cases the packets before the damage are metered and flushed first.
// Malformed packets are counted and skipped. Run may be called once.
func (r *Reader) Run(ctx context.Context, h ingest.Handler) error {
	if r.ran {
		return errors.New("pcap: " + r.name + ": Run called twice")
	}
	r.ran = true
	if err := ctx.Err(); err != nil {
		return err
	}
	mcfg := r.cfg.Meter
	if mcfg.Type == "" {
		mcfg.Type = flow.TypePcap
	}
	m, err := meter.New(mcfg, h)
	if err != nil {
		return fmt.Errorf("pcap: %w", err)
	}
	var (
		s   = r.Stats()
		rec record
		d   decoded
		dg  = r.cfg.Datagram
	)
	var first, last int64
	publish := func() {
		s.BytesRead = r.fr.pos
		s.Meter = m.Stats()
		if s.Packets > 0 {
			s.First, s.Last = time.Unix(0, first).UTC(), time.Unix(0, last).UTC()
		}
		r.mu.Lock()
		r.published = s
		r.mu.Unlock()
	}
	for n := 1; ; n++ {
		if n%publishEvery == 0 {
			publish()
			if err := ctx.Err(); err != nil {
				return err
			}
		}
		err := r.fr.next(&rec)
		if err != nil {
			m.Flush()
			publish()
			switch {
			case err == io.EOF:
				return nil
			case errors.Is(err, io.ErrUnexpectedEOF):
				return fmt.Errorf("pcap: %s: file cut in the record at byte %d: %w", r.name, r.fr.pos, err)
			}
			return fmt.Errorf("pcap: %s: %w", r.name, err)
		}
		if s.Packets == 0 {
			first = rec.ts
		}
		last = rec.ts
		s.Packets++
		s.Bytes += uint64(rec.wire)
		switch decode(rec.link, rec.data, rec.wire, &d) {
		case statusOK:
		case statusNonIP:
			s.NonIP++
			continue
		case statusUnsupported:
			s.UnsupportedLink++
			continue
		case statusMalformed:
			s.Malformed++
			continue
		case statusTruncated:
			s.Truncated++
			continue
		}
		d.pkt.Time = rec.ts
		if dg != nil && d.payload != nil &&
			dg(time.Unix(0, rec.ts).UTC(), netip.AddrPortFrom(d.pkt.Src, d.pkt.SrcPort), netip.AddrPortFrom(d.pkt.Dst, d.pkt.DstPort), d.payload) {
			s.Datagrams++
			continue
		}
		s.Metered++
		m.Packet(&d.pkt)
	}
}
