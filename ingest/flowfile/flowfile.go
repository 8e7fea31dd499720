// Package flowfile replays flow records kept in text files: JSON lines as
// goflow2 writes them (-format json) or as flowguard writes flow.Flow, and
// the CSV that `nfdump -o csv` prints. A Reader is an ingest.Source: it reads
// the file once, hands the flows on in batches and skips (and counts) lines it
// cannot decode, so one bad line never stops a replay.
package flowfile

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sync/atomic"
	"time"

	"github.com/flowguard/flowguard/flow"
	"github.com/flowguard/flowguard/ingest"
)

// Format is the layout of a flow file.
type Format uint8

// Formats Detect recognises.
const (
	Unknown   Format = iota
	JSONLines        // one JSON object a line, goflow2 or flowguard field names
	NfdumpCSV        // nfdump -o csv, with or without its header and summary
)

// String names the format as replay prints it.
func (f Format) String() string {
	switch f {
	case JSONLines:
		return "json lines"
	case NfdumpCSV:
		return "nfdump csv"
	}
	return "unknown"
}

// Detect names the format of a flow file from its first bytes (a few hundred
// are enough; the first line decides). It returns Unknown for anything else,
// pcap and gzip included: callers that accept those sniff them first.
func Detect(head []byte) Format {
	head = bytes.TrimPrefix(head, utf8BOM)
	head = bytes.TrimLeft(head, " \t\r\n")
	if len(head) == 0 {
		return Unknown
	}
	if head[0] == '{' {
		return JSONLines
	}
	line := head
	if i := bytes.IndexByte(line, '\n'); i >= 0 {
		line = line[:i]
	}
	line = bytes.TrimRight(line, "\r")
	if _, ok := parseCSVHeader(line); ok {
		return NfdumpCSV
	}
	// nfdump -q prints no header: a line that starts with a timestamp and has
	// the column count of a known layout is a record.
	if isHeaderlessRecord(line) {
		return NfdumpCSV
	}
	return Unknown
}

var utf8BOM = []byte{0xef, 0xbb, 0xbf}

// DefaultBatchSize is how many flows a Reader hands on at once.
const DefaultBatchSize = 256

// DefaultMaxLineBytes bounds one line; longer lines are skipped as malformed.
const DefaultMaxLineBytes = 1 << 20

// Options tune a Reader. The zero value is ready to use.
type Options struct {
	// Name is what Reader.Name returns (default: the path, or "flowfile").
	Name string
	// Format forces the format; Unknown detects it from the content.
	Format Format
	// BatchSize is the number of flows handed on at once (default 256).
	BatchSize int
	// MaxLineBytes bounds a line (default 1 MiB).
	MaxLineBytes int
	// Location is the time zone of nfdump's timestamps, which it prints
	// in the local time of the machine that ran it (default time.Local).
	Location *time.Location
	// OnMalformed, when set, is told about the first MaxReports malformed
	// lines (1-based line number and why). When nil they are logged with
	// slog.Warn. Every malformed line is counted in Stats either way.
	OnMalformed func(line int, err error)
	// MaxReports is how many malformed lines are reported (default 5;
	// negative reports none).
	MaxReports int
}

func (o *Options) defaults() {
	if o.BatchSize <= 0 {
		o.BatchSize = DefaultBatchSize
	}
	if o.MaxLineBytes <= 0 {
		o.MaxLineBytes = DefaultMaxLineBytes
	}
	if o.Location == nil {
		o.Location = time.Local
	}
	if o.MaxReports == 0 {
		o.MaxReports = 5
	}
	if o.Name == "" {
		o.Name = "flowfile"
	}
}

// Reader replays one flow file. It implements ingest.Source; Run may be
// called once.
type Reader struct {
	opts   Options
	br     *bufio.Reader
	closer io.Closer
	// input is the file under the reader, when it is one: closed from
	// another goroutine when Run's ctx ends (os.File allows that).
	input  *os.File
	format Format

	packets   atomic.Uint64
	flows     atomic.Uint64
	malformed atomic.Uint64
}

// Open opens a flow file (gzip-compressed or not) and detects its format
// unless opts.Format names one. The file is closed when Run returns, or by
// Close if Run is never called.
func Open(path string, opts Options) (*Reader, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	if opts.Name == "" {
		opts.Name = path
	}
	r, err := newReader(f, f, opts)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return r, nil
}

// New reads flows from r (gzip-compressed or not), detecting the format
// unless opts.Format names one. If r is an io.Closer it is closed when Run
// returns.
func New(r io.Reader, opts Options) (*Reader, error) {
	c, _ := r.(io.Closer)
	return newReader(r, c, opts)
}

// ErrUnknownFormat is returned when the content is neither JSON lines nor
// nfdump CSV.
var ErrUnknownFormat = errors.New("not a flow file (expected JSON lines or nfdump CSV)")

func newReader(r io.Reader, c io.Closer, opts Options) (*Reader, error) {
	opts.defaults()
	br := bufio.NewReaderSize(r, 256<<10)
	if head, _ := br.Peek(2); len(head) == 2 && head[0] == 0x1f && head[1] == 0x8b {
		zr, err := gzip.NewReader(br)
		if err != nil {
			return nil, fmt.Errorf("gzip: %w", err)
		}
		br = bufio.NewReaderSize(zr, 256<<10)
		c = closers{zr, c}
	}
	format := opts.Format
	if format == Unknown {
		head, err := br.Peek(4096)
		if err != nil && !errors.Is(err, io.EOF) && !errors.Is(err, bufio.ErrBufferFull) {
			return nil, err
		}
		if len(bytes.TrimSpace(bytes.TrimPrefix(head, utf8BOM))) == 0 {
			format = JSONLines // an empty file holds no flows in any format
		} else if format = Detect(head); format == Unknown {
			return nil, ErrUnknownFormat
		}
	}
	input, _ := r.(*os.File)
	return &Reader{opts: opts, br: br, closer: c, input: input, format: format}, nil
}

type closers struct {
	a io.Closer
	b io.Closer
}

func (c closers) Close() error {
	err := c.a.Close()
	if c.b != nil {
		if err2 := c.b.Close(); err == nil {
			err = err2
		}
	}
	return err
}

// Name identifies the source in logs and summaries.
func (r *Reader) Name() string { return r.opts.Name }

// Format is the format the Reader decodes.
func (r *Reader) Format() Format { return r.format }

// Stats counts lines read (as Packets), flows handed on and malformed lines.
// It is safe to call while Run is going.
func (r *Reader) Stats() ingest.Stats {
	return ingest.Stats{
		Packets:   r.packets.Load(),
		Flows:     r.flows.Load(),
		Malformed: r.malformed.Load(),
	}
}

// Close closes the input without reading it. Run closes it by itself.
func (r *Reader) Close() error {
	if r.closer == nil {
		return nil
	}
	c := r.closer
	r.closer = nil
	return c.Close()
}

// lineParser decodes one line into f. skip reports a line that carries no
// flow and is no error (a header, a blank line); stop ends the input
// (nfdump's summary).
type lineParser interface {
	parseLine(line []byte, f *flow.Flow) (skip, stop bool, err error)
}

// Run reads the whole input and hands the flows to h in batches. It returns
// nil at the end of the input, ctx.Err() when cancelled and an error only
// when the input cannot be read; malformed lines are counted and skipped.
func (r *Reader) Run(ctx context.Context, h ingest.Handler) (err error) {
	// When ctx ends the input is closed at once, so that a read waiting on
	// a slow input (a pipe) returns.
	if in := r.input; in != nil {
		stop := context.AfterFunc(ctx, func() { in.Close() })
		defer func() {
			if !stop() {
				err = ctx.Err()
			}
		}()
	}
	defer func() {
		if cerr := r.Close(); err == nil && cerr != nil {
			err = cerr
		}
	}()
	var p lineParser
	switch r.format {
	case JSONLines:
		p = &jsonParser{}
	case NfdumpCSV:
		p = newCSVParser(r.opts.Location)
	default:
		return ErrUnknownFormat
	}

	batch := make([]flow.Flow, r.opts.BatchSize)
	n := 0
	flush := func() {
		if n > 0 {
			h(batch[:n])
			r.flows.Add(uint64(n))
			n = 0
		}
	}
	var (
		lineNo   int
		reported int
		long     []byte // a line longer than the bufio buffer, assembled
		tooLong  bool
	)
	for {
		frag, rerr := r.br.ReadSlice('\n')
		if errors.Is(rerr, bufio.ErrBufferFull) {
			// Part of a long line: keep it (up to the limit) and read on.
			if !tooLong {
				if len(long)+len(frag) > r.opts.MaxLineBytes {
					tooLong, long = true, long[:0]
				} else {
					long = append(long, frag...)
				}
			}
			continue
		}
		line := frag
		if len(long) > 0 || tooLong {
			if !tooLong && len(long)+len(frag) <= r.opts.MaxLineBytes {
				long = append(long, frag...)
				line = long
			} else {
				tooLong = true
			}
		}
		if len(line) > 0 || tooLong {
			lineNo++
			if lineNo%4096 == 0 {
				if err := ctx.Err(); err != nil {
					flush()
					return err
				}
			}
			r.packets.Add(1)
			var perr error
			stop := false
			if tooLong {
				perr = fmt.Errorf("line longer than %d bytes", r.opts.MaxLineBytes)
			} else {
				line = bytes.TrimRight(line, "\r\n")
				if lineNo == 1 {
					line = bytes.TrimPrefix(line, utf8BOM)
				}
				f := &batch[n]
				*f = flow.Flow{}
				var skip bool
				skip, stop, perr = p.parseLine(line, f)
				if perr == nil && !skip && !stop {
					if n++; n == len(batch) {
						flush()
						if err := ctx.Err(); err != nil {
							return err
						}
					}
				}
			}
			if perr != nil {
				r.malformed.Add(1)
				if reported < r.opts.MaxReports {
					reported++
					r.report(lineNo, perr)
				}
			}
			long, tooLong = long[:0], false
			if stop {
				break
			}
		}
		if rerr != nil {
			if errors.Is(rerr, io.EOF) {
				break
			}
			flush()
			return fmt.Errorf("%s: line %d: %w", r.opts.Name, lineNo+1, rerr)
		}
	}
	flush()
	return ctx.Err()
}

func (r *Reader) report(line int, err error) {
	if r.opts.OnMalformed != nil {
		r.opts.OnMalformed(line, err)
		return
	}
	slog.Warn("malformed flow record skipped", "source", r.opts.Name, "line", line, "err", err)
}
