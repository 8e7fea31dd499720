package enrich

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"slices"
	"strings"
	"sync"

	"github.com/flowguard/flowguard/enrich/exporters"
	"github.com/flowguard/flowguard/enrich/geoip"
	"github.com/flowguard/flowguard/enrich/intel"
	"github.com/flowguard/flowguard/enrich/networks"
	"github.com/flowguard/flowguard/flow"
)

// Set is the built-in enrichers assembled from a Config, run in the order
// networks, geoip, intel. A Set is itself an Enricher, for the engine.
type Set struct {
	// Networks is always there (the default internal networks at least).
	Networks *networks.Networks
	// GeoIP is nil when no database is configured.
	GeoIP *geoip.DB
	// Intel is nil when no list is configured.
	Intel *intel.Lists
	// Exporters is nil when no exporter is named.
	Exporters *exporters.Names

	cfg   Config
	chain Chain
}

// Build loads everything cfg names. Errors name the field and the file;
// all are reported at once. No goroutine starts: call Run for reloads.
func Build(cfg Config, log *slog.Logger) (*Set, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	cfg.GeoIP = cfg.GeoIP.WithDefaults()
	cfg.Intel = cfg.Intel.WithDefaults()
	s := &Set{cfg: cfg}
	var errs []error
	var err error
	if s.Networks, err = networks.New(cfg.Networks); err != nil {
		errs = append(errs, prefixed("enrich.networks.", err)...)
	}
	if len(cfg.GeoIP.Databases) > 0 {
		if s.GeoIP, err = geoip.Open(cfg.GeoIP.Databases, log); err != nil {
			errs = append(errs, prefixed("enrich.geoip: ", err)...)
		}
	}
	if len(cfg.Intel.Lists) > 0 {
		if s.Intel, err = intel.Open(cfg.Intel.Lists, log); err != nil {
			errs = append(errs, prefixed("enrich.intel: ", err)...)
		}
	}
	if s.Exporters, err = exporters.New(cfg.Exporters); err != nil {
		errs = append(errs, prefixed("enrich.", err)...)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	s.chain = s.NewEnricher().(Chain)
	return s, nil
}

// Enrich runs the chain on f. Like any Enricher with a cache it is for one
// goroutine (the engine's); give other goroutines NewEnricher or Lookup.
func (s *Set) Enrich(f *flow.Flow) { s.chain.Enrich(f) }

// NewEnricher returns a chain of the Set's enrichers with a GeoIP cache of
// its own, for one more goroutine enriching flows. Databases and lists
// (and their reloads) are shared.
func (s *Set) NewEnricher() Enricher {
	c := Chain{s.Networks}
	if s.GeoIP != nil {
		c = append(c, s.GeoIP.NewEnricher(s.cfg.GeoIP.CacheSize))
	}
	if s.Intel != nil {
		c = append(c, s.Intel)
	}
	if s.Exporters != nil {
		c = append(c, s.Exporters)
	}
	return c
}

// Result is everything enrichment knows about one address: what flows get
// (the fields of the alert's enrichment) and where it comes from.
type Result struct {
	Address netip.Addr `json:"address"`

	// What src_ and dst_ fields get, named as in alerts' enrichment.
	Internal bool     `json:"internal"`
	Network  string   `json:"network,omitempty"`
	Country  string   `json:"country,omitempty"`
	City     string   `json:"city,omitempty"`
	ASN      uint32   `json:"asn,omitempty"`
	ASOrg    string   `json:"as_org,omitempty"`
	Lists    []string `json:"lists,omitempty"`

	// Why: the named network's prefix and attributes, each GeoIP
	// database's answer, each list entry holding the address.
	NetworkPrefix netip.Prefix      `json:"network_prefix,omitzero"`
	Attributes    map[string]string `json:"attributes,omitempty"`
	GeoIP         []geoip.Match     `json:"geoip,omitempty"`
	ListEntries   []intel.Match     `json:"list_entries,omitempty"`
}

// Lookup returns what enrichment knows about a, bypassing caches. It is
// safe for concurrent use (the lookup command, an HTTP handler).
func (s *Set) Lookup(a netip.Addr) Result {
	r := Result{Address: a}
	n := s.Networks.Lookup(a)
	r.Internal, r.Network, r.NetworkPrefix, r.Attributes = n.Internal, n.Network, n.Prefix, n.Attributes
	if s.GeoIP != nil {
		g := s.GeoIP.Lookup(a)
		r.Country, r.City, r.ASN, r.ASOrg = g.Country, g.City, g.ASN, g.ASOrg
		r.GeoIP = s.GeoIP.Matches(a)
	}
	if s.Intel != nil {
		r.Lists = s.Intel.Lookup(a)
		r.ListEntries = s.Intel.Matches(a)
	}
	return r
}

// Text renders r for people, one "key: value" a line.
func (r Result) Text() string {
	var b strings.Builder
	line := func(k, v string) {
		if v != "" {
			fmt.Fprintf(&b, "%-15s %s\n", k+":", v)
		}
	}
	line("address", r.Address.String())
	line("internal", fmt.Sprint(r.Internal))
	if r.Network != "" {
		line("network", fmt.Sprintf("%s (%s)", r.Network, r.NetworkPrefix))
		for _, k := range sortedKeys(r.Attributes) {
			line("  "+k, r.Attributes[k])
		}
	}
	line("country", r.Country)
	line("city", r.City)
	if r.ASN != 0 {
		line("asn", fmt.Sprintf("AS%d %s", r.ASN, r.ASOrg))
	}
	line("lists", strings.Join(r.Lists, ", "))
	for _, m := range r.GeoIP {
		line("geoip", fmt.Sprintf("%s %s (%s)", m.Network, m.Database, m.Type))
	}
	for _, m := range r.ListEntries {
		line("list entry", fmt.Sprintf("%s %s", m.List, m.Entry))
	}
	return b.String()
}

// Run reloads GeoIP databases and threat lists when their files change,
// polling at the configured intervals, until ctx is done.
func (s *Set) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	if s.GeoIP != nil {
		wg.Go(func() { s.GeoIP.Run(ctx, s.cfg.GeoIP.ReloadInterval) })
	}
	if s.Intel != nil {
		wg.Go(func() { s.Intel.Run(ctx, s.cfg.Intel.ReloadInterval) })
	}
	wg.Wait()
	return nil
}

// Reload checks every file once now (e.g. on SIGHUP), and returns what
// failed; what failed stays at its previous version.
func (s *Set) Reload() error {
	var errs []error
	if s.GeoIP != nil {
		errs = append(errs, s.GeoIP.Reload())
	}
	if s.Intel != nil {
		errs = append(errs, s.Intel.Reload())
	}
	return errors.Join(errs...)
}

// Stats are the counters of the enrichers, for metrics.
type Stats struct {
	GeoIP geoip.Stats
	Intel intel.Stats
}

// Stats returns the counters so far (zero for what is not configured).
func (s *Set) Stats() Stats {
	var st Stats
	if s.GeoIP != nil {
		st.GeoIP = s.GeoIP.Stats()
	}
	if s.Intel != nil {
		st.Intel = s.Intel.Stats()
	}
	return st
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

var _ Enricher = (*Set)(nil)
