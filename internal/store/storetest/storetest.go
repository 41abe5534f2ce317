// Package storetest is the conformance suite every store.Store backend passes.
package storetest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/keymint/terraform-provider-keymint/internal/store"
	"github.com/keymint/terraform-provider-keymint/internal/vocab"
)

// Run runs the suite; open returns a fresh, empty store for each subtest.
func Run(t *testing.T, open func(t *testing.T) store.Store) {
	tests := map[string]func(*testing.T, store.Store){
		"Apps":               testApps,
		"UpdateAppNarrowing": testUpdateAppNarrowing,
		"DeleteApp":          testDeleteApp,
		"Keys":               testKeys,
		"ListKeysFilter":     testListKeysFilter,
		"RevokeKey":          testRevokeKey,
		"RotateKey":          testRotateKey,
		"RotateIdempotency":  testRotateIdempotency,
		"ReplaceSecret":      testReplaceSecret,
		"SecretTaken":        testSecretTaken,
		"RecordUse":          testRecordUse,
		"Idempotency":        testIdempotency,
		"RootToken":          testRootToken,
		"PurgeIdempotency":   testPurgeIdempotency,
		"Events":             testEvents,
		"ConcurrentWrites":   testConcurrentWrites,
		"RevokeRacesLookups": testRevokeRacesLookups,
		"EventFilters":       testEventFilters,
		"Sessions":           testSessions,
	}
	for name, fn := range tests {
		t.Run(name, func(t *testing.T) { fn(t, open(t)) })
	}
	t.Run("EveryWriteInvalidates", func(t *testing.T) { testEveryWriteInvalidates(t, open) })
}

var t0 = time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)

func app(slug string, scopes ...string) store.App {
	return store.App{Slug: slug, Name: "App " + slug, Scopes: scopes, KeyPrefix: "p" + slug, CreatedAt: t0, UpdatedAt: t0}
}

func key(id, app string, scopes ...string) store.Key {
	return store.Key{ID: id, App: app, Name: "key " + id, Scopes: scopes, Resources: []string{}, Metadata: map[string]string{"team": "x"},
		Enabled: true, Start: "p_" + id, CreatedAt: t0}
}

func hash(s string) []byte { h := make([]byte, 32); copy(h, s); return h }

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func wantErr(t *testing.T, err, want error) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Fatalf("err = %v, want %v", err, want)
	}
}

func testApps(t *testing.T, s store.Store) {
	ctx := context.Background()
	a := app("billing", "read", "write")
	a.RateLimit = &store.RateLimit{Requests: 10, Window: time.Minute}
	must(t, s.CreateApp(ctx, a, nil, nil))
	wantErr(t, s.CreateApp(ctx, a, nil, nil), store.ErrExists)
	other := app("other", "read")
	other.KeyPrefix = a.KeyPrefix
	wantErr(t, s.CreateApp(ctx, other, nil, nil), store.ErrExists) // prefixes are unique
	got, err := s.GetApp(ctx, "billing")
	must(t, err)
	if got.Name != a.Name || !slices.Equal(got.Scopes, a.Scopes) || *got.RateLimit != *a.RateLimit || !got.CreatedAt.Equal(t0) {
		t.Fatalf("GetApp = %+v, want %+v", got, a)
	}
	_, err = s.GetApp(ctx, "nope")
	wantErr(t, err, store.ErrNotFound)
	must(t, s.CreateApp(ctx, app("alpha", "x"), nil, nil))
	apps, err := s.ListApps(ctx)
	must(t, err)
	if len(apps) != 2 || apps[0].Slug != "alpha" || apps[1].Slug != "billing" {
		t.Fatalf("ListApps = %+v", apps)
	}
	t1 := t0.Add(time.Hour)
	up, err := s.UpdateApp(ctx, "billing", func(a *store.App, _ []store.Key) error {
		a.Name, a.RateLimit, a.UpdatedAt = "Renamed", nil, t1
		return nil
	}, nil)

	must(t, err)
	got, _ = s.GetApp(ctx, "billing")
	if got.Name != "Renamed" || got.RateLimit != nil || !got.UpdatedAt.Equal(t1) || up.Name != "Renamed" {
		t.Fatalf("after UpdateApp: %+v", got)
	}
	boom := errors.New("boom")
	_, err = s.UpdateApp(ctx, "billing", func(a *store.App, _ []store.Key) error { a.Name = "half"; return boom }, nil)
	wantErr(t, err, boom)
	if got, _ = s.GetApp(ctx, "billing"); got.Name != "Renamed" {
		t.Fatalf("a failed update wrote %q", got.Name)
	}
	_, err = s.UpdateApp(ctx, "nope", func(*store.App, []store.Key) error { return nil }, nil)
	wantErr(t, err, store.ErrNotFound)
}

// UpdateApp hands fn the keys that are not revoked; an error from fn writes nothing.
func testUpdateAppNarrowing(t *testing.T, s store.Store) {
	ctx := context.Background()
	must(t, s.CreateApp(ctx, app("a", "read", "write"), nil, nil))
	must(t, s.CreateKey(ctx, key("k1", "a", "read", "write"), hash("1"), nil, nil))
	must(t, s.CreateKey(ctx, key("k2", "a", "read"), hash("2"), nil, nil))
	refuse := errors.New("stranded")
	var seen []string
	_, err := s.UpdateApp(ctx, "a", func(a *store.App, unrevoked []store.Key) error {
		a.Scopes = []string{"read"}
		seen = keyIDs(unrevoked)
		return refuse
	}, nil)

	wantErr(t, err, refuse)
	if !slices.Equal(seen, []string{"k1", "k2"}) {
		t.Fatalf("UpdateApp handed %v, want k1 and k2", seen)
	}
	if got, _ := s.GetApp(ctx, "a"); len(got.Scopes) != 2 {
		t.Fatalf("a refused update wrote scopes %v", got.Scopes)
	}
	_, err = s.RevokeKey(ctx, "k1", t0, nil)
	must(t, err)
	_, err = s.UpdateApp(ctx, "a", func(a *store.App, unrevoked []store.Key) error {
		seen = keyIDs(unrevoked)
		a.Scopes = []string{"read"}
		return nil
	}, nil)

	must(t, err)
	if !slices.Equal(seen, []string{"k2"}) {
		t.Fatalf("after revoking k1, UpdateApp handed %v", seen)
	}
}

func keyIDs(keys []store.Key) []string {
	var out []string
	for _, k := range keys {
		out = append(out, k.ID)
	}
	return out
}

func testDeleteApp(t *testing.T, s store.Store) {
	ctx := context.Background()
	must(t, s.CreateApp(ctx, app("a", "read"), nil, nil))
	must(t, s.CreateKey(ctx, key("k1", "a", "read"), hash("1"), nil, nil))
	if _, err := s.LookupSecret(ctx, hash("1")); err != nil {
		t.Fatal(err)
	}
	refuse := errors.New("live keys")
	var seen []string
	err := s.DeleteApp(ctx, "a", func(unrevoked []store.Key) ([]*store.Event, error) { seen = keyIDs(unrevoked); return nil, refuse })
	wantErr(t, err, refuse)
	if !slices.Equal(seen, []string{"k1"}) {
		t.Fatalf("DeleteApp handed %v, want k1", seen)
	}
	if _, err := s.GetApp(ctx, "a"); err != nil {
		t.Fatal("the refused delete removed the app")
	}
	must(t, s.DeleteApp(ctx, "a", func([]store.Key) ([]*store.Event, error) {
		return []*store.Event{ev("app.delete", "a", "", t0), ev("key.delete", "a", "k1", t0)}, nil
	}))
	if evs, _ := s.ListEvents(ctx, store.EventFilter{Limit: 10}); len(evs) != 2 || evs[0].Action != "key.delete" || evs[1].Action != "app.delete" {
		t.Fatalf("a forced delete recorded %+v", evs)
	}
	_, err = s.GetApp(ctx, "a")
	wantErr(t, err, store.ErrNotFound)
	_, err = s.GetKey(ctx, "k1")
	wantErr(t, err, store.ErrNotFound)
	_, err = s.LookupSecret(ctx, hash("1"))
	wantErr(t, err, store.ErrNotFound)
	wantErr(t, s.DeleteApp(ctx, "a", func([]store.Key) ([]*store.Event, error) { return nil, nil }), store.ErrNotFound)
}

func testKeys(t *testing.T, s store.Store) {
	ctx := context.Background()
	must(t, s.CreateApp(ctx, app("a", "read", "write"), nil, nil))
	k := key("k1", "a", "read")
	k.Resources, k.Owner = []string{"vault-1"}, "alice"
	exp := t0.Add(24 * time.Hour)
	k.ExpiresAt = &exp
	must(t, s.CreateKey(ctx, k, hash("1"), nil, nil))
	wantErr(t, s.CreateKey(ctx, key("k2", "missing", "read"), hash("2"), nil, nil), store.ErrNotFound)
	got, err := s.GetKey(ctx, "k1")
	must(t, err)
	if got.Owner != "alice" || !slices.Equal(got.Resources, []string{"vault-1"}) || !got.ExpiresAt.Equal(exp) ||
		got.Metadata["team"] != "x" || !got.Enabled || got.Status(t0) != vocab.StatusActive || got.LastUsedAt != nil {
		t.Fatalf("GetKey = %+v", got)
	}
	sec, err := s.LookupSecret(ctx, hash("1"))
	must(t, err)
	if sec.Key.ID != "k1" || sec.ExpiresAt != nil || sec.RateLimit != nil {
		t.Fatalf("LookupSecret = %+v", sec)
	}
	_, err = s.UpdateApp(ctx, "a", func(a *store.App, _ []store.Key) error {
		a.RateLimit = &store.RateLimit{Requests: 5, Window: time.Second}
		return nil
	}, nil)

	must(t, err)
	if sec, _ = s.LookupSecret(ctx, hash("1")); sec.RateLimit == nil || sec.RateLimit.Requests != 5 {
		t.Fatalf("after the app's rate limit changed, LookupSecret = %+v", sec.RateLimit)
	}
	_, err = s.LookupSecret(ctx, hash("nope"))
	wantErr(t, err, store.ErrNotFound)
	_, err = s.UpdateKey(ctx, "k1", func(k *store.Key) error {
		k.Name, k.Enabled, k.Metadata = "renamed", false, map[string]string{}
		return nil
	}, nil)

	must(t, err)
	got, _ = s.GetKey(ctx, "k1")
	if got.Name != "renamed" || got.Enabled || len(got.Metadata) != 0 || got.Status(t0) != vocab.StatusDisabled {
		t.Fatalf("after UpdateKey: %+v", got)
	}
	if sec, _ = s.LookupSecret(ctx, hash("1")); sec.Key.Enabled || sec.Key.Name != "renamed" {
		t.Fatalf("after UpdateKey, LookupSecret = %+v", sec.Key)
	}
	if got.Status(exp) != vocab.StatusExpired {
		t.Fatalf("status at expiry = %s", got.Status(exp))
	}
}

func testListKeysFilter(t *testing.T, s store.Store) {
	ctx := context.Background()
	must(t, s.CreateApp(ctx, app("a", "read"), nil, nil))
	must(t, s.CreateApp(ctx, app("b", "read"), nil, nil))
	for i := range 5 {
		must(t, s.CreateKey(ctx, key(fmt.Sprintf("k%d", i), "a", "read"), hash(fmt.Sprint(i)), nil, nil))
	}
	must(t, s.CreateKey(ctx, key("other", "b", "read"), hash("o"), nil, nil))
	_, err := s.UpdateKey(ctx, "k1", func(k *store.Key) error { k.Enabled = false; return nil }, nil)
	must(t, err)
	_, err = s.RevokeKey(ctx, "k2", t0, nil)
	must(t, err)
	exp := t0.Add(time.Minute)
	k := key("k5", "a", "read")
	k.ExpiresAt = &exp
	must(t, s.CreateKey(ctx, k, hash("5"), nil, nil))
	now := t0.Add(time.Hour)
	ids := func(f store.KeyFilter) []string {
		f.App, f.Now = "a", now
		if f.Limit == 0 {
			f.Limit = 100
		}
		keys, err := s.ListKeys(ctx, f)
		must(t, err)
		var out []string
		for _, k := range keys {
			out = append(out, k.ID)
		}
		return out
	}
	for status, want := range map[string][]string{
		"":                   {"k0", "k1", "k2", "k3", "k4", "k5"},
		vocab.StatusActive:   {"k0", "k3", "k4"},
		vocab.StatusDisabled: {"k1"},
		vocab.StatusRevoked:  {"k2"},
		vocab.StatusExpired:  {"k5"},
	} {
		if got := ids(store.KeyFilter{Status: status}); !slices.Equal(got, want) {
			t.Errorf("status %q: %v, want %v", status, got, want)
		}
	}
	// The filter is the store's rendering of Key.Status: at every instant
	// around an expiry, each key is listed under exactly its own status.
	for _, at := range []time.Time{t0, exp.Add(-time.Nanosecond), exp, exp.Add(time.Nanosecond)} {
		all, err := s.ListKeys(ctx, store.KeyFilter{App: "a", Limit: 100, Now: at})
		must(t, err)
		for _, status := range vocab.Statuses {
			listed, err := s.ListKeys(ctx, store.KeyFilter{App: "a", Status: status, Limit: 100, Now: at})
			must(t, err)
			var want, got []string
			for _, k := range all {
				if k.Status(at) == status {
					want = append(want, k.ID)
				}
			}
			for _, k := range listed {
				got = append(got, k.ID)
			}
			if !slices.Equal(got, want) {
				t.Errorf("at %v, status %q lists %v; Key.Status says %v", at, status, got, want)
			}
		}
	}
	if got := ids(store.KeyFilter{Limit: 2, After: "k1"}); !slices.Equal(got, []string{"k2", "k3"}) {
		t.Errorf("page after k1: %v", got)
	}
}

func testRevokeKey(t *testing.T, s store.Store) {
	ctx := context.Background()
	must(t, s.CreateApp(ctx, app("a", "read"), nil, nil))
	must(t, s.CreateKey(ctx, key("k1", "a", "read"), hash("1"), nil, nil))
	if sec, err := s.LookupSecret(ctx, hash("1")); err != nil || sec.Key.Status(t0) != vocab.StatusActive {
		t.Fatalf("before revoke: %+v %v", sec.Key, err)
	}
	k, err := s.RevokeKey(ctx, "k1", t0, nil)
	must(t, err)
	if k.Status(t0) != vocab.StatusRevoked {
		t.Fatalf("status %s", k.Status(t0))
	}
	again, err := s.RevokeKey(ctx, "k1", t0.Add(time.Hour), nil)
	must(t, err)
	if !again.RevokedAt.Equal(t0) {
		t.Fatalf("a second revoke moved revoked_at to %v", again.RevokedAt)
	}
	sec, err := s.LookupSecret(ctx, hash("1"))
	must(t, err) // still found, so verify can say REVOKED
	if sec.Key.Status(t0) != vocab.StatusRevoked {
		t.Fatalf("looked-up key status %s", sec.Key.Status(t0))
	}
	_, err = s.RotateKey(ctx, "k1", hash("2"), "s", t0, 0, nil, nil)
	wantErr(t, err, store.ErrRevoked)
	_, err = s.RevokeKey(ctx, "nope", t0, nil)
	wantErr(t, err, store.ErrNotFound)
}

func testRotateKey(t *testing.T, s store.Store) {
	ctx := context.Background()
	must(t, s.CreateApp(ctx, app("a", "read"), nil, nil))
	must(t, s.CreateKey(ctx, key("k1", "a", "read"), hash("1"), nil, nil))
	if _, err := s.LookupSecret(ctx, hash("1")); err != nil {
		t.Fatal(err)
	}
	k, err := s.RotateKey(ctx, "k1", hash("2"), "new-start", t0, time.Hour, nil, nil)
	must(t, err)
	if k.Start != "new-start" || !k.RotatedAt.Equal(t0) {
		t.Fatalf("rotated key %+v", k)
	}
	old, err := s.LookupSecret(ctx, hash("1"))
	must(t, err)
	if old.ExpiresAt == nil || !old.ExpiresAt.Equal(t0.Add(time.Hour)) {
		t.Fatalf("old secret expires %v, want %v", old.ExpiresAt, t0.Add(time.Hour))
	}
	cur, err := s.LookupSecret(ctx, hash("2"))
	must(t, err)
	if cur.ExpiresAt != nil {
		t.Fatalf("new secret expires %v", cur.ExpiresAt)
	}
	// A second rotation with a longer grace does not extend the first secret's.
	_, err = s.RotateKey(ctx, "k1", hash("3"), "s3", t0.Add(time.Minute), 24*time.Hour, nil, nil)
	must(t, err)
	old, _ = s.LookupSecret(ctx, hash("1"))
	if !old.ExpiresAt.Equal(t0.Add(time.Hour)) {
		t.Fatalf("grace of the first secret moved to %v", old.ExpiresAt)
	}
	// Zero grace ends every earlier secret at once.
	_, err = s.RotateKey(ctx, "k1", hash("4"), "s4", t0.Add(2*time.Minute), 0, nil, nil)
	must(t, err)
	for _, h := range []string{"1", "2", "3"} {
		_, err = s.LookupSecret(ctx, hash(h))
		wantErr(t, err, store.ErrNotFound)
	}
	_, err = s.LookupSecret(ctx, hash("4"))
	must(t, err)
}

func testRecordUse(t *testing.T, s store.Store) {
	ctx := context.Background()
	must(t, s.CreateApp(ctx, app("a", "read"), nil, nil))
	must(t, s.CreateKey(ctx, key("k1", "a", "read"), hash("1"), nil, nil))
	t1 := t0.Add(time.Hour)
	must(t, s.RecordUse(ctx, map[string]time.Time{"k1": t1, "gone": t1}))
	must(t, s.RecordUse(ctx, map[string]time.Time{"k1": t0})) // older: ignored
	k, _ := s.GetKey(ctx, "k1")
	if k.LastUsedAt == nil || !k.LastUsedAt.Equal(t1) {
		t.Fatalf("last_used_at = %v, want %v", k.LastUsedAt, t1)
	}
	// A batch larger than one statement takes (the store may chunk it).
	batch := map[string]time.Time{}
	for i := range 450 {
		id := fmt.Sprintf("many-%03d", i)
		must(t, s.CreateKey(ctx, key(id, "a", "read"), hash(id), nil, nil))
		batch[id] = t0.Add(time.Duration(i) * time.Second)
	}
	must(t, s.RecordUse(ctx, batch))
	for _, i := range []int{0, 199, 200, 449} {
		id := fmt.Sprintf("many-%03d", i)
		if k, _ := s.GetKey(ctx, id); k.LastUsedAt == nil || !k.LastUsedAt.Equal(batch[id]) {
			t.Fatalf("%s: last_used_at = %v, want %v", id, k.LastUsedAt, batch[id])
		}
	}
}

func testIdempotency(t *testing.T, s store.Store) {
	ctx := context.Background()
	rec := &store.Idempotency{Principal: "root", Key: "idem-1", RequestHash: hash("req"), Kind: "app", ResourceID: "a", CreatedAt: t0}
	must(t, s.CreateApp(ctx, app("a", "read"), rec, nil))
	got, err := s.GetIdempotency(ctx, "root", "idem-1")
	must(t, err)
	if got.ResourceID != "a" || got.Kind != "app" || string(got.RequestHash) != string(rec.RequestHash) {
		t.Fatalf("GetIdempotency = %+v", got)
	}
	_, err = s.GetIdempotency(ctx, "someone-else", "idem-1")
	wantErr(t, err, store.ErrNotFound)
	// Reusing the idempotency key writes nothing.
	wantErr(t, s.CreateApp(ctx, app("b", "read"), rec, nil), store.ErrIdempotencyRace)
	_, err = s.GetApp(ctx, "b")
	wantErr(t, err, store.ErrNotFound)
	rec2 := &store.Idempotency{Principal: "root", Key: "idem-2", RequestHash: hash("k"), Kind: "key", ResourceID: "k1", CreatedAt: t0}
	must(t, s.CreateKey(ctx, key("k1", "a", "read"), hash("1"), rec2, nil))
	rec2.ResourceID = "k2"
	wantErr(t, s.CreateKey(ctx, key("k2", "a", "read"), hash("2"), rec2, nil), store.ErrIdempotencyRace)
	_, err = s.GetKey(ctx, "k2")
	wantErr(t, err, store.ErrNotFound)
}

func testRootToken(t *testing.T, s store.Store) {
	ctx := context.Background()
	_, err := s.RootTokenHash(ctx)
	wantErr(t, err, store.ErrNotFound)
	must(t, s.SetRootTokenHash(ctx, hash("root"), false))
	wantErr(t, s.SetRootTokenHash(ctx, hash("other"), false), store.ErrExists)
	got, err := s.RootTokenHash(ctx)
	must(t, err)
	if string(got) != string(hash("root")) {
		t.Fatalf("root hash changed")
	}
	must(t, s.SetRootTokenHash(ctx, hash("reset"), true))
	if got, err := s.RootTokenHash(ctx); err != nil || string(got) != string(hash("reset")) {
		t.Fatalf("after a reset: %x %v", got, err)
	}
}

func testConcurrentWrites(t *testing.T, s store.Store) {
	ctx := context.Background()
	must(t, s.CreateApp(ctx, app("a", "read"), nil, nil))
	const n = 40
	var wg sync.WaitGroup
	errs := make(chan error, 2*n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			id := fmt.Sprintf("k%02d", i)
			if err := s.CreateKey(ctx, key(id, "a", "read"), hash(id), nil, nil); err != nil {
				errs <- err
				return
			}
			if _, err := s.RevokeKey(ctx, id, t0, nil); err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	keys, err := s.ListKeys(ctx, store.KeyFilter{App: "a", Status: vocab.StatusRevoked, Limit: 1000, Now: t0})
	must(t, err)
	if len(keys) != n {
		t.Fatalf("%d revoked keys, want %d", len(keys), n)
	}
}

// testRevokeRacesLookups: lookups racing a revoke may see either state, but
// once RevokeKey has returned every lookup sees the key revoked.
func testRevokeRacesLookups(t *testing.T, s store.Store) {
	ctx := context.Background()
	must(t, s.CreateApp(ctx, app("a", "read"), nil, nil))
	for i := range 20 {
		id := fmt.Sprintf("k%02d", i)
		must(t, s.CreateKey(ctx, key(id, "a", "read"), hash(id), nil, nil))
		stop := make(chan struct{})
		var wg sync.WaitGroup
		for range 4 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					select {
					case <-stop:
						return
					default:
						_, _ = s.LookupSecret(ctx, hash(id)) // either state is right while racing
					}
				}
			}()
		}
		_, err := s.RevokeKey(ctx, id, t0, nil)
		must(t, err)
		for range 50 {
			sec, err := s.LookupSecret(ctx, hash(id))
			must(t, err)
			if sec.Key.RevokedAt == nil {
				close(stop)
				wg.Wait()
				t.Fatalf("a lookup after RevokeKey returned saw %s unrevoked", id)
			}
		}
		close(stop)
		wg.Wait()
	}
}

func testRotateIdempotency(t *testing.T, s store.Store) {
	ctx := context.Background()
	must(t, s.CreateApp(ctx, app("a", "read"), nil, nil))
	must(t, s.CreateKey(ctx, key("k1", "a", "read"), hash("1"), nil, nil))
	rec := &store.Idempotency{Principal: "root", Key: "r1", RequestHash: []byte("h"), Kind: "rotate", ResourceID: "k1", CreatedAt: t0}
	_, err := s.RotateKey(ctx, "k1", hash("2"), "s2", t0, time.Hour, rec, nil)
	must(t, err)
	got, err := s.GetIdempotency(ctx, "root", "r1")
	must(t, err)
	if got.Kind != "rotate" || got.ResourceID != "k1" || !got.CreatedAt.Equal(t0) {
		t.Fatalf("recorded %+v", got)
	}
	// A second rotation under the same record fails whole: no new secret.
	_, err = s.RotateKey(ctx, "k1", hash("3"), "s3", t0.Add(time.Second), 0, rec, nil)
	wantErr(t, err, store.ErrIdempotencyRace)
	if _, err := s.LookupSecret(ctx, hash("3")); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("a refused rotation left its secret: %v", err)
	}
	if old, err := s.LookupSecret(ctx, hash("1")); err != nil || old.ExpiresAt == nil {
		t.Fatalf("a refused rotation touched the grace of the old secret: %+v %v", old, err)
	}
}

func testReplaceSecret(t *testing.T, s store.Store) {
	ctx := context.Background()
	must(t, s.CreateApp(ctx, app("a", "read"), nil, nil))
	must(t, s.CreateKey(ctx, key("k1", "a", "read"), hash("1"), nil, nil))
	// Re-issuing a create's secret: the lost one stops, the new one works.
	k, err := s.ReplaceSecret(ctx, "k1", hash("1b"), "s1b", nil, nil)
	must(t, err)
	if k.Start != "s1b" || k.RotatedAt != nil {
		t.Fatalf("after replacing a create's secret: %+v", k)
	}
	if _, err := s.LookupSecret(ctx, hash("1")); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("the replaced secret still resolves: %v", err)
	}
	_, err = s.RotateKey(ctx, "k1", hash("2"), "s2", t0, time.Hour, nil, nil)
	must(t, err)
	// A create's replay after a rotation would end the rotated secret: refused.
	_, err = s.ReplaceSecret(ctx, "k1", hash("x"), "sx", nil, nil)
	wantErr(t, err, store.ErrRotatedSince)
	// Re-issuing the rotation's secret keeps the pre-rotation secret's grace.
	k, err = s.ReplaceSecret(ctx, "k1", hash("2b"), "s2b", &t0, nil)
	must(t, err)
	if k.Start != "s2b" || !k.RotatedAt.Equal(t0) {
		t.Fatalf("after replacing a rotation's secret: %+v", k)
	}
	if _, err := s.LookupSecret(ctx, hash("2")); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("the lost rotation's secret still resolves: %v", err)
	}
	old, err := s.LookupSecret(ctx, hash("1b"))
	must(t, err)
	if old.ExpiresAt == nil || !old.ExpiresAt.Equal(t0.Add(time.Hour)) {
		t.Fatalf("pre-rotation secret's grace ends %v, want %v", old.ExpiresAt, t0.Add(time.Hour))
	}
	if cur, err := s.LookupSecret(ctx, hash("2b")); err != nil || cur.ExpiresAt != nil {
		t.Fatalf("re-issued secret: %+v %v", cur, err)
	}
	_, err = s.ReplaceSecret(ctx, "k1", hash("y"), "sy", new(t0.Add(time.Second)), nil)
	wantErr(t, err, store.ErrRotatedSince)
	_, err = s.RevokeKey(ctx, "k1", t0, nil)
	must(t, err)
	_, err = s.ReplaceSecret(ctx, "k1", hash("z"), "sz", &t0, nil)
	wantErr(t, err, store.ErrRevoked)
	_, err = s.ReplaceSecret(ctx, "nope", hash("w"), "sw", nil, nil)
	wantErr(t, err, store.ErrNotFound)
}

func testPurgeIdempotency(t *testing.T, s store.Store) {
	ctx := context.Background()
	must(t, s.CreateApp(ctx, app("a", "read"), nil, nil))
	for i, at := range []time.Time{t0, t0.Add(time.Hour), t0.Add(2 * time.Hour)} {
		k := key(fmt.Sprintf("k%d", i), "a", "read")
		must(t, s.CreateKey(ctx, k, hash(fmt.Sprint(i)), &store.Idempotency{Principal: "root", Key: fmt.Sprint(i),
			RequestHash: []byte("h"), Kind: "key", ResourceID: k.ID, CreatedAt: at}, nil))
	}
	n, err := s.PurgeIdempotency(ctx, t0.Add(time.Hour))
	must(t, err)
	if n != 1 {
		t.Fatalf("purged %d records, want 1", n)
	}
	_, err = s.GetIdempotency(ctx, "root", "0")
	wantErr(t, err, store.ErrNotFound)
	for _, k := range []string{"1", "2"} {
		if _, err := s.GetIdempotency(ctx, "root", k); err != nil {
			t.Fatalf("record %s purged too: %v", k, err)
		}
	}
	// The keys themselves stay.
	if _, err := s.GetKey(ctx, "k0"); err != nil {
		t.Fatal(err)
	}
	must(t, s.Compact(ctx))
}

// A secret hash is stored once: a create or rotation that reuses one, even
// the same key's earlier secret, fails whole.
func testSecretTaken(t *testing.T, s store.Store) {
	ctx := context.Background()
	must(t, s.CreateApp(ctx, app("a", "read"), nil, nil))
	must(t, s.CreateKey(ctx, key("k1", "a", "read"), hash("1"), nil, nil))
	wantErr(t, s.CreateKey(ctx, key("k2", "a", "read"), hash("1"), nil, nil), store.ErrSecretTaken)
	if _, err := s.GetKey(ctx, "k2"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("a refused create left its key: %v", err)
	}
	_, err := s.RotateKey(ctx, "k1", hash("2"), "s2", t0, time.Hour, nil, nil)
	must(t, err)
	_, err = s.RotateKey(ctx, "k1", hash("1"), "s1", t0.Add(time.Minute), 0, nil, nil)
	wantErr(t, err, store.ErrSecretTaken)
	old, err := s.LookupSecret(ctx, hash("1"))
	must(t, err)
	if old.ExpiresAt == nil || !old.ExpiresAt.Equal(t0.Add(time.Hour)) {
		t.Fatalf("a refused rotation changed the grace of the old secret: %v", old.ExpiresAt)
	}
	if cur, err := s.LookupSecret(ctx, hash("2")); err != nil || cur.ExpiresAt != nil {
		t.Fatalf("a refused rotation touched the current secret: %+v %v", cur, err)
	}
}

func ev(action, app, keyID string, at time.Time) *store.Event {
	return &store.Event{At: at, Actor: "root", RequestID: "req-" + action, Action: action, App: app, KeyID: keyID,
		Changes: map[string]any{"name": "x"}}
}

// A write records its event in its own transaction: a write that fails, or
// changes nothing, records none.
func testEvents(t *testing.T, s store.Store) {
	ctx := context.Background()
	actions := func(f store.EventFilter) []string {
		t.Helper()
		if f.Limit == 0 {
			f.Limit = 100
		}
		evs, err := s.ListEvents(ctx, f)
		must(t, err)
		var out []string
		for _, e := range evs {
			out = append(out, e.Action)
		}
		return out
	}
	must(t, s.CreateApp(ctx, app("a", "read"), nil, ev("app.create", "a", "", t0)))
	must(t, s.CreateApp(ctx, app("b", "read"), nil, ev("app.create", "b", "", t0)))
	must(t, s.CreateKey(ctx, key("k1", "a", "read"), hash("1"), nil, ev("key.create", "a", "k1", t0)))
	// Failures and non-changes record nothing.
	wantErr(t, s.CreateKey(ctx, key("k1", "a", "read"), hash("9"), nil, ev("key.create", "a", "k1", t0)), store.ErrExists)
	boom := errors.New("boom")
	_, err := s.UpdateKey(ctx, "k1", func(*store.Key) error { return boom }, ev("key.update", "a", "k1", t0))
	wantErr(t, err, boom)
	_, err = s.UpdateKey(ctx, "k1", func(*store.Key) error { return store.ErrNoChange }, ev("key.update", "a", "k1", t0))
	must(t, err)
	_, err = s.UpdateApp(ctx, "a", func(*store.App, []store.Key) error { return boom }, ev("app.update", "a", "", t0))
	wantErr(t, err, boom)
	_, err = s.RevokeKey(ctx, "k1", t0, ev("key.revoke", "a", "k1", t0))
	must(t, err)
	_, err = s.RevokeKey(ctx, "k1", t0, ev("key.revoke", "a", "k1", t0)) // revoked already
	must(t, err)
	_, err = s.RotateKey(ctx, "k1", hash("2"), "s", t0, 0, nil, ev("key.rotate", "a", "k1", t0))
	wantErr(t, err, store.ErrRevoked)
	if got := actions(store.EventFilter{}); !slices.Equal(got, []string{"key.revoke", "key.create", "app.create", "app.create"}) {
		t.Fatalf("events, newest first: %v", got)
	}
	if got := actions(store.EventFilter{KeyID: "k1"}); !slices.Equal(got, []string{"key.revoke", "key.create"}) {
		t.Fatalf("k1's events: %v", got)
	}
	if got := actions(store.EventFilter{Apps: []string{"b"}}); !slices.Equal(got, []string{"app.create"}) {
		t.Fatalf("b's events: %v", got)
	}
	if got := actions(store.EventFilter{Apps: []string{}}); len(got) != 0 {
		t.Fatalf("no apps, yet events: %v", got)
	}
	evs, err := s.ListEvents(ctx, store.EventFilter{Limit: 2})
	must(t, err)
	if len(evs) != 2 || evs[0].ID <= evs[1].ID || evs[0].RequestID != "req-key.revoke" || evs[0].Changes["name"] != "x" || !evs[0].At.Equal(t0) {
		t.Fatalf("first page %+v", evs)
	}
	if got := actions(store.EventFilter{Before: evs[1].ID}); !slices.Equal(got, []string{"app.create", "app.create"}) {
		t.Fatalf("the page after: %v", got)
	}
	must(t, s.CreateApp(ctx, app("c", "read"), nil, ev("app.create", "c", "", t0.Add(time.Hour))))
	n, err := s.PurgeEvents(ctx, t0.Add(time.Minute))
	must(t, err)
	if got := actions(store.EventFilter{}); n != 4 || !slices.Equal(got, []string{"app.create"}) {
		t.Fatalf("after purging %d: %v", n, got)
	}
}

// ListEvents filters by actor, action and time range, with the others.
func testEventFilters(t *testing.T, s store.Store) {
	ctx := context.Background()
	must(t, s.CreateApp(ctx, app("a", "read"), nil, ev("app.create", "a", "", t0)))
	e := ev("key.create", "a", "k1", t0.Add(time.Hour))
	e.Actor = "key_admin"
	must(t, s.CreateKey(ctx, key("k1", "a", "read"), hash("1"), nil, e))
	_, err := s.RevokeKey(ctx, "k1", t0, ev("key.revoke", "a", "k1", t0.Add(2*time.Hour)))
	must(t, err)
	list := func(f store.EventFilter) []string {
		t.Helper()
		f.Limit = 100
		evs, err := s.ListEvents(ctx, f)
		must(t, err)
		out := []string{}
		for _, e := range evs {
			out = append(out, e.Action)
		}
		return out
	}
	for _, c := range []struct {
		f    store.EventFilter
		want []string
	}{
		{store.EventFilter{Actor: "key_admin"}, []string{"key.create"}},
		{store.EventFilter{Actor: "root"}, []string{"key.revoke", "app.create"}},
		{store.EventFilter{Action: "key.revoke"}, []string{"key.revoke"}},
		{store.EventFilter{Since: t0.Add(time.Hour)}, []string{"key.revoke", "key.create"}},
		{store.EventFilter{Until: t0.Add(time.Hour)}, []string{"app.create"}},
		{store.EventFilter{Since: t0.Add(time.Hour), Until: t0.Add(2 * time.Hour)}, []string{"key.create"}},
		{store.EventFilter{Actor: "root", KeyID: "k1", Apps: []string{"a"}}, []string{"key.revoke"}},
		{store.EventFilter{Action: "key.revoke", Apps: []string{"b"}}, []string{}},
	} {
		if got := list(c.f); !slices.Equal(got, c.want) {
			t.Errorf("%+v: %v, want %v", c.f, got, c.want)
		}
	}
}

// Sessions are found by hash only, touched, ended one by one, per
// credential, and purged once idle past their time.
func testSessions(t *testing.T, s store.Store) {
	ctx := context.Background()
	sess := func(h, cred string, idle time.Duration) store.Session {
		return store.Session{Hash: hash(h), Credential: cred, Generation: "g1", CreatedAt: t0,
			ExpiresAt: t0.Add(12 * time.Hour), IdleUntil: t0.Add(idle)}
	}
	a, b, c := sess("a", "key_1", time.Hour), sess("b", "key_1", 2*time.Hour), sess("c", "root", 3*time.Hour)
	for _, x := range []store.Session{a, b, c} {
		must(t, s.CreateSession(ctx, x))
	}
	wantErr(t, s.CreateSession(ctx, a), store.ErrExists)
	got, err := s.GetSession(ctx, hash("a"))
	must(t, err)
	if got.Credential != "key_1" || got.Generation != "g1" || !got.CreatedAt.Equal(t0) || !got.ExpiresAt.Equal(a.ExpiresAt) || !got.IdleUntil.Equal(a.IdleUntil) {
		t.Fatalf("read back %+v, stored %+v", got, a)
	}
	_, err = s.GetSession(ctx, hash("zz"))
	wantErr(t, err, store.ErrNotFound)

	must(t, s.TouchSession(ctx, hash("a"), t0.Add(90*time.Minute)))
	got, err = s.GetSession(ctx, hash("a"))
	must(t, err)
	if !got.IdleUntil.Equal(t0.Add(90 * time.Minute)) {
		t.Fatalf("touched: idle until %v", got.IdleUntil)
	}
	wantErr(t, s.TouchSession(ctx, hash("zz"), t0), store.ErrNotFound)

	must(t, s.DeleteSession(ctx, hash("a")))
	must(t, s.DeleteSession(ctx, hash("a"))) // gone already: not an error
	_, err = s.GetSession(ctx, hash("a"))
	wantErr(t, err, store.ErrNotFound)

	must(t, s.CreateSession(ctx, sess("d", "key_1", time.Hour)))
	n, err := s.DeleteSessionsOf(ctx, "key_1")
	must(t, err)
	if n != 2 {
		t.Fatalf("DeleteSessionsOf ended %d sessions, want 2 (b and d)", n)
	}
	_, err = s.GetSession(ctx, hash("b"))
	wantErr(t, err, store.ErrNotFound)
	if _, err := s.GetSession(ctx, hash("c")); err != nil {
		t.Fatalf("another credential's session went too: %v", err)
	}

	must(t, s.CreateSession(ctx, sess("e", "key_2", time.Hour)))
	n, err = s.PurgeSessions(ctx, t0.Add(2*time.Hour))
	must(t, err)
	if n != 1 {
		t.Fatalf("purged %d, want 1 (e, idle since 1h)", n)
	}
	if _, err := s.GetSession(ctx, hash("c")); err != nil {
		t.Fatalf("a session still in its time was purged: %v", err)
	}
}
