// Package geoip fills the country, city, ASN and AS organisation of flow
// addresses from MaxMind DB (.mmdb) files: GeoLite2/GeoIP2 City, Country,
// ASN and ISP, and the DB-IP lite equivalents. The kind of each file is read
// from its metadata (database_type), so files may be given in any order.
//
// A DB holds the databases and reloads them when their files change, with
// no gap: readers see either the old set or the new one, swapped
// atomically. A file that fails to load on reload leaves the previous
// database in service. An Enricher puts a bounded cache in front of a DB
// for the engine's hot path.
package geoip

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/oschwald/maxminddb-golang/v2"

	"github.com/flowguard/flowguard/enrich/internal/filewatch"
)

// Kind is what a database knows, derived from its database_type.
type Kind string

// Database kinds.
const (
	KindCity    Kind = "city"    // country and city (GeoLite2-City, GeoIP2-City, GeoIP2-Enterprise)
	KindCountry Kind = "country" // country only (GeoLite2-Country, GeoIP2-Country)
	KindASN     Kind = "asn"     // AS number and organisation (GeoLite2-ASN, GeoIP2-ISP)
)

// KindOf maps a database_type from the metadata to a Kind.
func KindOf(databaseType string) (Kind, error) {
	t := strings.ToLower(databaseType)
	switch {
	case strings.Contains(t, "asn"), strings.Contains(t, "isp"):
		return KindASN, nil
	case strings.Contains(t, "city"), strings.Contains(t, "enterprise"):
		return KindCity, nil
	case strings.Contains(t, "country"):
		return KindCountry, nil
	}
	return "", fmt.Errorf("unsupported database type %q (want a City, Country, ASN or ISP database)", databaseType)
}

// Info is what the databases say about one address. Empty fields are
// unknown.
type Info struct {
	Country string `json:"country,omitempty"` // ISO 3166-1 alpha-2 code
	City    string `json:"city,omitempty"`    // English name
	ASN     uint32 `json:"asn,omitempty"`
	ASOrg   string `json:"as_org,omitempty"`
}

// Match is one database's answer for an address, for `flowguard lookup`.
type Match struct {
	Database string       `json:"database"` // file path
	Type     string       `json:"type"`     // database_type from the metadata
	Network  netip.Prefix `json:"network"`  // the database's network holding the address
	Info
}

// DatabaseInfo describes one loaded database.
type DatabaseInfo struct {
	Path     string    `json:"path"`
	Type     string    `json:"type"`
	Kind     Kind      `json:"kind"`
	Built    time.Time `json:"built"`
	LoadedAt time.Time `json:"loaded_at"`
}

// Stats are cumulative counters, for metrics.
type Stats struct {
	CacheHits    uint64 // Enricher lookups answered by the cache
	CacheMisses  uint64 // Enricher lookups that went to the databases
	Lookups      uint64 // lookups in the databases (misses and uncached Lookup calls)
	LookupErrors uint64 // lookups a database failed to decode
	Reloads      uint64 // databases reloaded after their file changed
	ReloadErrors uint64 // reloads that failed (the previous database stayed)
}

// DB is a set of MaxMind databases, safe for concurrent use.
type DB struct {
	log   *slog.Logger
	state atomic.Pointer[state]

	mu    sync.Mutex // serialises Reload
	files []*file    // as given to Open, guarded by mu

	cacheHits, cacheMisses, lookups, lookupErrors, reloads, reloadErrors atomic.Uint64
}

// state is one immutable generation of databases; gen invalidates caches.
type state struct {
	gen uint32
	dbs []*database
}

type file struct {
	path    string
	loaded  filewatch.Stamp // what is in service
	failed  filewatch.Stamp // last version that failed to load: not retried
	missing bool
}

type database struct {
	path     string
	kind     Kind
	typ      string
	built    time.Time
	loadedAt time.Time
	v4only   bool
	r        *maxminddb.Reader
}

// Open loads the databases at paths. An error names the file that is
// missing, unreadable, not a MaxMind DB or of an unsupported kind.
func Open(paths []string, log *slog.Logger) (*DB, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	db := &DB{log: log}
	st := &state{gen: 1}
	var errs []error
	for _, p := range paths {
		stamp, err := filewatch.Stat(p)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		d, err := load(p, false)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		db.files = append(db.files, &file{path: p, loaded: stamp})
		st.dbs = append(st.dbs, d)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	db.state.Store(st)
	return db, nil
}

// load reads a whole database into memory. The file is not mapped: an
// update written in place (not renamed over) cannot change the bytes under
// a reader in service, and an old reader is simply garbage once swapped
// out, even while a lookup still uses it. verify walks the whole file, to
// catch a corrupt or half-written update before it goes into service.
func load(path string, verify bool) (*database, error) {
	buf, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	r, err := maxminddb.OpenBytes(buf)
	if err != nil {
		return nil, fmt.Errorf("%s: not a MaxMind DB file: %w", path, err)
	}
	kind, err := KindOf(r.Metadata.DatabaseType)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if verify {
		if err := r.Verify(); err != nil {
			return nil, fmt.Errorf("%s: corrupt %s database: %w", path, r.Metadata.DatabaseType, err)
		}
	}
	d := &database{
		path:     path,
		kind:     kind,
		typ:      r.Metadata.DatabaseType,
		built:    r.Metadata.BuildTime().UTC(),
		loadedAt: time.Now(),
		v4only:   r.Metadata.IPVersion == 4,
		r:        r,
	}
	// A probe catches a file whose metadata reads but whose tree or data
	// section does not.
	var info Info
	if _, err := d.lookup(netip.AddrFrom4([4]byte{8, 8, 8, 8}), &info); err != nil {
		return nil, fmt.Errorf("%s: corrupt %s database: %w", path, d.typ, err)
	}
	return d, nil
}

// Records decoded: only the fields flowguard uses, so decoding skips the
// rest of each record (localised names, subdivisions, location...).
type isoCode struct {
	ISOCode string `maxminddb:"iso_code"`
}

type geoRecord struct {
	City struct {
		Names struct {
			EN string `maxminddb:"en"`
		} `maxminddb:"names"`
	} `maxminddb:"city"`
	Country           isoCode   `maxminddb:"country"`
	RegisteredCountry isoCode   `maxminddb:"registered_country"`
	Traits            asnRecord `maxminddb:"traits"` // GeoIP2-Enterprise
}

type asnRecord struct {
	ASN   uint32 `maxminddb:"autonomous_system_number"`
	ASOrg string `maxminddb:"autonomous_system_organization"`
}

// lookup fills the empty fields of info with what d knows of a.
func (d *database) lookup(a netip.Addr, info *Info) (netip.Prefix, error) {
	if d.v4only && !a.Is4() {
		return netip.Prefix{}, nil
	}
	res := d.r.Lookup(a)
	if err := res.Err(); err != nil || !res.Found() {
		return netip.Prefix{}, err
	}
	switch d.kind {
	case KindASN:
		var rec asnRecord
		if err := res.Decode(&rec); err != nil {
			return netip.Prefix{}, err
		}
		fillASN(info, rec)
	default:
		var rec geoRecord
		if err := res.Decode(&rec); err != nil {
			return netip.Prefix{}, err
		}
		if info.Country == "" {
			// registered_country stands in where the address has no
			// country of its own (anycast, some EU-wide networks).
			info.Country = rec.Country.ISOCode
			if info.Country == "" {
				info.Country = rec.RegisteredCountry.ISOCode
			}
		}
		if info.City == "" {
			info.City = rec.City.Names.EN
		}
		fillASN(info, rec.Traits)
	}
	return res.Prefix(), nil
}

func fillASN(info *Info, rec asnRecord) {
	if info.ASN == 0 && rec.ASN != 0 {
		info.ASN, info.ASOrg = rec.ASN, rec.ASOrg
	}
}

// lookup asks every database in turn; the first to know a field wins.
func (db *DB) lookup(st *state, a netip.Addr) Info {
	db.lookups.Add(1)
	a = a.Unmap()
	var info Info
	for _, d := range st.dbs {
		if _, err := d.lookup(a, &info); err != nil {
			db.lookupErrors.Add(1)
		}
	}
	return info
}

// Lookup returns what the databases know of a, without cache. It is safe
// for concurrent use, e.g. by the lookup command or an HTTP handler.
func (db *DB) Lookup(a netip.Addr) Info {
	if !a.IsValid() {
		return Info{}
	}
	return db.lookup(db.state.Load(), a)
}

// Matches returns each database's own answer for a, with the network that
// holds it, to explain a lookup. Databases that do not know a are left out.
func (db *DB) Matches(a netip.Addr) []Match {
	var out []Match
	if !a.IsValid() {
		return out
	}
	a = a.Unmap()
	for _, d := range db.state.Load().dbs {
		var info Info
		p, err := d.lookup(a, &info)
		if err != nil || !p.IsValid() {
			continue
		}
		out = append(out, Match{Database: d.path, Type: d.typ, Network: p, Info: info})
	}
	return out
}

// Databases describes the databases in service, in the order given.
func (db *DB) Databases() []DatabaseInfo {
	st := db.state.Load()
	out := make([]DatabaseInfo, len(st.dbs))
	for i, d := range st.dbs {
		out[i] = DatabaseInfo{Path: d.path, Type: d.typ, Kind: d.kind, Built: d.built, LoadedAt: d.loadedAt}
	}
	return out
}

// Stats returns the counters so far.
func (db *DB) Stats() Stats {
	return Stats{
		CacheHits:    db.cacheHits.Load(),
		CacheMisses:  db.cacheMisses.Load(),
		Lookups:      db.lookups.Load(),
		LookupErrors: db.lookupErrors.Load(),
		Reloads:      db.reloads.Load(),
		ReloadErrors: db.reloadErrors.Load(),
	}
}

// Reload loads the databases whose file changed since the last look (size,
// modification time or inode) and swaps them in at once. A file that is
// missing or fails to load is logged and counted, and the database loaded
// before stays in service; the error names the file. A version that failed
// is not tried again until the file changes once more.
func (db *DB) Reload() error {
	db.mu.Lock()
	defer db.mu.Unlock()
	cur := db.state.Load()
	var next *state
	var errs []error
	for i, f := range db.files {
		stamp, err := filewatch.Stat(f.path)
		if err != nil {
			if !f.missing {
				f.missing = true
				db.reloadErrors.Add(1)
				db.log.Error("geoip: database file gone, keeping the loaded one", "file", f.path, "err", err)
			}
			errs = append(errs, err)
			continue
		}
		f.missing = false
		if !stamp.Changed(f.loaded) || !stamp.Changed(f.failed) {
			continue
		}
		d, err := load(f.path, true)
		if err != nil {
			f.failed = stamp
			db.reloadErrors.Add(1)
			db.log.Error("geoip: database reload failed, keeping the previous one", "file", f.path, "err", err)
			errs = append(errs, err)
			continue
		}
		if next == nil {
			next = &state{gen: cur.gen + 1, dbs: append([]*database(nil), cur.dbs...)}
		}
		next.dbs[i] = d
		f.loaded, f.failed = stamp, filewatch.Stamp{}
		db.reloads.Add(1)
		db.log.Info("geoip: database reloaded", "file", f.path, "type", d.typ, "built", d.built)
	}
	if next != nil {
		db.state.Store(next)
	}
	return errors.Join(errs...)
}

// Run polls the files every interval and reloads those that changed, until
// ctx is done. A non-positive interval disables polling.
func (db *DB) Run(ctx context.Context, interval time.Duration) error {
	return filewatch.Poll(ctx, interval, db.Reload) // Reload logs and counts failures
}
