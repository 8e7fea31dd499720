package engine

import (
	"bytes"
	"net/netip"

	"github.com/cespare/xxhash/v2"

	"github.com/flowguard/flowguard/engine/window"
	"github.com/flowguard/flowguard/flow"
	"github.com/flowguard/flowguard/rules"
)

// Groups of a shared window (window.Exchanger) can cross their threshold
// when the store brings other instances' totals, with no local flow to
// compare them: a burst split across instances. Exchange pulls those
// groups and fires them as a local crossing would. An alert needs a flow
// of its group (enrichment, message, samples): the rule's ring of samples
// holds one when the group is at least half way to the threshold here;
// besides, each shared rule keeps the latest flow of the groups at least
// 1/exchangeKeepShare of the way, in a direct-mapped table written once per
// group and window. When neither has one, the alert is built from the
// group key's values with the addresses enriched again.

// exchangeSlots is the size of each shared rule's table of group flows.
const exchangeSlots = 256

// exchangeKeepShare: a group's flow is kept in the table once its value is
// 1/exchangeKeepShare of the threshold, enough for that many instances
// sharing a burst evenly; smaller groups cost one comparison.
const exchangeKeepShare = 8

// ruleExchange is the exchange state of a Sum or Distinct rule whose
// window is shared.
type ruleExchange struct {
	x       window.Exchanger
	changes []window.Change
	scratch []byte
	slots   [exchangeSlots]groupFlow
}

// groupFlow is a flow of the group whose key hashes to hash, seen at at.
type groupFlow struct {
	hash uint64
	at   int64
	flow flow.Flow
}

// newRuleExchange returns the exchange state of rule r over window w, or
// nil when w is not shared or r's aggregate does not exchange (Top ranks
// only on its own flows; per-flow rules have no window).
func newRuleExchange(r *rules.Rule, w window.Window) *ruleExchange {
	x, ok := w.(window.Exchanger)
	if !ok || (r.Aggregate != rules.Sum && r.Aggregate != rules.Distinct) {
		return nil
	}
	x.Changed(nil) // the window keeps changed keys from now on
	return &ruleExchange{x: x}
}

// keep remembers f as its group's (rs.key) flow, unless the group is far
// from the threshold or its slot already holds a flow of it from this
// window. Allocates nothing.
func (x *ruleExchange) keep(rs *ruleState, f *flow.Flow, now int64, value float64) {
	if value < rs.r.Threshold/exchangeKeepShare {
		return
	}
	h := xxhash.Sum64(rs.key)
	s := &x.slots[h%exchangeSlots]
	if s.hash == h && s.at != 0 && now >= s.at && now-s.at < int64(rs.r.Window) {
		return
	}
	s.hash, s.at, s.flow = h, now, *f
}

// Exchange compares with their thresholds the groups of shared windows
// whose other instances' part rose since the last call, and fires those
// that cross, with the same suppression as a local crossing, at the
// engine's event time. It returns the alerts emitted. Call it from the
// goroutine that calls Process (Pipeline does, every ExchangeEvery).
func (e *Engine) Exchange() int {
	if e.par != nil {
		return e.par.exchange()
	}
	fired := 0
	for _, rs := range e.rules {
		x := rs.xch
		if x == nil {
			continue
		}
		x.changes = x.x.Changed(x.changes[:0])
		for i := range x.changes {
			if rs.exchange(e, &x.changes[i]) {
				fired++
			}
		}
		clear(x.changes) // let go of the keys
	}
	if e.started {
		e.tick() // resolve on the pipeline's ticks too, flows or not
	}
	return fired
}

// exchange fires rule rs for one changed group if its value crosses the
// threshold, and reports whether an alert went out.
func (rs *ruleState) exchange(e *Engine, c *window.Change) bool {
	r := rs.r
	value := c.Result.Value
	if r.Aggregate == rules.Sum && r.Rate {
		value /= rs.window
	}
	if r.ByNetwork == nil && value < r.Threshold {
		return false // the common case, decided before looking for a flow
	}
	rs.key = append(rs.key[:0], c.Key...)
	now := max(e.watermark, c.Result.Last)
	f := rs.groupFlow()
	var group map[string]any
	if f == nil {
		var ok bool
		if f, group, ok = rs.flowFromKey(e); !ok {
			return false
		}
	}
	if value < r.ThresholdFor(f) { // per-network thresholds need the group's flow
		return false
	}
	if !rs.learnedExceeds(now, value) { // a baseline: above the group's normal too
		return false
	}
	if g := rs.firing[string(rs.key)]; g != nil { // firing: other instances' part raised its value
		g.value, g.peak, g.lastHigh = value, max(g.peak, value), max(g.lastHigh, now)
		g.changed = true
		return false
	}
	if !rs.claimed(e, now) {
		return false
	}
	a := rs.build(f, now, c.Result, value)
	if group != nil {
		a.Group = group
		a.Message = rs.message(a, f)
	}
	e.cfg.Emit(rs.track(e, a, f, now))
	return true
}

// shipThreshold tells a shared window (window.Thresholder) the smallest
// window value at which rule r fires, the lowest of its thresholds in the
// window's units, so that the store can keep groups far below it local.
// A Top rule fires only on a group whose value reaches its threshold too
// (rank and share come on top), so the same bound holds.
func shipThreshold(r *rules.Rule, w window.Window) {
	t, ok := w.(window.Thresholder)
	if !ok {
		return
	}
	v := r.Threshold
	if r.ByNetwork != nil {
		for _, n := range r.ByNetwork.Networks {
			v = min(v, n)
		}
	}
	if r.Rate {
		v *= r.Window.Seconds()
	}
	share := 0.0
	if r.Aggregate == rules.Top {
		share = r.TopShare
	}
	// A rate compared after a division may round below.
	t.SetThreshold(v*(1-1e-9), share*(1-1e-9))
}

// groupFlow returns a flow of rs.key's group: the latest in the ring of
// samples, else the exchange table's, which then joins the ring so that
// the alert shows it. Nil when neither holds one.
func (rs *ruleState) groupFlow() *flow.Flow {
	x := rs.xch
	h := xxhash.Sum64(rs.key)
	n := min(rs.ringN, samplesPerRule)
	for i := 1; i <= n; i++ {
		s := &rs.ring[(rs.ringN-i)%samplesPerRule]
		if s.group == h && rs.isGroupOf(&s.flow) {
			return &s.flow
		}
	}
	s := &x.slots[h%exchangeSlots]
	if s.hash != h || s.at == 0 || !rs.isGroupOf(&s.flow) {
		return nil
	}
	r := rs.nextSample()
	r.group, r.flow = h, s.flow
	return &r.flow
}

// isGroupOf reports whether f belongs to rs.key's group: hashes collide.
func (rs *ruleState) isGroupOf(f *flow.Flow) bool {
	x := rs.xch
	x.scratch = appendGroupKey(x.scratch[:0], rs.r.GroupBy, f)
	return bytes.Equal(x.scratch, rs.key)
}

// flowFromKey stands in for a flow of rs.key's group when none was kept:
// the group's values decoded from the key, and a flow holding its
// addresses, enriched again, for the alert's enrichment.
func (rs *ruleState) flowFromKey(e *Engine) (*flow.Flow, map[string]any, bool) {
	group, ok := flow.DecodeGroup(rs.r.GroupBy, rs.key)
	if !ok {
		return nil, nil, false
	}
	f := &flow.Flow{}
	if s, ok := group["src_addr"].(string); ok {
		f.SrcAddr, _ = netip.ParseAddr(s)
	}
	if s, ok := group["dst_addr"].(string); ok {
		f.DstAddr, _ = netip.ParseAddr(s)
	}
	if e.cfg.Enricher != nil {
		e.cfg.Enricher.Enrich(f)
	}
	return f, group, true
}
