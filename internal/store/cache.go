package store

import (
	"errors"
	"sync"
)

// VerifyCache keeps the verify path's lookups (and the root token's hash) in
// memory. It is not a cache with a staleness window, and it is not a wrapper
// that a write could pass around: the store that owns it (sqlstore) hands it
// the Invalidation of every committed write transaction before the write
// returns, and on PostgreSQL the replica hands it the invalidations of other
// replicas' writes in commit order (postgres.Replica). A generation counter
// stops a lookup that raced with a write from putting the old row back.
//
// It fails closed: Usable (if set) is asked before each lookup, and false
// sends it to the database (a PostgreSQL replica answers from memory only
// while it can prove it has heard of every committed change); anything it
// cannot account for empties it (Clear).
//
// It also remembers hashes that matched no secret, so a verify of an
// unknown key is answered from memory too: every write that adds a secret
// names its hash (Invalidation.Secrets), and the same generation counter
// stops a lookup that raced with the write from caching "not found".
//
// Cached Secrets are shared between callers: treat them as read-only.
type VerifyCache struct {
	max int
	// OnLookup, if set, hears whether each lookup was answered from memory.
	OnLookup func(hit bool)
	// Usable, if set, is asked before each lookup; false sends it to the store.
	Usable func() bool

	mu      sync.RWMutex
	gen     uint64
	entries map[[32]byte]Secret
	absent  map[[32]byte]struct{}      // hashes that matched no secret
	byKey   map[string][][32]byte      // key id -> its cached secrets' hashes
	byApp   map[string]map[string]bool // app -> ids of its keys with cached secrets
	root    []byte                     // the root token's hash; nil: not cached
}

// NewVerifyCache holds at most max secrets, and at most max hashes that
// matched none; past that, a new one takes the place of one picked at random.
func NewVerifyCache(max int) *VerifyCache {
	c := &VerifyCache{max: max}
	c.Clear()
	return c
}

// LookupSecret answers from memory, or calls load and keeps what it found
// (ErrNotFound included).
func (c *VerifyCache) LookupSecret(hash []byte, load func() (Secret, error)) (Secret, error) {
	if c == nil || len(hash) != 32 || c.Usable != nil && !c.Usable() {
		return load()
	}
	k := [32]byte(hash)
	c.mu.RLock()
	sec, ok := c.entries[k]
	_, absent := c.absent[k]
	gen := c.gen
	c.mu.RUnlock()
	if c.OnLookup != nil {
		c.OnLookup(ok || absent)
	}
	if ok {
		return sec, nil
	}
	if absent {
		return Secret{}, ErrNotFound
	}
	sec, err := load()
	if errors.Is(err, ErrNotFound) {
		c.mu.Lock()
		if c.gen == gen && c.max > 0 { // no write since the lookup began: none added this secret
			if len(c.absent) >= c.max {
				for h := range c.absent { // full: make room by dropping any one
					delete(c.absent, h)
					break
				}
			}
			c.absent[k] = struct{}{}
		}
		c.mu.Unlock()
	}
	if err != nil {
		return sec, err
	}
	c.mu.Lock()
	if _, dup := c.entries[k]; !dup && c.gen == gen && c.max > 0 {
		if len(c.entries) >= c.max {
			// Full: make room by dropping any one key (a random one: Go's map
			// order), so that the keys in use now get in, not only the first ones.
			for _, old := range c.entries {
				c.dropKey(old.Key.ID)
				break
			}
		}
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

// RootTokenHash answers from memory, or calls load and keeps what it found.
func (c *VerifyCache) RootTokenHash(load func() ([]byte, error)) ([]byte, error) {
	if c == nil || c.Usable != nil && !c.Usable() {
		return load()
	}
	c.mu.RLock()
	root, gen := c.root, c.gen
	c.mu.RUnlock()
	if root != nil {
		return root, nil
	}
	root, err := load()
	if err != nil {
		return root, err
	}
	c.mu.Lock()
	if c.gen == gen {
		c.root = root
	}
	c.mu.Unlock()
	return root, nil
}

// Invalidate drops what inv names.
func (c *VerifyCache) Invalidate(inv Invalidation) {
	if c == nil || inv.Nothing {
		return
	}
	if inv.Everything() {
		c.Clear()
		return
	}
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
	if inv.Root {
		c.root = nil
	}
	for _, h := range inv.Secrets {
		if len(h) == 32 {
			delete(c.absent, [32]byte(h))
		} else {
			clear(c.absent) // not a hash this cache could hold: fail closed
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
	if c == nil {
		return
	}
	c.mu.Lock()
	c.gen++
	c.entries = make(map[[32]byte]Secret)
	c.absent = make(map[[32]byte]struct{})
	c.byKey = make(map[string][][32]byte)
	c.byApp = make(map[string]map[string]bool)
	c.root = nil
	c.mu.Unlock()
}

// Len is how many secrets are cached.
func (c *VerifyCache) Len() int {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return len(c.entries)
}
