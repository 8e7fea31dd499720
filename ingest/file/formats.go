package file

import (
	"encoding/binary"
	"io"
	"os"
	"strings"

	"github.com/flowguard/flowguard/ingest/flowfile"
	"github.com/flowguard/flowguard/ingest/pcap"
)

// The formats Open reads, in the order it tries them: each registers
// itself in one line. A new one is a reader in a folder of its own and a
// Register call; replay then reads it, and its error for an unknown file
// names it.
var (
	Pcap      = Register(Kind{Name: "pcap", Describe: "pcap", Detect: isPcap, Open: openCapture})
	PcapNG    = Register(Kind{Name: "pcapng", Describe: "pcapng", Detect: isPcapNG, Open: openCapture})
	JSONLines = Register(Kind{Name: "json lines", Describe: "JSON lines", Detect: isFlowFile(flowfile.JSONLines), Open: openFlowFile(flowfile.JSONLines)})
	NfdumpCSV = Register(Kind{Name: "nfdump csv", Describe: "nfdump CSV", Detect: isFlowFile(flowfile.NfdumpCSV), Open: openFlowFile(flowfile.NfdumpCSV)})
)

// Format is the kind of an input file: its place in the registry.
type Format uint8

// Unknown is content of no registered format.
const Unknown Format = 0

// Kind is a file format Open reads.
type Kind struct {
	// Name names the format as replay prints it ("pcap").
	Name string
	// Describe names it in help and errors ("JSON lines").
	Describe string
	// Detect tells from a file's first bytes (up to 4 KiB, decompressed)
	// whether it is of this format.
	Detect func(head []byte) bool
	// Open returns the source that reads the file.
	Open func(in Input, opts Options) (Source, error)
}

// Input is a file Open has detected: its content (decompressed, nothing
// consumed yet) and the Closer that closes it, which Open leaves to the
// format: the source closes it once read, or Open's function closes it at
// once to open the file its own way.
type Input struct {
	Path   string
	Reader io.Reader
	io.Closer
	// Zipped: the file is gzip-compressed (Reader decompresses it).
	Zipped bool
	// File is the file itself. A source reading it through Reader may
	// close it from another goroutine when its ctx ends, so that a read
	// waiting on a slow input (a pipe) returns.
	File *os.File
}

// formats is the registry; Unknown's entry is empty.
var formats = []Kind{{Name: "unknown"}}

// Register adds a format, tried after those registered before it, and
// returns its Format (from a package variable's initialiser or an init
// function).
func Register(k Kind) Format {
	formats = append(formats, k)
	return Format(len(formats) - 1)
}

// Formats returns the registered formats in the order Open tries them.
func Formats() []Kind { return append([]Kind(nil), formats[1:]...) }

// String names the format as replay prints it.
func (f Format) String() string {
	if int(f) >= len(formats) {
		return "unknown"
	}
	return formats[f].Name
}

// Detect names the format of a file from its first bytes (a few hundred
// bytes; the first line decides for text). Compressed content is Unknown:
// Open decompresses before it detects.
func Detect(head []byte) Format {
	for i, k := range formats[1:] {
		if k.Detect(head) {
			return Format(i + 1)
		}
	}
	return Unknown
}

// expected lists the formats for an error: "a, b or c".
func expected() string {
	names := make([]string, 0, len(formats)-1)
	for _, k := range formats[1:] {
		names = append(names, k.Describe)
	}
	if len(names) < 2 {
		return strings.Join(names, "")
	}
	return strings.Join(names[:len(names)-1], ", ") + " or " + names[len(names)-1]
}

// pcapNGMagic is the block type of a pcapng Section Header Block, the same
// in either byte order.
const pcapNGMagic = 0x0a0d0d0a

// isPcap: pcap.IsCapture also takes pcapng, which has a Kind of its own.
func isPcap(head []byte) bool { return !isPcapNG(head) && pcap.IsCapture(head) }

func isPcapNG(head []byte) bool {
	return len(head) >= 4 && binary.BigEndian.Uint32(head) == pcapNGMagic
}

func isFlowFile(f flowfile.Format) func([]byte) bool {
	return func(head []byte) bool { return flowfile.Detect(head) == f }
}
