// Package portal is keymint's web portal: server-rendered pages under /ui/
// over the same service the API calls. A person signs in with a management
// credential or the root token once; the portal then acts as that credential,
// and every rule of the service applies unchanged.
//
// Sessions live in the store (any replica serves them) by the SHA-256 of a
// random cookie id. A session keeps no token: only which credential signed
// in and its generation, and the service checks the credential again on
// every request, so revoking, disabling or rotating it ends its sessions at
// once.
package portal

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"embed"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/keymint/terraform-provider-keymint/internal/api"
	"github.com/keymint/terraform-provider-keymint/internal/keyformat"
	"github.com/keymint/terraform-provider-keymint/internal/service"
	"github.com/keymint/terraform-provider-keymint/internal/store"
	"github.com/keymint/terraform-provider-keymint/internal/wire"
)

// Prefix is where the portal is mounted.
const Prefix = "/ui/"

// Defaults for Config's timeouts.
const (
	DefaultIdleTimeout     = 30 * time.Minute
	DefaultAbsoluteTimeout = 12 * time.Hour
)

// cookieName holds the session's random id; its path is Prefix.
const cookieName = "keymint_session"

// touchEvery: a session's idle deadline is moved at most this often, so
// browsing does not write to the store on every page.
const touchEvery = time.Minute

// Config configures the portal.
type Config struct {
	Service *service.Service
	// Sessions stores the sessions (the server's store).
	Sessions store.Store
	Logger   *slog.Logger
	// Clock is the time (time.Now if nil); tests inject one.
	Clock func() time.Time
	// IdleTimeout ends a session not used for this long; AbsoluteTimeout ends
	// every session this long after sign-in.
	IdleTimeout, AbsoluteTimeout time.Duration
	// Throttle, if set, counts failed sign-ins against the client's
	// allowance of failed authentications (the API's): past it, a failed
	// sign-in is 429.
	Throttle interface {
		AuthFailed(*http.Request) (retryAfter time.Duration, throttled bool)
	}
}

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

type portal struct {
	Config
	pages map[string]*template.Template
}

// New returns the portal's handler, to be mounted at Prefix.
func New(cfg Config) http.Handler {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Clock == nil {
		cfg.Clock = time.Now
	}
	if cfg.IdleTimeout <= 0 {
		cfg.IdleTimeout = DefaultIdleTimeout
	}
	if cfg.AbsoluteTimeout <= 0 {
		cfg.AbsoluteTimeout = DefaultAbsoluteTimeout
	}
	p := &portal{Config: cfg, pages: parseTemplates()}
	mux := http.NewServeMux()
	static, _ := fs.Sub(staticFS, "static")
	files := http.StripPrefix("/ui/static/", http.FileServerFS(static))
	mux.Handle("GET /ui/static/{file}", files) // files only: no directory listing
	// Mount sends / here, so the redirect is logged and has a request id.
	mux.Handle("GET /{$}", http.RedirectHandler(Prefix, http.StatusSeeOther))
	mux.HandleFunc("GET /ui/{$}", p.home)
	mux.HandleFunc("GET /ui/signin", p.signInPage)
	mux.HandleFunc("POST /ui/signin", p.signIn)
	for _, rt := range p.routes() {
		mux.Handle(rt.pattern, p.session(rt.handle))
	}
	mux.HandleFunc("/ui/", func(w http.ResponseWriter, r *http.Request) {
		p.render(w, r, http.StatusNotFound, "error", &page{Title: "Not found", Data: errorData{Message: "There is no page here. Use the menu to find your way."}})
	})
	cop := http.NewCrossOriginProtection()
	cop.SetDenyHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p.render(w, r, http.StatusForbidden, "error", &page{Title: "Refused", Data: errorData{
			Message: "This request came from another site, so it was refused. Open the portal itself and try again."}})
	}))
	return p.logRequests(securityHeaders(cop.Handler(mux)))
}

// securityHeaders sets what every response carries: a strict policy (no
// inline script or style, no framing, forms post only here), no referrer,
// and no caching, above all of the pages that show a secret.
func securityHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "+
			"form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("Cache-Control", "no-store")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("X-Frame-Options", "DENY")
		next.ServeHTTP(w, r)
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

type callerKey struct{}

// logRequests writes one line per request, as the API does: never a body,
// a header or a query (a form's values), and the path with anything that
// parses as a key cut to its start.
func (p *portal) logRequests(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		rec := &statusRecorder{ResponseWriter: w, status: http.StatusOK}
		caller := new(string)
		id := api.NewRequestID() // the id of the events this request writes
		w.Header().Set(wire.RequestIDHeader, id)
		ctx := service.WithRequest(context.WithValue(r.Context(), callerKey{}, caller), service.RequestID(id))
		next.ServeHTTP(rec, r.WithContext(ctx))
		p.Logger.LogAttrs(r.Context(), slog.LevelInfo, "request", slog.String("method", r.Method),
			slog.String("path", keyformat.Redact(r.URL.Path)), slog.Int("status", rec.status),
			slog.Duration("duration", time.Since(start)), slog.String("caller", *caller), slog.String("request_id", id), slog.String("via", "portal"))
	})
}

// ---- sessions

type route struct {
	pattern string
	handle  handler
}

// handler serves a signed-in request as sess's principal.
type handler func(w http.ResponseWriter, r *http.Request, s *signedIn) error

// signedIn is the request's session and the principal it acts as.
type signedIn struct {
	p    *service.Principal
	id   string // the cookie's random id
	csrf string
}

func (s *signedIn) can(scope string) bool { return service.Require(s.p, scope) == nil }

func newID() string {
	var b [32]byte
	rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}

func hashID(id string) []byte {
	h := sha256.Sum256([]byte(id))
	return h[:]
}

// csrfToken is derived from the session's id, which only the browser's
// HttpOnly cookie and this server know: a form from elsewhere cannot carry it.
func csrfToken(id string) string {
	m := hmac.New(sha256.New, []byte(id))
	m.Write([]byte("keymint portal csrf"))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

func (p *portal) setCookie(w http.ResponseWriter, r *http.Request, value string, maxAge int) {
	http.SetCookie(w, &http.Cookie{Name: cookieName, Value: value, Path: Prefix, MaxAge: maxAge,
		HttpOnly: true, Secure: r.TLS != nil, SameSite: http.SameSiteStrictMode})
}

var errNoSession = errors.New("no session")

// resume finds the request's session and checks it and its credential again.
func (p *portal) resume(r *http.Request) (*signedIn, error) {
	c, err := r.Cookie(cookieName)
	if err != nil || c.Value == "" {
		return nil, errNoSession
	}
	hash := hashID(c.Value)
	sess, err := p.Sessions.GetSession(r.Context(), hash)
	if errors.Is(err, store.ErrNotFound) {
		return nil, errNoSession
	}
	if err != nil {
		return nil, err
	}
	now := p.Clock()
	if !now.Before(sess.IdleUntil) || !now.Before(sess.ExpiresAt) {
		_ = p.Sessions.DeleteSession(r.Context(), hash)
		return nil, errNoSession
	}
	pr, err := p.Service.Resume(r.Context(), service.Credential{ID: sess.Credential, Generation: sess.Generation})
	if err != nil {
		var e *service.Error
		if errors.As(err, &e) && e.Kind == service.Unauthenticated {
			_ = p.Sessions.DeleteSession(r.Context(), hash)
			return nil, errNoSession
		}
		return nil, err
	}
	if idle := now.Add(p.IdleTimeout); idle.Sub(sess.IdleUntil) >= touchEvery {
		if idle.After(sess.ExpiresAt) {
			idle = sess.ExpiresAt
		}
		if err := p.Sessions.TouchSession(r.Context(), hash, idle); err != nil && !errors.Is(err, store.ErrNotFound) {
			return nil, err
		}
	}
	return &signedIn{p: pr, id: c.Value, csrf: csrfToken(c.Value)}, nil
}

// session serves h to a signed-in request; a POST must carry the session's
// CSRF token. Without a session, a GET goes to the sign-in page.
func (p *portal) session(h handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s, err := p.resume(r)
		if errors.Is(err, errNoSession) {
			p.setCookie(w, r, "", -1)
			if r.Method == http.MethodGet {
				http.Redirect(w, r, "/ui/signin", http.StatusSeeOther)
				return
			}
			p.render(w, r, http.StatusUnauthorized, "signin", &page{Title: "Sign in", Data: signInData{
				Message: "Your session has ended (signed out, timed out, or its credential was revoked, disabled or rotated). Sign in again; nothing was changed."}})
			return
		}
		if err != nil {
			p.fail(w, r, nil, err)
			return
		}
		if caller, ok := r.Context().Value(callerKey{}).(*string); ok {
			*caller = s.p.ID
		}
		if r.Method == http.MethodPost {
			r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
			if !hmac.Equal([]byte(r.PostFormValue("csrf")), []byte(s.csrf)) {
				p.render(w, r, http.StatusForbidden, "error", &page{s: s, Title: "Refused", Data: errorData{
					Message: "This form was missing its security token (or the page was too old), so nothing was done. Go back, reload the page and try again."}})
				return
			}
		}
		if err := h(w, r, s); err != nil {
			p.fail(w, r, s, err)
		}
	})
}

func (p *portal) home(w http.ResponseWriter, r *http.Request) {
	if _, err := p.resume(r); err == nil {
		http.Redirect(w, r, "/ui/apps", http.StatusSeeOther)
		return
	}
	http.Redirect(w, r, "/ui/signin", http.StatusSeeOther)
}

type signInData struct{ Message string }

func (p *portal) signInPage(w http.ResponseWriter, r *http.Request) {
	if _, err := p.resume(r); err == nil {
		http.Redirect(w, r, "/ui/apps", http.StatusSeeOther)
		return
	}
	p.render(w, r, http.StatusOK, "signin", &page{Title: "Sign in"})
}

// signIn takes the token from the form body, once: it is checked, and the
// session keeps only what names the credential (service.Credential).
func (p *portal) signIn(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 16<<10)
	token := strings.TrimSpace(r.PostFormValue("token"))
	pr, cred, err := p.Service.SignIn(r.Context(), token)
	if err != nil {
		var e *service.Error
		if errors.As(err, &e) && e.Kind == service.Unauthenticated {
			if p.Throttle != nil {
				if wait, throttled := p.Throttle.AuthFailed(r); throttled {
					secs := int((wait + time.Second - 1) / time.Second)
					w.Header().Set("Retry-After", strconv.Itoa(secs))
					p.render(w, r, http.StatusTooManyRequests, "signin", &page{Title: "Sign in", Data: signInData{
						Message: fmt.Sprintf("Too many failed sign-ins and API calls with a bad token from this address. Wait %d seconds, then paste the whole token again.", secs)}})
					return
				}
			}
			p.render(w, r, http.StatusUnauthorized, "signin", &page{Title: "Sign in", Data: signInData{
				Message: "That token is not a valid keymint management credential (unknown, revoked, expired or disabled). Paste the whole token: the root token, or a credential's secret."}})
			return
		}
		p.fail(w, r, nil, err)
		return
	}
	now := p.Clock().UTC()
	expires := now.Add(p.AbsoluteTimeout)
	if cred.Until != nil && cred.Until.Before(expires) {
		expires = *cred.Until // a rotated-out secret in its grace period: no longer than it
	}
	idle := now.Add(p.IdleTimeout)
	if idle.After(expires) {
		idle = expires
	}
	id := newID()
	if err := p.Sessions.CreateSession(r.Context(), store.Session{Hash: hashID(id), Credential: cred.ID, Generation: cred.Generation,
		CreatedAt: now, ExpiresAt: expires, IdleUntil: idle}); err != nil {
		p.fail(w, r, nil, err)
		return
	}
	if caller, ok := r.Context().Value(callerKey{}).(*string); ok {
		*caller = pr.ID
	}
	p.setCookie(w, r, id, 0)
	http.Redirect(w, r, "/ui/apps", http.StatusSeeOther)
}

func (p *portal) signOut(w http.ResponseWriter, r *http.Request, s *signedIn) error {
	if err := p.Sessions.DeleteSession(r.Context(), hashID(s.id)); err != nil {
		return err
	}
	p.setCookie(w, r, "", -1)
	p.render(w, r, http.StatusOK, "signin", &page{Title: "Sign in", Data: signInData{Message: "You are signed out."}})
	return nil
}

// signOutEverywhere ends every session of the signed-in credential.
func (p *portal) signOutEverywhere(w http.ResponseWriter, r *http.Request, s *signedIn) error {
	if _, err := p.Sessions.DeleteSessionsOf(r.Context(), s.p.ID); err != nil {
		return err
	}
	p.setCookie(w, r, "", -1)
	p.render(w, r, http.StatusOK, "signin", &page{Title: "Sign in", Data: signInData{Message: "Every session of this credential is signed out."}})
	return nil
}

// ---- rendering

// page is what every template gets.
type page struct {
	s     *signedIn
	Title string
	Nav   string // the menu entry to mark
	Data  any
}

func (pg *page) SignedIn() bool { return pg.s != nil }
func (pg *page) Caller() string {
	if pg.s == nil {
		return ""
	}
	return pg.s.p.ID
}
func (pg *page) CSRF() string { return pg.s.csrf }

// Can reports whether the signed-in credential holds scope: buttons it
// cannot use are not shown (the service refuses them anyway).
func (pg *page) Can(scope string) bool { return pg.s != nil && pg.s.can(scope) }

// Scopes and ConfinedTo describe the signed-in credential.
func (pg *page) Scopes() []string     { return pg.s.p.Scopes }
func (pg *page) ConfinedTo() []string { return pg.s.p.ConfineTo }

type errorData struct {
	Message string
	Code    string
	Fields  []string
	KeyIDs  []string
}

func (p *portal) render(w http.ResponseWriter, r *http.Request, status int, name string, pg *page) {
	t, ok := p.pages[name]
	if !ok {
		panic("portal: no template " + name)
	}
	var b strings.Builder
	if err := t.ExecuteTemplate(&b, "layout", pg); err != nil {
		p.Logger.ErrorContext(r.Context(), "rendering a portal page", "page", name, "err", err)
		http.Error(w, "internal error rendering the page", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write([]byte(b.String()))
}

// fail renders a service error as a page that says what was wrong, with
// the status the API would give.
func (p *portal) fail(w http.ResponseWriter, r *http.Request, s *signedIn, err error) {
	var e *service.Error
	if !errors.As(err, &e) {
		p.Logger.ErrorContext(r.Context(), "portal request failed", "path", keyformat.Redact(r.URL.Path), "err", err)
		p.render(w, r, http.StatusInternalServerError, "error", &page{s: s, Title: "Something went wrong",
			Data: errorData{Message: "The server could not do this. Try again; if it keeps failing, the server's log says why."}})
		return
	}
	title := map[service.Kind]string{service.Forbidden: "Not allowed", service.NotFound: "Not found", service.Conflict: "Not possible now",
		service.Invalid: "Please correct the form", service.BadRequest: "Bad request"}[e.Kind]
	if title == "" {
		title = "Refused"
	}
	d := errorData{Message: e.Message, Code: e.Code, KeyIDs: e.KeyIDs}
	for _, f := range e.Fields {
		d.Fields = append(d.Fields, f.Field+": "+f.Message)
	}
	p.render(w, r, api.StatusOf(e.Kind), "error", &page{s: s, Title: title, Data: d})
}

var funcs = template.FuncMap{
	"join": func(s []string) string { return strings.Join(s, ", ") },
	"has":  func(s []string, v string) bool { return slices.Contains(s, v) },
	// changes lists an event's changes as "field: value" lines, sorted.
	"changes": func(m map[string]any) []string {
		out := make([]string, 0, len(m))
		for k, v := range m {
			b, _ := json.Marshal(v)
			out = append(out, k+": "+string(b))
		}
		slices.Sort(out)
		return out
	},
	"time": func(t any) string {
		switch v := t.(type) {
		case time.Time:
			return v.UTC().Format("2006-01-02 15:04 UTC")
		case *time.Time:
			if v == nil {
				return ""
			}
			return v.UTC().Format("2006-01-02 15:04 UTC")
		}
		return ""
	},
}

func parseTemplates() map[string]*template.Template {
	layout := template.Must(template.New("layout").Funcs(funcs).ParseFS(templateFS, "templates/layout.html"))
	names, err := fs.Glob(templateFS, "templates/*.html")
	if err != nil {
		panic(err)
	}
	out := map[string]*template.Template{}
	for _, n := range names {
		name := strings.TrimSuffix(strings.TrimPrefix(n, "templates/"), ".html")
		if name == "layout" {
			continue
		}
		out[name] = template.Must(template.Must(layout.Clone()).ParseFS(templateFS, n))
	}
	return out
}

// Mount serves the portal under Prefix beside the API: / redirects to the
// portal, everything else is the API's.
func Mount(apiHandler, portal http.Handler) http.Handler {
	mux := http.NewServeMux()
	mux.Handle(Prefix, portal)
	mux.Handle("GET /{$}", portal) // the portal redirects it to Prefix
	mux.Handle("/", apiHandler)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// The mux would send a verify to the API too: the hot path skips
		// its routing (about 2% of a verify's CPU).
		if r.URL.Path == "/v1/verify" {
			apiHandler.ServeHTTP(w, r)
			return
		}
		mux.ServeHTTP(w, r)
	})
}
