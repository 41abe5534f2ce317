package service

import (
	"context"
	"encoding/base64"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/keymint/terraform-provider-keymint/internal/store"
	"github.com/keymint/terraform-provider-keymint/internal/vocab"
	"github.com/keymint/terraform-provider-keymint/internal/wire"
)

// Audit actions, one per kind of lifecycle change.
const (
	ActionAppCreate      = "app.create"
	ActionAppUpdate      = "app.update"
	ActionAppDelete      = "app.delete"
	ActionKeyCreate      = "key.create"
	ActionCredentialMint = "credential.mint" // a key of the management app
	ActionKeyUpdate      = "key.update"
	ActionKeyEnable      = "key.enable"
	ActionKeyDisable     = "key.disable"
	ActionKeyRotate      = "key.rotate"
	ActionKeyRevoke      = "key.revoke"
	ActionKeyDelete      = "key.delete"         // a live key gone with its app (forced delete)
	ActionSecretReissue  = "key.secret_reissue" // an idempotent retry's new secret
)

// Actions lists every audit action, for the events filter.
var Actions = []string{ActionAppCreate, ActionAppUpdate, ActionAppDelete, ActionKeyCreate, ActionCredentialMint, ActionKeyUpdate,
	ActionKeyEnable, ActionKeyDisable, ActionKeyRotate, ActionKeyRevoke, ActionKeyDelete, ActionSecretReissue}

// DefaultEventRetention is how long events are kept by default.
const DefaultEventRetention = 90 * 24 * time.Hour

type requestKey struct{}

// Request is what an entry point knows of the request a call serves: its id
// goes into the call's events. An entry point keeps its own per-request
// record behind it, so one context value carries both (see RequestOf).
type Request interface{ RequestID() string }

// WithRequest gives ctx the request it serves, for its events.
func WithRequest(ctx context.Context, r Request) context.Context {
	return context.WithValue(ctx, requestKey{}, r)
}

// RequestOf is the request WithRequest gave ctx (nil if none).
func RequestOf(ctx context.Context) Request {
	r, _ := ctx.Value(requestKey{}).(Request)
	return r
}

// RequestID is a Request of nothing but an id.
type RequestID string

func (id RequestID) RequestID() string { return string(id) }

func requestID(ctx context.Context) string {
	if r := RequestOf(ctx); r != nil {
		return r.RequestID()
	}
	return ""
}

// event starts the record of a change the caller is making.
func (s *Service) event(ctx context.Context, p *Principal, action, app, keyID string, at time.Time, changes map[string]any) *store.Event {
	return &store.Event{At: at, Actor: p.ID, RequestID: requestID(ctx), Action: action, App: app, KeyID: keyID, Changes: changes}
}

// change is a field's move from one value to another, as events record it.
func change(from, to any) map[string]any { return map[string]any{"from": from, "to": to} }

// EventQuery is an events request's query, as sent.
type EventQuery struct {
	App, Key, Limit, Cursor string
	Actor, Action           string
	Since, Until            string // RFC 3339: events at or after Since, before Until
}

// ListEvents lists lifecycle events, newest first: a confined credential
// sees its apps' events only (not those of management credentials).
func (s *Service) ListEvents(ctx context.Context, p *Principal, q EventQuery) (wire.EventList, error) {
	out := wire.EventList{Events: []wire.Event{}}
	if err := Require(p, wire.ScopeAuditRead); err != nil {
		return out, err
	}
	f := store.EventFilter{App: q.App, KeyID: q.Key, Actor: q.Actor, Action: q.Action, Limit: vocab.DefaultPageSize}
	if q.Action != "" && !slices.Contains(Actions, q.Action) {
		// An unknown action would match nothing: say so, rather than an empty page.
		return out, Errorf(BadRequest, "invalid_query", "action %q is not an audit action; one of %s", q.Action, strings.Join(Actions, ", "))
	}
	for _, b := range []struct {
		name, v string
		t       *time.Time
	}{{"since", q.Since, &f.Since}, {"until", q.Until, &f.Until}} {
		if b.v == "" {
			continue
		}
		t, err := time.Parse(time.RFC3339, b.v)
		if err != nil {
			return out, Errorf(BadRequest, "invalid_query", "%s must be an RFC 3339 time (e.g. 2030-01-02T15:04:05Z), got %q", b.name, b.v)
		}
		*b.t = t
	}
	if len(p.ConfineTo) > 0 {
		f.Apps = p.ConfineTo
	}
	if q.Limit != "" {
		n, err := strconv.Atoi(q.Limit)
		if err != nil || n < 1 || n > vocab.MaxPageSize {
			return out, Errorf(BadRequest, "invalid_query", "limit must be a number from 1 to %d, got %q", vocab.MaxPageSize, q.Limit)
		}
		f.Limit = n
	}
	if q.Cursor != "" {
		b, err := base64.RawURLEncoding.DecodeString(q.Cursor)
		id, perr := strconv.ParseInt(string(b), 10, 64)
		if err != nil || perr != nil || id <= 0 {
			return out, Errorf(BadRequest, "invalid_query", "cursor is not one this server gave out; pass next_cursor back unchanged")
		}
		f.Before = id
	}
	want := f.Limit
	f.Limit++
	evs, err := s.store.ListEvents(ctx, f)
	if err != nil {
		return out, err
	}
	if len(evs) > want {
		evs = evs[:want]
		out.NextCursor = base64.RawURLEncoding.EncodeToString([]byte(strconv.FormatInt(evs[want-1].ID, 10)))
	}
	for _, e := range evs {
		changes := e.Changes
		if changes == nil {
			changes = map[string]any{}
		}
		out.Events = append(out.Events, wire.Event{ID: strconv.FormatInt(e.ID, 10), At: e.At, Actor: e.Actor, RequestID: e.RequestID,
			Action: e.Action, App: e.App, KeyID: e.KeyID, Changes: changes})
	}
	return out, nil
}
