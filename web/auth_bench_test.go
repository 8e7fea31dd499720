package web

import (
	"net/http"
	"testing"
)

// A request with a bearer token: one SHA-256 and constant-time compares.
func BenchmarkBearerCheck(b *testing.B) {
	tok, hash, _ := NewToken()
	a, err := newAuthenticator(&Config{BearerTokens: []string{hash}})
	if err != nil {
		b.Fatal(err)
	}
	r, _ := http.NewRequest("GET", "/metrics", nil)
	r.Header.Set("Authorization", "Bearer "+tok)
	b.ReportAllocs()
	for b.Loop() {
		if ok, _ := a.check(r); !ok {
			b.Fatal("refused")
		}
	}
}

// A scrape with basic auth once the verdict is cached: no bcrypt.
func BenchmarkBasicCached(b *testing.B) {
	h, _ := HashPassword("scrape-password", 10)
	a, err := newAuthenticator(&Config{BasicAuthUsers: map[string]string{"prometheus": h}})
	if err != nil {
		b.Fatal(err)
	}
	r, _ := http.NewRequest("GET", "/metrics", nil)
	r.SetBasicAuth("prometheus", "scrape-password")
	a.check(r)
	b.ReportAllocs()
	for b.Loop() {
		if ok, _ := a.check(r); !ok {
			b.Fatal("refused")
		}
	}
}

// The same scrape without the cache: what every request would cost.
func BenchmarkBasicUncached(b *testing.B) {
	h, _ := HashPassword("scrape-password", 10)
	r, _ := http.NewRequest("GET", "/metrics", nil)
	r.SetBasicAuth("prometheus", "scrape-password")
	a, err := newAuthenticator(&Config{BasicAuthUsers: map[string]string{"prometheus": h}})
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		clear(a.cache)
		if ok, _ := a.check(r); !ok {
			b.Fatal("refused")
		}
	}
}
