package daemon

import (
	"context"

	"github.com/flowguard/flowguard/engine"
	"github.com/flowguard/flowguard/lifecycle"
)

// Learned state: what the rules that learn (baseline, new_terms, beacon)
// learned, kept in learn.state_dir/learned.json (config.LearnStateDir) and,
// with the Redis store, in Redis, shared by the instances. The component
// syncs it at start (loading), every learn.save_every and at stop
// (engine.KeepLearned). It starts after the store and before the engine,
// so it stops after the engine has drained its queue, and before the
// store closes: the last save holds every flow evaluated.

// learnedComponent keeps the engine's learned state in its stores.
func (d *Daemon) learnedComponent(failed func(error)) lifecycle.Component {
	stores := engine.LearnedStores(d.cfg.LearnStateDir(), d.store.Store)
	return lifecycle.Run("learned", func(ctx context.Context) error {
		engine.KeepLearned(ctx, stores, d.cfg.Learn.SaveInterval(), d.engine.pipe.Do, d.log, &d.learnStats)
		return nil
	}, failed)
}

// learnedGroups asks the engine, between batches, what rule id learned
// of its top n groups; nil for a rule that does not learn.
func (d *Daemon) learnedGroups(id string, n int) *engine.LearnedSummary {
	var out *engine.LearnedSummary
	d.engine.pipe.Do(func(e *engine.Engine) {
		if s, ok := e.Learned(id, n); ok {
			out = &s
		}
	})
	return out
}

// learnedTopGroups is how many groups /api/rules shows per learning rule.
const learnedTopGroups = 10

var (
	learnedGroupsDesc  = desc("rule_learned_groups", "Groups a rule that learns (baseline, new_terms, beacon) holds.", rule...)
	learnedEvictedDesc = desc("rule_learned_evicted_total", "Groups (and, for new_terms, terms) a rule that learns evicted past its cap.", rule...)
	learnedSyncsDesc   = desc("learned_state_syncs_total", "Syncs of the learned state with its stores (the state file, Redis).")
	learnedErrorsDesc  = desc("learned_state_sync_errors_total", "Syncs of the learned state that failed (logged).")
)

// learnedMetrics reads the learning rules' groups and the syncs.
func (d *Daemon) learnedMetrics() metricSet {
	return func(m emit) {
		for _, r := range d.engine.Stats().Rules {
			if r.Learns {
				m.gauge(learnedGroupsDesc, float64(r.LearnedGroups), r.ID)
				m.counter(learnedEvictedDesc, r.LearnedEvicted, r.ID)
			}
		}
		m.counter(learnedSyncsDesc, d.learnStats.Syncs.Load())
		m.counter(learnedErrorsDesc, d.learnStats.Errors.Load())
	}
}
