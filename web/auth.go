package web

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"net/http"
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/bcrypt"
)

const (
	// authCacheTTL is how long a bcrypt verdict is remembered, so that a
	// scrape every 15s costs one bcrypt a minute, not one a request.
	authCacheTTL = time.Minute
	// authCacheSize bounds the remembered verdicts: guessing many
	// passwords cannot grow memory.
	authCacheSize = 1024
)

// authenticator checks basic-auth and bearer credentials.
type authenticator struct {
	users   map[string][]byte // user → bcrypt hash
	tokens  [][]byte          // SHA-256 digests of accepted tokens
	open    map[string]bool
	decoy   []byte        // hash compared for unknown users, so their answer takes as long
	bcrypts chan struct{} // bounds concurrent bcrypt computations (CPU)

	mu        sync.Mutex
	cache     map[[32]byte]verdict
	cacheSize int
}

type verdict struct {
	ok      bool
	expires time.Time
}

func newAuthenticator(c *Config) (*authenticator, error) {
	a := &authenticator{
		users:     map[string][]byte{},
		open:      map[string]bool{},
		bcrypts:   make(chan struct{}, 2),
		cache:     map[[32]byte]verdict{},
		cacheSize: authCacheSize,
	}
	cost := bcrypt.DefaultCost
	for u, h := range c.BasicAuthUsers {
		a.users[u] = []byte(h)
		if n, err := bcrypt.Cost([]byte(h)); err == nil {
			cost = n
		}
	}
	for _, t := range c.BearerTokens {
		d, err := tokenDigest(t)
		if err != nil {
			return nil, err
		}
		a.tokens = append(a.tokens, d)
	}
	for _, p := range c.OpenPaths {
		a.open[p] = true
	}
	if len(a.users) > 0 {
		decoy, err := bcrypt.GenerateFromPassword([]byte("flowguard decoy"), cost)
		if err != nil {
			return nil, err
		}
		a.decoy = decoy
	}
	return a, nil
}

func digest(s string) []byte {
	d := sha256.Sum256([]byte(s))
	return d[:]
}

// check tells whether r carries valid credentials, and if not why
// ("missing", "basic", "bearer", "scheme", "busy").
func (a *authenticator) check(r *http.Request) (ok bool, reason string) {
	h := r.Header.Get("Authorization")
	if h == "" {
		return false, "missing"
	}
	if tok, found := cutScheme(h, "Bearer "); found {
		if len(a.tokens) == 0 {
			return false, "scheme"
		}
		d := digest(tok)
		match := 0
		for _, t := range a.tokens { // every one compared: the time does not tell which matched
			match |= subtle.ConstantTimeCompare(d, t)
		}
		return match == 1, "bearer"
	}
	if _, found := cutScheme(h, "Basic "); found && len(a.users) > 0 {
		user, pass, ok := r.BasicAuth()
		if !ok {
			return false, "basic"
		}
		ok, busy := a.checkBasic(r.Context(), user, pass)
		if busy {
			return false, "busy"
		}
		return ok, "basic"
	}
	return false, "scheme"
}

func cutScheme(h, scheme string) (string, bool) {
	if len(h) < len(scheme) || !strings.EqualFold(h[:len(scheme)], scheme) {
		return "", false
	}
	return strings.TrimSpace(h[len(scheme):]), true
}

// checkBasic compares a password with the user's bcrypt hash, through the
// cache. busy is set when the request ended while waiting for a turn.
func (a *authenticator) checkBasic(ctx context.Context, user, pass string) (ok, busy bool) {
	hash, known := a.users[user]
	if !known {
		hash = a.decoy
	}
	key := cacheKey(user, pass, hash)
	now := time.Now()
	a.mu.Lock()
	v, hit := a.cache[key]
	a.mu.Unlock()
	if hit && now.Before(v.expires) {
		return v.ok && known, false
	}
	select {
	case a.bcrypts <- struct{}{}:
	case <-ctx.Done():
		return false, true
	}
	ok = bcrypt.CompareHashAndPassword(hash, []byte(pass)) == nil && known
	<-a.bcrypts
	a.mu.Lock()
	if len(a.cache) >= a.cacheSize {
		for k := range a.cache { // full: forget half, in map order
			delete(a.cache, k)
			if len(a.cache) <= a.cacheSize/2 {
				break
			}
		}
	}
	a.cache[key] = verdict{ok: ok, expires: now.Add(authCacheTTL)}
	a.mu.Unlock()
	return ok, false
}

// cacheKey digests a credential with the hash it was checked against, so
// that a changed hash is never answered from the cache and the cache never
// holds a password.
func cacheKey(user, pass string, hash []byte) [32]byte {
	h := sha256.New()
	h.Write([]byte(user))
	h.Write([]byte{0})
	h.Write([]byte(pass))
	h.Write([]byte{0})
	h.Write(hash)
	var k [32]byte
	h.Sum(k[:0])
	return k
}

// challenge is the WWW-Authenticate header of a 401 answer.
func (a *authenticator) challenge() string {
	if len(a.users) > 0 {
		return `Basic realm="flowguard", charset="UTF-8"`
	}
	return `Bearer realm="flowguard"`
}
