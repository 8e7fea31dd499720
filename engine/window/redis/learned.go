package rediswindow

import (
	"context"
	"errors"
	"fmt"

	"github.com/redis/go-redis/v9"
)

// Learned state: what the engine's learning rules learned (baseline,
// new_terms, beacon), as one blob (engine.LearnedState's JSON) under the
// key <prefix>learned, shared by every instance of the store. The engine
// syncs it (engine.SyncLearned): it reads the blob, merges it into what it
// learned itself, and writes the merged state back, so instances share
// what each of them learned as of their latest sync.

// MaxLearnedBytes bounds the learned state read back (256 MiB, as
// engine.MaxLearnedBytes).
const MaxLearnedBytes = 256 << 20

func (s *Store) learnedKey() string { return s.cfg.KeyPrefix + "learned" }

// LoadLearned returns the shared learned state, or nil when there is none.
func (s *Store) LoadLearned(ctx context.Context) ([]byte, error) {
	n, err := s.client.StrLen(ctx, s.learnedKey()).Result()
	if err != nil {
		return nil, fmt.Errorf("redis: learned state: %w", err)
	}
	if n > MaxLearnedBytes {
		return nil, fmt.Errorf("redis: learned state is %d bytes, more than %d", n, MaxLearnedBytes)
	}
	data, err := s.client.Get(ctx, s.learnedKey()).Bytes()
	if errors.Is(err, redis.Nil) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("redis: learned state: %w", err)
	}
	return data, nil
}

// SaveLearned replaces the shared learned state.
func (s *Store) SaveLearned(ctx context.Context, data []byte) error {
	if err := s.client.Set(ctx, s.learnedKey(), data, 0).Err(); err != nil {
		return fmt.Errorf("redis: learned state: %w", err)
	}
	return nil
}
