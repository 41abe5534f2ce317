package store

import (
	"context"
	"time"
)

// Instrumented is a Store whose operations report how long they took.
// observe gets the operation's name and when it started.
//
// It implements every method of Store itself rather than embedding the
// interface: a method added to Store does not compile here until it is
// instrumented, so no call passes by unseen.
type Instrumented struct {
	s       Store
	observe func(op string, start time.Time)
}

var _ Store = (*Instrumented)(nil)

// NewInstrumented wraps s.
func NewInstrumented(s Store, observe func(op string, start time.Time)) *Instrumented {
	return &Instrumented{s: s, observe: observe}
}

// Unwrap returns the store underneath.
func (i *Instrumented) Unwrap() Store { return i.s }

func (i *Instrumented) CreateApp(ctx context.Context, app App, idem *Idempotency, ev *Event) error {
	defer i.observe("create_app", time.Now())
	return i.s.CreateApp(ctx, app, idem, ev)
}

func (i *Instrumented) GetApp(ctx context.Context, slug string) (App, error) {
	defer i.observe("get_app", time.Now())
	return i.s.GetApp(ctx, slug)
}

func (i *Instrumented) ListApps(ctx context.Context) ([]App, error) {
	defer i.observe("list_apps", time.Now())
	return i.s.ListApps(ctx)
}

func (i *Instrumented) UpdateApp(ctx context.Context, slug string, fn func(*App, []Key) error, ev *Event) (App, error) {
	defer i.observe("update_app", time.Now())
	return i.s.UpdateApp(ctx, slug, fn, ev)
}

func (i *Instrumented) DeleteApp(ctx context.Context, slug string, check func([]Key) ([]*Event, error)) error {
	defer i.observe("delete_app", time.Now())
	return i.s.DeleteApp(ctx, slug, check)
}

func (i *Instrumented) CreateKey(ctx context.Context, key Key, hash []byte, idem *Idempotency, ev *Event) error {
	defer i.observe("create_key", time.Now())
	return i.s.CreateKey(ctx, key, hash, idem, ev)
}

func (i *Instrumented) GetKey(ctx context.Context, id string) (Key, error) {
	defer i.observe("get_key", time.Now())
	return i.s.GetKey(ctx, id)
}

func (i *Instrumented) ListKeys(ctx context.Context, f KeyFilter) ([]Key, error) {
	defer i.observe("list_keys", time.Now())
	return i.s.ListKeys(ctx, f)
}

func (i *Instrumented) UpdateKey(ctx context.Context, id string, fn func(*Key) error, ev *Event) (Key, error) {
	defer i.observe("update_key", time.Now())
	return i.s.UpdateKey(ctx, id, fn, ev)
}

func (i *Instrumented) RevokeKey(ctx context.Context, id string, now time.Time, ev *Event) (Key, error) {
	defer i.observe("revoke_key", time.Now())
	return i.s.RevokeKey(ctx, id, now, ev)
}

func (i *Instrumented) RotateKey(ctx context.Context, id string, hash []byte, start string, now time.Time, grace time.Duration, idem *Idempotency, ev *Event) (Key, error) {
	defer i.observe("rotate_key", time.Now())
	return i.s.RotateKey(ctx, id, hash, start, now, grace, idem, ev)
}

func (i *Instrumented) ReplaceSecret(ctx context.Context, id string, hash []byte, start string, rotatedAt *time.Time, ev *Event) (Key, error) {
	defer i.observe("replace_secret", time.Now())
	return i.s.ReplaceSecret(ctx, id, hash, start, rotatedAt, ev)
}

func (i *Instrumented) ListEvents(ctx context.Context, f EventFilter) ([]Event, error) {
	defer i.observe("list_events", time.Now())
	return i.s.ListEvents(ctx, f)
}

func (i *Instrumented) PurgeEvents(ctx context.Context, before time.Time) (int64, error) {
	defer i.observe("purge_events", time.Now())
	return i.s.PurgeEvents(ctx, before)
}

func (i *Instrumented) LookupSecret(ctx context.Context, hash []byte) (Secret, error) {
	defer i.observe("lookup_secret", time.Now())
	return i.s.LookupSecret(ctx, hash)
}

func (i *Instrumented) RecordUse(ctx context.Context, used map[string]time.Time) error {
	defer i.observe("record_use", time.Now())
	return i.s.RecordUse(ctx, used)
}

func (i *Instrumented) GetIdempotency(ctx context.Context, principal, key string) (Idempotency, error) {
	defer i.observe("get_idempotency", time.Now())
	return i.s.GetIdempotency(ctx, principal, key)
}

func (i *Instrumented) PurgeIdempotency(ctx context.Context, before time.Time) (int64, error) {
	defer i.observe("purge_idempotency", time.Now())
	return i.s.PurgeIdempotency(ctx, before)
}

func (i *Instrumented) Compact(ctx context.Context) error {
	defer i.observe("compact", time.Now())
	return i.s.Compact(ctx)
}

func (i *Instrumented) RootTokenHash(ctx context.Context) ([]byte, error) {
	defer i.observe("root_token_hash", time.Now())
	return i.s.RootTokenHash(ctx)
}

func (i *Instrumented) SetRootTokenHash(ctx context.Context, hash []byte, replace bool) error {
	defer i.observe("set_root_token_hash", time.Now())
	return i.s.SetRootTokenHash(ctx, hash, replace)
}

func (i *Instrumented) Close() error { return i.s.Close() }

func (i *Instrumented) CreateSession(ctx context.Context, sess Session) error {
	defer i.observe("create_session", time.Now())
	return i.s.CreateSession(ctx, sess)
}

func (i *Instrumented) GetSession(ctx context.Context, hash []byte) (Session, error) {
	defer i.observe("get_session", time.Now())
	return i.s.GetSession(ctx, hash)
}

func (i *Instrumented) TouchSession(ctx context.Context, hash []byte, idleUntil time.Time) error {
	defer i.observe("touch_session", time.Now())
	return i.s.TouchSession(ctx, hash, idleUntil)
}

func (i *Instrumented) DeleteSession(ctx context.Context, hash []byte) error {
	defer i.observe("delete_session", time.Now())
	return i.s.DeleteSession(ctx, hash)
}

func (i *Instrumented) DeleteSessionsOf(ctx context.Context, credential string) (int64, error) {
	defer i.observe("delete_sessions_of", time.Now())
	return i.s.DeleteSessionsOf(ctx, credential)
}

func (i *Instrumented) PurgeSessions(ctx context.Context, before time.Time) (int64, error) {
	defer i.observe("purge_sessions", time.Now())
	return i.s.PurgeSessions(ctx, before)
}
