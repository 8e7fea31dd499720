package daemon

import (
	"cmp"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/flowguard/flowguard/engine"
	"github.com/flowguard/flowguard/rules"
	"github.com/flowguard/flowguard/web"
)

func writeJSON(w http.ResponseWriter, v any) { web.WriteJSON(w, http.StatusOK, v) }

func writeJSONStatus(w http.ResponseWriter, code int, v any) { web.WriteJSON(w, code, v) }

// apiStatus: GET /api/status.
func (d *Daemon) apiStatus(w http.ResponseWriter, _ *http.Request) {
	var last string
	if t := d.lastReload.Load(); t > 0 {
		last = time.Unix(t, 0).UTC().Format(time.RFC3339)
	}
	writeJSON(w, map[string]any{
		"version":        d.opts.Version,
		"started":        d.started.UTC().Format(time.RFC3339),
		"uptime_seconds": int64(time.Since(d.started).Seconds()),
		"config":         d.cfgPath,
		"rules":          d.ruleCount.Load(),
		"rule_paths":     *d.rulePaths.Load(),
		"last_reload":    last,
		"reload_ok":      d.reloadOK.Load(),
		"reload_error":   d.reloadErr(),
		"reloads":        d.reloads.Load(),
		"restart_needed": d.restartNeededList(),
		"flows":          d.engine.Stats().Flows,
		"alerts":         d.alerts.Load(),
		"time":           timeStatus(d.engine.Stats().Time, d.cfg.Ingest.MetricsLimit()),
	})
}

// apiRules: GET /api/rules: per rule what it did.
func (d *Daemon) apiRules(w http.ResponseWriter, r *http.Request) {
	type ruleOut struct {
		ID          string              `json:"id"`
		Threshold   float64             `json:"threshold"`
		Evaluations uint64              `json:"evaluations"`
		Matches     uint64              `json:"matches"`
		Alerts      uint64              `json:"alerts"`
		Suppressed  uint64              `json:"suppressed"`
		Errors      uint64              `json:"errors"`
		LastError   string              `json:"last_error"`
		WindowKeys  int                 `json:"window_keys"`
		Evicted     uint64              `json:"window_evicted"`
		Late        uint64              `json:"window_late"`
		TopGroups   []engine.GroupValue `json:"top_groups"`
		// Learned: what a rule that learns learned, its top groups.
		Learned *engine.LearnedSummary `json:"learned,omitempty"`
	}
	st := d.engine.Stats()
	thresholds := *d.thresholds.Load()
	out := make([]ruleOut, 0, len(st.Rules))
	for _, r := range st.Rules {
		out = append(out, ruleOut{
			ID: r.ID, Threshold: thresholds[r.ID], Evaluations: r.Evaluated, Matches: r.Matched, Alerts: r.Alerts, Suppressed: r.Suppressed,
			Errors: r.Errors, LastError: r.LastError,
			WindowKeys: r.Window.Keys, Evicted: r.Window.Evicted, Late: r.Window.Late,
			TopGroups: d.topGroups(r.ID),
			Learned:   d.learnedGroups(r.ID, learnedTopGroups),
		})
	}
	web.WritePage(w, r, out, d.cfg.HTTP.Limits.MaxPage)
}

// apiExporters: GET /api/exporters: per exporter and version, bounded
// like /metrics: the known and busiest exporters by name, the rest summed
// in rows with exporter "other" (exporters: how many they sum).
func (d *Daemon) apiExporters(w http.ResponseWriter, r *http.Request) {
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
		ClockSkew    float64   `json:"clock_skew_seconds"` // NetFlow/IPFIX; sFlow has no export time: 0
		LastSeen     time.Time `json:"last_seen"`
		Exporters    int       `json:"exporters,omitempty"`
	}
	out := []exp{}
	for _, l := range d.listeners.list() {
		for _, row := range exporterRows(l, d.knownExporterSet(), d.cfg.Ingest.MetricsLimit()) {
			e := exp{Listener: l.Name(), Exporter: row.exporter, Version: row.version,
				Datagrams: row.packets, Flows: row.flows, FlowsPerSec: d.rates.rate(l.Name()+row.exporter+row.version, row.flows),
				Errors: row.errors, Templates: row.templates, Lost: row.lost,
				SamplingRate: row.samplingRate, ClockSkew: row.clockSkew.Seconds(), LastSeen: row.lastSeen.UTC()}
			if row.exporter == otherExporters {
				e.Exporters, e.SamplingRate = row.exporters, 0
			}
			out = append(out, e)
		}
	}
	slices.SortFunc(out, func(a, b exp) int { // a total order: pages by offset hold between requests
		return cmp.Or(strings.Compare(a.Exporter, b.Exporter), strings.Compare(a.Version, b.Version), strings.Compare(a.Listener, b.Listener))
	})
	web.WritePage(w, r, out, d.cfg.HTTP.Limits.MaxPage)
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

// noteThresholds keeps the rules' thresholds (the default one of a rule
// with thresholds per network) for /api/rules.
func (d *Daemon) noteThresholds(set *rules.Set) {
	m := make(map[string]float64, len(set.Rules))
	for _, r := range set.Rules {
		m[r.ID] = r.Threshold
	}
	d.thresholds.Store(&m)
}
