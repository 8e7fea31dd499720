// Package snmptrap sends alerts as SNMP notifications (SNMPv2c traps or
// informs, SNMPv3 with user-based security) defined by FLOWGUARD-MIB,
// which ships beside this file: snmpTrapOID.0 is flowguardAlert and the
// varbinds carry the alert's rule, name, severity, group, value,
// threshold, window, tags, message, id and time.
package snmptrap

import (
	"context"
	"encoding/binary"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/gosnmp/gosnmp"
	"gopkg.in/yaml.v3"

	"github.com/flowguard/flowguard/alert"
	"github.com/flowguard/flowguard/notifiers"
)

func init() {
	notifiers.Register("snmptrap", func(name string, settings *yaml.Node, _ notifiers.Deps) (notifiers.Notifier, error) {
		cfg := DefaultConfig()
		if err := notifiers.Decode(settings, &cfg); err != nil {
			return nil, err
		}
		return New(name, cfg)
	})
}

// OIDs outside FLOWGUARD-MIB (SNMPv2-MIB, RFC 3418).
const (
	oidSysUpTime   = ".1.3.6.1.2.1.1.3.0"
	oidSnmpTrapOID = ".1.3.6.1.6.3.1.1.4.1.0"
)

// Column numbers under fgObjects (BaseOID.1) in FLOWGUARD-MIB.
const (
	objAlertID = 1 + iota
	objRule
	objName
	objSeverity
	objGroup
	objValue
	objThreshold
	objWindow
	objTags
	objMessage
	objFiredAt
)

// maxText is FgText's size limit in the MIB.
const maxText = 1024

var authProtocols = map[string]gosnmp.SnmpV3AuthProtocol{
	"MD5": gosnmp.MD5, "SHA": gosnmp.SHA, "SHA224": gosnmp.SHA224, "SHA256": gosnmp.SHA256,
	"SHA384": gosnmp.SHA384, "SHA512": gosnmp.SHA512,
}

var privProtocols = map[string]gosnmp.SnmpV3PrivProtocol{
	"DES": gosnmp.DES, "AES": gosnmp.AES, "AES192": gosnmp.AES192, "AES256": gosnmp.AES256,
	"AES192C": gosnmp.AES192C, "AES256C": gosnmp.AES256C,
}

// bootsEpoch anchors snmpEngineBoots: flowguard keeps no state file, so
// it counts boots as seconds since this date at start, which grows with
// every restart as RFC 3414 asks and fits its 31 bits until 2088.
var bootsEpoch = time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)

// Notifier sends one notification per alert.
type Notifier struct {
	name   string
	cfg    Config
	base   string // ".1.3.6.1.4.1.32473"
	engine []byte
	start  time.Time // sysUpTime.0 and snmpEngineTime count from here
	boots  uint32
	red    notifiers.Redactor

	mu sync.Mutex
	g  *gosnmp.GoSNMP // nil until the first alert and after a failure
}

// New returns an SNMP notifier. It opens its socket on the first alert.
func New(name string, cfg Config) (*Notifier, error) {
	cfg, base, engine, err := cfg.resolve()
	if err != nil {
		return nil, err
	}
	now := time.Now()
	n := &Notifier{name: name, cfg: cfg, engine: engine, start: now,
		boots: uint32(max(1, now.Sub(bootsEpoch)/time.Second))}
	for _, p := range base {
		n.base += "." + strconv.Itoa(p)
	}
	n.red.Add(cfg.Community, cfg.V3.AuthPassword, cfg.V3.PrivPassword)
	return n, nil
}

// Name returns the notifier's name.
func (n *Notifier) Name() string { return n.name }

// EngineID is the engine id v3 traps are sent with (for the receiver's
// user entry).
func (n *Notifier) EngineID() []byte { return n.engine }

// Uptime is sysUpTime.0: hundredths of a second since the notifier
// started. gosnmp's own default (seconds since 1970) is not an uptime.
func (n *Notifier) Uptime() uint32 {
	return uint32(time.Since(n.start) / (10 * time.Millisecond))
}

// Varbinds returns the notification's variable bindings for a.
func (n *Notifier) Varbinds(a *alert.Alert) []gosnmp.SnmpPDU {
	obj := func(col int) string { return n.base + ".1." + strconv.Itoa(col) + ".0" }
	text := func(col int, s string) gosnmp.SnmpPDU {
		return gosnmp.SnmpPDU{Name: obj(col), Type: gosnmp.OctetString, Value: []byte(cut(s, maxText))}
	}
	return []gosnmp.SnmpPDU{
		{Name: oidSysUpTime, Type: gosnmp.TimeTicks, Value: n.Uptime()},
		{Name: oidSnmpTrapOID, Type: gosnmp.ObjectIdentifier, Value: n.base + ".0.1"},
		text(objAlertID, a.ID),
		text(objRule, a.Rule),
		text(objName, a.Name),
		{Name: obj(objSeverity), Type: gosnmp.Integer, Value: severity(a.Severity)},
		text(objGroup, a.GroupString()),
		text(objValue, alert.FormatNumber(a.Value)),
		text(objThreshold, alert.FormatNumber(a.Threshold)),
		text(objWindow, a.Window),
		text(objTags, strings.Join(a.Tags, ",")),
		text(objMessage, a.Message),
		{Name: obj(objFiredAt), Type: gosnmp.OctetString, Value: dateAndTime(a.FiredAt)},
	}
}

// severity is fgSeverity's enumeration.
func severity(s string) int { return max(alert.SeverityRank(s), 0) + 1 } // info(1) ... critical(5), as alert.Severities

// dateAndTime encodes t in UTC as SNMPv2-TC's 11-octet DateAndTime.
func dateAndTime(t time.Time) []byte {
	t = t.UTC()
	b := make([]byte, 11)
	binary.BigEndian.PutUint16(b, uint16(t.Year()))
	b[2], b[3], b[4], b[5], b[6] = byte(t.Month()), byte(t.Day()), byte(t.Hour()), byte(t.Minute()), byte(t.Second())
	b[7] = byte(t.Nanosecond() / 100_000_000)
	b[8], b[9], b[10] = '+', 0, 0
	return b
}

// cut shortens s to at most max bytes without splitting a character.
func cut(s string, max int) string {
	if len(s) <= max {
		return s
	}
	for max > 0 && !utf8.RuneStart(s[max]) {
		max--
	}
	return s[:max]
}

// Notify sends one notification per alert. An inform that is not
// acknowledged, or a socket error, is a retryable error.
func (n *Notifier) Notify(ctx context.Context, alerts ...*alert.Alert) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	for _, a := range alerts {
		if err := n.send(ctx, a); err != nil {
			if n.g != nil {
				n.g.Conn.Close()
				n.g = nil
			}
			return n.red.Error(fmt.Errorf("snmptrap %s: %s to %s: %w", n.name, n.kind(), n.cfg.Address, err))
		}
	}
	return nil
}

func (n *Notifier) kind() string {
	if n.cfg.Inform {
		return "inform"
	}
	return "trap"
}

func (n *Notifier) send(ctx context.Context, a *alert.Alert) error {
	if n.g == nil {
		if err := n.connect(); err != nil {
			return err
		}
	}
	n.g.Context = ctx
	if d, ok := ctx.Deadline(); ok {
		n.g.Conn.SetDeadline(d)
	}
	if sp, ok := n.g.SecurityParameters.(*gosnmp.UsmSecurityParameters); ok && !n.cfg.Inform {
		// A trap's sender is the authoritative engine: its time goes up.
		sp.AuthoritativeEngineTime = uint32(time.Since(n.start) / time.Second)
	}
	_, err := n.g.SendTrap(gosnmp.SnmpTrap{Variables: n.Varbinds(a), IsInform: n.cfg.Inform})
	return err
}

func (n *Notifier) connect() error {
	host, portStr, _ := net.SplitHostPort(n.cfg.Address)
	port, err := strconv.ParseUint(portStr, 10, 16)
	if err != nil {
		return fmt.Errorf("bad port %q", portStr)
	}
	g := &gosnmp.GoSNMP{
		Target: host, Port: uint16(port), Transport: "udp",
		Community: n.cfg.Community, Version: gosnmp.Version2c,
		Timeout: n.cfg.Timeout.D(), Retries: n.cfg.Retries,
		MaxOids: gosnmp.MaxOids, Logger: gosnmp.NewLogger(nopLogger{}),
	}
	if n.cfg.Version == "3" {
		v := n.cfg.V3
		g.Version = gosnmp.Version3
		g.SecurityModel = gosnmp.UserSecurityModel
		sp := &gosnmp.UsmSecurityParameters{UserName: v.User}
		switch v.SecurityLevel {
		case "authPriv":
			g.MsgFlags = gosnmp.AuthPriv
			sp.PrivacyProtocol, sp.PrivacyPassphrase = privProtocols[v.PrivProtocol], v.PrivPassword
			fallthrough
		case "authNoPriv":
			if g.MsgFlags == 0 {
				g.MsgFlags = gosnmp.AuthNoPriv
			}
			sp.AuthenticationProtocol, sp.AuthenticationPassphrase = authProtocols[v.AuthProtocol], v.AuthPassword
		default:
			g.MsgFlags = gosnmp.NoAuthNoPriv
		}
		if !n.cfg.Inform {
			// Traps: flowguard is the authoritative engine. Informs: the
			// receiver is, and gosnmp discovers its engine id.
			sp.AuthoritativeEngineID = string(n.engine)
			sp.AuthoritativeEngineBoots = n.boots
		}
		g.SecurityParameters = sp
	}
	if err := g.Connect(); err != nil {
		return err
	}
	n.g = g
	return nil
}

// Close closes the socket.
func (n *Notifier) Close() error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.g != nil && n.g.Conn != nil {
		n.g.Conn.Close()
	}
	n.g = nil
	return nil
}

// nopLogger silences gosnmp, whose debug output could show secrets.
type nopLogger struct{}

func (nopLogger) Print(...any)          {}
func (nopLogger) Printf(string, ...any) {}
