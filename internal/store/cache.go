package store

import (
	"context"
	"sync"
	"time"
)

// VerifyCache wraps a Store and keeps the verify path's lookups in memory.
//
// It is not a cache with a staleness window: every write that can change a
// verdict (update, revoke, rotate, secret replacement, app update or delete)
// drops what it changed (that key's secrets, or the app's keys') before it
// returns, so the very next verify of those keys reads the store. A
// generation counter stops a lookup that raced with such a write from putting
// the old row back. Creates need no invalidation (nothing cached refers to a
// new key), nor does RecordUse (last_used_at is not part of a verdict).
//
// In front of a store that other processes write to (replicas on
// PostgreSQL), their writes reach it through Invalidate, and Usable says
// whether it may answer at all (postgres.Replica holds a lease while it is
// sure to hear of every write; without one, every lookup reads the store).
//
// Cached Secrets are shared between callers: treat them as read-only.
type VerifyCache struct {
	Store
	max int
	// OnLookup, if set, hears whether each lookup was answered from memory.
	OnLookup func(hit bool)
	// Usable, if set, is asked before each lookup; false sends it to the store.
	Usable func() bool

	mu      sync.RWMutex
	gen     uint64
	entries map[[32]byte]Secret
	byKey   map[string][][32]byte      // key id -> its cached secrets' hashes
	byApp   map[string]map[string]bool // app -> ids of its keys with cached secrets
}

// NewVerifyCache wraps s, holding at most max secrets (lookups past that go to the store).
func NewVerifyCache(s Store, max int) *VerifyCache {
	c := &VerifyCache{Store: s, max: max}
	c.Clear()
	return c
}

func (c *VerifyCache) LookupSecret(ctx context.Context, hash []byte) (Secret, error) {
	if len(hash) != 32 || c.Usable != nil && !c.Usable() {
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
	if _, dup := c.entries[k]; !dup && c.gen == gen && len(c.entries) < c.max {
		c.entries[k] = sec
		c.byKey[sec.Key.ID] = append(c.byKey[sec.Key.ID], k)
		if c.byApp[sec.Key.App] == nil {
			c.byApp[sec.Key.App] = map[string]bool{}
		}
		c.byApp[sec.Key.App][sec.Key.ID] = true
	}
	c.mu.Unlock()
	return sec, nil
}

// Invalidate drops the cached secrets of what inv names.
func (c *VerifyCache) Invalidate(inv Invalidation) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen++
	for _, id := range inv.KeyIDs {
		c.dropKey(id)
	}
	if inv.App != "" {
		for id := range c.byApp[inv.App] {
			c.dropKey(id)
		}
	}
}

func (c *VerifyCache) dropKey(id string) {
	for _, h := range c.byKey[id] {
		if sec, ok := c.entries[h]; ok {
			delete(c.entries, h)
			if ids := c.byApp[sec.Key.App]; ids != nil {
				delete(ids, id)
				if len(ids) == 0 {
					delete(c.byApp, sec.Key.App)
				}
			}
		}
	}
	delete(c.byKey, id)
}

// Clear drops everything.
func (c *VerifyCache) Clear() {
	c.mu.Lock()
	c.gen++
	c.entries = make(map[[32]byte]Secret)
	c.byKey = make(map[string][][32]byte)
	c.byApp = make(map[string]map[string]bool)
	c.mu.Unlock()
}

// Each write below drops what it changed once it returns, whether or not it succeeded.

func keyInv(id string) Invalidation { return Invalidation{KeyIDs: []string{id}} }

func (c *VerifyCache) UpdateApp(ctx context.Context, slug string, fn func(*App, []Key) error, ev *Event) (App, error) {
	defer c.Invalidate(Invalidation{App: slug})
	return c.Store.UpdateApp(ctx, slug, fn, ev)
}

func (c *VerifyCache) DeleteApp(ctx context.Context, slug string, check func([]Key) ([]*Event, error)) error {
	defer c.Invalidate(Invalidation{App: slug})
	return c.Store.DeleteApp(ctx, slug, check)
}

func (c *VerifyCache) UpdateKey(ctx context.Context, id string, fn func(*Key) error, ev *Event) (Key, error) {
	defer c.Invalidate(keyInv(id))
	return c.Store.UpdateKey(ctx, id, fn, ev)
}

func (c *VerifyCache) RevokeKey(ctx context.Context, id string, now time.Time, ev *Event) (Key, error) {
	defer c.Invalidate(keyInv(id))
	return c.Store.RevokeKey(ctx, id, now, ev)
}

func (c *VerifyCache) RotateKey(ctx context.Context, id string, hash []byte, start string, now time.Time, grace time.Duration, idem *Idempotency, ev *Event) (Key, error) {
	defer c.Invalidate(keyInv(id))
	return c.Store.RotateKey(ctx, id, hash, start, now, grace, idem, ev)
}

func (c *VerifyCache) ReplaceSecret(ctx context.Context, id string, hash []byte, start string, rotatedAt *time.Time, ev *Event) (Key, error) {
	defer c.Invalidate(keyInv(id))
	return c.Store.ReplaceSecret(ctx, id, hash, start, rotatedAt, ev)
}
