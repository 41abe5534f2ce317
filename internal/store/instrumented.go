package store

import (
	"context"
	"time"
)

// Instrumented is a Store whose operations report how long they took: the
// request path's reads and every write. observe gets the operation's name
// and when it started.
type Instrumented struct {
	Store
	observe func(op string, start time.Time)
}

// NewInstrumented wraps s.
func NewInstrumented(s Store, observe func(op string, start time.Time)) *Instrumented {
	return &Instrumented{Store: s, observe: observe}
}

func (i *Instrumented) LookupSecret(ctx context.Context, hash []byte) (Secret, error) {
	defer i.observe("lookup_secret", time.Now())
	return i.Store.LookupSecret(ctx, hash)
}

func (i *Instrumented) CreateApp(ctx context.Context, app App, idem *Idempotency, ev *Event) error {
	defer i.observe("create_app", time.Now())
	return i.Store.CreateApp(ctx, app, idem, ev)
}

func (i *Instrumented) UpdateApp(ctx context.Context, slug string, fn func(*App, []Key) error, ev *Event) (App, error) {
	defer i.observe("update_app", time.Now())
	return i.Store.UpdateApp(ctx, slug, fn, ev)
}

func (i *Instrumented) DeleteApp(ctx context.Context, slug string, check func([]Key) ([]*Event, error)) error {
	defer i.observe("delete_app", time.Now())
	return i.Store.DeleteApp(ctx, slug, check)
}

func (i *Instrumented) CreateKey(ctx context.Context, key Key, hash []byte, idem *Idempotency, ev *Event) error {
	defer i.observe("create_key", time.Now())
	return i.Store.CreateKey(ctx, key, hash, idem, ev)
}

func (i *Instrumented) GetKey(ctx context.Context, id string) (Key, error) {
	defer i.observe("get_key", time.Now())
	return i.Store.GetKey(ctx, id)
}

func (i *Instrumented) ListKeys(ctx context.Context, f KeyFilter) ([]Key, error) {
	defer i.observe("list_keys", time.Now())
	return i.Store.ListKeys(ctx, f)
}

func (i *Instrumented) UpdateKey(ctx context.Context, id string, fn func(*Key) error, ev *Event) (Key, error) {
	defer i.observe("update_key", time.Now())
	return i.Store.UpdateKey(ctx, id, fn, ev)
}

func (i *Instrumented) RevokeKey(ctx context.Context, id string, now time.Time, ev *Event) (Key, error) {
	defer i.observe("revoke_key", time.Now())
	return i.Store.RevokeKey(ctx, id, now, ev)
}

func (i *Instrumented) RotateKey(ctx context.Context, id string, hash []byte, start string, now time.Time, grace time.Duration, idem *Idempotency, ev *Event) (Key, error) {
	defer i.observe("rotate_key", time.Now())
	return i.Store.RotateKey(ctx, id, hash, start, now, grace, idem, ev)
}

func (i *Instrumented) RecordUse(ctx context.Context, used map[string]time.Time) error {
	defer i.observe("record_use", time.Now())
	return i.Store.RecordUse(ctx, used)
}
