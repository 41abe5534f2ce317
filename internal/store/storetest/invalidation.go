package storetest

import (
	"bytes"
	"context"
	"reflect"
	"testing"
	"time"

	"github.com/keymint/terraform-provider-keymint/internal/store"
)

// writeChecks holds, for every method of store.Store, how the suite proves
// that what it writes is seen by the very next lookup, through whatever
// cache the store keeps: a write whose verdict check is nil changes no
// verdict (or only reads). A method added to Store and missing here fails
// the suite: a new write cannot forget to invalidate unnoticed.
var writeChecks = map[string]func(t *testing.T, s store.Store){
	"UpdateApp": func(t *testing.T, s store.Store) {
		ctx := context.Background()
		_, err := s.UpdateApp(ctx, "inv", func(a *store.App, _ []store.Key) error {
			a.RateLimit = &store.RateLimit{Requests: 7, Window: time.Minute}
			return nil
		}, nil)
		must(t, err)
		if sec := lookup(t, s, "inv-k1"); sec.RateLimit == nil || sec.RateLimit.Requests != 7 {
			t.Fatalf("after UpdateApp, lookup still sees rate limit %+v", sec.RateLimit)
		}
	},
	"DeleteApp": func(t *testing.T, s store.Store) {
		must(t, s.DeleteApp(context.Background(), "inv", func([]store.Key) ([]*store.Event, error) { return nil, nil }))
		wantErr(t, lookupErr(s, "inv-k1"), store.ErrNotFound)
	},
	"UpdateKey": func(t *testing.T, s store.Store) {
		_, err := s.UpdateKey(context.Background(), "k1", func(k *store.Key) error { k.Enabled = false; return nil }, nil)
		must(t, err)
		if lookup(t, s, "inv-k1").Key.Enabled {
			t.Fatal("after disabling the key, lookup still sees it enabled")
		}
	},
	"RevokeKey": func(t *testing.T, s store.Store) {
		_, err := s.RevokeKey(context.Background(), "k1", t0, nil)
		must(t, err)
		if lookup(t, s, "inv-k1").Key.RevokedAt == nil {
			t.Fatal("after RevokeKey, lookup still sees the key unrevoked")
		}
	},
	"RotateKey": func(t *testing.T, s store.Store) {
		_, err := s.RotateKey(context.Background(), "k1", hash("inv-k1-new"), "p_new", t0, 0, nil, nil)
		must(t, err)
		wantErr(t, lookupErr(s, "inv-k1"), store.ErrNotFound) // no grace: the old secret is gone
		lookup(t, s, "inv-k1-new")                            // looked up (not found) before the write
	},
	"ReplaceSecret": func(t *testing.T, s store.Store) {
		_, err := s.ReplaceSecret(context.Background(), "k1", hash("inv-k1-new"), "p_new", nil, nil)
		must(t, err)
		wantErr(t, lookupErr(s, "inv-k1"), store.ErrNotFound)
		lookup(t, s, "inv-k1-new") // looked up (not found) before the write
	},
	"SetRootTokenHash": func(t *testing.T, s store.Store) {
		ctx := context.Background()
		must(t, s.SetRootTokenHash(ctx, hash("root-2"), true))
		got, err := s.RootTokenHash(ctx)
		must(t, err)
		if !bytes.Equal(got, hash("root-2")) {
			t.Fatal("after SetRootTokenHash, RootTokenHash still answers the old hash")
		}
	},
	"CreateKey": func(t *testing.T, s store.Store) {
		must(t, s.CreateKey(context.Background(), key("k2", "inv", "read"), hash("inv-k1-new"), nil, nil))
		lookup(t, s, "inv-k1-new") // looked up (not found) before the write
	},
	// Writes that change no verdict: a new app (no key refers to it yet),
	// usage, housekeeping.
	"CreateApp": nil, "RecordUse": nil, "PurgeEvents": nil, "PurgeIdempotency": nil, "Compact": nil,
	// Reads, and Close.
	"GetApp": nil, "ListApps": nil, "GetKey": nil, "ListKeys": nil, "ListEvents": nil, "LookupSecret": nil,
	"GetIdempotency": nil, "RootTokenHash": nil, "Close": nil,
	// Portal sessions: no verdict depends on them (a session's credential is
	// checked again through GetKey on every request).
	"CreateSession": nil, "GetSession": nil, "TouchSession": nil, "DeleteSession": nil, "DeleteSessionsOf": nil, "PurgeSessions": nil,
}

func lookupErr(s store.Store, secret string) error {
	_, err := s.LookupSecret(context.Background(), hash(secret))
	return err
}

func lookup(t *testing.T, s store.Store, secret string) store.Secret {
	t.Helper()
	sec, err := s.LookupSecret(context.Background(), hash(secret))
	must(t, err)
	return sec
}

// testEveryWriteInvalidates runs each verdict check on a store whose cache
// (if it has one) holds the key and the root hash before the write.
func testEveryWriteInvalidates(t *testing.T, open func(t *testing.T) store.Store) {
	// Stores with a verify cache run each check twice: with the cache filled
	// as lookups go, and filled with every secret (store.VerifyCache.Fill).
	modes := []bool{false}
	if cs, ok := open(t).(interface{ Cache() *store.VerifyCache }); ok && cs.Cache() != nil {
		modes = append(modes, true)
	}
	methods := reflect.TypeFor[store.Store]()
	for i := range methods.NumMethod() {
		name := methods.Method(i).Name
		check, known := writeChecks[name]
		if !known {
			t.Errorf("store.Store has a method %s that the invalidation suite does not know: add it to storetest's writeChecks, with a check that the next lookup sees what it writes if it can change a verdict", name)
			continue
		}
		if check == nil {
			continue
		}
		for _, filled := range modes {
			sub := name
			if filled {
				sub += "/Filled"
			}
			t.Run(sub, func(t *testing.T) {
				s := open(t)
				ctx := context.Background()
				must(t, s.CreateApp(ctx, app("inv", "read"), nil, nil))
				must(t, s.CreateKey(ctx, key("k1", "inv", "read"), hash("inv-k1"), nil, nil))
				must(t, s.SetRootTokenHash(ctx, hash("root-1"), false))
				if filled {
					refill(t, s) // the cache holds every secret and proves the rest unknown
				}
				for range 2 { // the second answer comes from the cache, where there is one
					lookup(t, s, "inv-k1")
					_, err := s.RootTokenHash(ctx)
					must(t, err)
					// A secret that a create or a rotation then adds, looked up before it exists.
					wantErr(t, lookupErr(s, "inv-k1-new"), store.ErrNotFound)
				}
				check(t, s)
			})
		}
	}
}

// refill empties s's verify cache and waits until it is filled again with
// every secret.
func refill(t *testing.T, s store.Store) {
	t.Helper()
	c := s.(interface{ Cache() *store.VerifyCache }).Cache()
	c.Clear()
	deadline := time.Now().Add(10 * time.Second)
	for !c.Complete() {
		if time.Now().After(deadline) {
			t.Fatal("the verify cache was not filled within 10 s of being emptied")
		}
		time.Sleep(5 * time.Millisecond)
	}
}
