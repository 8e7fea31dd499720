package rules

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Unit says what a Quantity measures.
type Unit uint8

// Units of quantities.
const (
	UnitNone       Unit = iota // a plain count, perhaps with a k/M/G/T suffix
	UnitBytes                  // B, KB, MB, GB, TB (1000-based), KiB, MiB, GiB, TiB (1024-based)
	UnitBitRate                // bps, kbps, Mbps, Gbps, Tbps: bits per second
	UnitByteRate               // B/s, KB/s, MB/s, ... MiB/s: bytes per second
	UnitPacketRate             // pps, kpps, Mpps, Gpps: packets per second
	UnitPercent                // %: Value holds the fraction (20% is 0.2)
)

// String names the unit as messages print it.
func (u Unit) String() string {
	switch u {
	case UnitNone:
		return "count"
	case UnitBytes:
		return "bytes"
	case UnitBitRate:
		return "bits per second"
	case UnitByteRate:
		return "bytes per second"
	case UnitPacketRate:
		return "packets per second"
	case UnitPercent:
		return "percent"
	}
	return "unknown"
}

// IsRate reports whether the unit is per second.
func (u Unit) IsRate() bool {
	return u == UnitBitRate || u == UnitByteRate || u == UnitPacketRate
}

// Quantity is a number with its unit, multiplier applied: "500MB" is
// {5e8, UnitBytes}, "1Gbps" is {1e9, UnitBitRate}, "20%" is {0.2, UnitPercent}.
type Quantity struct {
	Value float64
	Unit  Unit
}

type suffix struct {
	mult float64
	unit Unit
}

var suffixes = map[string]suffix{
	"": {1, UnitNone}, "k": {1e3, UnitNone}, "K": {1e3, UnitNone},
	"M": {1e6, UnitNone}, "G": {1e9, UnitNone}, "T": {1e12, UnitNone},

	"B": {1, UnitBytes}, "KB": {1e3, UnitBytes}, "kB": {1e3, UnitBytes},
	"MB": {1e6, UnitBytes}, "GB": {1e9, UnitBytes}, "TB": {1e12, UnitBytes}, "PB": {1e15, UnitBytes},
	"KiB": {1 << 10, UnitBytes}, "MiB": {1 << 20, UnitBytes}, "GiB": {1 << 30, UnitBytes},
	"TiB": {1 << 40, UnitBytes},

	"bps": {1, UnitBitRate}, "kbps": {1e3, UnitBitRate}, "Kbps": {1e3, UnitBitRate},
	"Mbps": {1e6, UnitBitRate}, "Gbps": {1e9, UnitBitRate}, "Tbps": {1e12, UnitBitRate},

	"pps": {1, UnitPacketRate}, "kpps": {1e3, UnitPacketRate}, "Kpps": {1e3, UnitPacketRate},
	"Mpps": {1e6, UnitPacketRate}, "Gpps": {1e9, UnitPacketRate},

	"%": {0.01, UnitPercent},
}

func init() {
	// Every byte unit has a per-second form: "MB/s", "MiB/s".
	for name, s := range suffixes {
		if s.unit == UnitBytes {
			suffixes[name+"/s"] = suffix{s.mult, UnitByteRate}
		}
	}
}

// ParseQuantity parses a number with an optional unit suffix: "100",
// "1.5k", "10M", "500MB", "2GiB", "1Gbps", "100kpps", "50MB/s", "20%".
// A space may separate the number from its unit.
func ParseQuantity(s string) (Quantity, error) {
	t := strings.TrimSpace(s)
	i := 0
	for i < len(t) && (t[i] >= '0' && t[i] <= '9' || t[i] == '.' || t[i] == '_' ||
		(i == 0 && (t[i] == '-' || t[i] == '+'))) {
		i++
	}
	// An exponent ("1e6") belongs to the number when digits follow it.
	if i < len(t) && (t[i] == 'e' || t[i] == 'E') {
		j := i + 1
		if j < len(t) && (t[j] == '-' || t[j] == '+') {
			j++
		}
		if k := j; k < len(t) && t[k] >= '0' && t[k] <= '9' {
			for k < len(t) && t[k] >= '0' && t[k] <= '9' {
				k++
			}
			i = k
		}
	}
	num, unit := t[:i], strings.TrimSpace(t[i:])
	if num == "" {
		return Quantity{}, fmt.Errorf("%q is not a number", s)
	}
	v, err := strconv.ParseFloat(strings.ReplaceAll(num, "_", ""), 64)
	if err != nil {
		return Quantity{}, fmt.Errorf("%q is not a number", s)
	}
	sf, ok := suffixes[unit]
	if !ok {
		return Quantity{}, fmt.Errorf("unknown unit %q in %q (use k, M, G; KB, MB, GB, TB, KiB, MiB, GiB; bps, kbps, Mbps, Gbps; pps, kpps, Mpps; MB/s; %%)", unit, s)
	}
	return Quantity{Value: v * sf.mult, Unit: sf.unit}, nil
}

// ParseDuration parses a Go duration ("90s", "1h30m") and also whole days
// ("1d", "7d"). Negative durations are errors.
func ParseDuration(s string) (time.Duration, error) {
	t := strings.TrimSpace(s)
	var d time.Duration
	var err error
	if days, ok := strings.CutSuffix(t, "d"); ok {
		var n uint64
		n, err = strconv.ParseUint(days, 10, 16)
		d = time.Duration(n) * 24 * time.Hour
	} else {
		d, err = time.ParseDuration(t)
	}
	if err != nil {
		return 0, fmt.Errorf("%q is not a duration (use 30s, 1m, 1h, 1d)", s)
	}
	if d < 0 {
		return 0, fmt.Errorf("%q is negative", s)
	}
	return d, nil
}
