// Package enrich adds what flows do not carry themselves (GeoIP, ASN, named
// networks, threat lists) before rules see them. Each enricher lives in a
// folder of its own; a Chain runs them in order.
package enrich

import "github.com/flowguard/flowguard/flow"

// Enricher fills fields of a flow in place. It must not keep the flow.
type Enricher interface {
	Enrich(f *flow.Flow)
}

// Chain runs enrichers in order.
type Chain []Enricher

// Enrich runs every enricher of the chain on f.
func (c Chain) Enrich(f *flow.Flow) {
	for _, e := range c {
		e.Enrich(f)
	}
}
