package store

import (
	"context"
	"sync"
	"time"
)

// VerifyCache wraps a Store whose only writer is this process (embedded
// SQLite) and keeps the verify path's lookups in memory.
//
// It is not a cache with a staleness window: every write that can change a
// verdict (update, revoke, rotate, secret replacement, app update or delete) empties it before it
// returns, so the very next verify reads the store. A generation counter stops
// a lookup that raced with such a write from putting the old row back. Creates
// need no invalidation (nothing cached refers to a new key), nor does RecordUse
// (last_used_at is not part of a verdict).
//
// Never use it in front of a store that other processes write to (several
// replicas on PostgreSQL): their writes would not empty it.
//
// Cached Secrets are shared between callers: treat them as read-only.
type VerifyCache struct {
	Store
	max int
	// OnLookup, if set, hears whether each lookup was answered from memory.
	OnLookup func(hit bool)

	mu      sync.RWMutex
	gen     uint64
	entries map[[32]byte]Secret
}

// NewVerifyCache wraps s, holding at most max secrets (lookups past that go to the store).
func NewVerifyCache(s Store, max int) *VerifyCache {
	return &VerifyCache{Store: s, max: max, entries: make(map[[32]byte]Secret)}
}

func (c *VerifyCache) LookupSecret(ctx context.Context, hash []byte) (Secret, error) {
	if len(hash) != 32 {
		return c.Store.LookupSecret(ctx, hash)
	}
	k := [32]byte(hash)
	c.mu.RLock()
	sec, ok := c.entries[k]
	gen := c.gen
	c.mu.RUnlock()
	if c.OnLookup != nil {
		c.OnLookup(ok)
	}
	if ok {
		return sec, nil
	}
	sec, err := c.Store.LookupSecret(ctx, hash)
	if err != nil {
		return sec, err // not-found is not cached: a key created next must be seen
	}
	c.mu.Lock()
	if c.gen == gen && len(c.entries) < c.max {
		c.entries[k] = sec
	}
	c.mu.Unlock()
	return sec, nil
}

// invalidate empties the cache; it runs after a write, whether or not the write succeeded.
func (c *VerifyCache) invalidate() {
	c.mu.Lock()
	c.gen++
	clear(c.entries)
	c.mu.Unlock()
}

func (c *VerifyCache) UpdateApp(ctx context.Context, slug string, fn func(*App, []Key) error, ev *Event) (App, error) {
	defer c.invalidate()
	return c.Store.UpdateApp(ctx, slug, fn, ev)
}

func (c *VerifyCache) DeleteApp(ctx context.Context, slug string, check func([]Key) ([]*Event, error)) error {
	defer c.invalidate()
	return c.Store.DeleteApp(ctx, slug, check)
}

func (c *VerifyCache) UpdateKey(ctx context.Context, id string, fn func(*Key) error, ev *Event) (Key, error) {
	defer c.invalidate()
	return c.Store.UpdateKey(ctx, id, fn, ev)
}

func (c *VerifyCache) RevokeKey(ctx context.Context, id string, now time.Time, ev *Event) (Key, error) {
	defer c.invalidate()
	return c.Store.RevokeKey(ctx, id, now, ev)
}

func (c *VerifyCache) RotateKey(ctx context.Context, id string, hash []byte, start string, now time.Time, grace time.Duration, idem *Idempotency, ev *Event) (Key, error) {
	defer c.invalidate()
	return c.Store.RotateKey(ctx, id, hash, start, now, grace, idem, ev)
}

func (c *VerifyCache) ReplaceSecret(ctx context.Context, id string, hash []byte, start string, rotatedAt *time.Time, ev *Event) (Key, error) {
	defer c.invalidate()
	return c.Store.ReplaceSecret(ctx, id, hash, start, rotatedAt, ev)
}
