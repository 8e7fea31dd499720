package daemon

// The engine's and its pipeline's metrics: flows evaluated, per rule what
// it did, the queue in front of the engine.

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
		m.counter(engineNoTimeDesc, st.NoTime)
		m.counter(queueWaitsDesc, d.pipe.Waits())
		depth, _ := d.pipe.Depth()
		m.gauge(queueDepthDesc, float64(depth))
	}
}
