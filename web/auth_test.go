package web

import (
	"io"
	"net/http"
	"strings"
	"testing"

	"golang.org/x/crypto/bcrypt"
)

func mustHash(t *testing.T, pass string) string {
	t.Helper()
	h, err := bcrypt.GenerateFromPassword([]byte(pass), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	return string(h)
}

// request sends GET path with the given Authorization header ("" none)
// and returns the status and WWW-Authenticate header.
func request(t *testing.T, base, path, auth string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest("GET", base+path, nil)
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode, resp.Header.Get("WWW-Authenticate")
}

func basic(user, pass string) string {
	r, _ := http.NewRequest("GET", "/", nil)
	r.SetBasicAuth(user, pass)
	return r.Header.Get("Authorization")
}

func TestBasicAuth(t *testing.T) {
	s := newServer(t, Config{
		BasicAuthUsers: map[string]string{"alice": mustHash(t, "correct horse"), "bob": mustHash(t, "battery")},
		OpenPaths:      []string{"/healthz"},
	})
	base := "http://" + serve(t, s, toyMux(nil, nil))
	for _, c := range []struct {
		name, path, auth string
		want             int
	}{
		{"good", "/api/thing", basic("alice", "correct horse"), 200},
		{"good again (cached)", "/api/thing", basic("alice", "correct horse"), 200},
		{"other user", "/api/thing", basic("bob", "battery"), 200},
		{"wrong password", "/api/thing", basic("alice", "correct horse!"), 401},
		{"another user's password", "/api/thing", basic("bob", "correct horse"), 401},
		{"unknown user", "/api/thing", basic("mallory", "correct horse"), 401},
		{"missing", "/api/thing", "", 401},
		{"bearer when only basic is configured", "/api/thing", "Bearer x", 401},
		{"garbage", "/api/thing", "Basic !!!", 401},
		{"open path without credentials", "/healthz", "", 200},
		{"not open: a prefix of an open path does not count", "/healthz/x", "", 401},
	} {
		code, challenge := request(t, base, c.path, c.auth)
		if code != c.want {
			t.Errorf("%s: %d, want %d", c.name, code, c.want)
		}
		if code == 401 && !strings.HasPrefix(challenge, "Basic ") {
			t.Errorf("%s: WWW-Authenticate %q", c.name, challenge)
		}
	}
	if got := metricOf(t, s, "flowguard_http_auth_failures_total"); got != 7 {
		t.Errorf("auth failures counted %v, want 7", got)
	}
	// Two good users, three wrong pairs checked by bcrypt (garbage never
	// reaches it): every verdict remembered once.
	if n := len(s.auth.cache); n != 5 {
		t.Errorf("%d cached verdicts, want 5", n)
	}
}

// Guessing many passwords cannot grow the verdict cache past its bound.
func TestAuthCacheBounded(t *testing.T) {
	a, err := newAuthenticator(&Config{BasicAuthUsers: map[string]string{"alice": mustHash(t, "pw")}})
	if err != nil {
		t.Fatal(err)
	}
	a.cacheSize = 16 // the bound works the same at 1,024; bcrypt under -race is slow
	for i := range 3 * a.cacheSize {
		r, _ := http.NewRequest("GET", "/", nil)
		r.SetBasicAuth("alice", strings.Repeat("g", i+1))
		if ok, _ := a.check(r); ok {
			t.Fatal("a wrong password passed")
		}
		if len(a.cache) > a.cacheSize {
			t.Fatalf("%d cached verdicts after %d guesses, over %d", len(a.cache), i+1, a.cacheSize)
		}
	}
	r, _ := http.NewRequest("GET", "/", nil)
	r.SetBasicAuth("alice", "pw")
	if ok, _ := a.check(r); !ok {
		t.Fatal("the right password fails after a guessing storm")
	}
}

func TestBearerTokens(t *testing.T) {
	tok, hash, err := NewToken()
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv("FLOWGUARD_TEST_TOKEN", "env-token-0123456789")
	s := newServer(t, Config{BearerTokens: []string{hash, "${FLOWGUARD_TEST_TOKEN}"}})
	base := "http://" + serve(t, s, toyMux(nil, nil))
	for _, c := range []struct {
		name, auth string
		want       int
	}{
		{"hashed token", "Bearer " + tok, 200},
		{"scheme in lower case", "bearer " + tok, 200},
		{"token from the environment", "Bearer env-token-0123456789", 200},
		{"wrong token", "Bearer " + tok + "x", 401},
		{"the hash itself is not a token", "Bearer " + hash, 401},
		{"missing", "", 401},
		{"basic when only tokens are configured", basic("a", "b"), 401},
		{"healthz is not open unless configured", "", 401},
	} {
		path := "/api/thing"
		if strings.HasPrefix(c.name, "healthz") {
			path = "/healthz"
		}
		code, challenge := request(t, base, path, c.auth)
		if code != c.want {
			t.Errorf("%s: %d, want %d", c.name, code, c.want)
		}
		if code == 401 && !strings.HasPrefix(challenge, "Bearer ") {
			t.Errorf("%s: WWW-Authenticate %q", c.name, challenge)
		}
	}
}
