package intel

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"strings"
)

// Parse reads a threat list: one address or CIDR prefix a line. It reads
// the usual layouts:
//
//   - plain and FireHOL netsets: "192.0.2.1", "198.51.100.0/24", comments
//     after '#';
//   - Spamhaus DROP/EDROP text: "198.51.100.0/24 ; SBL123456", comments
//     after ';';
//   - Spamhaus DROP JSON lines: {"cidr":"198.51.100.0/24","sblid":...}
//     (the trailing metadata object is skipped).
//
// Text after the first field of a line is ignored; a prefix with host bits
// set is widened to its network. A line that is none of these is an error
// naming its number: a list that failed to download (an HTML error page)
// must not go into service as an empty list.
func Parse(r io.Reader) ([]netip.Prefix, error) {
	var out []netip.Prefix
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if strings.HasPrefix(line, "{") {
			var rec struct {
				CIDR string `json:"cidr"`
			}
			if err := json.Unmarshal([]byte(line), &rec); err != nil {
				return nil, &ParseError{Line: n, Err: err}
			}
			if rec.CIDR == "" {
				continue // {"type":"metadata",...}
			}
			line = rec.CIDR
		}
		if i := strings.IndexAny(line, "#;"); i >= 0 {
			line = line[:i]
		}
		fields := strings.Fields(line)
		if len(fields) == 0 {
			continue
		}
		p, err := parseEntry(fields[0])
		if err != nil {
			return nil, &ParseError{Line: n, Err: err}
		}
		out = append(out, p)
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	return out, nil
}

// ParseError is a line of a list that Parse cannot read.
type ParseError struct {
	Line int
	Err  error
}

func (e *ParseError) Error() string { return fmt.Sprintf("line %d: %v", e.Line, e.Err) }

func (e *ParseError) Unwrap() error { return e.Err }

var errEntry = errors.New("not an address or CIDR prefix")

func parseEntry(s string) (netip.Prefix, error) {
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return netip.Prefix{}, fmt.Errorf("%q: %w", truncate(s), errEntry)
		}
		return p.Masked(), nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("%q: %w", truncate(s), errEntry)
	}
	return netip.PrefixFrom(a, a.BitLen()), nil
}

func truncate(s string) string {
	if len(s) > 60 {
		return s[:60] + "..."
	}
	return s
}
