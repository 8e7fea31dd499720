package engine

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync/atomic"
	"time"

	"github.com/flowguard/flowguard/engine/window"
)

// LearnedState is what an engine's learning rules learned, as it is saved
// (a file, Redis) and loaded: per rule id and LearnVersion, every group.
// Loading merges into what the engine holds (see each kind's load), so
// states saved by several instances, or a replay's and a daemon's, can be
// loaded one after another.
type LearnedState struct {
	Format int           `json:"format"` // LearnedFormat
	Saved  int64         `json:"saved"`  // the engine's watermark when saved, Unix ns
	Rules  []LearnedRule `json:"rules"`
}

// LearnedFormat is the version of LearnedState's JSON.
const LearnedFormat = 1

// LearnedRule is one rule's learned groups; keys are group keys, as the
// windows key them.
type LearnedRule struct {
	ID       string          `json:"id"`
	Version  string          `json:"version"`
	Baseline []BaselineGroup `json:"baseline,omitempty"`
	Terms    []TermsGroup    `json:"terms,omitempty"`
	Beacons  []BeaconGroup   `json:"beacons,omitempty"`
}

// BaselineGroup is one group's baseline.
type BaselineGroup struct {
	Key     []byte           `json:"key"`
	Step    int64            `json:"step"`
	Peak    float64          `json:"peak"`
	Seasons []BaselineSeason `json:"seasons"`
}

// BaselineSeason is one season's mean and variance.
type BaselineSeason struct {
	Season int     `json:"season"`
	Mean   float64 `json:"mean"`
	Var    float64 `json:"var"`
	N      uint32  `json:"n"`
	At     int64   `json:"at"`
}

// TermsGroup is one group's terms.
type TermsGroup struct {
	Key   []byte     `json:"key"`
	First int64      `json:"first"`
	Terms []TermSeen `json:"terms"`
}

// TermSeen is one term's hash and when it was last seen.
type TermSeen struct {
	Hash uint64 `json:"h"`
	Seen int64  `json:"t"`
}

// BeaconGroup is one group's latest connection starts.
type BeaconGroup struct {
	Key    []byte    `json:"key"`
	Starts []int64   `json:"starts"`
	Sizes  []float64 `json:"sizes"`
}

// SaveLearned returns what every learning rule learned. Call it from the
// goroutine that calls Process (Pipeline.Do).
func (e *Engine) SaveLearned() *LearnedState {
	st := &LearnedState{Format: LearnedFormat, Saved: e.watermark, Rules: []LearnedRule{}}
	for _, rs := range e.rules {
		if rs.learn == nil {
			continue
		}
		lr := LearnedRule{ID: rs.r.ID, Version: rs.learnVersion}
		rs.learn.save(&lr)
		st.Rules = append(st.Rules, lr)
	}
	return st
}

// LoadLearned merges st into the learning rules of the same id and
// LearnVersion, and returns how many rules took something. Rules that
// changed since st was saved start afresh. Call it from the goroutine that
// calls Process (Pipeline.Do), before or between batches.
func (e *Engine) LoadLearned(st *LearnedState) int {
	if st == nil || st.Format != LearnedFormat {
		return 0
	}
	n := 0
	for i := range st.Rules {
		lr := &st.Rules[i]
		for _, rs := range e.rules {
			if rs.learn != nil && rs.r.ID == lr.ID && rs.learnVersion == lr.Version {
				rs.learn.load(lr)
				n++
			}
		}
	}
	return n
}

// marshalLearned encodes st, refusing a state too large to be read back.
func marshalLearned(st *LearnedState) ([]byte, error) {
	data, err := json.Marshal(st)
	if err != nil {
		return nil, err
	}
	if len(data) > MaxLearnedBytes {
		return nil, fmt.Errorf("learned state of %d bytes is over the %d bytes that can be read back: lower the rules' max_groups or max_terms", len(data), MaxLearnedBytes)
	}
	return data, nil
}

// MaxLearnedBytes bounds a learned state read back (256 MiB).
const MaxLearnedBytes = 256 << 20

// ReadLearned decodes a LearnedState of at most MaxLearnedBytes.
func ReadLearned(r io.Reader) (*LearnedState, error) {
	data, err := io.ReadAll(io.LimitReader(r, MaxLearnedBytes+1))
	if err != nil {
		return nil, err
	}
	if len(data) > MaxLearnedBytes {
		return nil, fmt.Errorf("learned state larger than %d bytes", MaxLearnedBytes)
	}
	var st LearnedState
	if err := json.Unmarshal(data, &st); err != nil {
		return nil, fmt.Errorf("learned state: %w", err)
	}
	if st.Format != LearnedFormat {
		return nil, fmt.Errorf("learned state: format %d, this flowguard reads %d", st.Format, LearnedFormat)
	}
	return &st, nil
}

// LearnedFile is the file name of the learned state in a state directory.
const LearnedFile = "learned.json"

// WriteLearnedFile writes st to path atomically, creating the directory.
func WriteLearnedFile(path string, st *LearnedState) error {
	data, err := marshalLearned(st)
	if err != nil {
		return err
	}
	return writeFileAtomic(path, data)
}

// writeFileAtomic writes data to a temporary file in path's directory
// (created if need be) and renames it to path.
func writeFileAtomic(path string, data []byte) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(dir, ".learned-*.tmp")
	if err != nil {
		return err
	}
	_, werr := tmp.Write(data)
	serr := tmp.Sync()
	cerr := tmp.Close()
	if err := errors.Join(werr, serr, cerr); err != nil {
		os.Remove(tmp.Name())
		return err
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		os.Remove(tmp.Name())
		return err
	}
	return nil
}

// ReadLearnedFile reads the learned state at path; a missing file is no
// state and no error.
func ReadLearnedFile(path string) (*LearnedState, error) {
	data, err := LearnedFileStore{Path: path}.LoadLearned(context.Background())
	if err != nil || data == nil {
		return nil, err
	}
	st, err := ReadLearned(bytes.NewReader(data))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return st, nil
}

// LearnedStore keeps learned state between runs and instances: a file
// (LearnedFileStore), or the Redis window store, which shares it.
type LearnedStore interface {
	// LoadLearned returns the stored state's JSON, nil when there is none.
	LoadLearned(ctx context.Context) ([]byte, error)
	// SaveLearned replaces the stored state.
	SaveLearned(ctx context.Context, data []byte) error
}

// LearnedFileStore is a LearnedStore in a file, written atomically.
type LearnedFileStore struct{ Path string }

// LoadLearned reads the file; a missing file is no state.
func (s LearnedFileStore) LoadLearned(context.Context) ([]byte, error) {
	f, err := os.Open(s.Path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, MaxLearnedBytes+1))
	if err != nil {
		return nil, err
	}
	if len(data) > MaxLearnedBytes {
		return nil, fmt.Errorf("%s: larger than %d bytes", s.Path, MaxLearnedBytes)
	}
	return data, nil
}

// SaveLearned writes the file atomically.
func (s LearnedFileStore) SaveLearned(_ context.Context, data []byte) error {
	return writeFileAtomic(s.Path, data)
}

// SyncLearned merges what store holds into the engine, then saves the
// engine's state (what it learned and what it merged) back to store. do
// runs a function on the engine's goroutine (Pipeline.Do, or a direct call
// when no pipeline runs); store I/O happens outside it. It returns how many
// rules took stored state. A stored state that does not decode is
// reported and then replaced.
func SyncLearned(ctx context.Context, store LearnedStore, do func(func(*Engine))) (int, error) {
	return syncLearned(ctx, store, do, true)
}

// syncLearned is SyncLearned; without merge it only saves.
func syncLearned(ctx context.Context, store LearnedStore, do func(func(*Engine)), merge bool) (int, error) {
	var st *LearnedState
	var readErr error
	if merge {
		data, err := store.LoadLearned(ctx)
		if err != nil {
			return 0, err
		}
		if data != nil {
			st, readErr = ReadLearned(bytes.NewReader(data))
		}
	}
	loaded := 0
	var snap *LearnedState
	do(func(e *Engine) {
		loaded = e.LoadLearned(st)
		snap = e.SaveLearned()
	})
	out, err := marshalLearned(snap)
	if err != nil {
		return loaded, err
	}
	return loaded, errors.Join(readErr, store.SaveLearned(ctx, out))
}

// KeepLearned keeps the engine's learned state in stores: it syncs with
// each (SyncLearned: what a store holds is merged in, then the engine's
// state is saved to it) at once, then every every, and a last time when
// ctx ends, before it returns. A file store is merged in at the first
// sync only (later ones just save): it holds this instance's own state. Failures are logged and counted in the
// returned stats; the engine runs on regardless. do runs a function on
// the engine's goroutine (Pipeline.Do): it must keep serving until
// KeepLearned returns.
func KeepLearned(ctx context.Context, stores []LearnedStore, every time.Duration, do func(func(*Engine)),
	log *slog.Logger, stats *LearnedStoreStats) {
	if len(stores) == 0 {
		return
	}
	if log == nil {
		log = slog.Default()
	}
	if stats == nil {
		stats = &LearnedStoreStats{}
	}
	if every <= 0 {
		every = 5 * time.Minute
	}
	sync := func(ctx context.Context, first bool) {
		for _, st := range stores {
			// A file is this instance's own: read at start only. A shared
			// store (Redis) is merged at every sync, to take what the
			// other instances learned.
			_, own := st.(LearnedFileStore)
			n, err := syncLearned(ctx, st, do, first || !own)
			if err != nil {
				stats.Errors.Add(1)
				log.Warn("learned state: sync failed", "store", storeName(st), "err", err)
				continue
			}
			stats.Syncs.Add(1)
			if first && n > 0 {
				log.Info("learned state loaded", "store", storeName(st), "rules", n)
			}
		}
	}
	sync(ctx, true)
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			final, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
			sync(final, false)
			cancel()
			return
		case <-t.C:
			sync(ctx, false)
		}
	}
}

// LearnedStoreStats counts KeepLearned's syncs, for metrics.
type LearnedStoreStats struct {
	Syncs  atomic.Uint64 // syncs done (loads and saves), per store
	Errors atomic.Uint64 // syncs that failed
}

// storeName names a learned store in logs.
func storeName(st LearnedStore) string {
	if s, ok := st.(fmt.Stringer); ok {
		return s.String()
	}
	return fmt.Sprintf("%T", st)
}

// String names the file store in logs.
func (s LearnedFileStore) String() string { return "file " + s.Path }

// LearnedStores returns where a daemon keeps learned state: the file
// learned.json in dir (when dir is not ""), and the window store when it
// keeps learned state itself (the Redis store, shared by instances).
func LearnedStores(dir string, store window.Store) []LearnedStore {
	var out []LearnedStore
	if dir != "" {
		out = append(out, LearnedFileStore{Path: filepath.Join(dir, LearnedFile)})
	}
	if ls, ok := store.(LearnedStore); ok {
		out = append(out, ls)
	}
	return out
}
