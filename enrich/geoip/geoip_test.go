package geoip

import (
	"bytes"
	"context"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/flowguard/flowguard/enrich/geoip/geoiptest"
	"github.com/flowguard/flowguard/flow"
)

var addr = netip.MustParseAddr

func writeDB(t *testing.T, path, typ string, nets []geoiptest.Network) {
	t.Helper()
	if err := geoiptest.Write(path, typ, nets); err != nil {
		t.Fatal(err)
	}
}

// touch makes sure a rewrite is seen even within the file system's clock
// granularity.
func touch(t *testing.T, path string, age time.Duration) {
	t.Helper()
	mt := time.Now().Add(age)
	if err := os.Chtimes(path, mt, mt); err != nil {
		t.Fatal(err)
	}
}

func TestLookupCityCountryASN(t *testing.T) {
	dir := t.TempDir()
	city := filepath.Join(dir, "city.mmdb")
	country := filepath.Join(dir, "country.mmdb")
	asn := filepath.Join(dir, "asn.mmdb")
	writeDB(t, city, "GeoIP2-City", []geoiptest.Network{
		{Prefix: "192.0.2.0/24", Country: "DE", City: "Berlin"},
		{Prefix: "2001:db8::/32", Country: "NL", City: "Amsterdam"},
	})
	writeDB(t, country, geoiptest.TypeCountry, []geoiptest.Network{
		{Prefix: "192.0.2.0/24", Country: "FR"}, // the City file comes first and wins
		{Prefix: "198.51.100.0/24", Country: "GB"},
	})
	writeDB(t, asn, geoiptest.TypeASN, []geoiptest.Network{
		{Prefix: "192.0.2.0/25", ASN: 64500, ASOrg: "Example Org"},
		{Prefix: "2001:db8:1::/48", ASN: 64501, ASOrg: "Six Org"},
	})
	// Any order: the kind comes from the metadata.
	db, err := Open([]string{asn, city, country}, nil)
	if err != nil {
		t.Fatal(err)
	}
	kinds := []Kind{}
	for _, d := range db.Databases() {
		kinds = append(kinds, d.Kind)
		if d.Built.Unix() != geoiptest.BuildEpoch {
			t.Errorf("%s built %v", d.Path, d.Built)
		}
	}
	if strings.Join([]string{string(kinds[0]), string(kinds[1]), string(kinds[2])}, ",") != "asn,city,country" {
		t.Errorf("kinds = %v", kinds)
	}
	for _, tc := range []struct {
		addr string
		want Info
	}{
		{"192.0.2.1", Info{Country: "DE", City: "Berlin", ASN: 64500, ASOrg: "Example Org"}},
		{"::ffff:192.0.2.1", Info{Country: "DE", City: "Berlin", ASN: 64500, ASOrg: "Example Org"}},
		{"192.0.2.200", Info{Country: "DE", City: "Berlin"}},
		{"198.51.100.9", Info{Country: "GB"}},
		{"203.0.113.1", Info{}},
		{"2001:db8:1::5", Info{Country: "NL", City: "Amsterdam", ASN: 64501, ASOrg: "Six Org"}},
		{"2001:db8:2::5", Info{Country: "NL", City: "Amsterdam"}},
	} {
		if got := db.Lookup(addr(tc.addr)); got != tc.want {
			t.Errorf("Lookup(%s) = %+v, want %+v", tc.addr, got, tc.want)
		}
	}
	if got := db.Lookup(netip.Addr{}); got != (Info{}) {
		t.Errorf("Lookup(invalid) = %+v", got)
	}
	m := db.Matches(addr("192.0.2.1"))
	if len(m) != 3 || m[0].Network != netip.MustParsePrefix("192.0.2.0/25") || m[2].Country != "FR" {
		t.Errorf("Matches = %+v", m)
	}
}

func TestOpenErrorsNameTheFile(t *testing.T) {
	dir := t.TempDir()
	garbage := filepath.Join(dir, "garbage.mmdb")
	os.WriteFile(garbage, []byte("not a database"), 0o644)
	odd := filepath.Join(dir, "odd.mmdb")
	writeDB(t, odd, "Acme-Weather", []geoiptest.Network{{Prefix: "192.0.2.0/24", Country: "DE"}})
	missing := filepath.Join(dir, "missing.mmdb")
	_, err := Open([]string{missing, garbage, odd}, nil)
	if err == nil {
		t.Fatal("no error")
	}
	for _, want := range []string{
		missing + ": no such file",
		garbage + ": not a MaxMind DB file",
		odd + `: unsupported database type "Acme-Weather"`,
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
}

func TestDemoDatabases(t *testing.T) {
	db, err := Open([]string{"testdata/" + geoiptest.DemoCityFile, "testdata/" + geoiptest.DemoASNFile}, nil)
	if err != nil {
		t.Fatal(err)
	}
	for a, want := range map[string]Info{
		"127.0.0.1":   {Country: "US", City: "Ashburn", ASN: 64500, ASOrg: "Example Org"},
		"127.0.0.5":   {Country: "KP", City: "Pyongyang", ASN: 64500, ASOrg: "Example Org"},
		"127.0.0.7":   {Country: "RU", City: "Moscow", ASN: 64500, ASOrg: "Example Org"},
		"127.0.1.9":   {Country: "US", City: "Ashburn", ASN: 64500, ASOrg: "Example Org"},
		"192.0.2.1":   {Country: "DE", City: "Frankfurt am Main", ASN: 64501, ASOrg: "Documentation One"},
		"2001:db8::1": {Country: "NL", City: "Amsterdam", ASN: 64504, ASOrg: "Documentation Six"},
		"10.0.0.1":    {},
	} {
		if got := db.Lookup(addr(a)); got != want {
			t.Errorf("Lookup(%s) = %+v, want %+v", a, got, want)
		}
	}
	// The committed files are what the generator writes today.
	dir := t.TempDir()
	city, asn, err := geoiptest.WriteDemo(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{city, asn} {
		got, _ := os.ReadFile(p)
		want, _ := os.ReadFile(filepath.Join("testdata", filepath.Base(p)))
		if !bytes.Equal(got, want) {
			t.Errorf("testdata/%s is stale: run go generate ./enrich/geoip", filepath.Base(p))
		}
	}
}

func TestEnricherCache(t *testing.T) {
	dir := t.TempDir()
	city := filepath.Join(dir, "city.mmdb")
	writeDB(t, city, geoiptest.TypeCity, []geoiptest.Network{{Prefix: "192.0.2.0/24", Country: "DE", City: "Berlin"}})
	db, err := Open([]string{city}, nil)
	if err != nil {
		t.Fatal(err)
	}
	e := db.NewEnricher(64)
	f := flow.Flow{SrcAddr: addr("192.0.2.1"), DstAddr: addr("198.51.100.1"), DstCountry: "stale"}
	e.Enrich(&f)
	if f.SrcCountry != "DE" || f.SrcCity != "Berlin" || f.DstCountry != "" {
		t.Errorf("flow = %+v", f)
	}
	if s := db.Stats(); s.CacheHits != 0 || s.CacheMisses != 2 || s.Lookups != 2 {
		t.Errorf("after first flow: %+v", s)
	}
	for range 10 {
		e.Enrich(&f)
	}
	e.Flush()
	if s := db.Stats(); s.CacheHits != 20 || s.CacheMisses != 2 || s.Lookups != 2 {
		t.Errorf("after eleven flows: %+v", s)
	}
	// Two ways a set: a third address in the same set evicts the least
	// recently used one; the cache never grows.
	var same []netip.Addr
	for i := 0; len(same) < 3; i++ {
		a := netip.AddrFrom4([4]byte{10, 0, byte(i >> 8), byte(i)})
		if e.index(a) == 0 {
			same = append(same, a)
		}
	}
	e.Flush()
	before := db.Stats()
	e.Lookup(same[0])
	e.Lookup(same[1])
	e.Lookup(same[0]) // hit; same[1] is now the least recent
	e.Lookup(same[2]) // evicts same[1]
	e.Lookup(same[0]) // hit
	e.Lookup(same[1]) // miss
	e.Flush()
	s := db.Stats()
	if hits, misses := s.CacheHits-before.CacheHits, s.CacheMisses-before.CacheMisses; hits != 2 || misses != 4 {
		t.Errorf("set of two ways: %d hits, %d misses, want 2 and 4", hits, misses)
	}
	if n := testing.AllocsPerRun(100, func() { e.Enrich(&f) }); n != 0 {
		t.Errorf("Enrich with a warm cache allocates %v times", n)
	}
}

func TestReload(t *testing.T) {
	dir := t.TempDir()
	city := filepath.Join(dir, "city.mmdb")
	asn := filepath.Join(dir, "asn.mmdb")
	writeDB(t, city, geoiptest.TypeCity, []geoiptest.Network{{Prefix: "192.0.2.0/24", Country: "DE", City: "Berlin"}})
	writeDB(t, asn, geoiptest.TypeASN, []geoiptest.Network{{Prefix: "192.0.2.0/24", ASN: 64500, ASOrg: "Example Org"}})
	touch(t, city, -time.Hour)
	var logs bytes.Buffer
	var mu sync.Mutex
	db, err := Open([]string{city, asn}, slog.New(slog.NewTextHandler(lockedWriter{&logs, &mu}, nil)))
	if err != nil {
		t.Fatal(err)
	}
	e := db.NewEnricher(1024)
	a := addr("192.0.2.1")
	if got := e.Lookup(a); got.Country != "DE" || got.ASN != 64500 {
		t.Fatalf("before reload: %+v", got)
	}
	if err := db.Reload(); err != nil || db.Stats().Reloads != 0 {
		t.Fatalf("unchanged files reloaded: %v %+v", err, db.Stats())
	}

	// An update, written over the file (as an edit in place would).
	writeDB(t, city, geoiptest.TypeCity, []geoiptest.Network{{Prefix: "192.0.2.0/24", Country: "AT", City: "Vienna"}})
	touch(t, city, -time.Minute)
	if err := db.Reload(); err != nil {
		t.Fatal(err)
	}
	if got := e.Lookup(a); got.Country != "AT" || got.City != "Vienna" || got.ASN != 64500 {
		t.Errorf("after reload the cache still says %+v", got)
	}

	// A corrupt update (truncated): the previous database stays.
	good, _ := os.ReadFile(city)
	os.WriteFile(city, good[:len(good)/2], 0o644)
	if err := db.Reload(); err == nil || !strings.Contains(err.Error(), city) {
		t.Errorf("corrupt reload: error %v", err)
	}
	if got := e.Lookup(a); got.Country != "AT" {
		t.Errorf("after a corrupt reload: %+v", got)
	}
	// A corrupt file whose metadata still reads: Verify catches it.
	bad := append([]byte(nil), good...)
	for i := 0; i < len(bad)/3; i++ {
		bad[i] = 0xff
	}
	os.WriteFile(city, bad, 0o644)
	touch(t, city, -time.Second)
	if err := db.Reload(); err == nil {
		t.Error("reload of a scrambled tree succeeded")
	}
	if got := e.Lookup(a); got.Country != "AT" {
		t.Errorf("after a scrambled reload: %+v", got)
	}
	// The same bad version is not tried (nor logged) again.
	if err := db.Reload(); err != nil {
		t.Errorf("bad version retried: %v", err)
	}
	// A missing file keeps the database too.
	os.Remove(asn)
	db.Reload()
	if got := e.Lookup(a); got.ASN != 64500 {
		t.Errorf("after the ASN file went: %+v", got)
	}
	s := db.Stats()
	if s.Reloads != 1 || s.ReloadErrors != 3 {
		t.Errorf("stats %+v, want 1 reload and 3 errors", s)
	}
	mu.Lock()
	if !strings.Contains(logs.String(), "keeping the previous one") || !strings.Contains(logs.String(), "file="+city) {
		t.Errorf("logs:\n%s", logs.String())
	}
	mu.Unlock()

	// Run polls: a good file comes back into service.
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- db.Run(ctx, 5*time.Millisecond) }()
	writeDB(t, city, geoiptest.TypeCity, []geoiptest.Network{{Prefix: "192.0.2.0/24", Country: "CH", City: "Zurich"}})
	deadline := time.Now().Add(5 * time.Second)
	for db.Lookup(a).Country != "CH" && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	// Lookups from other goroutines while Run swaps databases.
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for range 1000 {
				db.Lookup(a)
			}
		})
	}
	wg.Wait()
	cancel()
	if err := <-done; err != nil {
		t.Error(err)
	}
	if got := e.Lookup(a); got.Country != "CH" {
		t.Errorf("polling did not reload: %+v", got)
	}
}

type lockedWriter struct {
	b  *bytes.Buffer
	mu *sync.Mutex
}

func (w lockedWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}

func TestValidate(t *testing.T) {
	err := Config{Databases: []string{"testdata/" + geoiptest.DemoCityFile, "/nonexistent/x.mmdb", "", "testdata/" + geoiptest.DemoCityFile}, CacheSize: -1}.Validate()
	for _, want := range []string{
		"databases[1]: open /nonexistent/x.mmdb: no such file",
		"databases[2]: empty path",
		"databases[3]: testdata/" + geoiptest.DemoCityFile + " already listed as databases[0]",
		"cache_size: -1",
	} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v lacks %q", err, want)
		}
	}
	if err := (Config{}).Validate(); err != nil {
		t.Error(err)
	}
}
