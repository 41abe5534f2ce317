package api

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"net/http"
	"regexp"
	"slices"
	"time"

	"github.com/keymint/terraform-provider-keymint/internal/keyformat"
	"github.com/keymint/terraform-provider-keymint/internal/store"
	"github.com/keymint/terraform-provider-keymint/internal/wire"
)

var (
	slugPattern  = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{1,62}$`)
	scopePattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.:/*-]{0,127}$`)
)

// maxRateWindow is the longest rate-limit window.
const maxRateWindow = 30 * 24 * time.Hour

func appJSON(a store.App) wire.App {
	out := wire.App{Slug: a.Slug, Name: a.Name, Description: a.Description, Scopes: a.Scopes,
		KeyPrefix: a.KeyPrefix, CreatedAt: a.CreatedAt, UpdatedAt: a.UpdatedAt}
	if a.RateLimit != nil {
		out.RateLimit = &wire.RateLimit{Requests: a.RateLimit.Requests, Window: a.RateLimit.Window.String()}
	}
	return out
}

func validateScopes(fe *fieldErrors, field string, scopes []string) []string {
	if len(scopes) == 0 {
		fe.add(field, "at least one scope is required")
	}
	for _, sc := range scopes {
		if !scopePattern.MatchString(sc) {
			fe.add(field, "scope %q is not valid: use letters, digits and _ . : / * - (e.g. read:data), at most 128 characters", sc)
		}
	}
	return sortedUnique(scopes)
}

func sortedUnique(s []string) []string {
	out := slices.Clone(s)
	slices.Sort(out)
	return slices.Compact(out)
}

func validateRateLimit(fe *fieldErrors, rl *wire.RateLimit) *store.RateLimit {
	if rl == nil {
		return nil
	}
	if rl.Requests < 1 {
		fe.add("rate_limit.requests", "must be at least 1")
	}
	w, err := time.ParseDuration(rl.Window)
	switch {
	case err != nil:
		fe.add("rate_limit.window", "%q is not a duration: use a Go duration such as 1m, 1h or 24h", rl.Window)
	case w <= 0 || w > maxRateWindow:
		fe.add("rate_limit.window", "must be more than 0s and at most 720h (30 days), got %s", rl.Window)
	}
	return &store.RateLimit{Requests: rl.Requests, Window: w}
}

func validateText(fe *fieldErrors, field, v string, required bool, maxLen int) {
	if required && v == "" {
		fe.add(field, "is required")
	}
	if len(v) > maxLen {
		fe.add(field, "must be at most %d bytes", maxLen)
	}
}

// idempotencyRecord prepares the record for a create sent with an
// Idempotency-Key, or nil without one, and finds an earlier use of the key.
func (s *Server) idempotencyRecord(r *http.Request, p *principal, kind string, body []byte) (rec *store.Idempotency, earlier *store.Idempotency, err error) {
	key := r.Header.Get(wire.IdempotencyHeader)
	if key == "" {
		return nil, nil, nil
	}
	if len(key) > 255 {
		return nil, nil, newProblem(http.StatusBadRequest, "invalid_idempotency_key", "the Idempotency-Key header must be at most 255 characters")
	}
	h := sha256.New()
	h.Write([]byte(r.Method + " " + r.URL.Path + "\n"))
	h.Write(body)
	rec = &store.Idempotency{Principal: p.id, Key: key, Kind: kind, RequestHash: h.Sum(nil), CreatedAt: s.now().UTC()}
	found, err := s.store.GetIdempotency(r.Context(), p.id, key)
	if errors.Is(err, store.ErrNotFound) {
		return rec, nil, nil
	}
	if err != nil {
		return nil, nil, err
	}
	if found.Kind != kind || !bytes.Equal(found.RequestHash, rec.RequestHash) {
		return nil, nil, newProblem(http.StatusUnprocessableEntity, "idempotency_key_reused",
			"this Idempotency-Key was already used for a different request; use a new key for a new request")
	}
	return rec, &found, nil
}

// raceWinner is the create that took this request's Idempotency-Key while it
// was being served. Its answer is this request's, if the two are the same
// request (else idempotencyRecord refuses, as for any reuse).
func (s *Server) raceWinner(r *http.Request, p *principal, kind string, body []byte) (*store.Idempotency, error) {
	_, earlier, err := s.idempotencyRecord(r, p, kind, body)
	if err == nil && earlier == nil {
		err = errors.New("idempotency record missing after a conflicting insert")
	}
	return earlier, err
}

func (s *Server) createApp(w http.ResponseWriter, r *http.Request, p *principal) error {
	body, err := readBody(w, r)
	if err != nil {
		return err
	}
	var req wire.CreateApp
	if err := decodeBytes(body, &req); err != nil {
		return err
	}
	var fe fieldErrors
	if !slugPattern.MatchString(req.Slug) {
		fe.add("slug", "%q is not a valid slug: 2-63 characters, lowercase letters, digits and '-', starting with a letter or digit", req.Slug)
	}
	validateText(&fe, "name", req.Name, true, 200)
	validateText(&fe, "description", req.Description, false, 2000)
	scopes := validateScopes(&fe, "scopes", req.Scopes)
	if !keyformat.ValidPrefix(req.KeyPrefix) {
		fe.add("key_prefix", "%q is not a valid key prefix: 2-32 characters, lowercase letters and digits, words joined by '_' (e.g. acme_live)", req.KeyPrefix)
	}
	rl := validateRateLimit(&fe, req.RateLimit)
	if err := fe.err(); err != nil {
		return err
	}
	if !p.sees(req.Slug) {
		return newProblem(http.StatusForbidden, "outside_confinement", "this credential is confined to apps %v and cannot create %q", p.confineTo, req.Slug)
	}
	rec, earlier, err := s.idempotencyRecord(r, p, "app", body)
	if err != nil {
		return err
	}
	if earlier == nil {
		now := s.now().UTC()
		app := store.App{Slug: req.Slug, Name: req.Name, Description: req.Description, Scopes: scopes,
			KeyPrefix: req.KeyPrefix, RateLimit: rl, CreatedAt: now, UpdatedAt: now}
		if rec != nil {
			rec.ResourceID = app.Slug
		}
		err = s.store.CreateApp(r.Context(), app, rec)
		switch {
		case err == nil:
			writeJSON(w, http.StatusCreated, appJSON(app))
			return nil
		case errors.Is(err, store.ErrExists):
			return s.appConflict(r, app)
		case !errors.Is(err, store.ErrIdempotencyRace):
			return err
		}
		if earlier, err = s.raceWinner(r, p, "app", body); err != nil {
			return err
		}
	}
	// A retry of a create that happened: answer with the app as it is now.
	app, err := s.store.GetApp(r.Context(), earlier.ResourceID)
	if errors.Is(err, store.ErrNotFound) {
		return newProblem(http.StatusConflict, "idempotency_key_used", "the app created with this Idempotency-Key has since been deleted")
	}
	if err != nil {
		return err
	}
	w.Header().Set(wire.ReplayedHeader, "true")
	writeJSON(w, http.StatusCreated, appJSON(app))
	return nil
}

// appConflict says which unique field clashed.
func (s *Server) appConflict(r *http.Request, app store.App) error {
	if _, err := s.store.GetApp(r.Context(), app.Slug); err == nil {
		return newProblem(http.StatusConflict, "slug_taken", "an app with slug %q already exists; pick another slug or import the existing app", app.Slug)
	}
	return newProblem(http.StatusConflict, "key_prefix_taken", "another app already uses key_prefix %q; key prefixes identify an app's keys and must be unique", app.KeyPrefix)
}

func (s *Server) listApps(w http.ResponseWriter, r *http.Request, p *principal) error {
	apps, err := s.store.ListApps(r.Context())
	if err != nil {
		return err
	}
	out := wire.AppList{Apps: []wire.App{}}
	for _, a := range apps {
		if p.sees(a.Slug) {
			out.Apps = append(out.Apps, appJSON(a))
		}
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// visibleApp loads the app named in the path, as 404 if the caller cannot see it.
func (s *Server) visibleApp(r *http.Request, p *principal) (store.App, error) {
	slug := r.PathValue("slug")
	if !p.sees(slug) {
		return store.App{}, notFound("app", slug)
	}
	a, err := s.store.GetApp(r.Context(), slug)
	if errors.Is(err, store.ErrNotFound) {
		return a, notFound("app", slug)
	}
	return a, err
}

func (s *Server) getApp(w http.ResponseWriter, r *http.Request, p *principal) error {
	a, err := s.visibleApp(r, p)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, appJSON(a))
	return nil
}

func reservedApp(slug string) error {
	if slug == wire.ManagementApp {
		return newProblem(http.StatusForbidden, "reserved_app", "the %q app is keymint's own and cannot be changed or deleted", slug)
	}
	return nil
}

// updateAppRequest catches the immutable fields, to say why they cannot change.
type updateAppRequest struct {
	wire.UpdateApp
	Slug      *string `json:"slug,omitempty"`
	KeyPrefix *string `json:"key_prefix,omitempty"`
}

func (s *Server) updateApp(w http.ResponseWriter, r *http.Request, p *principal) error {
	if _, err := s.visibleApp(r, p); err != nil {
		return err
	}
	slug := r.PathValue("slug")
	if err := reservedApp(slug); err != nil {
		return err
	}
	var req updateAppRequest
	if err := decode(w, r, &req); err != nil {
		return err
	}
	var fe fieldErrors
	if req.Slug != nil {
		fe.add("slug", "is immutable; create a new app instead")
	}
	if req.KeyPrefix != nil {
		fe.add("key_prefix", "is immutable: existing keys carry it; create a new app instead")
	}
	if req.Name != nil {
		validateText(&fe, "name", *req.Name, true, 200)
	}
	if req.Description != nil {
		validateText(&fe, "description", *req.Description, false, 2000)
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
		return err
	}
	app, err := s.store.UpdateApp(r.Context(), slug, s.now().UTC(), func(a *store.App) error {
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
		return nil
	})
	if errors.Is(err, store.ErrNotFound) {
		return notFound("app", slug)
	}
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, appJSON(app))
	return nil
}

func (s *Server) deleteApp(w http.ResponseWriter, r *http.Request, p *principal) error {
	if _, err := s.visibleApp(r, p); err != nil {
		return err
	}
	slug := r.PathValue("slug")
	if err := reservedApp(slug); err != nil {
		return err
	}
	force := false
	switch v := r.URL.Query().Get("force"); v {
	case "", "false":
	case "true":
		force = true
	default:
		return newProblem(http.StatusBadRequest, "invalid_query", "force must be true or false, got %q", v)
	}
	err := s.store.DeleteApp(r.Context(), slug, force, s.now().UTC())
	if errors.Is(err, store.ErrNotFound) {
		return notFound("app", slug)
	}
	if err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}
