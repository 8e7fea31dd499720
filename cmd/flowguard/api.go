package main

import (
	"encoding/json"
	"net/http"
	"net/netip"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/flowguard/flowguard/alert"
	"github.com/flowguard/flowguard/engine"
)

// recentAlerts keeps the last alerts for /api/alerts.
type recentAlerts struct {
	mu   sync.Mutex
	ring []*alert.Alert
	next int
	n    int
}

func newRecentAlerts(size int) *recentAlerts {
	return &recentAlerts{ring: make([]*alert.Alert, size)}
}

func (r *recentAlerts) add(a *alert.Alert) {
	r.mu.Lock()
	r.ring[r.next] = a
	r.next = (r.next + 1) % len(r.ring)
	r.n = min(r.n+1, len(r.ring))
	r.mu.Unlock()
}

// list returns the alerts newest first.
func (r *recentAlerts) list() []*alert.Alert {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]*alert.Alert, 0, r.n)
	for i := 1; i <= r.n; i++ {
		out = append(out, r.ring[(r.next-i+len(r.ring))%len(r.ring)])
	}
	return out
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(v)
}

// apiStatus: GET /api/status.
func (d *daemon) apiStatus(w http.ResponseWriter, _ *http.Request) {
	var last string
	if t := d.lastReload.Load(); t > 0 {
		last = time.Unix(t, 0).UTC().Format(time.RFC3339)
	}
	writeJSON(w, map[string]any{
		"version":        version,
		"started":        d.started.UTC().Format(time.RFC3339),
		"uptime_seconds": int64(time.Since(d.started).Seconds()),
		"config":         d.cfgPath,
		"rules":          d.ruleCount.Load(),
		"rule_paths":     *d.rulePaths.Load(),
		"last_reload":    last,
		"reload_ok":      d.reloadOK.Load(),
		"reload_error":   d.reloadErr(),
		"reloads":        d.reloads.Load(),
		"flows":          d.engine.Stats().Flows,
		"alerts":         d.alerts.Load(),
		"time":           timeStatus(d.engine.Stats().Time),
	})
}

// apiAlerts: GET /api/alerts?rule=ID&severity=high&addr=IP&limit=N, newest
// first. addr matches any group value or any sample's address.
func (d *daemon) apiAlerts(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	limit := 100
	if s := q.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n <= 0 {
			http.Error(w, "limit: not a positive number", http.StatusBadRequest)
			return
		}
		limit = n
	}
	var addr netip.Addr
	if s := q.Get("addr"); s != "" {
		a, err := netip.ParseAddr(s)
		if err != nil {
			http.Error(w, "addr: not an IP address", http.StatusBadRequest)
			return
		}
		addr = a
	}
	out := []*alert.Alert{}
	for _, a := range d.recent.list() {
		if len(out) == limit {
			break
		}
		if rule := q.Get("rule"); rule != "" && a.Rule != rule {
			continue
		}
		if sev := q.Get("severity"); sev != "" && a.Severity != sev {
			continue
		}
		if addr.IsValid() && !alertHasAddr(a, addr) {
			continue
		}
		out = append(out, a)
	}
	writeJSON(w, out)
}

func alertHasAddr(a *alert.Alert, addr netip.Addr) bool {
	s := addr.String()
	for _, v := range a.Group {
		if v == s {
			return true
		}
	}
	for i := range a.Samples {
		if a.Samples[i].SrcAddr == addr || a.Samples[i].DstAddr == addr {
			return true
		}
	}
	return false
}

// apiRules: GET /api/rules: per rule what it did.
func (d *daemon) apiRules(w http.ResponseWriter, _ *http.Request) {
	type ruleOut struct {
		ID          string              `json:"id"`
		Evaluations uint64              `json:"evaluations"`
		Matches     uint64              `json:"matches"`
		Alerts      uint64              `json:"alerts"`
		Suppressed  uint64              `json:"suppressed"`
		WindowKeys  int                 `json:"window_keys"`
		Evicted     uint64              `json:"window_evicted"`
		Late        uint64              `json:"window_late"`
		TopGroups   []engine.GroupValue `json:"top_groups"`
	}
	st := d.engine.Stats()
	out := make([]ruleOut, 0, len(st.Rules))
	for _, r := range st.Rules {
		out = append(out, ruleOut{
			ID: r.ID, Evaluations: r.Evaluated, Matches: r.Matched, Alerts: r.Alerts, Suppressed: r.Suppressed,
			WindowKeys: r.Window.Keys, Evicted: r.Window.Evicted, Late: r.Window.Late,
			TopGroups: d.topGroups(r.ID),
		})
	}
	writeJSON(w, out)
}

// apiExporters: GET /api/exporters: per exporter and version.
func (d *daemon) apiExporters(w http.ResponseWriter, _ *http.Request) {
	type exp struct {
		Listener     string    `json:"listener"`
		Exporter     string    `json:"exporter"`
		Version      string    `json:"version"`
		Datagrams    uint64    `json:"datagrams"`
		Flows        uint64    `json:"flows"`
		FlowsPerSec  float64   `json:"flows_per_second"`
		Errors       uint64    `json:"decode_errors"`
		Templates    int       `json:"templates"`
		Lost         uint64    `json:"sequence_lost"`
		SamplingRate uint32    `json:"sampling_rate"`
		LastSeen     time.Time `json:"last_seen"`
	}
	out := []exp{}
	for _, l := range d.listenerList() {
		for _, e := range l.netflow.Stats().Exporters {
			out = append(out, exp{Listener: l.Name(), Exporter: e.Exporter.String(), Version: netflowVersion(e.Version),
				Datagrams: e.Packets, Flows: e.Flows, FlowsPerSec: d.rates.rate(l.Name()+e.Exporter.String()+netflowVersion(e.Version), e.Flows),
				Errors: e.Errors, Templates: e.Templates, Lost: e.LostFlows + e.LostPackets,
				SamplingRate: e.SamplingRate, LastSeen: e.LastSeen.UTC()})
		}
		for _, a := range l.sflow.Stats().Agents {
			out = append(out, exp{Listener: l.Name(), Exporter: a.Exporter.String(), Version: "sflow5",
				Datagrams: a.Packets, Flows: a.Flows, FlowsPerSec: d.rates.rate(l.Name()+a.Exporter.String()+"sflow", a.Flows),
				Errors: a.Errors, Lost: a.LostPackets, SamplingRate: a.SamplingRate, LastSeen: a.LastSeen.UTC()})
		}
	}
	slices.SortFunc(out, func(a, b exp) int {
		if a.Exporter != b.Exporter {
			if a.Exporter < b.Exporter {
				return -1
			}
			return 1
		}
		if a.Version < b.Version {
			return -1
		}
		return 0
	})
	writeJSON(w, out)
}

// rateMeter turns counters into per-second rates between API calls.
type rateMeter struct {
	mu   sync.Mutex
	last map[string]rateSample
}

type rateSample struct {
	at    time.Time
	count uint64
	rate  float64
}

func (m *rateMeter) rate(key string, count uint64) float64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.last == nil {
		m.last = map[string]rateSample{}
	}
	now := time.Now()
	prev, ok := m.last[key]
	if !ok {
		m.last[key] = rateSample{at: now, count: count}
		return 0
	}
	if dt := now.Sub(prev.at).Seconds(); dt >= 1 {
		prev.rate = float64(count-prev.count) / dt
		prev.at, prev.count = now, count
		m.last[key] = prev
	}
	return prev.rate
}
