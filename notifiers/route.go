package notifiers

import (
	"path"

	"github.com/flowguard/flowguard/alert"
)

// route is a Route compiled against the built notifiers.
type route struct {
	rules   []string
	sevMask uint8 // bit i: alert.Severities[i]; 0 means any
	tags    []string
	targets []*target
	cont    bool
}

func compileRoute(r Route, byName map[string]*target) route {
	c := route{rules: r.Rules, tags: r.Tags, cont: r.Continue}
	for _, s := range r.Severity {
		if i := alert.SeverityRank(s); i >= 0 {
			c.sevMask |= 1 << i
		}
	}
	if i := alert.SeverityRank(r.MinSeverity); i >= 0 {
		var m uint8
		for j := i; j < len(alert.Severities); j++ {
			m |= 1 << j
		}
		if c.sevMask == 0 {
			c.sevMask = m
		} else {
			c.sevMask &= m
			if c.sevMask == 0 {
				c.sevMask = 0x80 // severity and min_severity exclude each other: match nothing
			}
		}
	}
	for _, n := range r.Notifiers {
		if t := byName[n]; t != nil {
			c.targets = appendUnique(c.targets, t)
		}
	}
	return c
}

// match reports whether the route takes a. It allocates nothing.
func (r *route) match(a *alert.Alert) bool {
	if r.sevMask != 0 {
		i := alert.SeverityRank(a.Severity)
		if i < 0 || r.sevMask&(1<<i) == 0 {
			return false
		}
	}
	if len(r.rules) > 0 {
		ok := false
		for _, p := range r.rules {
			if p == a.Rule {
				ok = true
				break
			}
			if m, _ := path.Match(p, a.Rule); m {
				ok = true
				break
			}
		}
		if !ok {
			return false
		}
	}
	if len(r.tags) > 0 {
		ok := false
	tags:
		for _, want := range r.tags {
			for _, have := range a.Tags {
				if want == have {
					ok = true
					break tags
				}
			}
		}
		if !ok {
			return false
		}
	}
	return true
}

func appendUnique(ts []*target, add ...*target) []*target {
next:
	for _, t := range add {
		for _, have := range ts {
			if have == t {
				continue next
			}
		}
		ts = append(ts, t)
	}
	return ts
}
