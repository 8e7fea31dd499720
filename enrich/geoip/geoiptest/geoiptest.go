// Package geoiptest writes small MaxMind DB files for tests, laid out like
// the GeoLite2 City, Country and ASN databases, so no real database is
// needed (or downloaded) to test enrichment end to end.
//
// Demo is a set covering the loopback range that flowguard's demo captures
// use, and the documentation ranges; WriteDemo writes it as a City and an
// ASN database. The same files are committed in enrich/geoip/testdata
// (regenerate with `go generate ./enrich/geoip`).
package geoiptest

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"

	"github.com/maxmind/mmdbwriter"
	"github.com/maxmind/mmdbwriter/mmdbtype"
)

// Network is one entry of a test database. Inserted in order: a later,
// narrower network overrides part of an earlier, wider one.
type Network struct {
	Prefix  string // CIDR
	Country string // ISO code
	City    string // English name
	ASN     uint32
	ASOrg   string
}

// Database types, as the real files carry them in their metadata.
const (
	TypeCity    = "GeoLite2-City"
	TypeCountry = "GeoLite2-Country"
	TypeASN     = "GeoLite2-ASN"
)

// BuildEpoch is the build time written in the metadata (2026-01-01), fixed
// so that the same input gives the same bytes.
const BuildEpoch = 1767225600

// Demo maps the loopback range to the United States and AS64500, except
// 127.0.0.5 (the demo captures' port scanner) in North Korea and 127.0.0.7
// (the demo's uploader) in Russia; the documentation ranges get a country,
// city and AS each.
var Demo = []Network{
	{Prefix: "127.0.0.0/8", Country: "US", City: "Ashburn", ASN: 64500, ASOrg: "Example Org"},
	{Prefix: "127.0.0.5/32", Country: "KP", City: "Pyongyang", ASN: 64500, ASOrg: "Example Org"},
	{Prefix: "127.0.0.7/32", Country: "RU", City: "Moscow", ASN: 64500, ASOrg: "Example Org"},
	{Prefix: "192.0.2.0/24", Country: "DE", City: "Frankfurt am Main", ASN: 64501, ASOrg: "Documentation One"},
	{Prefix: "198.51.100.0/24", Country: "GB", City: "London", ASN: 64502, ASOrg: "Documentation Two"},
	{Prefix: "203.0.113.0/24", Country: "CN", City: "Beijing", ASN: 64503, ASOrg: "Documentation Three"},
	{Prefix: "2001:db8::/32", Country: "NL", City: "Amsterdam", ASN: 64504, ASOrg: "Documentation Six"},
}

// Demo file names, as WriteDemo writes them.
const (
	DemoCityFile = "flowguard-test-City.mmdb"
	DemoASNFile  = "flowguard-test-ASN.mmdb"
)

// WriteDemo writes Demo as a City and an ASN database into dir and
// returns their paths.
func WriteDemo(dir string) (city, asn string, err error) {
	city, asn = filepath.Join(dir, DemoCityFile), filepath.Join(dir, DemoASNFile)
	if err := Write(city, TypeCity, Demo); err != nil {
		return "", "", err
	}
	if err := Write(asn, TypeASN, Demo); err != nil {
		return "", "", err
	}
	return city, asn, nil
}

// Write writes nets to path as a database of the given type: a type with
// "ASN" in it gets ASN records, one with "Country" country records, any
// other City records (country and city).
func Write(path, databaseType string, nets []Network) error {
	w, err := mmdbwriter.New(mmdbwriter.Options{
		DatabaseType:            databaseType,
		Description:             map[string]string{"en": "flowguard test database"},
		Languages:               []string{"en"},
		IncludeReservedNetworks: true,
		RecordSize:              24,
		BuildEpoch:              BuildEpoch,
	})
	if err != nil {
		return err
	}
	for _, n := range nets {
		_, ipnet, err := net.ParseCIDR(n.Prefix)
		if err != nil {
			return err
		}
		if err := w.Insert(ipnet, record(databaseType, n)); err != nil {
			return fmt.Errorf("%s: %w", n.Prefix, err)
		}
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := w.WriteTo(f); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func record(databaseType string, n Network) mmdbtype.Map {
	if strings.Contains(databaseType, "ASN") {
		return mmdbtype.Map{
			"autonomous_system_number":       mmdbtype.Uint32(n.ASN),
			"autonomous_system_organization": mmdbtype.String(n.ASOrg),
		}
	}
	country := mmdbtype.Map{
		"iso_code": mmdbtype.String(n.Country),
		"names":    mmdbtype.Map{"en": mmdbtype.String(n.Country)},
	}
	m := mmdbtype.Map{
		"country":            country,
		"registered_country": country,
		"continent":          mmdbtype.Map{"code": mmdbtype.String("XX")},
	}
	if !strings.Contains(databaseType, "Country") && n.City != "" {
		m["city"] = mmdbtype.Map{"names": mmdbtype.Map{"en": mmdbtype.String(n.City)}}
		m["location"] = mmdbtype.Map{"latitude": mmdbtype.Float64(0), "longitude": mmdbtype.Float64(0)}
	}
	return m
}
