// Package api is keymint's HTTP API: management of auth apps and keys under
// /v1, and the verify endpoint that applications call on every request.
package api

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/keymint/terraform-provider-keymint/internal/keyformat"
	"github.com/keymint/terraform-provider-keymint/internal/ratelimit"
	"github.com/keymint/terraform-provider-keymint/internal/store"
	"github.com/keymint/terraform-provider-keymint/internal/wire"
)

// Config configures a Server.
type Config struct {
	Store store.Store
	// RootTokenHash is the SHA-256 of the root token, which has every management scope.
	RootTokenHash [sha256.Size]byte
	Logger        *slog.Logger
	// Now is the clock; tests inject one so expiry and grace need no sleeping.
	Now func() time.Time
}

// Server serves the API. Create it with New, stop it with Close.
type Server struct {
	store    store.Store
	rootHash [sha256.Size]byte
	log      *slog.Logger
	now      func() time.Time
	limits   ratelimit.Limiters
	usage    usage
	handler  http.Handler
}

// New builds the server and makes sure the reserved management app exists.
func New(ctx context.Context, cfg Config) (*Server, error) {
	s := &Server{store: cfg.Store, rootHash: cfg.RootTokenHash, log: cfg.Logger, now: cfg.Now}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.now == nil {
		s.now = time.Now
	}
	s.usage.pending = map[string]time.Time{}
	now := s.now().UTC()
	err := s.store.CreateApp(ctx, store.App{
		Slug: wire.ManagementApp, Name: "keymint management", Description: "Credentials for the keymint API itself.",
		Scopes: wire.ManagementScopes, KeyPrefix: "keymint", CreatedAt: now, UpdatedAt: now,
	}, nil)
	if err != nil && !errors.Is(err, store.ErrExists) {
		return nil, err
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	for _, rt := range s.routes() {
		mux.Handle(rt.Pattern, s.authorize(rt.Scope, rt.handle))
	}
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		s.writeError(w, r, newProblem(http.StatusNotFound, "no_route", "no endpoint %s %s; see the API reference", r.Method, r.URL.Path))
	})
	s.handler = s.logRequests(mux)
	return s, nil
}

// Route is one authenticated endpoint and the management scope it needs ("" for any).
type Route struct {
	Pattern string // a net/http pattern: "METHOD /path/{param}"
	Scope   string
	handle  func(http.ResponseWriter, *http.Request, *principal) error
}

// Routes lists the authenticated endpoints (GET /healthz is the only other), for docs and tests.
func Routes() []Route { return (&Server{}).routes() }

func (s *Server) routes() []Route {
	return []Route{
		{"POST /v1/apps", wire.ScopeAppsWrite, s.createApp},
		{"GET /v1/apps", wire.ScopeAppsRead, s.listApps},
		{"GET /v1/apps/{slug}", wire.ScopeAppsRead, s.getApp},
		{"PATCH /v1/apps/{slug}", wire.ScopeAppsWrite, s.updateApp},
		{"DELETE /v1/apps/{slug}", wire.ScopeAppsWrite, s.deleteApp},
		{"POST /v1/apps/{slug}/keys", wire.ScopeKeysWrite, s.createKey},
		{"GET /v1/apps/{slug}/keys", wire.ScopeKeysRead, s.listKeys},
		{"GET /v1/keys/{id}", wire.ScopeKeysRead, s.getKey},
		{"PATCH /v1/keys/{id}", wire.ScopeKeysWrite, s.updateKey},
		{"DELETE /v1/keys/{id}", wire.ScopeKeysWrite, s.revokeKey},
		{"POST /v1/keys/{id}/rotate", wire.ScopeKeysWrite, s.rotateKey},
		{"POST /v1/verify", wire.ScopeVerify, s.verify},
		{"GET /v1/whoami", "", s.whoami},
	}
}

func (s *Server) whoami(w http.ResponseWriter, r *http.Request, p *principal) error {
	writeJSON(w, http.StatusOK, wire.Whoami{ID: p.id, Scopes: p.scopes, ConfineTo: append([]string{}, p.confineTo...)})
	return nil
}

func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.handler.ServeHTTP(w, r) }

// Run flushes key usage every interval until ctx ends, then once more.
func (s *Server) Run(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			s.FlushUsage(context.WithoutCancel(ctx))
			return
		case <-t.C:
			s.FlushUsage(ctx)
		}
	}
}

// FlushUsage writes the last_used_at times gathered since the last flush.
func (s *Server) FlushUsage(ctx context.Context) {
	batch := s.usage.take()
	if err := s.store.RecordUse(ctx, batch); err != nil {
		s.log.ErrorContext(ctx, "recording key usage", "keys", len(batch), "err", err)
		s.usage.putBack(batch)
	}
}

// usage gathers last-used times in memory so verify never writes to the store.
type usage struct {
	mu      sync.Mutex
	pending map[string]time.Time
}

func (u *usage) touch(id string, t time.Time) {
	u.mu.Lock()
	if t.After(u.pending[id]) {
		u.pending[id] = t
	}
	u.mu.Unlock()
}

func (u *usage) take() map[string]time.Time {
	u.mu.Lock()
	defer u.mu.Unlock()
	b := u.pending
	u.pending = make(map[string]time.Time, len(b))
	return b
}

func (u *usage) putBack(b map[string]time.Time) {
	for id, t := range b {
		u.touch(id, t)
	}
}

// principal is the authenticated caller.
type principal struct {
	id        string   // "root" or the credential's key id
	scopes    []string // management scopes
	confineTo []string // app slugs; empty: every app
}

// sees reports whether the caller may see app slug at all.
func (p *principal) sees(slug string) bool {
	return len(p.confineTo) == 0 || slices.Contains(p.confineTo, slug)
}

func (s *Server) authenticate(r *http.Request) (*principal, error) {
	token, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok || token == "" {
		return nil, newProblem(http.StatusUnauthorized, "unauthenticated", "send a management token as 'Authorization: Bearer <token>'")
	}
	hash := keyformat.Hash(token)
	if subtle.ConstantTimeCompare(hash[:], s.rootHash[:]) == 1 {
		return &principal{id: "root", scopes: wire.ManagementScopes}, nil
	}
	bad := newProblem(http.StatusUnauthorized, "unauthenticated", "the token is not a valid keymint management credential (unknown, revoked, expired or disabled)")
	if _, err := keyformat.Parse(token); err != nil {
		return nil, bad
	}
	sec, err := s.store.LookupSecret(r.Context(), hash[:])
	if errors.Is(err, store.ErrNotFound) {
		return nil, bad
	}
	if err != nil {
		return nil, err
	}
	now := s.now()
	if sec.Key.App != wire.ManagementApp || sec.Key.Status(now) != store.StatusActive ||
		sec.ExpiresAt != nil && !now.Before(*sec.ExpiresAt) {
		return nil, bad
	}
	s.usage.touch(sec.Key.ID, now)
	return &principal{id: sec.Key.ID, scopes: sec.Key.Scopes, confineTo: sec.Key.Resources}, nil
}

// requestLog is filled in as a request is served, for its log line.
type requestLog struct{ caller string }

type requestLogKey struct{}

// authorize authenticates the caller and checks it holds scope ("" for any). Confinement
// to apps is checked by each handler, which knows the app.
func (s *Server) authorize(scope string, h func(http.ResponseWriter, *http.Request, *principal) error) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, err := s.authenticate(r)
		if err == nil {
			if l, ok := r.Context().Value(requestLogKey{}).(*requestLog); ok {
				l.caller = p.id
			}
			if scope != "" && !slices.Contains(p.scopes, scope) {
				err = newProblem(http.StatusForbidden, "insufficient_scope", "this credential lacks the %q scope", scope)
			} else {
				err = h(w, r, p)
			}
		}
		if err != nil {
			s.writeError(w, r, err)
		}
	})
}

type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (r *statusRecorder) WriteHeader(code int) {
	r.status = code
	r.ResponseWriter.WriteHeader(code)
}

// logRequests writes one line per request. It logs the path (ids and slugs,
// never secrets: no endpoint takes a secret in its path) and never a body or header.
func (s *Server) logRequests(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		rec := &statusRecorder{ResponseWriter: w, status: http.StatusOK}
		info := &requestLog{}
		next.ServeHTTP(rec, r.WithContext(context.WithValue(r.Context(), requestLogKey{}, info)))
		s.log.LogAttrs(r.Context(), slog.LevelInfo, "request",
			slog.String("method", r.Method), slog.String("path", r.URL.Path),
			slog.Int("status", rec.status), slog.Duration("duration", time.Since(start)),
			slog.String("caller", info.caller))
	})
}
