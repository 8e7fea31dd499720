// Package exporters names the devices that export flows and their
// interfaces, so that rules and alerts can say "edge1 wan0" rather than
// "192.0.2.1 ifIndex 3". It fills exporter_name, in_if_name and
// out_if_name from the configuration.
package exporters

import (
	"errors"
	"fmt"
	"net/netip"

	"github.com/flowguard/flowguard/flow"
)

// Exporter names one exporter and, optionally, its interfaces by ifIndex.
type Exporter struct {
	Name       string            `yaml:"name"`
	Interfaces map[uint32]string `yaml:"interfaces"`
}

// Config maps exporter addresses (as flows carry them in
// sampler_address) to names:
//
//	exporters:
//	  192.0.2.1: {name: edge1, interfaces: {1: wan0, 2: lan0}}
type Config map[string]Exporter

// Validate names every bad entry.
func (c Config) Validate() error {
	var errs []error
	for addr, e := range c {
		if _, err := netip.ParseAddr(addr); err != nil {
			errs = append(errs, fmt.Errorf("exporters: %q is not an IP address", addr))
		}
		if e.Name == "" {
			errs = append(errs, fmt.Errorf("exporters.%s.name: required", addr))
		}
	}
	return errors.Join(errs...)
}

// Names is the enricher. A nil *Names does nothing.
type Names struct {
	by map[netip.Addr]*Exporter
}

// New builds the enricher; nil when nothing is configured.
func New(c Config) (*Names, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	if len(c) == 0 {
		return nil, nil
	}
	n := &Names{by: make(map[netip.Addr]*Exporter, len(c))}
	for addr, e := range c {
		e := e
		n.by[netip.MustParseAddr(addr).Unmap()] = &e
	}
	return n, nil
}

// Enrich fills the exporter's and its interfaces' names. It does not
// allocate: names are the configuration's strings.
func (n *Names) Enrich(f *flow.Flow) {
	if n == nil {
		return
	}
	e := n.by[f.SamplerAddress]
	if e == nil {
		f.ExporterName, f.InIfName, f.OutIfName = "", "", ""
		return
	}
	f.ExporterName = e.Name
	f.InIfName = e.Interfaces[f.InIf]
	f.OutIfName = e.Interfaces[f.OutIf]
}

// Lookup returns the configured names of an exporter, if any.
func (n *Names) Lookup(a netip.Addr) (Exporter, bool) {
	if n == nil {
		return Exporter{}, false
	}
	e, ok := n.by[a.Unmap()]
	if !ok {
		return Exporter{}, false
	}
	return *e, true
}
