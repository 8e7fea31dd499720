package rediswindow

import (
	"bytes"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/flowguard/flowguard/engine/window"
)

// geometry is a window's bucket grid, the same as the memory windows':
// bucket s covers event times [s*width, (s+1)*width), and at clock c the
// live buckets are floorDiv(c-size+1, width) .. floorDiv(c, width). Every
// instance with the same Spec uses the same grid, so their buckets meet in
// the same Redis keys.
type geometry struct{ size, width int64 }

func newGeometry(spec window.Spec) geometry {
	size := int64(spec.Size)
	return geometry{size: size, width: max(size/int64(spec.Buckets), 1)}
}

func (g geometry) seq(t int64) int64 { return floorDiv(t, g.width) }

func (g geometry) live(clock int64) (lo, hi int64) {
	return floorDiv(clock-g.size+1, g.width), floorDiv(clock, g.width)
}

func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b != 0 && (a < 0) != (b < 0) {
		q--
	}
	return q
}

// sharedWindow is a window whose answers combine this instance's own
// updates, held in a memory window (exact, and always at hand), with what
// the other instances had added as of the last flush. Updates are also
// recorded as deltas in a batch that the flusher takes every flush
// interval, sends to Redis, and answers with the others' totals for the
// keys it carried, which the engine goroutine picks up at its next call.
//
// The engine goroutine owns the remote maps; mu guards the hand-over
// points (pend, spare, inbox), and, for Sum and Distinct windows, the
// clock, the local window's updates and the shipping groups, which the
// flusher reads when other instances announce a group (markHot). The
// engine goroutine holds it for the update of one flow; the flusher owns
// known and hotLast.
type sharedWindow struct {
	store *Store
	spec  window.Spec
	local window.Window
	// The local window as the interface of its kind (one is set).
	localSum      window.SumWindow
	localDistinct window.DistinctWindow
	localTop      window.TopWindow
	// newItem is the local window's AddDistinctNew, when it has one: it
	// tells the items new to their bucket, the only ones sent.
	newItem func(key []byte, now int64, item uint64) (window.Result, bool)
	geo     geometry
	base    string // key prefix, rule id, version and grid: names this window in Redis

	// The engine goroutine's, under mu for Sum and Distinct windows.
	clock      int64
	started    bool
	threshold  float64        // the rule's smallest threshold; 0: every group ships (ship.go)
	topShare   float64        // Top: the rule's smallest fraction of the total, or 0
	shipping   map[string]int // groups that ship: index in shipSeq
	shipSeq    []int64        // per shipping group, the newest bucket it was seen in
	hotScratch []byte         // the flusher's, under mu
	remoteSum  map[string]sumRemote
	remoteDist map[string]distRemote
	top        *topSnapshot
	lastTopKey []byte
	lastTopVal float64
	changed    map[string]struct{} // keys whose others' part rose, once Changed is called
	scratch    []byte

	mu      sync.Mutex
	pend    *batch // filled by the engine goroutine
	spare   *batch // empty, swapped in when the flusher takes pend
	inbox   []remoteEntry
	inTop   *topSnapshot
	hasNews atomic.Bool

	// The flusher's: keys whose last answer from Redis was not zero, and
	// the newest member of the hot set read.
	known   map[string]struct{}
	hotLast int64
}

// sumRemote is what other instances added to a key of a Sum window, per
// bucket from lo, as of the last flush that carried the key.
type sumRemote struct {
	lo   int64
	vals []float64
}

// distRemote is how many distinct items other instances hold for a key
// that this one had not sent, with the window at its flush clock (cur)
// and once the oldest bucket then live has left it (next).
type distRemote struct {
	lo        int64
	cur, next float64
}

// topSnapshot is a Top window's heavy hitters over every instance, as of
// the last flush, with the others' part of each and of the total.
type topSnapshot struct {
	lo          int64
	others      map[string]float64 // member → other instances' part
	all         []scored           // by score over every instance, descending
	othersTotal float64
	hasOthers   bool
}

type scored struct {
	member string
	score  float64
}

// remoteEntry is one key's answer from a flush, for the engine goroutine.
type remoteEntry struct {
	key  string
	zero bool // nothing from other instances: drop what was known
	sum  sumRemote
	dist distRemote
}

// distinctNews is the memory Distinct window's AddDistinctNew.
// The shared window of each kind: the updates of that kind alone.
type (
	sharedSum      struct{ *sharedWindow }
	sharedDistinct struct{ *sharedWindow }
	sharedTop      struct{ *sharedWindow }
)

// ofKind returns w as the window interface of its spec's kind.
func (w *sharedWindow) ofKind() window.Window {
	switch w.spec.Kind {
	case window.Sum:
		return sharedSum{w}
	case window.Distinct:
		return sharedDistinct{w}
	}
	return sharedTop{w}
}

type distinctNews interface {
	AddDistinctNew(key []byte, now int64, item uint64) (window.Result, bool)
}

func newSharedWindow(s *Store, spec window.Spec, local window.Window) *sharedWindow {
	var newItem func([]byte, int64, uint64) (window.Result, bool)
	if d, ok := local.(distinctNews); ok {
		newItem = d.AddDistinctNew
	}
	sum, _ := local.(window.SumWindow)
	distinct, _ := local.(window.DistinctWindow)
	top, _ := local.(window.TopWindow)
	return &sharedWindow{
		localSum:      sum,
		localDistinct: distinct,
		localTop:      top,
		newItem:       newItem,
		store:         s,
		spec:          spec,
		local:         local,
		geo:           newGeometry(spec),
		base:          windowBase(s.cfg.KeyPrefix, spec),
		remoteSum:     make(map[string]sumRemote),
		remoteDist:    make(map[string]distRemote),
		pend:          newBatch(),
		spare:         newBatch(),
		known:         make(map[string]struct{}),
		shipping:      make(map[string]int),
	}
}

// windowBase names a window in Redis: instances share a window when they
// run the same version of a rule, with the same bucket grid.
func windowBase(prefix string, spec window.Spec) string {
	name := prefix + spec.Name
	if spec.Version != "" {
		name += "@" + spec.Version
	}
	return name + ":" + spec.Kind.String() + ":" + spec.Size.String() + "/" + strconv.Itoa(spec.Buckets)
}

// advance moves the clock that places the other instances' buckets: the
// latest update seen (the engine bounds how far ahead of its watermark
// that can be).
func (w *sharedWindow) advance(t int64) {
	if !w.started || t > w.clock {
		w.started = true
		w.clock = t
	}
}

// lateSince reports whether the local window counted a late update since
// its Stats().Late was before: the local window decides what is late.
func (w *sharedWindow) lateSince(before uint64) bool {
	return w.local.Stats().Late != before
}

// Advance passes the engine's watermark to the local window.
func (w *sharedWindow) Advance(now int64) {
	w.mu.Lock()
	w.local.Advance(now)
	w.mu.Unlock()
}

// Add adds v to key's sum at event time now; the result counts what the
// other instances had added by the last flush.
func (w sharedSum) Add(key []byte, now int64, v float64) window.Result {
	w.takeNews()
	w.mu.Lock()
	w.advance(now)
	before := w.local.Stats().Late
	r := w.localSum.Add(key, now, v)
	if !w.lateSince(before) {
		switch w.ship(key, now, r.Value, 0) {
		case shipDelta:
			w.recordSum(key, now, v)
		case shipAll:
			w.recordWhole(key, w.geo.seq(now))
		}
	}
	w.mu.Unlock()
	return w.withRemoteSum(key, r)
}

// AddDistinct records item for key; the result counts the distinct items
// other instances had sent by the last flush and this one had not.
func (w sharedDistinct) AddDistinct(key []byte, now int64, item uint64) window.Result {
	w.takeNews()
	w.mu.Lock()
	w.advance(now)
	before := w.local.Stats().Late
	var r window.Result
	fresh := true
	if w.newItem != nil {
		r, fresh = w.newItem(key, now, item)
	} else {
		r = w.localDistinct.AddDistinct(key, now, item)
	}
	if !w.lateSince(before) {
		switch w.ship(key, now, r.Value, 0) {
		case shipDelta:
			w.recordItem(key, now, item, fresh)
		case shipAll:
			w.recordWhole(key, w.geo.seq(now))
		}
	}
	w.mu.Unlock()
	return w.withRemoteDist(key, r)
}

// AddTop adds v to key in the heavy-hitter sketch; Value and Total count
// what the other instances had added by the last flush.
func (w sharedTop) AddTop(key []byte, now int64, v float64) window.Result {
	w.takeNews()
	w.mu.Lock()
	w.advance(now)
	before := w.local.Stats().Late
	r := w.localTop.AddTop(key, now, v)
	if !w.lateSince(before) {
		seq := w.geo.seq(now)
		lo, _ := w.geo.live(w.clock)
		w.pend.addTotal(seq, lo, v)
		switch w.ship(key, now, r.Value, r.Total) {
		case shipDelta:
			w.recordSum(key, now, v)
		case shipAll:
			w.recordWhole(key, seq)
		}
	}
	w.mu.Unlock()
	if snap := w.liveTop(); snap != nil {
		r.Value += snap.others[string(key)]
		r.Total += snap.othersTotal
		w.lastTopKey = append(w.lastTopKey[:0], key...)
		w.lastTopVal = r.Value
	}
	return r
}

// liveTop returns the Top snapshot when it holds other instances' values
// and still describes the window's live buckets.
func (w *sharedWindow) liveTop() *topSnapshot {
	if w.top == nil || !w.top.hasOthers {
		return nil
	}
	if lo, _ := w.geo.live(w.clock); lo != w.top.lo {
		return nil
	}
	return w.top
}

// Rank returns key's rank among every instance's heavy hitters as of the
// last flush, with key's own value as of its latest AddTop; alone, or with
// a snapshot out of date, the local sketch's rank.
func (w sharedTop) Rank(key []byte) int {
	local := w.localTop.Rank(key)
	snap := w.liveTop()
	if snap == nil {
		return local
	}
	var v float64
	switch {
	case bytes.Equal(key, w.lastTopKey):
		v = w.lastTopVal
	default:
		found := false
		for _, m := range snap.all {
			if m.member == string(key) {
				v, found = m.score, true
				break
			}
		}
		if !found {
			return local
		}
	}
	rank := 1
	for _, m := range snap.all {
		if m.score <= v {
			break
		}
		if m.member != string(key) {
			rank++
		}
	}
	return rank
}

// Expire moves the clock, drops the local keys with nothing left in the
// window and forgets remote answers that have slid out of it.
func (w *sharedWindow) Expire(now int64) int {
	w.takeNews()
	w.mu.Lock()
	if !w.started || now > w.clock {
		w.started = true
		w.clock = now
	}
	n := w.local.Expire(now)
	w.sweepShipping()
	w.mu.Unlock()
	w.sweepRemote()
	return n
}

// sweepRemote forgets the remote answers that have slid out of the window.
func (w *sharedWindow) sweepRemote() {
	lo, _ := w.geo.live(w.clock)
	for k, rs := range w.remoteSum {
		if rs.lo+int64(len(rs.vals)) <= lo {
			delete(w.remoteSum, k)
		}
	}
	for k, rd := range w.remoteDist {
		if rd.lo+1 < lo {
			delete(w.remoteDist, k)
		}
	}
}

// Stats returns the local window's figures: keys this instance holds.
func (w *sharedWindow) Stats() window.Stats { return w.local.Stats() }

// group returns key's group in the pending batch, adding it unless the
// store's bound on pending deltas is reached (then -1). Called with mu held.
func (w *sharedWindow) group(b *batch, key []byte, seq int64) int32 {
	b.clock = w.clock
	i, h := b.find(key)
	if i < 0 {
		s := w.store
		if s.pending.Load() >= int64(s.cfg.MaxPending) {
			s.stats.dropped.Add(1)
			return -1
		}
		i = b.add(key, h, seq)
		b.entries++
		s.pending.Add(1)
	} else if g := &b.groups[i]; seq > g.newest {
		g.newest = seq
	}
	b.last = i
	b.updates++
	return i
}

// recordSum adds an update of a Sum or Top window to its group's bucket
// in the pending batch. Called with mu held.
func (w *sharedWindow) recordSum(key []byte, now int64, v float64) {
	seq := w.geo.seq(now)
	b := w.pend
	if i := w.group(b, key, seq); i >= 0 {
		lo, _ := w.geo.live(w.clock)
		b.groups[i].addSum(seq, lo, v)
	}
}

// recordItem records a Distinct update: its group always, so that the
// flush carries it and brings back the others' part, and the item when it
// may be new to its bucket (fresh) and is not a repeat of the bucket's
// latest item (a flood to one port). Called with mu held.
func (w *sharedWindow) recordItem(key []byte, now int64, item uint64, fresh bool) {
	seq := w.geo.seq(now)
	b := w.pend
	i := w.group(b, key, seq)
	if i < 0 || !fresh {
		return
	}
	lo, _ := w.geo.live(w.clock)
	if !w.addItem(b, i, seq, lo, item) {
		b.updates-- // counted by group, but not recorded after all
	}
}

// addItem adds item to group i's bucket seq in batch b, unless it repeats
// the bucket's latest item or MaxPending is reached (then it reports
// false, counted). Called with mu held.
func (w *sharedWindow) addItem(b *batch, i int32, seq, lo int64, item uint64) bool {
	s := w.store
	g := &b.groups[i]
	e := g.itemsAt(seq)
	if e != nil && len(e.items) > 0 && e.items[len(e.items)-1] == item {
		return true
	}
	if s.pending.Load() >= int64(s.cfg.MaxPending) {
		s.stats.dropped.Add(1)
		return false
	}
	if e == nil {
		var dropped int
		e, dropped = g.addItems(seq, lo)
		if dropped > 0 {
			b.entries -= int64(dropped)
			s.pending.Add(-int64(dropped))
		}
	}
	e.items = append(e.items, item)
	b.entries++
	s.pending.Add(1)
	return true
}

// requeue merges back into the pending batch the deltas of batch b (a
// flush's, which could not send them) for groups part, or every group when
// part is nil, and with totals the Top totals. The updates were counted
// when b was taken; past MaxPending what does not fit is counted in
// Dropped. The flusher calls it while it owns b.
func (w *sharedWindow) requeue(b *batch, part []int32, totals bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	p := w.pend
	lo, _ := w.geo.live(w.clock)
	updates := p.updates
	each := func(i int32) {
		g := &b.groups[i]
		key := b.key(i)
		j := w.group(p, key, g.newest)
		if j < 0 {
			return
		}
		for _, d := range g.sums {
			if d.seq >= lo {
				p.groups[j].addSum(d.seq, lo, d.v)
			}
		}
		for _, e := range g.items {
			if e.seq < lo {
				continue
			}
			for _, it := range e.items {
				w.addItem(p, j, e.seq, lo, it)
			}
		}
	}
	if part == nil {
		for i := range int32(b.n) {
			each(i)
		}
	}
	for _, i := range part {
		each(i)
	}
	if totals {
		for _, d := range b.totals {
			if d.seq >= lo {
				p.addTotal(d.seq, lo, d.v)
			}
		}
	}
	p.updates = updates // counted when b was taken
	w.store.stats.requeued.Add(1)
}

// takeNews applies the answers of the latest flush, if any.
func (w *sharedWindow) takeNews() {
	if !w.hasNews.Load() {
		return
	}
	w.mu.Lock()
	in, top := w.inbox, w.inTop
	w.inbox, w.inTop = nil, nil
	w.hasNews.Store(false)
	w.mu.Unlock()
	if top != nil {
		w.top = top
	}
	for i := range in {
		e := &in[i]
		if w.changed != nil {
			w.noteRise(e)
		}
		switch w.spec.Kind {
		case window.Sum:
			if e.zero {
				delete(w.remoteSum, e.key)
			} else {
				w.remoteSum[e.key] = e.sum
			}
		case window.Distinct:
			if e.zero {
				delete(w.remoteDist, e.key)
			} else {
				w.remoteDist[e.key] = e.dist
			}
		}
	}
	// Bound the answers held: past MaxKeys, keep only those still live.
	if len(w.remoteSum) > w.spec.MaxKeys || len(w.remoteDist) > w.spec.MaxKeys {
		w.sweepRemote()
		if len(w.remoteSum) > w.spec.MaxKeys {
			clear(w.remoteSum)
		}
		if len(w.remoteDist) > w.spec.MaxKeys {
			clear(w.remoteDist)
		}
	}
}

// deliver hands a flush's answers to the engine goroutine.
func (w *sharedWindow) deliver(in []remoteEntry, top *topSnapshot) {
	if len(in) == 0 && top == nil {
		return
	}
	w.mu.Lock()
	w.inbox = append(w.inbox, in...)
	if top != nil {
		w.inTop = top
	}
	w.hasNews.Store(true)
	w.mu.Unlock()
}

// take swaps the pending batch for the spare one and returns it, or nil
// when nothing is pending.
func (w *sharedWindow) take() *batch {
	w.mu.Lock()
	defer w.mu.Unlock()
	if h := w.pend.held; h > 0 {
		w.pend.held = 0
		w.store.stats.held.Add(h)
		w.store.stats.updates.Add(h)
	}
	if (w.pend.n == 0 && len(w.pend.totals) == 0) || w.spare == nil {
		return nil
	}
	b := w.pend
	w.pend, w.spare = w.spare, nil
	return b
}

// giveBack returns a flushed batch, emptied, as the next spare.
func (w *sharedWindow) giveBack(b *batch) {
	b.reset()
	w.mu.Lock()
	w.spare = b
	w.mu.Unlock()
}

// ttl is how long, in wall time, a bucket key outlives its last write: a
// window and a bucket, and slack for clocks and flushes that lag.
func (w *sharedWindow) ttl() time.Duration {
	return time.Duration(w.geo.size+2*w.geo.width) + 10*time.Second + 2*w.store.cfg.FlushInterval
}
