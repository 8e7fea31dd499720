package daemon

import (
	"cmp"
	"encoding/json"
	"net/http"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/flowguard/flowguard/alert"
	"github.com/flowguard/flowguard/engine"
	"github.com/flowguard/flowguard/web"
)

// recentAlerts keeps the last alerts for /api/alerts, each numbered in
// arrival order so that a page's cursor holds while new alerts come in.
type recentAlerts struct {
	mu   sync.Mutex
	ring []numberedAlert
	next int
	n    int
	seq  uint64
}

type numberedAlert struct {
	seq uint64
	a   *alert.Alert
}

func newRecentAlerts(size int) *recentAlerts {
	return &recentAlerts{ring: make([]numberedAlert, size)}
}

func (r *recentAlerts) add(a *alert.Alert) {
	r.mu.Lock()
	r.seq++
	r.ring[r.next] = numberedAlert{seq: r.seq, a: a}
	r.next = (r.next + 1) % len(r.ring)
	r.n = min(r.n+1, len(r.ring))
	r.mu.Unlock()
}

// page returns, newest first, up to limit alerts older than before (0:
// from the newest) that keep accepts, and the cursor of the next page (0:
// none). It copies only what it returns.
func (r *recentAlerts) page(before uint64, limit int, keep func(*alert.Alert) bool) ([]*alert.Alert, uint64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]*alert.Alert, 0, min(limit, r.n))
	var last uint64
	for i := 1; i <= r.n; i++ {
		e := r.ring[(r.next-i+len(r.ring))%len(r.ring)]
		if (before != 0 && e.seq >= before) || !keep(e.a) {
			continue
		}
		if len(out) == limit {
			return out, last // one more matches: there is a next page
		}
		out = append(out, e.a)
		last = e.seq
	}
	return out, 0
}

func writeJSON(w http.ResponseWriter, v any) { writeJSONStatus(w, http.StatusOK, v) }

// writeJSONStatus answers code with v as indented JSON.
func writeJSONStatus(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(v)
}

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

// apiAlerts: GET /api/alerts?rule=ID&severity=high&addr=IP&limit=N&cursor=C,
// newest first, one page (see web.ParsePage). addr matches any group value
// or any sample's address.
func (d *Daemon) apiAlerts(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	p, err := web.ParsePage(r, d.cfg.HTTP.Limits.MaxPage)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	var before uint64
	if p.Cursor != "" {
		if before, err = strconv.ParseUint(p.Cursor, 10, 64); err != nil || before == 0 {
			http.Error(w, "cursor: not one this server gave", http.StatusBadRequest)
			return
		}
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
	rule, sev := q.Get("rule"), q.Get("severity")
	out, next := d.recent.page(before, p.Limit, func(a *alert.Alert) bool {
		return (rule == "" || a.Rule == rule) && (sev == "" || a.Severity == sev) &&
			(!addr.IsValid() || alertHasAddr(a, addr))
	})
	if next != 0 {
		web.SetNext(w, r, strconv.FormatUint(next, 10))
	}
	web.WriteJSONArray(w, out)
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
func (d *Daemon) apiRules(w http.ResponseWriter, r *http.Request) {
	type ruleOut struct {
		ID          string              `json:"id"`
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
	out := make([]ruleOut, 0, len(st.Rules))
	for _, r := range st.Rules {
		out = append(out, ruleOut{
			ID: r.ID, Evaluations: r.Evaluated, Matches: r.Matched, Alerts: r.Alerts, Suppressed: r.Suppressed,
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
