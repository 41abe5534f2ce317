// Package api is keymint's HTTP API: management of auth apps and keys under
// /v1, and the verify endpoint that applications call on every request. It
// is a thin adapter: decode the request, call the service, encode the answer.
// Every rule (validation, scopes, confinement, idempotency) is the service's.
package api

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"log/slog"
	"net/http"
	"path"
	"strings"
	"time"

	"github.com/keymint/terraform-provider-keymint/internal/keyformat"
	"github.com/keymint/terraform-provider-keymint/internal/logbuf"
	"github.com/keymint/terraform-provider-keymint/internal/metrics"
	"github.com/keymint/terraform-provider-keymint/internal/service"
	"github.com/keymint/terraform-provider-keymint/internal/wire"
)

// Server serves the API over a service.Service.
type Server struct {
	svc *service.Service
	log *slog.Logger
	// requests, when the logger is a logbuf.Handler, writes the line per
	// request without slog's per-record work.
	requests *logbuf.Handler
	metrics  *metrics.Metrics
	handler  http.Handler
	// Ready, if set, says whether this process can answer correctly and
	// promptly now (GET /readyz: 503 with its error as the reason), and
	// whether its verify cache answers ("on", or "off: <why>").
	Ready func(context.Context) (cache string, err error)
	// Now is the clock of the failed-authentication throttle (nil:
	// time.Now); tests inject one.
	Now      func() time.Time
	throttle *authThrottle
}

// New returns the HTTP API for svc; logger gets a line per request (nil:
// none), m the request durations (nil: metrics off).
func New(svc *service.Service, logger *slog.Logger, m *metrics.Metrics) *Server {
	s := &Server{svc: svc, log: logger, metrics: m, throttle: newAuthThrottle(maxThrottledAddrs)}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	s.requests, _ = s.log.Handler().(*logbuf.Handler)
	s.log = slog.New(keyformat.RedactingHandler(s.log.Handler())) // no key in a log line, whatever the path
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		routed(r)
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		routed(r)
		body := map[string]string{"status": "ready"}
		if s.Ready != nil {
			cache, err := s.Ready(r.Context())
			if err != nil {
				s.writeError(w, r, service.Errorf(service.Unavailable, "not_ready", "%v", err))
				return
			}
			body["verify_cache"] = cache
		}
		writeJSON(w, http.StatusOK, body)
	})
	for _, rt := range s.routes() {
		mux.Handle(rt.Pattern, s.authenticated(rt.handle))
	}
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		// The path is never echoed: a secret sent in a path must not come back.
		if allow := allowedMethods(mux, r); len(allow) > 0 {
			w.Header().Set("Allow", strings.Join(allow, ", "))
			s.writeError(w, r, service.Errorf(service.MethodNotAllowed, "method_not_allowed",
				"this endpoint does not take %s; it takes %s", r.Method, strings.Join(allow, ", ")))
			return
		}
		s.writeError(w, r, service.Errorf(service.NotFound, "no_route", "no endpoint for %s on this path; see the API reference", r.Method))
	})
	s.handler = s.logRequests(canonicalPaths(mux))
	return s
}

// allowedMethods lists the methods a path is served with, for 405's Allow.
func allowedMethods(mux *http.ServeMux, r *http.Request) []string {
	var allow []string
	for _, m := range []string{http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete} {
		probe := &http.Request{Method: m, URL: r.URL, Host: r.Host}
		if _, pattern := mux.Handler(probe); pattern != "" && pattern != "/" {
			allow = append(allow, m)
		}
	}
	return allow
}

// canonicalPaths answers a path that is not in canonical form (//, /./, a
// trailing slash) as no route, where ServeMux would redirect with an HTML
// body: an API client gets problem JSON for every error.
func canonicalPaths(next *http.ServeMux) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if p := r.URL.Path; p != "/" && path.Clean(p) != p {
			r.URL.Path = "/" // the catch-all: 404 no_route
		}
		next.ServeHTTP(w, r)
	})
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
		{"POST /v1/keys/find", s.findKey},
		{"GET /v1/events", s.listEvents},
		{"POST /v1/verify", s.verify},
		{"GET /v1/whoami", s.whoami},
	}
}

func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.handler.ServeHTTP(w, r) }

// requestLog is a request as it is served: the writer its handler writes
// through (recording the status) and what its log line and metrics need.
// One allocation per request carries all of it, in the context as the
// service's Request.
type requestLog struct {
	http.ResponseWriter
	status        int
	id            string
	caller, route string
}

func (l *requestLog) WriteHeader(code int) {
	l.status = code
	l.ResponseWriter.WriteHeader(code)
}

// Unwrap lets http.ResponseController reach the connection's writer.
func (l *requestLog) Unwrap() http.ResponseWriter { return l.ResponseWriter }

func (l *requestLog) RequestID() string { return l.id }

// routed notes the route pattern that serves r ("" stays "unmatched").
func routed(r *http.Request) *requestLog {
	l, _ := service.RequestOf(r.Context()).(*requestLog)
	if l != nil {
		l.route = r.Pattern
	}
	return l
}

// requestID is the client's X-Request-Id if it is a sensible one (printable
// ASCII, at most 128 characters, not key-like), else a new one.
func requestID(r *http.Request) string {
	id := r.Header.Get(wire.RequestIDHeader)
	ok := id != "" && len(id) <= 128 && keyformat.Redact(id) == id
	for i := 0; ok && i < len(id); i++ {
		ok = id[i] > ' ' && id[i] < 0x7f
	}
	if ok {
		return id
	}
	return NewRequestID()
}

// NewRequestID is a new request id: "req_" and 96 random bits in hex.
func NewRequestID() string {
	var b [12]byte
	rand.Read(b[:])
	id := [4 + 2*len(b)]byte{'r', 'e', 'q', '_'}
	hex.Encode(id[4:], b[:])
	return string(id[:])
}

// knownMethod says whether m is a method the API serves or answers 405 to:
// those go to the log as they are, any other through the redacting handler
// (a client may send anything as a method).
func knownMethod(m string) bool {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch,
		http.MethodDelete, http.MethodOptions:
		return true
	}
	return false
}

// authenticated resolves the bearer token to a principal and calls h.
// A failure is counted against the client's address; past
// AuthFailureBurst in AuthFailureWindow the address gets 429 for every
// failing token (a missing one without looking further), while a valid
// token is always served.
func (s *Server) authenticated(h handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		l := routed(r)
		token := bearerToken(r)
		// The throttle (a lock and the peer's address) is for failures alone:
		// a request with a token that authenticates never touches it.
		if token == "" {
			if wait, throttled := s.throttle.throttled(clientAddr(r.RemoteAddr), s.now()); throttled {
				s.writeError(w, r, tooManyAuthFailures(wait))
				return
			}
		}
		p, err := s.svc.Authenticate(r.Context(), token)
		if e := (*service.Error)(nil); errors.As(err, &e) && e.Kind == service.Unauthenticated {
			if wait, throttled := s.throttle.fail(clientAddr(r.RemoteAddr), s.now()); throttled {
				err = tooManyAuthFailures(wait)
			}
		}
		if err == nil {
			if l != nil {
				l.caller = p.ID
			}
			err = h(w, r, p)
		}
		if err != nil {
			s.writeError(w, r, err)
		}
	})
}

// AuthFailed counts a failed authentication outside the API (the portal's
// sign-in) against the client's same allowance. It reports whether the
// client was already out of failures, and how long until it has one.
func (s *Server) AuthFailed(r *http.Request) (retryAfter time.Duration, throttled bool) {
	return s.throttle.fail(clientAddr(r.RemoteAddr), s.now())
}

func (s *Server) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

// bearerToken is the credential of an "Authorization: Bearer <token>"
// header; the scheme is case-insensitive (RFC 9110). "" if there is none.
func bearerToken(r *http.Request) string {
	scheme, token, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return ""
	}
	return strings.TrimSpace(token)
}

// logRequests writes one line per request: never a body or header, and the
// path with anything that parses as a keymint key cut to its start (no
// endpoint takes a secret in its path, but a client may send one there).
func (s *Server) logRequests(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		info := &requestLog{ResponseWriter: w, status: http.StatusOK, id: requestID(r)}
		logPath := keyformat.Redact(r.URL.Path)
		w.Header()[wire.RequestIDHeader] = []string{info.id} // the header's canonical name
		next.ServeHTTP(info, r.WithContext(service.WithRequest(r.Context(), info)))
		took := time.Since(start)
		if s.metrics != nil {
			route := info.route
			if route == "" {
				route = "unmatched"
			}
			s.metrics.Request(route, info.status, took)
		}
		line := logbuf.Request{Time: start.Add(took), Method: r.Method, Path: logPath, Status: info.status,
			Duration: took, Caller: info.caller, RequestID: info.id}
		if s.requests == nil || !knownMethod(r.Method) || !s.requests.LogRequest(line) {
			s.log.LogAttrs(r.Context(), slog.LevelInfo, logbuf.RequestMessage, line.Attrs()...)
		}
	})
}
