package rediswindow

import (
	"context"
	"math"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/flowguard/flowguard/engine/window"
)

// What is sent: a group ships only once it can matter.
//
// A group's combined value is the sum of the instances' local values (a
// Distinct count is at most that sum). If it reaches the threshold T with
// N instances, one of them holds at least T/N locally: the share. So an
// instance keeps a group to itself while its local value is below the
// share, and once it passes it the group ships: its whole local part
// (every live bucket, or every distinct item) at the next flush, then its
// deltas at every flush while it has any. A shipped group is announced in
// the window's hot set in Redis; every instance reads the hot set at the
// start of each flush and ships its own whole part of the groups in it,
// whatever their local value. So within a flush interval of the first
// instance's flush, every instance has sent its part, and the last of
// them to flush gets the combined value back and fires (window.Exchanger).
//
// N comes from a heartbeat: every flush adds this instance, with the wall
// time, to a sorted set of live instances and counts those seen within
// three flush intervals and a second. Groups that never pass their share
// cost nothing in Redis.

// shipMode is what an update does to the pending batch.
type shipMode uint8

const (
	shipHold  shipMode = iota // the group is kept local: below its share
	shipDelta                 // the group ships: record the update
	shipAll                   // the group starts to ship: record its whole local part
)

// Bounds of the hot set.
const (
	hotKeep       = 1 << 16 // members a window's hot set keeps (the newest)
	hotPerCall    = 1000    // members per hotScript call
	hotReadLimit  = 1 << 16 // members read per window per flush
	liveSlackMsec = 1000    // heartbeat slack past three flush intervals
)

// SetThreshold sets the smallest value at which the window's rule fires
// (window.Thresholder): groups whose local value is below its share stay
// local. Zero or less, or Config.ShipAll, ships every update. topShare is
// a Top rule's smallest fraction of the total: a group whose combined
// value is that fraction of the combined total has it on one instance at
// least (sum(v)/sum(t) lies between the least and the greatest v/t), so a
// Top group ships only once its local value is that fraction of the
// local total too. Without it, a Top window whose sketch is full ships
// most of its groups: Space-Saving's estimates of newly tracked groups
// start at the smallest counter's value.
func (w *sharedWindow) SetThreshold(v, topShare float64) {
	if w.store.cfg.ShipAll || math.IsNaN(v) || math.IsInf(v, 0) {
		v = 0
	}
	if w.spec.Kind != window.Top || math.IsNaN(topShare) || topShare < 0 || topShare > 1 {
		topShare = 0
	}
	w.mu.Lock()
	w.threshold = max(v, 0)
	w.topShare = topShare
	w.mu.Unlock()
}

// share is the local value from which a group ships with n instances:
// threshold/n, and for Distinct at most Spec.DistinctExact, so that a
// group ships its items while the local window still holds them exactly
// (past that it keeps a HyperLogLog, whose items are gone).
func (w *sharedWindow) share(n int64) float64 {
	s := w.threshold / float64(n)
	if w.spec.Kind == window.Distinct {
		s = min(s, float64(w.spec.DistinctExact))
	}
	return s
}

// ship decides what an update of key at now, leaving the group's local
// value at local (and, Top, the window's local total at total), sends. Until the first heartbeat tells how many
// instances there are, every group ships (and is tracked as shipping, so
// that it never sends its whole part on top of the deltas it sent).
// Called with mu held.
func (w *sharedWindow) ship(key []byte, now int64, local, total float64) shipMode {
	if w.threshold <= 0 {
		return shipDelta
	}
	seq := w.geo.seq(now)
	if i, ok := w.shipping[string(key)]; ok {
		w.shipSeq[i] = max(w.shipSeq[i], seq)
		return shipDelta
	}
	n := w.store.instances.Load()
	if n > 0 && (local < w.share(n) || (w.topShare > 0 && local < w.topShare*total)) {
		w.pend.held++
		return shipHold
	}
	if !w.startShipping(key, seq) || n == 0 {
		return shipDelta
	}
	return shipAll
}

// startShipping records that key's group ships from now on, its newest
// bucket seq. It reports false when the window already tracks
// Spec.MaxKeys shipping groups (after a sweep): the group's updates are
// then sent from now on without its earlier part (counted in
// Stats.ShipOverflow). Called with mu held.
func (w *sharedWindow) startShipping(key []byte, seq int64) bool {
	if len(w.shipping) >= w.spec.MaxKeys {
		w.sweepShipping()
		if len(w.shipping) >= w.spec.MaxKeys {
			w.store.stats.shipOverflow.Add(1)
			return false
		}
	}
	w.shipping[string(key)] = len(w.shipSeq)
	w.shipSeq = append(w.shipSeq, seq)
	w.store.stats.shipStarts.Add(1)
	return true
}

// sweepShipping forgets the shipping groups with nothing left in the
// window: their part in Redis has slid out too, and a new start sends the
// live part whole. Called with mu held.
func (w *sharedWindow) sweepShipping() {
	if len(w.shipping) == 0 {
		return
	}
	lo, _ := w.geo.live(w.clock)
	kept := make([]int64, 0, len(w.shipping))
	for k, i := range w.shipping {
		if w.shipSeq[i] < lo {
			delete(w.shipping, k)
			continue
		}
		w.shipping[k] = len(kept)
		kept = append(kept, w.shipSeq[i])
	}
	w.shipSeq = kept
}

// recordWhole puts key's whole local part in the pending batch, replacing
// what the batch held of it (a part of the same). Called with mu held.
func (w *sharedWindow) recordWhole(key []byte, seq int64) {
	b := w.pend
	lo, _ := w.geo.live(w.clock)
	switch w.spec.Kind {
	case window.Sum, window.Top:
		src, ok := w.local.(interface {
			SumBuckets([]byte, func(int64, float64)) bool
		})
		if !ok {
			return
		}
		i := int32(-1)
		src.SumBuckets(key, func(q int64, v float64) {
			if q < lo {
				return
			}
			if i < 0 {
				if i = w.group(b, key, max(seq, q)); i < 0 {
					return
				}
				b.groups[i].sums = b.groups[i].sums[:0]
			}
			if g := &b.groups[i]; q > g.newest {
				g.newest = q
			}
			b.groups[i].addSum(q, lo, v)
		})
	case window.Distinct:
		src, ok := w.local.(interface {
			ExactItems([]byte, func(int64, uint64)) bool
		})
		if !ok {
			return
		}
		i := int32(-1)
		exact := src.ExactItems(key, func(q int64, item uint64) {
			if i < 0 {
				if i = w.group(b, key, max(seq, q)); i < 0 {
					return
				}
				g := &b.groups[i]
				for _, e := range g.items {
					b.entries -= int64(len(e.items))
					w.store.pending.Add(-int64(len(e.items)))
				}
				g.items = g.items[:0]
			}
			w.addItem(b, i, q, lo, item)
		})
		if !exact && w.store.pending.Load() < int64(w.store.cfg.MaxPending) {
			w.store.stats.shipPartial.Add(1)
		}
	}
}

// markHot makes the groups other instances announced ship here too: the
// whole local part of those this instance holds goes into the pending
// batch, and later updates of any of them ship. The flusher calls it
// before taking the batch.
func (w *sharedWindow) markHot(keys []string) {
	if len(keys) == 0 {
		return
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.threshold <= 0 {
		return
	}
	_, hi := w.geo.live(w.clock)
	for _, k := range keys {
		if i, ok := w.shipping[k]; ok {
			w.shipSeq[i] = max(w.shipSeq[i], hi)
			continue
		}
		w.hotScratch = append(w.hotScratch[:0], k...)
		if w.startShipping(w.hotScratch, hi) {
			w.recordWhole(w.hotScratch, hi)
		}
	}
}

// rescan ships the held groups whose local value reaches their share with
// n instances: when instances join, the shares fall, and a group held
// under the old one might never get another update to be judged again.
// It visits every local key once, with mu held (the engine waits): a
// rare event, at most once a flush.
func (w *sharedWindow) rescan(n int64) {
	each, ok := w.local.(interface {
		EachValue(func([]byte, float64))
	})
	if !ok {
		return
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.threshold <= 0 {
		return
	}
	share := w.share(n)
	_, hi := w.geo.live(w.clock)
	var found [][]byte
	each.EachValue(func(key []byte, v float64) {
		if v < share {
			return
		}
		if _, shipping := w.shipping[string(key)]; !shipping {
			found = append(found, append([]byte(nil), key...))
		}
	})
	for _, key := range found {
		if w.startShipping(key, hi) {
			w.recordWhole(key, hi)
		}
	}
	w.store.stats.rescans.Add(1)
}

// hotKeys returns the keys of a window's hot set and the counter that
// orders its members; both share the window's hash tag.
func (w *sharedWindow) hotKeys() (set, seq string) {
	tag := "{" + w.base + "}:"
	return tag + "hot", tag + "hotseq"
}

// syncRead is one window's read of its hot set in the sync pipeline.
type syncRead struct {
	w   *sharedWindow
	seq *redis.StringCmd
	set *redis.ZSliceCmd
}

// sync opens a flush: it beats this instance's heartbeat, counts the live
// instances (the N of the shares), and reads the groups each filtering
// window's hot set gained since the last flush, which then ship here too.
// One pipeline, a few commands per window whatever the traffic.
func (s *Store) sync(ctx context.Context, wins []*sharedWindow) error {
	pipe := s.client.Pipeline()
	card := s.heartbeat(ctx, pipe)
	var reads []syncRead
	for _, w := range wins {
		if !w.filtering() {
			continue
		}
		set, seq := w.hotKeys()
		reads = append(reads, syncRead{w: w,
			seq: pipe.Get(ctx, seq),
			set: pipe.ZRangeByScoreWithScores(ctx, set, &redis.ZRangeBy{
				Min: "(" + strconv.FormatInt(w.hotLast, 10), Max: "+inf", Count: hotReadLimit}),
		})
	}
	cmds, _ := pipe.Exec(ctx)
	s.stats.commands.Add(uint64(len(cmds)))
	for _, c := range cmds {
		err := c.Err()
		switch {
		case err == nil || err == redis.Nil:
		case isRedisError(err): // refused (a full server): counted, the flush goes on
			if s.stats.flushErrors.Add(1) == 1 {
				s.log.Warn("redis refused a heartbeat or hot-set command", "err", err)
			}
		default:
			return err
		}
	}
	if n, err := card.Result(); err == nil && n > 0 {
		if old := s.instances.Swap(n); old > 0 && n > old {
			for _, w := range wins { // the shares fell: what was held may matter now
				w.rescan(n)
			}
		}
	}
	for _, r := range reads {
		if cur, err := r.seq.Int64(); err == nil && cur < r.w.hotLast {
			r.w.hotLast = 0 // the hot set was lost (Redis restarted): read it all next time
			continue
		}
		zs, err := r.set.Result()
		if err != nil || len(zs) == 0 {
			continue
		}
		keys := make([]string, len(zs))
		top := r.w.hotLast
		for i, z := range zs {
			keys[i], _ = z.Member.(string)
			top = max(top, int64(z.Score))
		}
		if len(zs) == hotReadLimit {
			top-- // the last call's members may go on past the limit: read it again
		}
		r.w.hotLast = top
		s.stats.hotRead.Add(uint64(len(keys)))
		r.w.markHot(keys)
	}
	return nil
}

// heartbeat queues on pipe the commands that beat this instance's
// heartbeat and count the live instances, whose count it returns.
func (s *Store) heartbeat(ctx context.Context, pipe redis.Pipeliner) *redis.IntCmd {
	now := time.Now().UnixMilli()
	liveKey := s.cfg.KeyPrefix + "instances"
	liveFor := 3*s.cfg.FlushInterval.Milliseconds() + liveSlackMsec
	pipe.ZAdd(ctx, liveKey, redis.Z{Score: float64(now), Member: s.inst})
	pipe.ZRemRangeByScore(ctx, liveKey, "-inf", "("+strconv.FormatInt(now-liveFor, 10))
	pipe.PExpire(ctx, liveKey, time.Duration(2*liveFor)*time.Millisecond)
	return pipe.ZCard(ctx, liveKey)
}

// beat beats the heartbeat alone, when the store connects: the instances
// are counted before the first update.
func (s *Store) beat(ctx context.Context) error {
	pipe := s.client.Pipeline()
	card := s.heartbeat(ctx, pipe)
	if _, err := pipe.Exec(ctx); err != nil && !isRedisError(err) {
		return err // unreachable; a refusal (a full server) is the flushes' to count
	}
	s.stats.commands.Add(heartbeatCommands)
	if n := card.Val(); n > 0 {
		s.instances.Store(n)
	}
	return nil
}

// heartbeatCommands is how many commands heartbeat queues.
const heartbeatCommands = 4

// filtering reports whether the window keeps groups below their share
// local, which makes it read and write its hot set.
func (w *sharedWindow) filtering() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.threshold > 0
}

// hotCmds announces the groups a flush ships in the window's hot set, so
// that every other instance ships its part of them from its next flush.
func (s *Store) hotCmds(cmds []*flushCmd, r *reply) []*flushCmd {
	if len(r.carried) == 0 || !r.w.filtering() {
		return cmds
	}
	set, seq := r.w.hotKeys()
	ttl := r.w.ttl().Milliseconds()
	for from := 0; from < len(r.carried); from += hotPerCall {
		part := r.carried[from:min(from+hotPerCall, len(r.carried))]
		args := make([]any, 0, 2+len(part))
		args = append(args, ttl, hotKeep)
		size := len(set) + len(seq) + 16
		for _, i := range part {
			k := r.b.key(i)
			args = append(args, string(k))
			size += len(k)
		}
		cmds = append(cmds, &flushCmd{script: hotScript, keys: []string{set, seq}, args: args,
			bytes: int64(size), parse: func(any) error { return nil }})
	}
	return cmds
}

// Handover flushes, first putting in the batch the whole local part of
// the held groups that would pass their share were one more instance to
// join: what this instance would otherwise take away when it stops (a
// replay at its end, a daemon shutting down), and another instance, here
// or to come, could still need to see a crossing. It names them in the
// hot sets as any shipped group. The cost is one scan of the local
// windows and the groups within reach of their threshold.
func (s *Store) Handover(ctx context.Context) error {
	n := max(s.instances.Load(), 1) + 1
	s.mu.Lock()
	wins := make([]*sharedWindow, 0, len(s.windows))
	for _, w := range s.windows {
		wins = append(wins, w)
	}
	s.mu.Unlock()
	for _, w := range wins {
		w.rescan(n)
	}
	return s.Flush(ctx)
}
