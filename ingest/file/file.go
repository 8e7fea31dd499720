// Package file opens any input `flowguard replay` accepts and tells which
// kind it is from the content, not the name: pcap and pcapng captures
// (metered into flows by ingest/pcap), JSON lines (goflow2's or flowguard's)
// and nfdump CSV (ingest/flowfile). Gzip-compressed files are decompressed
// on the fly. Each format registers itself (formats.go): a new one is its
// reader and one Register call.
package file

import (
	"bufio"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"time"

	"github.com/flowguard/flowguard/ingest"
	"github.com/flowguard/flowguard/ingest/flowfile"
	"github.com/flowguard/flowguard/ingest/meter"
	"github.com/flowguard/flowguard/ingest/pcap"
)

// Options configure the sources Open returns.
type Options struct {
	// Meter tunes how captured packets become flows (pcap, pcapng).
	Meter meter.Config
	// Datagram, when set, sees captured UDP datagrams first and consumes
	// those it returns true for (captured NetFlow/IPFIX/sFlow export).
	Datagram func(ts time.Time, src, dst netip.AddrPort, payload []byte) bool
	// FlowFile tunes the JSON lines and CSV reader; its Name and Format
	// are set by Open.
	FlowFile flowfile.Options
}

// Source is what Open returns: an ingest.Source that also counts what it
// read. Run reads the file once and closes it.
type Source interface {
	ingest.Source
	Stats() ingest.Stats
}

// ErrUnknownFormat is returned for content that is none of the formats
// registered (the error names them).
var ErrUnknownFormat = errors.New("unknown format")

// sniffBytes is how much of a file Open reads to decide its format.
const sniffBytes = 4096

// Open opens path, detects its format from its content and returns a source
// for it. The file is closed when the source's Run returns.
func Open(path string, opts Options) (Source, Format, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, Unknown, err
	}
	br := bufio.NewReaderSize(f, sniffBytes)
	var (
		rd     io.Reader = br
		closer io.Closer = f
		zipped bool
	)
	if magic, _ := br.Peek(2); len(magic) == 2 && magic[0] == 0x1f && magic[1] == 0x8b {
		zr, err := gzip.NewReader(br)
		if err != nil {
			f.Close()
			return nil, Unknown, fmt.Errorf("%s: gzip: %w", path, err)
		}
		zipped = true
		zbr := bufio.NewReaderSize(zr, sniffBytes)
		rd, closer = zbr, multiCloser{zr, f}
		br = zbr
	}
	head, err := br.Peek(sniffBytes)
	if err != nil && !errors.Is(err, io.EOF) {
		closer.Close()
		return nil, Unknown, fmt.Errorf("%s: %w", path, err)
	}
	format := Detect(head)
	if format == Unknown {
		closer.Close()
		if len(head) == 0 {
			return nil, Unknown, fmt.Errorf("%s: empty file", path)
		}
		return nil, Unknown, fmt.Errorf("%s: %w (expected %s)", path, ErrUnknownFormat, expected())
	}
	src, err := formats[format].Open(Input{Path: path, Reader: rd, Closer: closer, Zipped: zipped, File: f}, opts)
	if err != nil {
		return nil, format, err
	}
	return src, format, nil
}

// openCapture reads a pcap or pcapng capture, metering its packets.
func openCapture(in Input, opts Options) (Source, error) {
	cfg := pcap.Config{Meter: opts.Meter, Datagram: opts.Datagram}
	if in.Zipped {
		r, err := pcap.New(in.Reader, in.Path, cfg)
		if err != nil {
			in.Close()
			return nil, err
		}
		return &pcapSource{Reader: r, closer: in.Closer, input: in.File}, nil
	}
	in.Close()
	r, err := pcap.Open(in.Path, cfg) // knows the file's size, for progress
	if err != nil {
		return nil, err
	}
	return &pcapSource{Reader: r, closer: r}, nil
}

// openFlowFile returns a reader of JSON lines or nfdump CSV.
func openFlowFile(format flowfile.Format) func(Input, Options) (Source, error) {
	return func(in Input, opts Options) (Source, error) {
		in.Close() // flowfile opens the file again, gzip and all
		fo := opts.FlowFile
		fo.Name, fo.Format = in.Path, format
		return flowfile.Open(in.Path, fo)
	}
}

// pcapSource adapts a pcap.Reader to Source and closes its input after Run.
type pcapSource struct {
	*pcap.Reader
	closer io.Closer
	input  *os.File // the file read through gzip, closed early when ctx ends; nil when pcap.Open reads it
}

func (s *pcapSource) Stats() ingest.Stats { return s.Reader.Stats().Ingest() }

// Progress returns the bytes read and the file's size (0 when unknown,
// e.g. gzip input), for progress bars.
func (s *pcapSource) Progress() (read, size int64) {
	st := s.Reader.Stats()
	return st.BytesRead, st.Size
}

// Run meters the capture into flows for h, then closes the file. When ctx
// ends the file is closed at once, so that a read waiting on a slow input
// (a pipe, `replay <(zcat ...)`) returns and Run with it.
func (s *pcapSource) Run(ctx context.Context, h ingest.Handler) error {
	stop := func() bool { return true }
	if s.input != nil {
		stop = context.AfterFunc(ctx, func() { s.input.Close() })
	}
	err := s.Reader.Run(ctx, h)
	interrupted := !stop()
	if cerr := s.closer.Close(); err == nil && !interrupted {
		err = cerr
	}
	if interrupted {
		return ctx.Err()
	}
	return err
}

type multiCloser []io.Closer

func (m multiCloser) Close() error {
	var errs []error
	for _, c := range m {
		errs = append(errs, c.Close())
	}
	return errors.Join(errs...)
}
