// Package rediswindow is the window.Store shared by several flowguard
// instances through Redis or a Redis Cluster (store: redis://host:6379/0).
//
// The engine needs an answer for every flow at once, so no flow waits on
// Redis: each instance keeps its own updates in memory windows (the same
// as the memory store's) and answers from them plus what the other
// instances had added as of the last flush. A background goroutine
// flushes every FlushInterval: one pipeline carries the deltas gathered
// since the last flush, per window, group and bucket, to Lua scripts that
// add them and read back the shared values of the groups carried. An
// alert that needs other instances' flows fires on the first flow of its
// group after the flush that made the shared value cross the threshold,
// or without one: the windows are window.Exchangers, which hand the engine
// the groups whose other instances' part rose (Engine.Exchange pulls them
// every flush interval).
//
// Only groups that can matter are sent (ship.go): told its rule's
// threshold T (window.Thresholder), a window keeps a group local while
// its local value is under T/N, N the live instances of a heartbeat in
// Redis; past it the group's whole local part ships, and its name goes to
// a hot set from which every other instance ships its own part at its
// next flush. A group whose combined value crosses T fires within two
// flush intervals; groups far below it cost nothing in Redis.
//
// Suppression claims go to Redis at once (SET-like, in a script, with a
// short timeout), so one alert is raised per rule and group however many
// instances see it; without Redis they fall back to local claims.
//
// When Redis is unreachable the store keeps answering from the local
// windows, logs the outage once, counts it and what it had to drop, keeps
// pending deltas up to Config.MaxPending, and reconnects with backoff.
// See README.md for the key layout.
package rediswindow

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/flowguard/flowguard/engine/window"
)

// Store is a window.Store over Redis. Its methods are safe for concurrent
// use; each Window it returns belongs to one goroutine at a time.
type Store struct {
	cfg     Config
	client  redis.UniversalClient
	cluster bool
	inst    string // this instance's id in shared keys
	log     *slog.Logger

	local *window.MemoryStore // local windows and fallback claims

	mu      sync.Mutex
	windows map[string]*sharedWindow // by Spec.Name
	closed  bool

	pending   atomic.Int64 // deltas waiting for a flush, bounded by MaxPending
	instances atomic.Int64 // live instances as of the latest flush: the N of the shares
	up        atomic.Bool  // Redis answered the latest attempt
	flushMu   sync.Mutex   // one flush at a time
	ctx       context.Context
	cancel    context.CancelFunc
	done      chan struct{}

	stats counters
}

// counters back Stats.
type counters struct {
	flushes, flushErrors, commands, updates   atomic.Uint64
	sent, dropped, lost, outages, scriptLoads atomic.Uint64
	claims, claimFallbacks                    atomic.Uint64
	lastFlush                                 atomic.Int64 // ns
	bytes, held, hotRead                      atomic.Uint64
	shipStarts, shipOverflow, shipPartial     atomic.Uint64
	rescans, requeued                         atomic.Uint64

	exchangeDropped atomic.Uint64
}

// Stats counts what a store did, for metrics. Updates divided into
// Commands is the Redis commands per flow.
type Stats struct {
	Connected      bool          // Redis answered the latest attempt
	Flushes        uint64        // flushes that reached Redis
	FlushErrors    uint64        // commands that failed (outages count once each)
	Commands       uint64        // commands sent by flushes
	Bytes          uint64        // bytes of the commands' keys and arguments
	Updates        uint64        // window updates (flows × rules), sent or held
	Sent           uint64        // deltas (groups, distinct items) sent
	Dropped        uint64        // updates not recorded: MaxPending was reached
	Lost           uint64        // deltas whose flush failed and that could not be sent again (README, Failures)
	Requeued       uint64        // windows' deltas put back to wait for the next flush after a failed one
	Pending        int64         // deltas waiting for the next flush
	Outages        uint64        // times Redis became unreachable
	ScriptLoads    uint64        // times the scripts were loaded (at start, after reconnections and NOSCRIPT)
	Claims         uint64        // claims decided by Redis
	ClaimFallbacks uint64        // claims decided locally: Redis away or too slow
	LastFlush      time.Duration // how long the latest flush took

	// ExchangeDropped counts rises of other instances' totals not handed
	// to the engine at once: Config.ExchangeMaxKeys was reached.
	ExchangeDropped uint64

	// What is sent (README.md): Held counts updates of groups kept local,
	// below their share of the threshold; ShipStarts the groups that
	// started to ship (passed their share, or announced by another
	// instance); HotRead the announcements read; Instances the live
	// instances of the latest heartbeat (0 before the first: until then
	// every group ships). ShipOverflow counts groups that
	// shipped without their earlier part (too many shipping groups in a
	// window), ShipPartial groups whose local part was a HyperLogLog and
	// shipped from then on only: both undercount the combined value.
	Held, ShipStarts, HotRead, ShipOverflow, ShipPartial uint64
	Instances                                            int64
	// Rescans counts the scans of a window's local groups when the
	// instance count rose (the shares fell).
	Rescans uint64
}

// Open connects to the Redis the config names and starts the flusher. A
// bad config is an error; an unreachable server is not: the store starts
// on local windows and connects when it can.
func Open(ctx context.Context, cfg Config) (*Store, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	client, cluster, err := cfg.client()
	if err != nil {
		return nil, err
	}
	var id [6]byte
	_, _ = rand.Read(id[:])
	s := &Store{
		cfg:     cfg,
		client:  client,
		cluster: cluster,
		inst:    hex.EncodeToString(id[:]),
		log:     cfg.Logger.With("component", "window/redis"),
		local:   window.NewMemoryStore(),
		windows: make(map[string]*sharedWindow),
		done:    make(chan struct{}),
	}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	cctx, cancel := context.WithTimeout(ctx, cfg.DialTimeout+cfg.ReadTimeout)
	err = s.connect(cctx)
	cancel()
	if err != nil {
		s.stats.outages.Add(1)
		s.log.Warn("redis unreachable; windows are local until it answers", "err", err)
	} else {
		s.up.Store(true)
	}
	go s.run()
	return s, nil
}

// FlushInterval returns how often the store flushes (the config's, or
// DefaultFlushInterval): the pace of its exchange with other instances.
func (s *Store) FlushInterval() time.Duration { return s.cfg.FlushInterval }

// Instance returns this store's id in the keys it writes.
func (s *Store) Instance() string { return s.inst }

// connect checks that Redis answers (every master of a Cluster) and loads
// the scripts.
func (s *Store) connect(ctx context.Context) error {
	ping := func(ctx context.Context, c *redis.Client) error {
		if err := c.Ping(ctx).Err(); err != nil {
			return err
		}
		for _, sc := range scripts {
			if err := sc.Load(ctx, c).Err(); err != nil {
				return fmt.Errorf("script load: %w", err)
			}
		}
		return nil
	}
	var err error
	switch c := s.client.(type) {
	case *redis.ClusterClient:
		if err = c.ForEachMaster(ctx, ping); err == nil {
			err = c.ClusterInfo(ctx).Err()
		}
	case *redis.Client:
		err = ping(ctx, c)
	default:
		err = s.client.Ping(ctx).Err()
	}
	if err == nil {
		s.stats.scriptLoads.Add(1)
		err = s.beat(ctx)
	}
	return err
}

// Window returns the window for spec, creating it. The same Spec (after
// defaults) gets the same window back, state and all.
func (s *Store) Window(spec window.Spec) (window.Window, error) {
	spec = spec.WithDefaults()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, window.ErrClosed
	}
	if w, ok := s.windows[spec.Name]; ok && w.spec == spec {
		return w.ofKind(), nil
	}
	local, err := s.local.Window(spec)
	if err != nil {
		return nil, err
	}
	w := newSharedWindow(s, spec, local)
	if old, ok := s.windows[spec.Name]; ok {
		// The replaced window's pending deltas are given up.
		old.mu.Lock()
		s.pending.Add(-old.pend.entries)
		old.pend.reset()
		old.mu.Unlock()
	}
	s.windows[spec.Name] = w
	return w.ofKind(), nil
}

// Claim reports whether key was not claimed within ttl of event time now,
// and if so claims it, in Redis for every instance. When Redis is away or
// does not answer within Config.ClaimTimeout the claim is local.
func (s *Store) Claim(key []byte, now int64, ttl time.Duration) bool {
	if s.up.Load() {
		sec := floorDiv(now, int64(time.Second))
		ctx, cancel := context.WithTimeout(s.ctx, s.cfg.ClaimTimeout)
		won, err := claimScript.Run(ctx, s.client, []string{s.cfg.KeyPrefix + "claim:" + string(key)},
			sec, now-sec*int64(time.Second), int64(ttl), (2*ttl + time.Minute).Milliseconds()).Int()
		cancel()
		if err == nil {
			s.stats.claims.Add(1)
			if won == 1 {
				s.local.Claim(key, now, ttl) // remembered should Redis go away
			}
			return won == 1
		}
	}
	s.stats.claimFallbacks.Add(1)
	return s.local.Claim(key, now, ttl)
}

// Flush sends the pending deltas now and waits for the answers, which the
// windows pick up at their next call. The flusher does this every
// FlushInterval; Flush serves tests, replays and shutdown.
func (s *Store) Flush(ctx context.Context) error {
	if !s.up.Load() {
		return errors.New("redis unreachable")
	}
	err := s.flush(ctx)
	if err != nil && !isRedisError(err) {
		s.markDown(err)
	}
	return err
}

// Close stops the flusher, sends what is pending (for up to a second) and
// disconnects. Windows handed out before keep answering from local state.
func (s *Store) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	s.mu.Unlock()
	s.cancel()
	<-s.done
	if s.up.Load() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		if err := s.flush(ctx); err != nil {
			s.log.Warn("last flush failed", "err", err)
		}
		cancel()
	}
	s.local.Close()
	return s.client.Close()
}

// Stats returns the store's counters.
func (s *Store) Stats() Stats {
	return Stats{
		Connected:      s.up.Load(),
		Flushes:        s.stats.flushes.Load(),
		FlushErrors:    s.stats.flushErrors.Load(),
		Commands:       s.stats.commands.Load(),
		Updates:        s.stats.updates.Load(),
		Sent:           s.stats.sent.Load(),
		Dropped:        s.stats.dropped.Load(),
		Lost:           s.stats.lost.Load(),
		Requeued:       s.stats.requeued.Load(),
		Pending:        s.pending.Load(),
		Outages:        s.stats.outages.Load(),
		ScriptLoads:    s.stats.scriptLoads.Load(),
		Claims:         s.stats.claims.Load(),
		ClaimFallbacks: s.stats.claimFallbacks.Load(),
		LastFlush:      time.Duration(s.stats.lastFlush.Load()),

		ExchangeDropped: s.stats.exchangeDropped.Load(),

		Bytes:        s.stats.bytes.Load(),
		Held:         s.stats.held.Load(),
		ShipStarts:   s.stats.shipStarts.Load(),
		HotRead:      s.stats.hotRead.Load(),
		ShipOverflow: s.stats.shipOverflow.Load(),
		ShipPartial:  s.stats.shipPartial.Load(),
		Instances:    s.instances.Load(),
		Rescans:      s.stats.rescans.Load(),
	}
}

// run flushes every FlushInterval while Redis answers, and tries to
// reconnect with exponential backoff while it does not.
func (s *Store) run() {
	defer close(s.done)
	tick := time.NewTicker(s.cfg.FlushInterval)
	defer tick.Stop()
	backoff := s.cfg.FlushInterval
	var retryAt time.Time
	for {
		select {
		case <-s.ctx.Done():
			return
		case <-tick.C:
		}
		if !s.up.Load() {
			if time.Now().Before(retryAt) {
				continue
			}
			ctx, cancel := context.WithTimeout(s.ctx, s.cfg.DialTimeout+s.cfg.ReadTimeout)
			err := s.connect(ctx)
			cancel()
			if err != nil {
				backoff = min(2*backoff, s.cfg.MaxBackoff)
				retryAt = time.Now().Add(backoff)
				continue
			}
			backoff = s.cfg.FlushInterval
			s.up.Store(true)
			s.log.Info("redis reachable again; windows are shared")
		}
		ctx, cancel := context.WithTimeout(s.ctx, s.flushTimeout())
		err := s.flush(ctx)
		cancel()
		if err != nil && !isRedisError(err) && s.ctx.Err() == nil {
			s.markDown(err)
			retryAt = time.Now().Add(backoff)
		}
	}
}

// flushTimeout bounds a flush: a connection and a few round trips.
func (s *Store) flushTimeout() time.Duration {
	return s.cfg.DialTimeout + 2*(s.cfg.ReadTimeout+s.cfg.WriteTimeout)
}

// markDown records an outage, logging it once.
func (s *Store) markDown(err error) {
	if s.up.Swap(false) {
		s.stats.outages.Add(1)
		s.log.Warn("redis unreachable; windows are local until it answers", "err", err)
	}
}

// isRedisError tells a reply of the server (a script error, NOSCRIPT,
// WRONGTYPE) from a failure to reach it.
func isRedisError(err error) bool {
	var re redis.Error
	return errors.As(err, &re)
}
