package engine

import (
	"fmt"
	"strings"
	"time"

	"github.com/flowguard/flowguard/alert"
	"github.com/flowguard/flowguard/engine/window"
	"github.com/flowguard/flowguard/flow"
	"github.com/flowguard/flowguard/rules"
)

// Alert lifecycle (README "Alert lifecycle"). A group that crosses its
// rule's threshold fires once (subject to suppress) and is then firing:
// the engine keeps it in its rule's table of firing groups, and each flow
// of the group updates its value, peak, last_seen and totals (a map
// lookup, nothing allocated). When the value reaches an escalation step
// (Rule.Escalate, factors of the value first sent) the alert is emitted
// again, same id, with the new value. On the engine's ticks (every
// resolveEvery of event time, and each Exchange) the firing groups are
// checked: a group none of whose flows has seen its value at or above
// Hysteresis × threshold for the rule's resolve_after is resolved, and
// the alert is emitted a last time with status resolved, ended_at, the
// peak and the totals. Each rule tracks at most Config.MaxFiring groups;
// an alert beyond that is emitted as before, never resolved, and counted
// (RuleStats.FiringOverflow).

// Hysteresis is the share of the threshold under which a firing group
// counts as below it.
const Hysteresis = 0.9

// DefaultMaxFiring is the default bound on each rule's firing groups.
const DefaultMaxFiring = 1000

// resolveEvery is how much event time passes between checks of the firing
// groups.
const resolveEvery = int64(time.Second)

// Progress is a firing alert's state on a tick, for Config.Progress.
type Progress struct {
	ID       string
	Rule     string
	At       time.Time // the engine's event time
	Value    float64   // the group's latest value
	Peak     float64
	LastSeen time.Time
}

// firingGroup is one firing alert of a rule.
type firingGroup struct {
	alert     *alert.Alert // as last emitted; never changed once emitted
	threshold float64
	value     float64
	peak      float64
	lastHigh  int64 // event time of the latest flow that saw the value at or above the hysteresis level
	lastSeen  int64
	base      float64 // the value first sent: escalation steps are factors of it
	step      int     // escalation steps sent
	emitted   int     // emissions: fire, escalations
	flows     uint64
	bytes     uint64
	packets   uint64
	changed   bool // value or last_seen moved since the last Progress
}

// see counts a flow of the firing group whose window value is now value;
// out says the group is below its rule's condition whatever the value
// (see below).
func (g *firingGroup) see(f *flow.Flow, now int64, value float64, out bool) {
	g.value = value
	if value > g.peak {
		g.peak = value
	}
	if !out && value >= g.threshold*Hysteresis && now > g.lastHigh {
		g.lastHigh = now
	}
	if now > g.lastSeen {
		g.lastSeen = now
	}
	g.flows++
	g.bytes += f.Bytes
	g.packets += f.Packets
	g.changed = true
}

// quiet handles a matching flow that did not cross: it joins the samples
// and, when its group is firing, updates the group.
func (rs *ruleState) quiet(f *flow.Flow, now int64, value float64) {
	rs.remember(f, now, value)
	if len(rs.firing) != 0 {
		if g := rs.firing[string(rs.key)]; g != nil {
			g.see(f, now, value, false)
		}
	}
}

// below handles a flow of a group outside its rule's condition whatever
// its value (out of a top rule's k or share, within a baseline rule's
// learned normal): for the lifecycle it is below.
func (rs *ruleState) below(f *flow.Flow, now int64, value float64) {
	rs.remember(f, now, value)
	if len(rs.firing) != 0 {
		if g := rs.firing[string(rs.key)]; g != nil {
			g.see(f, now, value, true)
		}
	}
}

// fire handles a crossing of rs.key's group: a firing group is updated
// (and escalated), another one builds and emits an alert unless suppressed.
func (rs *ruleState) fire(e *Engine, f *flow.Flow, now int64, res window.Result, value float64) {
	if len(rs.firing) != 0 {
		if g := rs.firing[string(rs.firingKey())]; g != nil {
			g.see(f, now, value, false)
			rs.escalate(e, g, f)
			return
		}
	}
	if rs.claimed(e, now) {
		e.emit(rs.track(e, rs.build(f, now, res, value), f, now))
	}
}

// track marks a just built alert firing and adds its group to the rule's
// table, unless the table is full (counted).
func (rs *ruleState) track(e *Engine, a *alert.Alert, f *flow.Flow, now int64) *alert.Alert {
	a.Status, a.Event, a.Peak, a.Notifications = alert.StatusFiring, alert.EventFiring, a.Value, 1
	if len(rs.firing) >= e.maxFiring {
		rs.firingOverflow.Add(1)
		return a
	}
	if rs.firing == nil {
		rs.firing = make(map[string]*firingGroup)
	}
	g := &firingGroup{alert: a, threshold: a.Threshold, value: a.Value, peak: a.Value, base: a.Value,
		lastHigh: now, lastSeen: a.LastSeen.UnixNano(), emitted: 1, flows: 1, bytes: f.Bytes, packets: f.Packets}
	if rs.r.Aggregate == rules.PerFlow {
		g.threshold = 1
	}
	rs.firing[string(rs.firingKey())] = g
	rs.firingN.Store(int64(len(rs.firing)))
	return a
}

// firingKey is rs.key's entry in the firing table: the group, and for a
// new_terms rule its new term too, each new term being an alert of its
// own. Allocates nothing.
func (rs *ruleState) firingKey() []byte {
	if rs.r.Aggregate != rules.NewTermsAgg || rs.terms == nil {
		return rs.key
	}
	rs.firingScratch = append(append(append(rs.firingScratch[:0], rs.key...), 0), rs.terms.last.term...)
	return rs.firingScratch
}

// escalate emits the group's alert again when its value reached the next
// escalation step.
func (rs *ruleState) escalate(e *Engine, g *firingGroup, f *flow.Flow) {
	steps := rs.r.Escalate
	if g.step >= len(steps) || g.value < g.base*steps[g.step] {
		return
	}
	for g.step < len(steps) && g.value >= g.base*steps[g.step] {
		g.step++
	}
	a := g.next(alert.EventEscalated)
	a.Samples = rs.samples(f)
	a.Message = rs.message(a, f)
	g.alert = a
	rs.escalated.Add(1)
	e.emit(a)
}

// next is a copy of the group's alert with its current figures, to emit
// as event.
func (g *firingGroup) next(event string) *alert.Alert {
	c := *g.alert
	g.emitted++
	c.Value, c.Peak, c.Event, c.Notifications = round(g.value), round(g.peak), event, g.emitted
	c.LastSeen = time.Unix(0, g.lastSeen).UTC()
	c.SilencedBy = nil
	g.changed = false
	return &c
}

// tick checks the firing groups at the watermark: those below the
// hysteresis level for their rule's resolve_after are resolved and
// emitted; the others' progress goes to Config.Progress.
func (e *Engine) tick() {
	now := e.watermark
	e.nextResolve = now + resolveEvery
	for _, rs := range e.rules {
		if len(rs.firing) == 0 {
			continue
		}
		after := int64(rs.r.ResolveAfter)
		for key, g := range rs.firing {
			if now-g.lastHigh >= after {
				delete(rs.firing, key)
				rs.resolve(e, g, g.lastHigh+after, "")
				continue
			}
			if g.changed && e.cfg.Progress != nil {
				g.changed = false
				e.cfg.Progress(Progress{ID: g.alert.ID, Rule: rs.id, At: time.Unix(0, now).UTC(),
					Value: round(g.value), Peak: round(g.peak), LastSeen: time.Unix(0, g.lastSeen).UTC()})
			}
		}
		rs.firingN.Store(int64(len(rs.firing)))
	}
}

// resolve emits the group's alert a last time, resolved at event time end;
// why, when set, says why it ended other than by going quiet.
func (rs *ruleState) resolve(e *Engine, g *firingGroup, end int64, why string) {
	a := g.next(alert.EventResolved)
	a.Status = alert.StatusResolved
	ended := time.Unix(0, max(end, g.lastSeen)).UTC()
	a.EndedAt = &ended
	a.Message = rs.resolvedMessage(a, g, why)
	rs.resolved.Add(1)
	e.cfg.Emit(a)
}

// resolvedMessage is the rule's message rendered over the whole episode
// (its value the peak, its window the time the group was seen), followed
// by the totals: "resolved after 4m10s: 10.0.0.5 probed 2000 distinct
// ports on 10.0.0.9 within 4m10s (peak 2000; 1901 flows, 1901 packets,
// 83.64KB while firing)".
func (rs *ruleState) resolvedMessage(a *alert.Alert, g *firingGroup, why string) string {
	d := a.LastSeen.Sub(a.FirstSeen).Round(time.Second)
	if d <= 0 {
		d = a.LastSeen.Sub(a.FirstSeen)
	}
	var f *flow.Flow
	if n := len(a.Samples); n > 0 {
		f = &a.Samples[n-1] // the flow that fired: its group's fields
	} else {
		f = &flow.Flow{}
	}
	episode := *a
	episode.Value, episode.Window = a.Peak, d.String()
	var b strings.Builder
	b.WriteString("resolved after ")
	b.WriteString(d.String())
	if why != "" {
		b.WriteString(" (")
		b.WriteString(why)
		b.WriteString(")")
	}
	b.WriteString(": ")
	b.WriteString(rs.message(&episode, f))
	fmt.Fprintf(&b, " (peak %s; %d flows, %d packets, %s while firing)", valueText(a.Peak, rs.r), g.flows, g.packets,
		rules.FormatQuantity(float64(g.bytes), rules.UnitBytes))
	return b.String()
}

// resolveAll resolves every firing group of rs at the watermark, for a
// rule that a reload removed or changed.
func (rs *ruleState) resolveAll(e *Engine, why string) {
	for key, g := range rs.firing {
		delete(rs.firing, key)
		rs.resolve(e, g, e.watermark, why)
	}
	rs.firingN.Store(0)
}
