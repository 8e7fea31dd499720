package syslog

import (
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"time"

	"github.com/flowguard/flowguard/notifiers"
)

// Message formats.
const (
	FormatRFC5424 = "rfc5424" // the alert as structured data
	FormatRFC3164 = "rfc3164" // BSD syslog, the alert as one line of text
	FormatCEF     = "cef"     // ArcSight CEF after an RFC 3164 header
)

// Transports.
const (
	NetworkUDP = "udp"
	NetworkTCP = "tcp"
	NetworkTLS = "tls" // TCP + TLS (RFC 5425)
)

// Framings of messages on a stream (TCP, TLS).
const (
	FramingOctetCounting  = "octet-counting"  // RFC 6587 3.4.1: "LEN SP MSG"
	FramingNonTransparent = "non-transparent" // RFC 6587 3.4.2: MSG LF
)

// Config configures a syslog notifier.
type Config struct {
	Network string `yaml:"network"` // udp (default), tcp, tls
	// Address is host:port; the port defaults to 514 (udp, tcp) or 6514 (tls).
	Address string `yaml:"address"`
	Format  string `yaml:"format"` // rfc5424 (default), rfc3164, cef
	// Facility is a name (kern, user, daemon, auth, authpriv, local0..local7)
	// or a number 0-23 (default local4).
	Facility string `yaml:"facility"`
	Hostname string `yaml:"hostname"` // default os.Hostname()
	AppName  string `yaml:"app_name"` // default flowguard
	// Framing on TCP and TLS: octet-counting (default) or non-transparent,
	// where a newline inside a message is replaced by a space.
	Framing string              `yaml:"framing"`
	Timeout notifiers.Duration  `yaml:"timeout"` // connect and write (default 5s)
	TLS     notifiers.TLSConfig `yaml:"tls"`
	// Enterprise is the private enterprise number in RFC 5424 SD-IDs
	// (flowguard@32473). 32473 is IANA's example number (RFC 5612), a
	// placeholder: set your organisation's number.
	Enterprise int `yaml:"enterprise"`
}

// DefaultConfig returns the defaults.
func DefaultConfig() Config {
	return Config{
		Network: NetworkUDP, Format: FormatRFC5424, Facility: "local4", AppName: "flowguard",
		Framing: FramingOctetCounting, Timeout: notifiers.Duration(5 * time.Second), Enterprise: 32473,
	}
}

var facilities = map[string]int{
	"kern": 0, "user": 1, "mail": 2, "daemon": 3, "auth": 4, "syslog": 5, "lpr": 6, "news": 7,
	"uucp": 8, "cron": 9, "authpriv": 10, "ftp": 11, "ntp": 12, "security": 13, "console": 14,
	"local0": 16, "local1": 17, "local2": 18, "local3": 19, "local4": 20, "local5": 21, "local6": 22, "local7": 23,
}

// resolve validates the configuration and fills what defaults to the
// environment (hostname, port). All errors at once.
func (c Config) resolve() (Config, int, error) {
	var errs []error
	switch c.Network {
	case NetworkUDP, NetworkTCP, NetworkTLS:
	default:
		errs = append(errs, fmt.Errorf("network: %q is not one of udp, tcp, tls", c.Network))
	}
	switch c.Format {
	case FormatRFC5424, FormatRFC3164, FormatCEF:
	default:
		errs = append(errs, fmt.Errorf("format: %q is not one of rfc5424, rfc3164, cef", c.Format))
	}
	switch c.Framing {
	case FramingOctetCounting, FramingNonTransparent:
	default:
		errs = append(errs, fmt.Errorf("framing: %q is not one of octet-counting, non-transparent", c.Framing))
	}
	fac, ok := facilities[c.Facility]
	if !ok {
		if _, err := fmt.Sscanf(c.Facility, "%d", &fac); err != nil || fac < 0 || fac > 23 {
			errs = append(errs, fmt.Errorf("facility: %q is not a facility name or a number 0-23", c.Facility))
		}
	}
	if c.Address == "" {
		errs = append(errs, errors.New("address: must be set (host:port)"))
	} else if _, _, err := net.SplitHostPort(c.Address); err != nil {
		port := "514"
		if c.Network == NetworkTLS {
			port = "6514"
		}
		c.Address = net.JoinHostPort(strings.Trim(c.Address, "[]"), port)
	}
	if c.Timeout <= 0 {
		errs = append(errs, errors.New("timeout: must be > 0"))
	}
	if c.Enterprise <= 0 {
		errs = append(errs, errors.New("enterprise: must be a private enterprise number > 0"))
	}
	if c.Hostname == "" {
		c.Hostname, _ = os.Hostname()
	}
	c.Hostname = printable(c.Hostname, 255)
	c.AppName = printable(c.AppName, 48)
	if _, err := c.TLS.Build(); c.Network == NetworkTLS && err != nil {
		errs = append(errs, err)
	}
	return c, fac, errors.Join(errs...)
}

// printable keeps the printable US-ASCII of s (RFC 5424 header fields),
// at most max bytes; "-" when nothing is left.
func printable(s string, max int) string {
	b := make([]byte, 0, len(s))
	for i := 0; i < len(s) && len(b) < max; i++ {
		if s[i] >= 33 && s[i] <= 126 {
			b = append(b, s[i])
		}
	}
	if len(b) == 0 {
		return "-"
	}
	return string(b)
}
