package main

import (
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"strings"

	"github.com/flowguard/flowguard/enrich"
	"github.com/flowguard/flowguard/enrich/networks"
)

const lookupSynopsis = `flowguard lookup [-c FILE] [--geoip FILE.mmdb]... [--format text|json] ADDRESS...

Prints what enrichment says of each address: internal or not, named
network, country, city, ASN and organisation, threat lists, and where each
answer came from. The databases, networks and lists are the config's;
--geoip adds (or, without -c, gives) MaxMind databases of any kind.`

func cmdLookup(args []string, out, errw io.Writer) error {
	fs := newFlagSet("lookup", lookupSynopsis, out, errw)
	cfgPath := fs.String("c", "", "config file whose enrich section to use")
	var dbs listFlag
	fs.Var(&dbs, "geoip", "a MaxMind .mmdb database (repeatable; City, Country or ASN)")
	format := fs.String("format", "text", "text or json")
	addrs, err := parseInterleaved(fs, args)
	if err != nil {
		return err
	}
	if len(addrs) == 0 {
		fs.Usage()
		return usagef("lookup: no address given")
	}
	if *format != "text" && *format != "json" {
		return usagef("lookup: --format %q is not text or json", *format)
	}
	var parsed []netip.Addr
	for _, s := range addrs {
		a, err := netip.ParseAddr(s)
		if err != nil {
			return usagef("lookup: %q is not an IP address", s)
		}
		parsed = append(parsed, a)
	}
	cfg, err := loadConfig(*cfgPath)
	if err != nil {
		return err
	}
	ec := cfg.Enrich
	ec.GeoIP.Databases = append(ec.GeoIP.Databases, dbs...)
	set, err := enrich.Build(ec, slog.New(slog.NewTextHandler(errw, nil)))
	if err != nil {
		return usageError{err}
	}
	for _, n := range lookupNotes(set, *cfgPath) {
		fmt.Fprintln(errw, "flowguard lookup:", n)
	}
	for i, a := range parsed {
		r := set.Lookup(a)
		if *format == "json" {
			b, err := json.Marshal(r)
			if err != nil {
				return err
			}
			fmt.Fprintf(out, "%s\n", b)
			continue
		}
		if i > 0 {
			fmt.Fprintln(out)
		}
		fmt.Fprint(out, r.Text())
	}
	return nil
}

// lookupNotes says, for stderr, what the answers lack: without a GeoIP
// database there is no country, city or ASN; without lists, no list entry;
// without a config, internal means the default networks.
func lookupNotes(set *enrich.Set, cfgPath string) []string {
	var notes []string
	if cfgPath == "" {
		notes = append(notes, "no config (-c): internal means the default networks ("+strings.Join(networks.DefaultInternal, ", ")+"; loopback is not internal)")
	}
	if set.GeoIP == nil {
		notes = append(notes, "no GeoIP database (--geoip FILE.mmdb, or enrich.geoip.databases in the config): no country, city or ASN")
	}
	if set.Intel == nil {
		notes = append(notes, "no threat list (enrich.intel.lists in the config): no list is checked")
	}
	return notes
}
