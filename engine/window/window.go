// Package window defines the Store that holds rules' sliding windows, and
// implements it in memory. Other stores (Redis) live in sub-folders and
// must pass the same test suite (storetest).
//
// Times are event times in Unix nanoseconds: the flows' own clock drives
// every window, so a replay gives the same results as the live run did.
//
// Every store slides its windows the same way (the storetest suite pins
// it). Event time is cut into buckets of width Size/Buckets: bucket s
// covers [s*width, (s+1)*width), and the window ending at c is made of the
// buckets that overlap (c-Size, c], so an update counts for Size at least
// and Size+width at most.
//
// Windows do not advance on the updates' times: the engine tells them its
// watermark W (Advance, Expire), and an update at t <= W-Size-Lateness is
// late: counted in Stats.Late, it changes nothing. One flow stamped far
// ahead therefore makes nothing late; the engine bounds how far ahead of W
// a flow may be, and clamps the rest.
//
//   - Sum: each key keeps a ring of Buckets+1 bucket sums up to the bucket
//     of its latest update L. An update at t >= L (in order, the common
//     case) is answered over the window ending at t. An update out of
//     order lands in its own bucket and is answered over the latest window
//     that contains it: the one ending at min(L, t+Size-1). An update
//     older than the key's ring (t's bucket at or before L's bucket less
//     the ring) is late for that key.
//   - Distinct: each key keeps the bucket of each item's latest occurrence;
//     it is answered over the window ending at its latest update L, and an
//     update whose bucket is before that window is late for that key.
//   - Top: the counters of the sketch compete with each other, so they
//     share one clock: the latest update, or W-Lateness if later. An
//     update at or before clock-Size is late.
//
// Result.Last is always the key's latest update. Expire drops the Sum and
// Distinct keys whose latest update is late at W, and the Top counters
// with nothing left in the window; an update of a dropped key starts it
// afresh.
package window

import "time"

// Kind is the aggregate a window keeps per key.
type Kind uint8

// Window kinds.
const (
	Sum      Kind = iota + 1 // sum of values (bytes, packets, or 1 per flow)
	Distinct                 // number of distinct items (ports, addresses)
	Top                      // heavy hitters: per-key sums in a Space-Saving sketch
)

// String returns the kind's name as rules spell it.
func (k Kind) String() string {
	switch k {
	case Sum:
		return "sum"
	case Distinct:
		return "distinct"
	case Top:
		return "top"
	}
	return "unknown"
}

// Spec describes one rule's window. Zero fields take the defaults below.
type Spec struct {
	Name          string        // the rule id; names the window in a shared store
	Version       string        // the rule's definition: another version is another window
	Kind          Kind          //
	Size          time.Duration // window length
	Buckets       int           // sub-buckets the window slides by (default 12)
	MaxKeys       int           // Sum, Distinct: cap on keys held; past it the stalest are evicted (default 100000)
	DistinctExact int           // Distinct: exact items per key before HyperLogLog (default 1024)
	TopCapacity   int           // Top: counters in the Space-Saving sketch, its cap on keys (default 1024)
	Lateness      time.Duration // how far behind the watermark an update may still count (default 0)
}

// Defaults for Spec's zero fields.
const (
	DefaultBuckets       = 12
	DefaultMaxKeys       = 100000
	DefaultDistinctExact = 1024
	DefaultTopCapacity   = 1024
)

// WithDefaults returns s with zero fields set to their defaults.
func (s Spec) WithDefaults() Spec {
	if s.Buckets <= 0 {
		s.Buckets = DefaultBuckets
	}
	if s.MaxKeys <= 0 {
		s.MaxKeys = DefaultMaxKeys
	}
	if s.DistinctExact <= 0 {
		s.DistinctExact = DefaultDistinctExact
	}
	if s.TopCapacity <= 0 {
		s.TopCapacity = DefaultTopCapacity
	}
	return s
}

// Result is what a window holds for one key right after an update.
type Result struct {
	Value float64 // the key's sum or distinct count over the window
	// First is the event time of the key's earliest update still in the
	// window the value is over. Once that update has left the window it
	// may be estimated, to a bucket's width, and is never before the
	// window's start.
	First int64
	Last  int64   // event time of the key's latest update
	Total float64 // Top only: the sum over all keys in the window
}

// Store creates windows. One store serves all rules of an engine.
type Store interface {
	// Window returns the window for spec, creating it. Asking twice for
	// the same Spec (after WithDefaults) returns the same window, state
	// and all, which is how windows of unchanged rules survive a reload.
	// A Spec that differs (Kind, Size, ...) from the one the window of
	// its Name was made with replaces that window with an empty one.
	// Window fails on a Spec without a valid Kind or a positive Size.
	Window(spec Spec) (Window, error)
	// Claim reports whether key was not claimed within ttl of event time
	// now (before or after it), and if so claims it at now: suppression
	// (one alert per rule and group per cooldown), shared by every engine
	// that shares the store.
	Claim(key []byte, now int64, ttl time.Duration) bool
	// Close releases the store.
	Close() error
}

// Window is one rule's sliding window, keyed by the rule's group: what
// every kind answers. The window of a Spec is also the interface of its
// Kind (SumWindow, DistinctWindow or TopWindow), which adds the updates.
// The engine calls it from one goroutine; implementations need not lock.
// Keys are only read during a call and may be reused by the caller.
//
// Each update returns the key's Result after it; a late update returns
// the key's Result as it stands (zero for a key the window does not
// hold).
type Window interface {
	// Advance moves the window's watermark to now if that is later: from
	// then on updates at or before now-Size-Lateness are late. The engine
	// calls it whenever its watermark moves; it must be cheap.
	Advance(now int64)
	// Expire advances the watermark as Advance does, drops the keys that
	// no update can reach any more (see the package doc) and returns how
	// many it dropped. The engine calls it now and then.
	Expire(now int64) int
	Stats() Stats
}

// SumWindow is the window of a Sum spec.
type SumWindow interface {
	Window
	// Add adds v to key's sum at event time now.
	Add(key []byte, now int64, v float64) Result
}

// DistinctWindow is the window of a Distinct spec.
type DistinctWindow interface {
	Window
	// AddDistinct records item (a hash of the distinct field) for key.
	// The count is exact up to Spec.DistinctExact items, then a
	// HyperLogLog estimate (a few percent off), rounded.
	AddDistinct(key []byte, now int64, item uint64) Result
}

// TopWindow is the window of a Top spec.
type TopWindow interface {
	Window
	// AddTop adds v to key in the heavy-hitter sketch; Result.Total is set.
	// A key the sketch did not hold takes the place of the smallest
	// counter when the sketch is full, and inherits its value: Value may
	// overestimate the key's sum, by about Total/TopCapacity at most.
	AddTop(key []byte, now int64, v float64) Result
	// Rank returns key's 1-based rank by value among the keys of a Top
	// window, or 0 when the sketch does not hold it.
	Rank(key []byte) int
}

// Stats counts a window's keys and what it had to throw away.
type Stats struct {
	Keys    int    // keys held now
	Evicted uint64 // keys with something in the window evicted because MaxKeys (or TopCapacity) was reached
	Late    uint64 // updates beyond the allowed lateness (or older than the key holds), ignored
}
