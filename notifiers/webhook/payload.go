package webhook

import (
	"encoding/json"
	"fmt"
	"hash/fnv"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/flowguard/flowguard/alert"
)

// amMessage is the Alertmanager webhook payload, version 4.
type amMessage struct {
	Version           string            `json:"version"`
	GroupKey          string            `json:"groupKey"`
	TruncatedAlerts   int               `json:"truncatedAlerts"`
	Status            string            `json:"status"`
	Receiver          string            `json:"receiver"`
	GroupLabels       map[string]string `json:"groupLabels"`
	CommonLabels      map[string]string `json:"commonLabels"`
	CommonAnnotations map[string]string `json:"commonAnnotations"`
	ExternalURL       string            `json:"externalURL"`
	Alerts            []amAlert         `json:"alerts"`
}

type amAlert struct {
	Status       string            `json:"status"`
	Labels       map[string]string `json:"labels"`
	Annotations  map[string]string `json:"annotations"`
	StartsAt     time.Time         `json:"startsAt"`
	EndsAt       time.Time         `json:"endsAt"`
	GeneratorURL string            `json:"generatorURL"`
	Fingerprint  string            `json:"fingerprint"`
}

var labelRE = regexp.MustCompile(`[^a-zA-Z0-9_]`)

// amLabels are an alert's identity: alertname (the rule id), rule,
// severity, tags, and the group's fields.
func amLabels(a *alert.Alert) map[string]string {
	l := map[string]string{"alertname": a.Rule, "rule": a.Rule, "severity": a.Severity}
	if len(a.Tags) > 0 {
		l["tags"] = strings.Join(a.Tags, ",")
	}
	for k, v := range a.Group {
		k = labelRE.ReplaceAllString(k, "_")
		if k == "" || (k[0] >= '0' && k[0] <= '9') {
			k = "_" + k
		}
		if _, taken := l[k]; !taken {
			l[k] = fmt.Sprint(v)
		}
	}
	return l
}

func amAnnotations(a *alert.Alert) map[string]string {
	m := map[string]string{
		"summary":     a.Name,
		"description": a.Message,
		"value":       alert.FormatNumber(a.Value),
		"threshold":   alert.FormatNumber(a.Threshold),
		"window":      a.Window,
		"alert_id":    a.ID,
		"first_seen":  a.FirstSeen.UTC().Format(time.RFC3339),
		"last_seen":   a.LastSeen.UTC().Format(time.RFC3339),
	}
	if a.Message == "" {
		m["description"] = a.Text()
	}
	return m
}

// fingerprint hashes the sorted labels (FNV-1a, 64 bits, as hex), the way
// Alertmanager identifies an alert by its label set.
func fingerprint(l map[string]string) string {
	keys := make([]string, 0, len(l))
	for k := range l {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	h := fnv.New64a()
	for _, k := range keys {
		h.Write([]byte(k))
		h.Write([]byte{0xff})
		h.Write([]byte(l[k]))
		h.Write([]byte{0xff})
	}
	return fmt.Sprintf("%016x", h.Sum64())
}

// common keeps the entries every map has with the same value.
func common(ms []map[string]string) map[string]string {
	out := map[string]string{}
	if len(ms) == 0 {
		return out
	}
	for k, v := range ms[0] {
		same := true
		for _, m := range ms[1:] {
			if m[k] != v {
				same = false
				break
			}
		}
		if same {
			out[k] = v
		}
	}
	return out
}

func alertmanagerPayload(receiver, externalURL string, alerts []*alert.Alert) ([]byte, error) {
	msg := amMessage{
		Version: "4", Status: "firing", Receiver: receiver, ExternalURL: externalURL,
		Alerts: make([]amAlert, 0, len(alerts)),
	}
	var labels, annots []map[string]string
	for _, a := range alerts {
		l, an := amLabels(a), amAnnotations(a)
		labels, annots = append(labels, l), append(annots, an)
		msg.Alerts = append(msg.Alerts, amAlert{
			Status: "firing", Labels: l, Annotations: an,
			StartsAt: a.FirstSeen.UTC(), EndsAt: time.Time{}, GeneratorURL: externalURL,
			Fingerprint: fingerprint(l),
		})
	}
	msg.CommonLabels = common(labels)
	msg.CommonAnnotations = common(annots)
	msg.GroupLabels = map[string]string{}
	if r, ok := msg.CommonLabels["alertname"]; ok {
		msg.GroupLabels["alertname"] = r
	}
	gk, _ := json.Marshal(msg.GroupLabels)
	msg.GroupKey = "{}:" + string(gk)
	return json.Marshal(msg)
}

// slackPayload is an incoming-webhook message: text (the fallback shown
// in notifications) and blocks (a header and the alert's fields).
func slackPayload(s Slack, a *alert.Alert) ([]byte, error) {
	type text struct {
		Type string `json:"type"`
		Text string `json:"text"`
	}
	type block struct {
		Type   string `json:"type"`
		Text   *text  `json:"text,omitempty"`
		Fields []text `json:"fields,omitempty"`
	}
	msg := struct {
		Channel   string  `json:"channel,omitempty"`
		Username  string  `json:"username,omitempty"`
		IconEmoji string  `json:"icon_emoji,omitempty"`
		Text      string  `json:"text"`
		Blocks    []block `json:"blocks"`
	}{Channel: s.Channel, Username: s.Username, IconEmoji: s.IconEmoji}
	msg.Text = slackEscape(fmt.Sprintf("[%s] %s: %s", strings.ToUpper(a.Severity), a.Name, a.GroupString()))
	title := fmt.Sprintf("%s %s", severityEmoji(a.Severity), a.Name)
	if len(title) > 150 { // Slack caps header text at 150 characters
		title = title[:147] + "..."
	}
	fields := []text{
		{"mrkdwn", "*Rule*\n`" + slackEscape(a.Rule) + "`"},
		{"mrkdwn", "*Severity*\n" + slackEscape(a.Severity)},
		{"mrkdwn", "*Value*\n" + alert.FormatNumber(a.Value) + " (threshold " + alert.FormatNumber(a.Threshold) + ", window " + slackEscape(a.Window) + ")"},
		{"mrkdwn", "*Fired at*\n" + a.FiredAt.UTC().Format(time.RFC3339)},
	}
	if g := a.GroupString(); g != "" {
		fields = append(fields, text{"mrkdwn", "*Group*\n" + slackEscape(g)})
	}
	if len(a.Tags) > 0 {
		fields = append(fields, text{"mrkdwn", "*Tags*\n" + slackEscape(strings.Join(a.Tags, ", "))})
	}
	msg.Blocks = []block{{Type: "header", Text: &text{"plain_text", title}}}
	if a.Message != "" {
		msg.Blocks = append(msg.Blocks, block{Type: "section", Text: &text{"mrkdwn", slackEscape(a.Message)}})
	}
	msg.Blocks = append(msg.Blocks, block{Type: "section", Fields: fields})
	return json.Marshal(msg)
}

// slackEscape escapes the three characters Slack's mrkdwn treats as
// control characters.
func slackEscape(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;").Replace(s)
}

// severityEmojis are Slack's emoji of each severity (alert.Severities).
var severityEmojis = [5]string{":information_source:", ":large_yellow_circle:", ":large_orange_circle:", ":red_circle:", ":rotating_light:"}

func severityEmoji(sev string) string { return alert.SeverityOn(sev, &severityEmojis) }
