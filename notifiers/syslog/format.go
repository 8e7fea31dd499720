package syslog

import (
	"encoding/json"
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/flowguard/flowguard/alert"
)

// Severity maps an alert severity to a syslog severity (RFC 5424 6.2.1).
func Severity(s string) int { return alert.SeverityOn(s, &syslogSeverities) }

// syslogSeverities: informational, notice, warning, err, crit for
// alert.Severities.
var syslogSeverities = [5]int{6, 5, 4, 3, 2}

// CEFSeverity maps an alert severity to CEF's 0-10 scale (0-3 low, 4-6
// medium, 7-8 high, 9-10 very high).
func CEFSeverity(s string) int { return alert.SeverityOn(s, &cefSeverities) }

// cefSeverities are the CEF values of alert.Severities.
var cefSeverities = [5]int{1, 3, 5, 8, 10}

// formatter renders alerts as syslog messages.
type formatter struct {
	facility   int
	hostname   string
	appName    string
	procID     string
	enterprise int
	version    string
}

func (f *formatter) pri(a *alert.Alert) int { return f.facility*8 + Severity(a.Severity) }

// RFC 5424: <PRI>1 TIMESTAMP HOSTNAME APP-NAME PROCID MSGID [SD] MSG.
// The timestamp is the alert's fired_at (event time); MSGID is the rule
// id when it fits (32 printable characters); the alert's fields are in
// the flowguard@N element, the group's in flowguardGroup@N and the
// enrichment's in flowguardEnrich@N; MSG is the alert's text line.
func (f *formatter) rfc5424(a *alert.Alert) []byte {
	b := make([]byte, 0, 512)
	b = fmt.Appendf(b, "<%d>1 ", f.pri(a))
	b = a.FiredAt.UTC().AppendFormat(b, "2006-01-02T15:04:05.999999Z07:00")
	msgID := a.Rule
	if p := printable(msgID, 32); p != msgID || msgID == "" {
		msgID = "alert"
	}
	b = fmt.Appendf(b, " %s %s %s %s ", f.hostname, f.appName, f.procID, msgID)

	b = fmt.Appendf(b, "[flowguard@%d", f.enterprise)
	b = sdParam(b, "id", a.ID)
	b = sdParam(b, "rule", a.Rule)
	b = sdParam(b, "name", a.Name)
	b = sdParam(b, "severity", a.Severity)
	b = sdParam(b, "tags", strings.Join(a.Tags, ","))
	b = sdParam(b, "value", alert.FormatNumber(a.Value))
	b = sdParam(b, "threshold", alert.FormatNumber(a.Threshold))
	b = sdParam(b, "window", a.Window)
	b = sdParam(b, "first_seen", a.FirstSeen.UTC().Format(time.RFC3339))
	b = sdParam(b, "last_seen", a.LastSeen.UTC().Format(time.RFC3339))
	b = sdParam(b, "fired_at", a.FiredAt.UTC().Format(time.RFC3339))
	b = sdParam(b, "message", a.Message)
	if a.SamplingRate > 1 {
		b = sdParam(b, "sampling_rate", strconv.FormatUint(uint64(a.SamplingRate), 10))
	}
	b = append(b, ']')
	if len(a.Group) > 0 {
		b = fmt.Appendf(b, "[flowguardGroup@%d", f.enterprise)
		for _, k := range sortedKeys(a.Group) {
			b = sdParam(b, k, fmt.Sprint(a.Group[k]))
		}
		b = append(b, ']')
	}
	if len(a.Enrichment) > 0 {
		b = fmt.Appendf(b, "[flowguardEnrich@%d", f.enterprise)
		for _, field := range sortedKeys(a.Enrichment) {
			for _, k := range sortedKeys(a.Enrichment[field]) {
				b = sdParam(b, field+"."+k, fmt.Sprint(a.Enrichment[field][k]))
			}
		}
		b = append(b, ']')
	}
	b = append(b, ' ')
	return append(b, oneLine(a.Text())...)
}

// sdParam appends ` name="value"`, the name cut to an SD-NAME (32
// printable characters but = ] " and space) and the value escaped as
// RFC 5424 6.3.3 asks: \ " and ] get a backslash.
func sdParam(b []byte, name, value string) []byte {
	b = append(b, ' ')
	n := 0
	for i := 0; i < len(name) && n < 32; i++ {
		c := name[i]
		if c < 33 || c > 126 || c == '=' || c == ']' || c == '"' {
			c = '_'
		}
		b = append(b, c)
		n++
	}
	b = append(b, '=', '"')
	for i := 0; i < len(value); i++ {
		switch c := value[i]; c {
		case '\\', '"', ']':
			b = append(b, '\\', c)
		default:
			b = append(b, c)
		}
	}
	return append(b, '"')
}

// RFC 3164: <PRI>Mmm dd hh:mm:ss HOSTNAME TAG[PID]: MSG, the time in UTC
// (the format has no zone), MSG the alert's text line.
func (f *formatter) rfc3164(a *alert.Alert) []byte {
	b := make([]byte, 0, 256)
	b = fmt.Appendf(b, "<%d>", f.pri(a))
	b = a.FiredAt.UTC().AppendFormat(b, time.Stamp)
	tag := f.appName
	if len(tag) > 32 {
		tag = tag[:32]
	}
	b = fmt.Appendf(b, " %s %s[%s]: ", f.hostname, tag, f.procID)
	return append(b, oneLine(a.Text())...)
}

// cef is a CEF event after an RFC 3164 header (no tag), the form ArcSight
// connectors and most SIEMs expect over syslog.
func (f *formatter) cef(a *alert.Alert) []byte {
	b := make([]byte, 0, 512)
	b = fmt.Appendf(b, "<%d>", f.pri(a))
	b = a.FiredAt.UTC().AppendFormat(b, time.Stamp)
	b = append(b, ' ')
	b = append(b, f.hostname...)
	b = append(b, ' ')
	return AppendCEF(b, a, f.version)
}

// AppendCEF appends a as a CEF:0 event:
//
//	CEF:0|flowguard|flowguard|version|rule id|name|severity 0-10|extension
//
// Header fields escape \ and |; extension values escape \ = and line
// breaks (\n, \r), per the ArcSight CEF specification. The extension
// carries rt/start/end (fired_at, first_seen, last_seen as epoch
// milliseconds), src/dst/spt/dpt/proto (from the group, else from the
// samples when they all agree), cnt (the value, rounded), msg, externalId
// (the alert id), cfp1/cfp2 (value, threshold) and cs1-cs6 (rule, tags,
// group, window, enrichment as JSON, severity name) with their labels.
func AppendCEF(b []byte, a *alert.Alert, version string) []byte {
	if version == "" {
		version = "dev"
	}
	b = append(b, "CEF:0|flowguard|flowguard|"...)
	for _, h := range []string{version, a.Rule, a.Name} {
		b = cefHeader(b, h)
		b = append(b, '|')
	}
	b = strconv.AppendInt(b, int64(CEFSeverity(a.Severity)), 10)
	b = append(b, '|')

	first := true
	ext := func(k, v string) {
		if v == "" {
			return
		}
		if !first {
			b = append(b, ' ')
		}
		first = false
		b = append(b, k...)
		b = append(b, '=')
		b = cefValue(b, v)
	}
	ms := func(t time.Time) string {
		if t.IsZero() {
			return ""
		}
		return strconv.FormatInt(t.UnixMilli(), 10)
	}
	ext("rt", ms(a.FiredAt))
	ext("start", ms(a.FirstSeen))
	ext("end", ms(a.LastSeen))
	ext("src", field(a, "src_addr"))
	ext("dst", field(a, "dst_addr"))
	ext("spt", field(a, "src_port"))
	ext("dpt", field(a, "dst_port"))
	proto := field(a, "proto_name")
	ext("proto", strings.ToUpper(proto))
	if !math.IsNaN(a.Value) && !math.IsInf(a.Value, 0) && a.Value >= 0 && a.Value < math.MaxInt32 {
		ext("cnt", strconv.FormatInt(int64(math.Round(a.Value)), 10))
	}
	ext("externalId", a.ID)
	ext("msg", a.Message)
	ext("cfp1Label", "value")
	ext("cfp1", alert.FormatNumber(a.Value))
	ext("cfp2Label", "threshold")
	ext("cfp2", alert.FormatNumber(a.Threshold))
	ext("cs1Label", "rule")
	ext("cs1", a.Rule)
	if len(a.Tags) > 0 {
		ext("cs2Label", "tags")
		ext("cs2", strings.Join(a.Tags, ","))
	}
	if g := a.GroupString(); g != "" {
		ext("cs3Label", "group")
		ext("cs3", g)
	}
	ext("cs4Label", "window")
	ext("cs4", a.Window)
	if len(a.Enrichment) > 0 {
		if j, err := json.Marshal(a.Enrichment); err == nil {
			ext("cs5Label", "enrichment")
			ext("cs5", string(j))
		}
	}
	ext("cs6Label", "severity")
	ext("cs6", a.Severity)
	return b
}

// field is the group's value for name, else the samples' when they all
// agree, else "".
func field(a *alert.Alert, name string) string {
	if v, ok := a.Group[name]; ok {
		return fmt.Sprint(v)
	}
	if len(a.Samples) == 0 {
		return ""
	}
	get := func(i int) string {
		s := &a.Samples[i]
		switch name {
		case "src_addr":
			if s.SrcAddr.IsValid() {
				return s.SrcAddr.String()
			}
		case "dst_addr":
			if s.DstAddr.IsValid() {
				return s.DstAddr.String()
			}
		case "src_port":
			return strconv.Itoa(int(s.SrcPort))
		case "dst_port":
			return strconv.Itoa(int(s.DstPort))
		case "proto_name":
			return s.ProtoName
		}
		return ""
	}
	v := get(0)
	for i := 1; i < len(a.Samples); i++ {
		if get(i) != v {
			return ""
		}
	}
	return v
}

func cefHeader(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case '\\', '|':
			b = append(b, '\\', c)
		case '\r', '\n':
			b = append(b, ' ')
		default:
			b = append(b, c)
		}
	}
	return b
}

func cefValue(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case '\\', '=':
			b = append(b, '\\', c)
		case '\n':
			b = append(b, '\\', 'n')
		case '\r':
			b = append(b, '\\', 'r')
		default:
			b = append(b, c)
		}
	}
	return b
}

// oneLine replaces line breaks with spaces, for free text in a message.
func oneLine(s string) string {
	if !strings.ContainsAny(s, "\r\n") {
		return s
	}
	return strings.NewReplacer("\r\n", " ", "\n", " ", "\r", " ").Replace(s)
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
