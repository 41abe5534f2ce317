// Package middleware protects net/http handlers with keymint API keys.
//
// Each request's key (by default from "Authorization: Bearer <key>") is
// verified by keymint for the route's scopes and resource. A refused request
// is answered with an RFC 9457 problem (application/problem+json) whose code is
// the verdict's, in lower case, and whose detail never repeats the key:
//
//	401 missing_key, not_found, revoked, expired, disabled
//	403 insufficient_scope, forbidden_resource
//	429 rate_limited, with Retry-After and RateLimit-Limit/-Remaining/-Reset
//	503 verifier_unavailable, with Retry-After: keymint could not be asked (the request is refused)
//
// An accepted request reaches the handler with its verdict in the context
// ([FromContext]): key id, app, owner, metadata and scopes.
//
//	c, _ := keymint.New(os.Getenv("KEYMINT_ENDPOINT"), os.Getenv("KEYMINT_TOKEN")) // a token with the verify scope
//	read := middleware.New(c, middleware.Scopes("read:data"))
//	http.Handle("GET /data", read(dataHandler))
package middleware

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/keymint/terraform-provider-keymint/keymint"
)

// Verifier asks keymint for a verdict; *keymint.Client is one.
type Verifier interface {
	Verify(ctx context.Context, req keymint.VerifyRequest) (keymint.VerifyResponse, error)
}

// Option configures a middleware made by [New].
type Option func(*config)

type config struct {
	header   string
	scopes   []string
	resource func(*http.Request) string
	timeout  time.Duration
	log      *slog.Logger
	now      func() time.Time
}

// Scopes are the scopes a key must hold for the route (all of them).
func Scopes(scopes ...string) Option {
	return func(c *config) { c.scopes = append(c.scopes, scopes...) }
}

// Resource names the resource a request acts on (e.g. from r.PathValue): a key
// confined to resources must hold it. An empty name asks about the key alone.
func Resource(f func(*http.Request) string) Option {
	return func(c *config) { c.resource = f }
}

// Header reads the key from the named header: "Authorization" (the default)
// expects "Bearer <key>"; any other header (e.g. "X-API-Key") holds the key alone.
func Header(name string) Option {
	return func(c *config) { c.header = http.CanonicalHeaderKey(name) }
}

// Timeout bounds each verify, retries included (default 5s); past it the
// request is refused with 503.
func Timeout(d time.Duration) Option {
	return func(c *config) { c.timeout = d }
}

// Logger receives a line when keymint cannot be asked (default slog.Default()).
// No line ever holds a key.
func Logger(l *slog.Logger) Option {
	return func(c *config) { c.log = l }
}

// New returns middleware that lets a request through only if keymint finds its
// key valid for the options' scopes and resource. Options given later win; for
// per-route options call New again, e.g. with a shared slice of options first.
func New(v Verifier, opts ...Option) func(http.Handler) http.Handler {
	cfg := config{header: "Authorization", timeout: 5 * time.Second, now: time.Now}
	for _, o := range opts {
		o(&cfg)
	}
	if cfg.log == nil {
		cfg.log = slog.Default()
	}
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			cfg.serve(v, next, w, r)
		})
	}
}

type ctxKey struct{}

// FromContext returns the verdict of the request's key, put there by the
// middleware; ok is false outside a protected handler.
func FromContext(ctx context.Context) (v keymint.VerifyResponse, ok bool) {
	v, ok = ctx.Value(ctxKey{}).(keymint.VerifyResponse)
	return v, ok
}

func (c *config) serve(v Verifier, next http.Handler, w http.ResponseWriter, r *http.Request) {
	key := c.key(r)
	if key == "" {
		c.problem(w, http.StatusUnauthorized, "missing_key", "send an API key "+c.where())
		return
	}
	req := keymint.VerifyRequest{Key: key, Scopes: c.scopes}
	if c.resource != nil {
		req.Resource = c.resource(r)
	}
	ctx, cancel := context.WithTimeout(r.Context(), c.timeout)
	verdict, err := v.Verify(ctx, req)
	cancel()
	if err != nil {
		// keymint's errors name the endpoint and the problem, never the key (it
		// travels in the body).
		c.log.ErrorContext(r.Context(), "keymint middleware: cannot verify the API key; refusing the request", "err", err)
		w.Header().Set("Retry-After", "1") // keymint was asked with retries for Timeout already: a client may try again soon
		c.problem(w, http.StatusServiceUnavailable, "verifier_unavailable", "the API key could not be checked; retry later")
		return
	}
	rl := verdict.RateLimit
	switch verdict.Code {
	case keymint.CodeValid:
		if !verdict.Valid { // a contradictory answer: refuse rather than guess
			c.problem(w, http.StatusUnauthorized, "not_found", "the API key is not valid")
			return
		}
		c.rateLimitHeaders(w, rl)
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), ctxKey{}, verdict)))
	case keymint.CodeInsufficientScope:
		c.problem(w, http.StatusForbidden, "insufficient_scope", "the API key lacks a scope this route requires: "+strings.Join(c.scopes, " "))
	case keymint.CodeForbiddenResource:
		c.problem(w, http.StatusForbidden, "forbidden_resource", "the API key may not act on this resource")
	case keymint.CodeRateLimited:
		c.rateLimitHeaders(w, rl)
		detail := "the API key's rate limit is reached"
		if rl != nil {
			retry := c.untilReset(rl)
			w.Header().Set("Retry-After", strconv.Itoa(retry))
			detail += "; retry in " + strconv.Itoa(retry) + " s"
		}
		c.problem(w, http.StatusTooManyRequests, "rate_limited", detail)
	default: // NOT_FOUND, REVOKED, EXPIRED, DISABLED, and any code this version does not know
		detail := map[string]string{
			keymint.CodeRevoked:  "the API key has been revoked",
			keymint.CodeExpired:  "the API key has expired",
			keymint.CodeDisabled: "the API key is disabled",
		}[verdict.Code]
		if detail == "" {
			detail = "the API key is not valid"
		}
		code := strings.ToLower(verdict.Code)
		if code == "" {
			code = "not_found"
		}
		c.problem(w, http.StatusUnauthorized, code, detail)
	}
}

// key is the request's key, or "" if it sent none.
func (c *config) key(r *http.Request) string {
	v := strings.TrimSpace(r.Header.Get(c.header))
	if c.header != "Authorization" {
		return v
	}
	scheme, token, ok := strings.Cut(v, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return ""
	}
	return strings.TrimSpace(token)
}

func (c *config) where() string {
	if c.header == "Authorization" {
		return "as Authorization: Bearer <key>"
	}
	return "in the " + c.header + " header"
}

// untilReset is the whole seconds until the rate limit's reset, at least 1.
func (c *config) untilReset(rl *keymint.VerifyRateLimit) int {
	d := rl.Reset.Sub(c.now())
	s := int((d + time.Second - 1) / time.Second)
	return max(s, 1)
}

func (c *config) rateLimitHeaders(w http.ResponseWriter, rl *keymint.VerifyRateLimit) {
	if rl == nil {
		return
	}
	h := w.Header()
	h.Set("RateLimit-Limit", strconv.Itoa(rl.Limit))
	h.Set("RateLimit-Remaining", strconv.Itoa(rl.Remaining))
	h.Set("RateLimit-Reset", strconv.Itoa(c.untilReset(rl)))
}

func (c *config) problem(w http.ResponseWriter, status int, code, detail string) {
	h := w.Header()
	if c.header == "Authorization" {
		switch status {
		case http.StatusUnauthorized:
			h.Set("WWW-Authenticate", `Bearer error="invalid_token"`)
			if code == "missing_key" {
				h.Set("WWW-Authenticate", "Bearer")
			}
		case http.StatusForbidden:
			if code == "insufficient_scope" {
				h.Set("WWW-Authenticate", `Bearer error="insufficient_scope", scope="`+strings.Join(c.scopes, " ")+`"`)
			}
		}
	}
	h.Set("Content-Type", "application/problem+json")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false) // a problem is JSON, never HTML: "<key>" reads as written
	_ = enc.Encode(keymint.Problem{Type: "urn:keymint:problem:" + code, Title: http.StatusText(status),
		Status: status, Detail: detail, Code: code})
}
