package window

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"
)

// MemoryStore is the in-memory Store, the default when one engine holds
// its windows alone. Its methods are safe for concurrent use; each Window
// it returns belongs to one goroutine at a time.
type MemoryStore struct {
	mu      sync.Mutex
	windows map[string]memoryWindow // by Spec.Name
	closed  bool

	claimMu   sync.Mutex
	claims    map[string]claim // by claimed key
	claimNow  int64            // latest event time seen by Claim
	sweepAt   int              // sweep expired claims when this many are held
	maxClaims int
}

// memoryWindow is a window with the spec it was made for.
type memoryWindow struct {
	spec Spec
	w    Window
}

// DefaultMaxClaims bounds the claims a MemoryStore holds. Claims past
// their ttl go first; past the bound, those ending soonest are dropped
// (their keys may alert again before their cooldown ends).
const DefaultMaxClaims = 1 << 20

// NewMemoryStore returns an empty in-memory store.
func NewMemoryStore() *MemoryStore {
	return &MemoryStore{
		windows:   make(map[string]memoryWindow),
		claims:    make(map[string]claim),
		sweepAt:   1024,
		maxClaims: DefaultMaxClaims,
	}
}

// MaxBuckets bounds Spec.Buckets: every key holds a slot per bucket.
const MaxBuckets = 1024

// ErrClosed is returned by a closed store.
var ErrClosed = errors.New("window store closed")

// Window returns the window for spec, creating it. The same Spec (after
// defaults) gets the same window back, state and all; a Spec that differs
// from the one a window of that Name was made with replaces that window
// with an empty one.
func (s *MemoryStore) Window(spec Spec) (Window, error) {
	spec = spec.WithDefaults()
	if err := validate(spec); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, ErrClosed
	}
	if mw, ok := s.windows[spec.Name]; ok && mw.spec == spec {
		return mw.w, nil
	}
	var w Window
	switch spec.Kind {
	case Sum:
		w = newSumWindow(spec)
	case Distinct:
		w = newDistinctWindow(spec)
	case Top:
		w = newTopWindow(spec)
	}
	s.windows[spec.Name] = memoryWindow{spec: spec, w: w}
	return w, nil
}

// validate checks a spec with defaults applied.
func validate(spec Spec) error {
	switch spec.Kind {
	case Sum, Distinct, Top:
	default:
		return fmt.Errorf("window %q: kind: %d is not one of sum, distinct, top", spec.Name, spec.Kind)
	}
	if spec.Size <= 0 {
		return fmt.Errorf("window %q: size: must be > 0, got %v", spec.Name, spec.Size)
	}
	if spec.Buckets > MaxBuckets {
		return fmt.Errorf("window %q: buckets: must be at most %d, got %d", spec.Name, MaxBuckets, spec.Buckets)
	}
	return nil
}

// Claim reports whether key was not claimed within ttl of event time now,
// and if so claims it at now. Flows out of order count too: a claim at t
// also blocks claims at event times in (t-ttl, t).
func (s *MemoryStore) Claim(key []byte, now int64, ttl time.Duration) bool {
	s.claimMu.Lock()
	defer s.claimMu.Unlock()
	s.claimNow = max(s.claimNow, now)
	if c, ok := s.claims[string(key)]; ok && now > c.at-int64(ttl) && now < c.at+int64(ttl) {
		return false
	}
	if len(s.claims) >= s.sweepAt {
		s.sweepClaims()
	}
	s.claims[string(key)] = claim{at: now, until: now + int64(ttl)}
	return true
}

// claim is when a key was claimed and when its claim ends.
type claim struct{ at, until int64 }

// sweepClaims drops the claims that ended by the latest event time, then
// the soonest to end while more than maxClaims are left. Called when the
// map has doubled since the last sweep, it costs O(1) amortised per claim.
func (s *MemoryStore) sweepClaims() {
	for k, c := range s.claims {
		if c.until <= s.claimNow {
			delete(s.claims, k)
		}
	}
	if n := len(s.claims) - s.maxClaims + 1; n > 0 {
		type held struct {
			key   string
			until int64
		}
		all := make([]held, 0, len(s.claims))
		for k, c := range s.claims {
			all = append(all, held{k, c.until})
		}
		slices.SortFunc(all, func(a, b held) int {
			return cmp.Or(cmp.Compare(a.until, b.until), cmp.Compare(a.key, b.key))
		})
		for _, h := range all[:n] {
			delete(s.claims, h.key)
		}
	}
	s.sweepAt = max(2*len(s.claims), 1024)
}

// Close drops every window and claim. Windows handed out before keep
// working on their own; Window fails afterwards.
func (s *MemoryStore) Close() error {
	s.mu.Lock()
	s.closed = true
	s.windows = nil
	s.mu.Unlock()
	s.claimMu.Lock()
	clear(s.claims)
	s.claimMu.Unlock()
	return nil
}
