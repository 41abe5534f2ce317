package store_test

import (
	"errors"
	"testing"

	"github.com/keymint/terraform-provider-keymint/internal/store"
)

func hashOf(b byte) []byte { h := make([]byte, 32); h[0] = b; return h }

// A full cache makes room for what is looked up now: the keys in use get in.
func TestVerifyCacheFullEvicts(t *testing.T) {
	c := store.NewVerifyCache(2)
	loads := 0
	lookup := func(b byte) {
		t.Helper()
		_, err := c.LookupSecret(hashOf(b), func() (store.Secret, error) {
			loads++
			return store.Secret{Key: store.Key{ID: string(rune('a' + b)), App: "x"}}, nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	for b := range byte(5) {
		lookup(b)
	}
	if c.Len() != 2 {
		t.Fatalf("Len() = %d, want the bound 2", c.Len())
	}
	before := loads
	lookup(4) // the last one looked up is in
	if loads != before {
		t.Fatal("the most recent lookup was not kept: a full cache admits nothing new")
	}
}

// Hashes that matched nothing are remembered, within the same bound, and a
// write that adds one of them drops it.
func TestVerifyCacheRemembersAbsentHashes(t *testing.T) {
	c := store.NewVerifyCache(2)
	loads := 0
	missing := func(b byte) error {
		_, err := c.LookupSecret(hashOf(b), func() (store.Secret, error) { loads++; return store.Secret{}, store.ErrNotFound })
		return err
	}
	for range 2 {
		if err := missing(7); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("got %v, want ErrNotFound", err)
		}
	}
	if loads != 1 {
		t.Fatalf("an unknown hash reached the store %d times, want once", loads)
	}
	c.Invalidate(store.Invalidation{Secrets: [][]byte{hashOf(7)}})
	missing(7)
	if loads != 2 {
		t.Fatal("after a write added the hash, the cache still answered not found")
	}
	for b := range byte(10) {
		missing(b)
	}
	loads = 0
	missing(9) // the latest is in; the bound holds
	if loads != 0 {
		t.Fatal("a full set of absent hashes admits nothing new")
	}
}

// filledCache is a cache filled with keys a (hash 1, app x), b (hash 2,
// app x) and c (hash 3, app y), and a lookup that counts what reaches the
// "database" (db: hash -> secret).
func filledCache(t *testing.T) (c *store.VerifyCache, lookup func(b byte) (store.Secret, error), loads *int, db map[byte]store.Secret) {
	t.Helper()
	db = map[byte]store.Secret{
		1: {Key: store.Key{ID: "a", App: "x"}},
		2: {Key: store.Key{ID: "b", App: "x"}},
		3: {Key: store.Key{ID: "c", App: "y"}},
	}
	c = store.NewVerifyCache(10)
	c.BeginFill()
	all := map[[32]byte]store.Secret{}
	for b, sec := range db {
		all[[32]byte(hashOf(b))] = sec
	}
	if !c.Fill(all) || !c.Complete() {
		t.Fatal("a fill that fits and raced nothing did not make the cache complete")
	}
	loads = new(int)
	lookup = func(b byte) (store.Secret, error) {
		return c.LookupSecret(hashOf(b), func() (store.Secret, error) {
			*loads++
			if sec, ok := db[b]; ok {
				return sec, nil
			}
			return store.Secret{}, store.ErrNotFound
		})
	}
	return c, lookup, loads, db
}

// A filled cache answers every key, and proves a hash it does not hold
// unknown, without the database.
func TestVerifyCacheFilledProvesUnknown(t *testing.T) {
	_, lookup, loads, _ := filledCache(t)
	for _, b := range []byte{1, 2, 3} {
		if sec, err := lookup(b); err != nil || sec.Key.ID == "" {
			t.Fatalf("hash %d: %+v, %v", b, sec, err)
		}
	}
	for _, b := range []byte{9, 10, 11} {
		if _, err := lookup(b); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("hash %d: %v, want ErrNotFound", b, err)
		}
	}
	if *loads != 0 {
		t.Fatalf("a filled cache asked the database %d times", *loads)
	}
}

// What a write changes or adds after a fill is read from the database on
// its next lookup: a changed key is pending, not unknown, and so is a new
// secret, whichever way the write names it.
func TestVerifyCacheFilledReadsWhatChanged(t *testing.T) {
	c, lookup, loads, db := filledCache(t)
	db[1] = store.Secret{Key: store.Key{ID: "a", App: "x", Enabled: false, Name: "disabled"}}
	c.Invalidate(store.Invalidation{KeyIDs: []string{"a"}})
	if sec, err := lookup(1); err != nil || sec.Key.Name != "disabled" || *loads != 1 {
		t.Fatalf("after a change to key a: %+v, %v, %d loads; want the new row, read once", sec, err, *loads)
	}
	lookup(1)
	if *loads != 1 {
		t.Fatal("the re-read row was not kept")
	}
	db[4] = store.Secret{Key: store.Key{ID: "d", App: "x"}} // created
	c.Invalidate(store.Invalidation{KeyIDs: []string{"d"}, Secrets: [][]byte{hashOf(4)}})
	if sec, err := lookup(4); err != nil || sec.Key.ID != "d" {
		t.Fatalf("a created key: %+v, %v; want it found", sec, err)
	}
	db[2] = store.Secret{Key: store.Key{ID: "b", App: "x", Name: "app changed"}}
	c.Invalidate(store.Invalidation{App: "x"})
	if sec, _ := lookup(2); sec.Key.Name != "app changed" {
		t.Fatalf("after a change to app x: %+v; want the new row", sec)
	}
	before := *loads
	if _, err := lookup(3); err != nil || *loads != before {
		t.Fatal("a change to app x reached key c of app y")
	}
	// A pending hash the database no longer has is then unknown, from memory.
	c.Invalidate(store.Invalidation{Secrets: [][]byte{hashOf(5)}})
	for range 2 {
		if _, err := lookup(5); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("got %v, want ErrNotFound", err)
		}
	}
	if *loads != before+1 {
		t.Fatalf("a pending hash the database does not have was read %d times, want once", *loads-before)
	}
}

// What a write changed while a fill read the database is pending once the
// fill lands; an emptying meanwhile voids the fill; and a fill that does
// not fit, or a cache that outgrows its bound, is not complete.
func TestVerifyCacheFillRaces(t *testing.T) {
	c := store.NewVerifyCache(10)
	c.BeginFill()
	c.Invalidate(store.Invalidation{KeyIDs: []string{"a"}, Secrets: [][]byte{hashOf(7)}})
	stale := map[[32]byte]store.Secret{[32]byte(hashOf(1)): {Key: store.Key{ID: "a", App: "x", Name: "stale"}}}
	if !c.Fill(stale) {
		t.Fatal("a fill that raced a write was refused; it should land with the write's keys pending")
	}
	loads := 0
	sec, err := c.LookupSecret(hashOf(1), func() (store.Secret, error) {
		loads++
		return store.Secret{Key: store.Key{ID: "a", App: "x", Name: "fresh"}}, nil
	})
	if err != nil || sec.Key.Name != "fresh" || loads != 1 {
		t.Fatalf("a key written during the fill: %+v, %v; want it read afresh", sec, err)
	}
	if _, err := c.LookupSecret(hashOf(7), func() (store.Secret, error) { loads++; return store.Secret{}, store.ErrNotFound }); !errors.Is(err, store.ErrNotFound) || loads != 2 {
		t.Fatalf("a secret added during the fill was not read from the database: %v, %d loads", err, loads)
	}

	c = store.NewVerifyCache(10)
	c.BeginFill()
	c.Clear()
	if c.Fill(stale) || c.Complete() {
		t.Fatal("a fill voided by an emptying landed")
	}

	c = store.NewVerifyCache(1)
	c.BeginFill()
	two := map[[32]byte]store.Secret{[32]byte(hashOf(1)): {Key: store.Key{ID: "a"}}, [32]byte(hashOf(2)): {Key: store.Key{ID: "b"}}}
	if c.Fill(two) || c.Complete() {
		t.Fatal("a fill over the bound landed")
	}

	c = store.NewVerifyCache(1)
	c.BeginFill()
	c.Fill(map[[32]byte]store.Secret{[32]byte(hashOf(1)): {Key: store.Key{ID: "a"}}})
	c.Invalidate(store.Invalidation{Secrets: [][]byte{hashOf(2)}})
	c.LookupSecret(hashOf(2), func() (store.Secret, error) { return store.Secret{Key: store.Key{ID: "b"}}, nil })
	if c.Complete() {
		t.Fatal("a cache that evicted a secret still claims to hold them all")
	}
	if _, err := c.LookupSecret(hashOf(3), func() (store.Secret, error) { return store.Secret{}, store.ErrNotFound }); !errors.Is(err, store.ErrNotFound) {
		t.Fatal(err)
	}
}
