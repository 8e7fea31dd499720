package daemon

// The engine's and its pipeline's metrics: flows evaluated, per rule what
// it did, the queue in front of the engine; the alerts' lifecycle and the
// silences.

import "github.com/flowguard/flowguard/alertstate"

var (
	rule = []string{"rule"}

	ruleEvaluatedDesc  = desc("rule_evaluations_total", "Flows a rule's condition ran on.", rule...)
	ruleMatchedDesc    = desc("rule_matches_total", "Flows that matched a rule.", rule...)
	ruleAlertsDesc     = desc("rule_alerts_total", "Alerts a rule raised.", rule...)
	ruleSuppressedDesc = desc("rule_suppressed_total", "Alerts held back by suppression.", rule...)
	ruleErrorsDesc     = desc("rule_errors_total", "Run-time errors of a rule's conditions (each counted as false).", rule...)
	windowKeysDesc     = desc("rule_window_keys", "Groups a rule's window holds.", rule...)
	windowEvictedDesc  = desc("rule_window_evicted_total", "Groups evicted from a full window.", rule...)
	windowLateDesc     = desc("rule_window_late_total", "Updates beyond the window and its allowed lateness (README \"Time\"), ignored.", rule...)
	engineFlowsDesc    = desc("engine_flows_total", "Flows evaluated.")
	alertsDesc         = desc("alerts_total", "Alerts emitted.")
	queueDepthDesc     = desc("engine_queue_batches", "Batches waiting for the engine.")
	queueWaitsDesc     = desc("engine_queue_full_total",
		"Chunks of up to 256 flows that found the engine queue (engine.queue_flows) full: the listener waited.")
	engineNoTimeDesc = desc("engine_flows_without_time_total",
		"Flows skipped for want of any timestamp (start, end or receive time).")

	// Alert lifecycle (README "Alert lifecycle", "Silences").
	ruleFiringDesc         = desc("rule_firing", "Alerts of a rule firing now (as of the engine's last tick).", rule...)
	ruleFiringOverflowDesc = desc("rule_firing_overflow_total", "Alerts sent past engine.max_firing: never resolved.", rule...)
	ruleEscalationsDesc    = desc("rule_escalations_total", "Firing alerts sent again at an escalation step.", rule...)
	ruleResolvedDesc       = desc("rule_resolved_total", "Alerts resolved.", rule...)
	alertsSilencedDesc     = desc("alerts_silenced_total", "Notifications held back by a silence.")
	alertsHeldDesc         = desc("alerts_held", "Alerts the daemon holds for /api/alerts (firing and resolved).")
	alertsForgottenDesc    = desc("alerts_forgotten_total", "Alerts forgotten past the 1000 held, resolved ones first.")
	silencesDesc           = desc("silences", "Silences by status.", "status")
)

// engineMetrics reads the engine's and the pipeline's stats.
func (d *Daemon) engineMetrics() metricSet {
	return func(m emit) {
		st := d.engine.Stats()
		m.counter(engineFlowsDesc, st.Flows)
		m.counter(alertsDesc, d.alerts.Load())
		for _, r := range st.Rules {
			m.counter(ruleEvaluatedDesc, r.Evaluated, r.ID)
			m.counter(ruleMatchedDesc, r.Matched, r.ID)
			m.counter(ruleAlertsDesc, r.Alerts, r.ID)
			m.counter(ruleSuppressedDesc, r.Suppressed, r.ID)
			m.counter(ruleErrorsDesc, r.Errors, r.ID)
			m.gauge(windowKeysDesc, float64(r.Window.Keys), r.ID)
			m.counter(windowEvictedDesc, r.Window.Evicted, r.ID)
			m.counter(windowLateDesc, r.Window.Late, r.ID)
		}
		for _, r := range st.Rules {
			m.gauge(ruleFiringDesc, float64(r.Firing), r.ID)
			m.counter(ruleFiringOverflowDesc, r.FiringOverflow, r.ID)
			m.counter(ruleEscalationsDesc, r.Escalated, r.ID)
			m.counter(ruleResolvedDesc, r.Resolved, r.ID)
		}
		ts := d.tracker.Stats()
		m.counter(alertsSilencedDesc, ts.Silenced)
		m.gauge(alertsHeldDesc, float64(ts.Alerts))
		m.counter(alertsForgottenDesc, ts.Forgotten)
		byStatus := map[string]int{alertstate.StatusActive: 0, alertstate.StatusPending: 0, alertstate.StatusExpired: 0}
		for _, s := range d.silences.List() {
			byStatus[s.Status]++
		}
		for st, n := range byStatus {
			m.gauge(silencesDesc, float64(n), st)
		}
		m.counter(engineNoTimeDesc, st.NoTime)
		m.counter(queueWaitsDesc, d.engine.pipe.Waits())
		depth, _ := d.engine.pipe.Depth()
		m.gauge(queueDepthDesc, float64(depth))
	}
}
