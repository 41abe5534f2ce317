// Package api is keymint's HTTP API: management of auth apps and keys under
// /v1, and the verify endpoint that applications call on every request. It
// is a thin adapter: decode the request, call the service, encode the answer.
// Every rule (validation, scopes, confinement, idempotency) is the service's.
package api

import (
	"context"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/keymint/terraform-provider-keymint/internal/service"
)

// Server serves the API over a service.Service.
type Server struct {
	svc     *service.Service
	log     *slog.Logger
	handler http.Handler
}

// New returns the HTTP API for svc; logger gets a line per request (nil: none).
func New(svc *service.Service, logger *slog.Logger) *Server {
	s := &Server{svc: svc, log: logger}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	for _, rt := range s.routes() {
		mux.Handle(rt.Pattern, s.authenticated(rt.handle))
	}
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		s.writeError(w, r, service.Errorf(service.NotFound, "no_route", "no endpoint %s %s; see the API reference", r.Method, r.URL.Path))
	})
	s.handler = s.logRequests(mux)
	return s
}

// Route is one authenticated endpoint (GET /healthz is the only other).
type Route struct {
	Pattern string // a net/http pattern: "METHOD /path/{param}"
	handle  handler
}

type handler func(http.ResponseWriter, *http.Request, *service.Principal) error

// Routes lists the authenticated endpoints, for docs and tests.
func Routes() []Route { return (&Server{}).routes() }

func (s *Server) routes() []Route {
	return []Route{
		{"POST /v1/apps", s.createApp},
		{"GET /v1/apps", s.listApps},
		{"GET /v1/apps/{slug}", s.getApp},
		{"PATCH /v1/apps/{slug}", s.updateApp},
		{"DELETE /v1/apps/{slug}", s.deleteApp},
		{"POST /v1/apps/{slug}/keys", s.createKey},
		{"GET /v1/apps/{slug}/keys", s.listKeys},
		{"GET /v1/keys/{id}", s.getKey},
		{"PATCH /v1/keys/{id}", s.updateKey},
		{"DELETE /v1/keys/{id}", s.revokeKey},
		{"POST /v1/keys/{id}/rotate", s.rotateKey},
		{"POST /v1/verify", s.verify},
		{"GET /v1/whoami", s.whoami},
	}
}

func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.handler.ServeHTTP(w, r) }

// requestLog is filled in as a request is served, for its log line.
type requestLog struct{ caller string }

type requestLogKey struct{}

// authenticated resolves the bearer token to a principal and calls h.
func (s *Server) authenticated(h handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		token, _ := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		p, err := s.svc.Authenticate(r.Context(), token)
		if err == nil {
			if l, ok := r.Context().Value(requestLogKey{}).(*requestLog); ok {
				l.caller = p.ID
			}
			err = h(w, r, p)
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
