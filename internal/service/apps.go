package service

import (
	"context"
	"errors"
	"slices"
	"strconv"
	"time"

	"github.com/keymint/terraform-provider-keymint/internal/store"
	"github.com/keymint/terraform-provider-keymint/internal/vocab"
	"github.com/keymint/terraform-provider-keymint/internal/wire"
)

func appJSON(a store.App) wire.App {
	out := wire.App{Slug: a.Slug, Name: a.Name, Description: a.Description, Scopes: a.Scopes,
		KeyPrefix: a.KeyPrefix, CreatedAt: a.CreatedAt, UpdatedAt: a.UpdatedAt}
	if a.RateLimit != nil {
		out.RateLimit = &wire.RateLimit{Requests: a.RateLimit.Requests, Window: vocab.FormatDuration(a.RateLimit.Window)}
	}
	return out
}

// CreateApp creates an auth app. With idemKey, a retry of the same request
// answers with the app as it is now and replayed true.
func (s *Service) CreateApp(ctx context.Context, p *Principal, req wire.CreateApp, idemKey string) (app wire.App, replayed bool, err error) {
	if err := Require(p, wire.ScopeAppsWrite); err != nil {
		return app, false, err
	}
	var fe fieldErrors
	validateSlug(&fe, "slug", req.Slug)
	validateText(&fe, "name", req.Name, true, vocab.NameMaxLen)
	validateDescription(&fe, req.Description)
	scopes := validateScopes(&fe, "scopes", req.Scopes)
	if !vocab.ValidKeyPrefix(req.KeyPrefix) {
		fe.add("key_prefix", "%q is not a valid key prefix: %s", req.KeyPrefix, vocab.KeyPrefixRule)
	}
	rl := validateRateLimit(&fe, req.RateLimit)
	if err := fe.err(); err != nil {
		return app, false, err
	}
	if !p.sees(req.Slug) {
		return app, false, Errorf(Forbidden, "outside_confinement", "this credential is confined to apps %v and cannot create %q", p.ConfineTo, req.Slug)
	}
	now := s.now().UTC()
	rec, earlier, err := s.idempotency(ctx, p, idemKey, "app", "", req, now)
	if err != nil {
		return app, false, err
	}
	if earlier == nil {
		a := store.App{Slug: req.Slug, Name: req.Name, Description: req.Description, Scopes: scopes,
			KeyPrefix: req.KeyPrefix, RateLimit: rl, CreatedAt: now, UpdatedAt: now}
		if rec != nil {
			rec.ResourceID = a.Slug
		}
		ev := s.event(ctx, p, ActionAppCreate, a.Slug, "", now, map[string]any{"name": a.Name, "description": a.Description,
			"scopes": a.Scopes, "key_prefix": a.KeyPrefix, "rate_limit": appJSON(a).RateLimit})
		err = s.store.CreateApp(ctx, a, rec, ev)
		switch {
		case err == nil:
			return appJSON(a), false, nil
		case errors.Is(err, store.ErrExists):
			return app, false, s.appConflict(ctx, p, a)
		case !errors.Is(err, store.ErrIdempotencyRace):
			return app, false, err
		}
		if earlier, err = s.raceWinner(ctx, p, idemKey, "app", "", req); err != nil {
			return app, false, err
		}
	}
	// A retry of a create that happened: answer with the app as it is now.
	a, err := s.store.GetApp(ctx, earlier.ResourceID)
	if errors.Is(err, store.ErrNotFound) {
		return app, false, Errorf(Conflict, "idempotency_key_used", "the app created with this Idempotency-Key has since been deleted")
	}
	if err != nil {
		return app, false, err
	}
	s.metrics.Replayed("app")
	return appJSON(a), true, nil
}

// appConflict says which unique field clashed. Slugs and key prefixes are
// unique across the server, so any creator learns that one is taken (it must
// pick another); a credential learns which app holds a prefix only if it can
// see that app. (A slug outside a confined caller's apps never gets here: it
// cannot create there.)
func (s *Service) appConflict(ctx context.Context, p *Principal, app store.App) error {
	if _, err := s.store.GetApp(ctx, app.Slug); err == nil {
		return Errorf(Conflict, "slug_taken", "an app with slug %q already exists; pick another slug (or, in Terraform, import the existing app to manage it)", app.Slug)
	}
	apps, err := s.store.ListApps(ctx)
	if err != nil {
		return err
	}
	for _, other := range apps {
		if other.KeyPrefix == app.KeyPrefix && p.sees(other.Slug) {
			return Errorf(Conflict, "key_prefix_taken", "app %q already uses key_prefix %q; key prefixes identify an app's keys and must be unique: pick another", other.Slug, app.KeyPrefix)
		}
	}
	return Errorf(Conflict, "key_prefix_taken", "key_prefix %q is taken; key prefixes identify an app's keys and must be unique across the server: pick another", app.KeyPrefix)
}

// ListApps lists the apps the caller can see.
func (s *Service) ListApps(ctx context.Context, p *Principal) (wire.AppList, error) {
	out := wire.AppList{Apps: []wire.App{}}
	if err := Require(p, wire.ScopeAppsRead); err != nil {
		return out, err
	}
	apps, err := s.store.ListApps(ctx)
	if err != nil {
		return out, err
	}
	for _, a := range apps {
		if p.sees(a.Slug) {
			out.Apps = append(out.Apps, appJSON(a))
		}
	}
	return out, nil
}

// visibleApp loads app slug, as not found if the caller cannot see it.
func (s *Service) visibleApp(ctx context.Context, p *Principal, slug string) (store.App, error) {
	if !p.sees(slug) {
		return store.App{}, notFound("app", slug)
	}
	a, err := s.store.GetApp(ctx, slug)
	if errors.Is(err, store.ErrNotFound) {
		return a, notFound("app", slug)
	}
	return a, err
}

// GetApp returns app slug.
func (s *Service) GetApp(ctx context.Context, p *Principal, slug string) (wire.App, error) {
	if err := Require(p, wire.ScopeAppsRead); err != nil {
		return wire.App{}, err
	}
	a, err := s.visibleApp(ctx, p, slug)
	if err != nil {
		return wire.App{}, err
	}
	return appJSON(a), nil
}

// changeableApp loads app slug for a change: seen by the caller, not reserved.
func (s *Service) changeableApp(ctx context.Context, p *Principal, slug string) error {
	if err := Require(p, wire.ScopeAppsWrite); err != nil {
		return err
	}
	if _, err := s.visibleApp(ctx, p, slug); err != nil {
		return err
	}
	if slug == wire.ManagementApp {
		return Errorf(Forbidden, "reserved_app", "the %q app is keymint's own and cannot be changed or deleted", slug)
	}
	return nil
}

// UpdateApp applies a PATCH; immutable names the fields it sent that cannot change.
func (s *Service) UpdateApp(ctx context.Context, p *Principal, slug string, req wire.UpdateApp, immutable []string) (wire.App, error) {
	if err := s.changeableApp(ctx, p, slug); err != nil {
		return wire.App{}, err
	}
	var fe fieldErrors
	refuseImmutable(&fe, "app", immutable)
	if req.Name != nil {
		validateText(&fe, "name", *req.Name, true, vocab.NameMaxLen)
	}
	if req.Description != nil {
		validateDescription(&fe, *req.Description)
	}
	var scopes []string
	if req.Scopes != nil {
		scopes = validateScopes(&fe, "scopes", req.Scopes)
	}
	var rl *store.RateLimit
	if req.RateLimit.Set {
		rl = validateRateLimit(&fe, req.RateLimit.Value)
	}
	if err := fe.err(); err != nil {
		return wire.App{}, err
	}
	now := s.now().UTC()
	ev := s.event(ctx, p, ActionAppUpdate, slug, "", now, map[string]any{})
	app, err := s.store.UpdateApp(ctx, slug, func(a *store.App, unrevoked []store.Key) error {
		before := appJSON(*a)
		if req.Name != nil {
			a.Name = *req.Name
		}
		if req.Description != nil {
			a.Description = *req.Description
		}
		if scopes != nil {
			a.Scopes = scopes
		}
		if req.RateLimit.Set {
			a.RateLimit = rl
		}
		after := appJSON(*a)
		if before.Name != after.Name {
			ev.Changes["name"] = change(before.Name, after.Name)
		}
		if before.Description != after.Description {
			ev.Changes["description"] = change(before.Description, after.Description)
		}
		if !slices.Equal(before.Scopes, after.Scopes) {
			ev.Changes["scopes"] = change(before.Scopes, after.Scopes)
		}
		if rateLimit(before.RateLimit) != rateLimit(after.RateLimit) {
			ev.Changes["rate_limit"] = change(before.RateLimit, after.RateLimit)
		}
		if len(ev.Changes) == 0 {
			return store.ErrNoChange
		}
		a.UpdatedAt = now
		// Narrowing the scopes must not strand a key that can still be used.
		var stranded []string
		for _, k := range live(unrevoked, now) {
			if !k.HasScopesIn(a.Scopes) {
				stranded = append(stranded, k.ID)
			}
		}
		return liveKeysError("live keys hold scopes outside the new set; revoke them first, or keep their scopes", stranded)
	}, ev)
	if err != nil {
		return wire.App{}, storeError(err, "app", slug)
	}
	return appJSON(app), nil
}

// DeleteApp deletes app slug; with live keys it refuses unless force.
func (s *Service) DeleteApp(ctx context.Context, p *Principal, slug string, force bool) error {
	if err := s.changeableApp(ctx, p, slug); err != nil {
		return err
	}
	now := s.now().UTC()
	err := s.store.DeleteApp(ctx, slug, func(unrevoked []store.Key) ([]*store.Event, error) {
		var ids []string
		for _, k := range live(unrevoked, now) {
			ids = append(ids, k.ID)
		}
		if !force {
			return nil, liveKeysError("the app still has live keys; revoke them first, or delete with force (?force=true; --force in the CLI)", ids)
		}
		// Each live key that goes with the app gets its own event, so that a
		// key's history ends with it.
		evs := []*store.Event{s.event(ctx, p, ActionAppDelete, slug, "", now, map[string]any{"force": force, "deleted_live_keys": ids})}
		for _, k := range live(unrevoked, now) {
			evs = append(evs, s.event(ctx, p, ActionKeyDelete, slug, k.ID, now, map[string]any{"with_app": slug, "start": k.Start}))
		}
		return evs, nil
	})
	if err != nil {
		return storeError(err, "app", slug)
	}
	s.limits.ForgetApp(slug)
	s.metrics.AppDeleted(slug)
	return nil
}

// live keeps the keys that can still be used, or enabled again, at now:
// neither revoked nor expired.
func live(keys []store.Key, now time.Time) []store.Key {
	var out []store.Key
	for _, k := range keys {
		if st := k.Status(now); st == vocab.StatusActive || st == vocab.StatusDisabled {
			out = append(out, k)
		}
	}
	return out
}

// liveKeysError refuses an app change that would leave these keys stranded (nil if none).
func liveKeysError(reason string, ids []string) error {
	if len(ids) == 0 {
		return nil
	}
	e := Errorf(Conflict, "live_keys", "%s (%d, listed in key_ids)", reason, len(ids))
	e.KeyIDs = ids
	return e
}

// rateLimit is a rate limit as one comparable string ("" for none).
func rateLimit(rl *wire.RateLimit) string {
	if rl == nil {
		return ""
	}
	return strconv.Itoa(rl.Requests) + "/" + rl.Window
}
