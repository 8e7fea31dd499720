package daemon

import (
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	rediswindow "github.com/flowguard/flowguard/engine/window/redis"
)

// Health states, from best to worst. Only failing answers 503: a store or
// a receiver that is away does not get better by restarting the daemon.
const (
	HealthOK       = "ok"
	HealthDegraded = "degraded"
	HealthFailing  = "failing"
)

// HealthCheck is one component's part of /healthz.
type HealthCheck struct {
	Status string `json:"status"`
	Detail string `json:"detail,omitempty"`
}

// health is the state /healthz and /readyz read: readiness, set once
// listeners are bound and the rules loaded and cleared when the daemon
// starts stopping, and the engine's progress as last seen.
type health struct {
	ready atomic.Bool

	mu         sync.Mutex
	flows      uint64    // engine flows at the last look
	progressAt time.Time // when the engine was last seen idle or moving
}

// worse returns the worse of two states.
func worse(a, b string) string {
	rank := map[string]int{HealthOK: 0, HealthDegraded: 1, HealthFailing: 2}
	if rank[b] > rank[a] {
		return b
	}
	return a
}

// healthChecks looks at each component: listeners bound and running,
// pipeline progressing, notifiers delivering, store connected.
func (d *Daemon) healthChecks(now time.Time) (string, map[string]HealthCheck) {
	checks := map[string]HealthCheck{}

	running, want := d.listeners.running()
	switch {
	case running < want:
		checks["listeners"] = HealthCheck{HealthFailing, fmt.Sprintf("%d of %d listeners running", running, want)}
	default:
		checks["listeners"] = HealthCheck{HealthOK, fmt.Sprintf("%d listeners running", running)}
	}

	flows := d.engine.Stats().Flows
	depth, _ := d.engine.pipe.Depth()
	d.health.mu.Lock()
	if depth == 0 || flows != d.health.flows || d.health.progressAt.IsZero() {
		d.health.flows, d.health.progressAt = flows, now
	}
	stalled := now.Sub(d.health.progressAt)
	d.health.mu.Unlock()
	if stalled >= pipelineStallAfter {
		checks["pipeline"] = HealthCheck{HealthFailing, fmt.Sprintf("%d batches queued, no flow processed for %s", depth, stalled.Round(time.Second))}
	} else {
		checks["pipeline"] = HealthCheck{HealthOK, fmt.Sprintf("%d batches queued", depth)}
	}

	nc := HealthCheck{Status: HealthOK}
	for _, s := range d.notify().Stats() {
		if s.LastError != "" && s.Queued+s.Spooled > 0 {
			nc.Status = HealthDegraded
			nc.Detail += fmt.Sprintf("%s: %d alerts waiting: %s; ", s.Name, s.Queued+s.Spooled, s.LastError)
		}
	}
	if nc.Detail != "" {
		nc.Detail = nc.Detail[:len(nc.Detail)-2]
	}
	checks["notifiers"] = nc

	if rs, ok := d.store.Store.(*rediswindow.Store); ok {
		if rs.Stats().Connected {
			checks["store"] = HealthCheck{HealthOK, "redis connected"}
		} else {
			checks["store"] = HealthCheck{HealthDegraded, "redis unreachable: windows are kept in memory until it is back"}
		}
	} else {
		checks["store"] = HealthCheck{HealthOK, "memory"}
	}

	status := HealthOK
	for _, c := range checks {
		status = worse(status, c.Status)
	}
	return status, checks
}

// apiHealth: GET /healthz, 200 while ok or degraded, 503 when failing.
func (d *Daemon) apiHealth(w http.ResponseWriter, _ *http.Request) {
	status, checks := d.healthChecks(time.Now())
	code := http.StatusOK
	if status == HealthFailing {
		code = http.StatusServiceUnavailable
	}
	writeJSONStatus(w, code, map[string]any{"status": status, "checks": checks})
}

// apiReady: GET /readyz, 200 once listeners are bound and rules loaded,
// 503 before and once the daemon is stopping.
func (d *Daemon) apiReady(w http.ResponseWriter, _ *http.Request) {
	if !d.health.ready.Load() {
		writeJSONStatus(w, http.StatusServiceUnavailable, map[string]any{"ready": false})
		return
	}
	writeJSONStatus(w, http.StatusOK, map[string]any{"ready": true, "rules": d.ruleCount.Load(), "listeners": len(d.listeners.list())})
}
