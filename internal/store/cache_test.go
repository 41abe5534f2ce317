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
