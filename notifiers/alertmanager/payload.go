package alertmanager

import (
	"fmt"
	"maps"
	"net/netip"
	"net/url"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/flowguard/flowguard/alert"
)

// postable is one element of the POST /api/v2/alerts body (Alertmanager's
// postableAlert).
type postable struct {
	Labels       map[string]string `json:"labels"`
	Annotations  map[string]string `json:"annotations"`
	StartsAt     time.Time         `json:"startsAt"`
	EndsAt       time.Time         `json:"endsAt"`
	GeneratorURL string            `json:"generatorURL,omitempty"`
}

// builder turns alerts into postable alerts under the configured caps.
type builder struct {
	extra     map[string]string
	external  *url.URL
	maxValue  int
	truncated uint64 // values cut to maxValue; guarded by the caller
}

// labels are the alert's identity in Alertmanager: alertname (the rule
// id), severity, tags (comma-separated) and the group's fields, plus the
// configured extra labels where the alert has none of that name.
func (b *builder) labels(a *alert.Alert) map[string]string {
	l := make(map[string]string, 3+len(a.Group)+len(b.extra))
	b.set(l, "alertname", a.Rule)
	b.set(l, "severity", a.Severity)
	if len(a.Tags) > 0 {
		b.set(l, "tags", strings.Join(a.Tags, ","))
	}
	for k, v := range a.Group {
		k = labelName(k)
		if _, taken := l[k]; !taken {
			b.set(l, k, fmt.Sprint(v))
		}
	}
	for k, v := range b.extra {
		if _, taken := l[k]; !taken {
			b.set(l, k, v)
		}
	}
	return l
}

// annotations describe the alert: the rule's name and message, the
// numbers, the times, the alert id and a summary of the enrichment.
func (b *builder) annotations(a *alert.Alert) map[string]string {
	m := make(map[string]string, 10)
	b.set(m, "summary", a.Name)
	msg := a.Message
	if msg == "" {
		msg = a.Text()
	}
	b.set(m, "message", msg)
	b.set(m, "value", alert.FormatNumber(a.Value))
	b.set(m, "threshold", alert.FormatNumber(a.Threshold))
	b.set(m, "window", a.Window)
	b.set(m, "alert_id", a.ID)
	b.set(m, "first_seen", a.FirstSeen.UTC().Format(time.RFC3339))
	b.set(m, "last_seen", a.LastSeen.UTC().Format(time.RFC3339))
	b.set(m, "fired_at", a.FiredAt.UTC().Format(time.RFC3339))
	b.set(m, "enrichment", enrichmentSummary(a.Enrichment))
	return m
}

// set stores a non-empty value, valid UTF-8, cut to maxValue bytes.
func (b *builder) set(m map[string]string, k, v string) {
	if v == "" {
		return
	}
	if !utf8.ValidString(v) {
		v = strings.ToValidUTF8(v, "\uFFFD")
	}
	if len(v) > b.maxValue {
		cut := b.maxValue - len("…")
		for cut > 0 && !utf8.RuneStart(v[cut]) {
			cut--
		}
		v = v[:cut] + "…"
		b.truncated++
	}
	m[k] = v
}

// generatorURL links to the alert's rule (and the group's first address)
// in flowguard's /api/alerts, which filters by rule, severity and addr.
func (b *builder) generatorURL(a *alert.Alert) string {
	if b.external == nil {
		return ""
	}
	q := url.Values{"rule": {a.Rule}}
	for _, k := range slices.Sorted(maps.Keys(a.Group)) {
		if s, ok := a.Group[k].(string); ok {
			if _, err := netip.ParseAddr(s); err == nil {
				q.Set("addr", s)
				break
			}
		}
	}
	u := *b.external
	u.Path = strings.TrimRight(u.Path, "/") + "/api/alerts"
	u.RawQuery = q.Encode()
	return u.String()
}

// labelName makes a group field a valid Alertmanager label name.
func labelName(k string) string {
	var sb strings.Builder
	for i, r := range k {
		switch {
		case r == '_' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z':
			sb.WriteRune(r)
		case r >= '0' && r <= '9':
			if i == 0 {
				sb.WriteByte('_')
			}
			sb.WriteRune(r)
		default:
			sb.WriteByte('_')
		}
	}
	if sb.Len() == 0 {
		return "_"
	}
	return sb.String()
}

// enrichmentSummary renders enrichment as "src_addr: asn=64500
// country=US; dst_addr: …", fields and keys in order.
func enrichmentSummary(e map[string]map[string]any) string {
	if len(e) == 0 {
		return ""
	}
	var sb strings.Builder
	for i, f := range slices.Sorted(maps.Keys(e)) {
		if i > 0 {
			sb.WriteString("; ")
		}
		sb.WriteString(f)
		sb.WriteByte(':')
		for _, k := range slices.Sorted(maps.Keys(e[f])) {
			fmt.Fprintf(&sb, " %s=%v", k, e[f][k])
		}
	}
	return sb.String()
}

// identity is a label set as a map key: sorted name=value pairs.
func identity(l map[string]string) string {
	var sb strings.Builder
	for _, k := range slices.Sorted(maps.Keys(l)) {
		sb.WriteString(k)
		sb.WriteByte(0)
		sb.WriteString(l[k])
		sb.WriteByte(0)
	}
	return sb.String()
}
