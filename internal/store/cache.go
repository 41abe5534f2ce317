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
// Filled (Fill), it holds every secret the database has, and then proves
// a key unknown without asking: a write that adds a secret names its hash,
// and one that changes a key names the key, and either is marked pending
// (read from the database on its next lookup) rather than forgotten. It
// stays complete until it is emptied or outgrows its bound.
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
	// complete: entries hold every secret in the database but those in
	// pending, whose rows a write changed or added since.
	complete bool
	pending  map[[32]byte]struct{}
	journal  *fillJournal  // while a fill reads the database: what changed meanwhile
	refill   chan struct{} // a fill is wanted (after Clear), for the store's filler
	tried    chan struct{} // closed once the first fill has been tried
	tryOnce  sync.Once
}

// fillJournal is what Invalidate dropped while a fill read the database.
type fillJournal struct {
	keyIDs  []string
	apps    []string
	secrets [][32]byte
	cleared bool // Clear ran: the fill is void
}

// NewVerifyCache holds at most max secrets, and at most max hashes that
// matched none; past that, a new one takes the place of one picked at random.
func NewVerifyCache(max int) *VerifyCache {
	c := &VerifyCache{max: max, refill: make(chan struct{}, 1), tried: make(chan struct{})}
	c.Clear()
	return c
}

// RefillWanted receives when the cache was emptied (and at first), so
// that the store may fill it again.
func (c *VerifyCache) RefillWanted() <-chan struct{} { return c.refill }

// WantRefill asks the store's filler for a fill (after one failed).
func (c *VerifyCache) WantRefill() {
	select {
	case c.refill <- struct{}{}:
	default: // one is wanted already
	}
}

// FirstFillTried is closed once the store has tried to fill the cache
// the first time (filled, or found it cannot): a server is ready after it.
func (c *VerifyCache) FirstFillTried() <-chan struct{} { return c.tried }

// MarkFillTried closes FirstFillTried.
func (c *VerifyCache) MarkFillTried() { c.tryOnce.Do(func() { close(c.tried) }) }

// Max is how many secrets the cache holds at most.
func (c *VerifyCache) Max() int { return c.max }

// Complete reports whether the cache holds every secret, so that a hash
// it does not know is proven unknown.
func (c *VerifyCache) Complete() bool {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.complete
}

// BeginFill starts a fill: call it before reading the secrets, and hand
// what was read to Fill. Only one fill runs at a time.
func (c *VerifyCache) BeginFill() {
	c.mu.Lock()
	c.journal = &fillJournal{}
	c.mu.Unlock()
}

// Fill makes the cache hold secrets (every secret the database had when
// they were read, after BeginFill) and marks it complete. What a write
// changed since BeginFill is pending, as it would be after the fill. It
// reports false, filling nothing, if the cache was emptied meanwhile or
// the secrets do not fit.
func (c *VerifyCache) Fill(secrets map[[32]byte]Secret) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	j := c.journal
	c.journal = nil
	if j == nil || j.cleared || len(secrets) > c.max {
		return false
	}
	for h, sec := range secrets {
		if _, dup := c.entries[h]; !dup {
			c.insert(h, sec)
		}
	}
	c.complete = true
	clear(c.absent) // proven by completeness now
	for _, id := range j.keyIDs {
		c.dropKey(id)
	}
	for _, app := range j.apps {
		for id := range c.byApp[app] {
			c.dropKey(id)
		}
	}
	for _, h := range j.secrets {
		c.pending[h] = struct{}{}
	}
	return true
}

// AbandonFill ends a fill that will not call Fill.
func (c *VerifyCache) AbandonFill() {
	c.mu.Lock()
	c.journal = nil
	c.mu.Unlock()
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
	if !ok && !absent && c.complete {
		_, pending := c.pending[k]
		absent = !pending // every secret is here but the pending ones
	}
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
		switch {
		case c.gen != gen || c.max == 0: // a write since the lookup began may have added this secret
		case c.complete:
			delete(c.pending, k)
		default:
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
			// order), so that the keys in use now get in, not only the first
			// ones. The cache no longer holds every secret.
			c.complete = false
			clear(c.pending)
			for _, old := range c.entries {
				c.dropKey(old.Key.ID)
				break
			}
		}
		c.insert(k, sec)
		delete(c.pending, k)
	}
	c.mu.Unlock()
	return sec, nil
}

func (c *VerifyCache) insert(k [32]byte, sec Secret) {
	c.entries[k] = sec
	c.byKey[sec.Key.ID] = append(c.byKey[sec.Key.ID], k)
	if c.byApp[sec.Key.App] == nil {
		c.byApp[sec.Key.App] = map[string]bool{}
	}
	c.byApp[sec.Key.App][sec.Key.ID] = true
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
	j := c.journal
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
		if len(h) != 32 { // not a hash this cache could hold: fail closed
			c.clear()
			return
		}
		delete(c.absent, [32]byte(h))
		if c.complete {
			c.pending[[32]byte(h)] = struct{}{}
		}
		if j != nil {
			j.secrets = append(j.secrets, [32]byte(h))
		}
	}
	if j != nil {
		j.keyIDs = append(j.keyIDs, inv.KeyIDs...)
		if inv.App != "" {
			j.apps = append(j.apps, inv.App)
		}
	}
}

// dropKey forgets key id's secrets; in a complete cache they are pending
// (the key still exists, changed), not unknown.
func (c *VerifyCache) dropKey(id string) {
	for _, h := range c.byKey[id] {
		if c.complete {
			c.pending[h] = struct{}{}
		}
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
	c.clear()
	c.mu.Unlock()
}

func (c *VerifyCache) clear() {
	c.gen++
	c.entries = make(map[[32]byte]Secret)
	c.absent = make(map[[32]byte]struct{})
	c.pending = make(map[[32]byte]struct{})
	c.byKey = make(map[string][][32]byte)
	c.byApp = make(map[string]map[string]bool)
	c.root = nil
	c.complete = false
	if c.journal != nil {
		c.journal.cleared = true
	}
	c.WantRefill()
}

// Len is how many secrets are cached.
func (c *VerifyCache) Len() int {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return len(c.entries)
}
