package service_test

import (
	"context"
	"errors"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/keymint/terraform-provider-keymint/internal/service"
	"github.com/keymint/terraform-provider-keymint/internal/store"
	"github.com/keymint/terraform-provider-keymint/internal/store/sqlite"
	"github.com/keymint/terraform-provider-keymint/internal/wire"
)

// racingStore is the real SQLite store, with the app deleted (forced) just
// before each write reaches it: a write that lost a race with a deletion.
type racingStore struct {
	store.Store
	slug string
}

func (r racingStore) deleteFirst(ctx context.Context) {
	if err := r.Store.DeleteApp(ctx, r.slug, func([]store.Key) ([]*store.Event, error) { return nil, nil }); err != nil && !errors.Is(err, store.ErrNotFound) {
		panic(err)
	}
}

func (r racingStore) UpdateApp(ctx context.Context, slug string, fn func(*store.App, []store.Key) error, ev *store.Event) (store.App, error) {
	r.deleteFirst(ctx)
	return r.Store.UpdateApp(ctx, slug, fn, ev)
}

func (r racingStore) DeleteApp(ctx context.Context, slug string, check func([]store.Key) ([]*store.Event, error)) error {
	r.deleteFirst(ctx)
	return r.Store.DeleteApp(ctx, slug, check)
}

func (r racingStore) UpdateKey(ctx context.Context, id string, fn func(*store.Key) error, ev *store.Event) (store.Key, error) {
	r.deleteFirst(ctx)
	return r.Store.UpdateKey(ctx, id, fn, ev)
}

func (r racingStore) RevokeKey(ctx context.Context, id string, now time.Time, ev *store.Event) (store.Key, error) {
	r.deleteFirst(ctx)
	return r.Store.RevokeKey(ctx, id, now, ev)
}

func (r racingStore) RotateKey(ctx context.Context, id string, hash []byte, start string, now time.Time, grace time.Duration, idem *store.Idempotency, ev *store.Event) (store.Key, error) {
	r.deleteFirst(ctx)
	return r.Store.RotateKey(ctx, id, hash, start, now, grace, idem, ev)
}

func (r racingStore) CreateKey(ctx context.Context, k store.Key, hash []byte, idem *store.Idempotency, ev *store.Event) error {
	r.deleteFirst(ctx)
	return r.Store.CreateKey(ctx, k, hash, idem, ev)
}

// A write whose app or key was deleted after the service checked it is a
// 404-kind error naming what is gone, never an internal error.
func TestWriteRacingDeletionIsNotFound(t *testing.T) {
	ctx := context.Background()
	root := service.Root()
	for name, write := range map[string]func(*service.Service, string) error{
		"update app": func(s *service.Service, _ string) error {
			_, err := s.UpdateApp(ctx, root, "shop", wire.UpdateApp{Name: new("n")}, nil)
			return err
		},
		"delete app": func(s *service.Service, _ string) error { return s.DeleteApp(ctx, root, "shop", true) },
		"create key": func(s *service.Service, _ string) error {
			_, _, err := s.CreateKey(ctx, root, "shop", wire.CreateKey{Name: "k", Scopes: []string{"read"}}, "")
			return err
		},
		"update key": func(s *service.Service, id string) error {
			_, err := s.UpdateKey(ctx, root, id, wire.UpdateKey{Enabled: new(false)}, nil)
			return err
		},
		"revoke key": func(s *service.Service, id string) error { return s.RevokeKey(ctx, root, id) },
		"rotate key": func(s *service.Service, id string) error {
			_, _, err := s.RotateKey(ctx, root, id, wire.RotateKey{}, "")
			return err
		},
	} {
		t.Run(name, func(t *testing.T) {
			st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "k.db"), sqlite.Options{})
			if err != nil {
				t.Fatal(err)
			}
			defer st.Close()
			plain := service.New(service.Config{Store: st})
			if _, _, err := plain.CreateApp(ctx, root, wire.CreateApp{Slug: "shop", Name: "Shop", Scopes: []string{"read"}, KeyPrefix: "shop"}, ""); err != nil {
				t.Fatal(err)
			}
			k, _, err := plain.CreateKey(ctx, root, "shop", wire.CreateKey{Name: "k", Scopes: []string{"read"}}, "")
			if err != nil {
				t.Fatal(err)
			}
			err = write(service.New(service.Config{Store: racingStore{Store: st, slug: "shop"}}), k.Key.ID)
			var e *service.Error
			if !errors.As(err, &e) || e.Kind != service.NotFound || e.Code != "not_found" {
				t.Fatalf("got %v, want a not_found error", err)
			}
		})
	}
}

// usageCounter is the real store, recording how many keys each usage
// flush writes.
type usageCounter struct {
	store.Store
	batches []int
}

func (u *usageCounter) RecordUse(ctx context.Context, used map[string]time.Time) error {
	u.batches = append(u.batches, len(used))
	return u.Store.RecordUse(ctx, used)
}

// TestUsageFlushSpreadsABurst: 1,200 keys first used at once are written
// over three flushes (500, 500, 200), not in one burst, and every one is
// written in the end.
func TestUsageFlushSpreadsABurst(t *testing.T) {
	svc, counter, st, ids := usedKeys(t, 1200)
	for range 4 {
		svc.FlushUsage(context.Background())
	}
	checkUsageWritten(t, counter, st, ids)
}

// TestUsageFlushedWholeAtShutdown: when Run's context ends, it writes the
// whole backlog before it returns, in as many flushes as the cap takes.
func TestUsageFlushedWholeAtShutdown(t *testing.T) {
	svc, counter, st, ids := usedKeys(t, 1200)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	svc.Run(ctx, time.Hour, time.Hour)
	checkUsageWritten(t, counter, st, ids)
}

func checkUsageWritten(t *testing.T, counter *usageCounter, st store.Store, ids []string) {
	t.Helper()
	if want := []int{500, 500, 200}; !slices.Equal(counter.batches, want) {
		t.Fatalf("flushes wrote %v keys, want %v", counter.batches, want)
	}
	for _, id := range ids {
		if k, err := st.GetKey(context.Background(), id); err != nil || k.LastUsedAt == nil {
			t.Fatalf("key %s: last_used_at %v, %v", id, k.LastUsedAt, err)
		}
	}
}

// usedKeys is a service over SQLite whose n keys have each verified once
// (and whose usage has not been flushed yet).
func usedKeys(t *testing.T, n int) (*service.Service, *usageCounter, store.Store, []string) {
	ctx := context.Background()
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "k.db"), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	counter := &usageCounter{Store: st}
	svc := service.New(service.Config{Store: counter})
	root := service.Root()
	if _, _, err := svc.CreateApp(ctx, root, wire.CreateApp{Slug: "shop", Name: "Shop", Scopes: []string{"read"}, KeyPrefix: "shop"}, ""); err != nil {
		t.Fatal(err)
	}
	ids := make([]string, n)
	for i := range n {
		k, _, err := svc.CreateKey(ctx, root, "shop", wire.CreateKey{Name: "k", Scopes: []string{"read"}}, "")
		if err != nil {
			t.Fatal(err)
		}
		ids[i] = k.Key.ID
		if v, err := svc.Verify(ctx, root, &wire.VerifyRequest{Key: k.Secret}); err != nil || !v.Valid {
			t.Fatalf("verify: %+v %v", v, err)
		}
	}
	return svc, counter, st, ids
}
