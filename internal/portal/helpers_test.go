package portal_test

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keymint/terraform-provider-keymint/internal/api"
	"github.com/keymint/terraform-provider-keymint/internal/clock"
	"github.com/keymint/terraform-provider-keymint/internal/keyformat"
	"github.com/keymint/terraform-provider-keymint/internal/portal"
	"github.com/keymint/terraform-provider-keymint/internal/server"
	"github.com/keymint/terraform-provider-keymint/internal/service"
	"github.com/keymint/terraform-provider-keymint/internal/store"
	"github.com/keymint/terraform-provider-keymint/internal/wire"
)

const rootToken = "test-root-token-for-the-portal"

// env is a real server: SQLite behind the verify cache, as keymint serve
// runs it, the API and the portal mounted as keymint serve mounts them.
type env struct {
	t     testing.TB
	store store.Store
	svc   *service.Service
	clock *clock.Fake
	http  *httptest.Server
	logs  *syncBuffer
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

const idle, maxAge = 30 * time.Minute, 2 * time.Hour

func newEnv(t testing.TB) *env {
	t.Helper()
	// As keymint serve runs SQLite: with the verify cache.
	opened, err := server.OpenStore(context.Background(), server.Database{Path: filepath.Join(t.TempDir(), "keymint.db")}, server.StoreOptions{CacheSize: 1000})
	if err != nil {
		t.Fatal(err)
	}
	st := opened.Store
	t.Cleanup(func() { st.Close() })
	c := clock.NewFake(time.Date(2030, 6, 1, 12, 0, 0, 0, time.UTC))
	logs := &syncBuffer{}
	log := slog.New(slog.NewTextHandler(logs, nil))
	svc := service.New(service.Config{Store: st, RootTokenHash: keyformat.Hash(rootToken), Now: c.Now, Logger: log})
	if err := svc.Bootstrap(context.Background()); err != nil {
		t.Fatal(err)
	}
	apiSrv := api.New(svc, log, nil)
	apiSrv.Now = c.Now
	ui := portal.New(portal.Config{Service: svc, Sessions: st, Logger: log, Clock: c.Now, IdleTimeout: idle, AbsoluteTimeout: maxAge, Throttle: apiSrv})
	hs := httptest.NewServer(portal.Mount(apiSrv, ui))
	t.Cleanup(hs.Close)
	return &env{t: t, store: st, svc: svc, clock: c, http: hs, logs: logs}
}

// credential mints a management credential as root and returns its secret.
func (e *env) credential(scopes []string, confine ...string) (string, string) {
	e.t.Helper()
	out, _, err := e.svc.CreateKey(context.Background(), service.Root(), wire.ManagementApp,
		wire.CreateKey{Name: "ops " + strings.Join(scopes, " "), Scopes: scopes, Resources: confine}, "")
	if err != nil {
		e.t.Fatal(err)
	}
	return out.Key.ID, out.Secret
}

func (e *env) app(slug string, scopes ...string) {
	e.t.Helper()
	if _, _, err := e.svc.CreateApp(context.Background(), service.Root(), wire.CreateApp{Slug: slug, Name: "App " + slug,
		Scopes: scopes, KeyPrefix: strings.ReplaceAll(slug, "-", "_") + "_live"}, ""); err != nil {
		e.t.Fatal(err)
	}
}

func (e *env) key(app string, scopes ...string) wire.KeyWithSecret {
	e.t.Helper()
	out, _, err := e.svc.CreateKey(context.Background(), service.Root(), app, wire.CreateKey{Name: "k-" + app, Scopes: scopes}, "")
	if err != nil {
		e.t.Fatal(err)
	}
	return out
}

func (e *env) verify(secret string) string {
	e.t.Helper()
	v, err := e.svc.Verify(context.Background(), service.Root(), &wire.VerifyRequest{Key: secret})
	if err != nil {
		e.t.Fatal(err)
	}
	return v.Code
}

// browser is a client that keeps cookies, does not follow redirects, and
// sends what a browser sends on a same-origin form post.
type browser struct {
	e    *env
	c    *http.Client
	csrf string
}

func (e *env) browser() *browser {
	jar, _ := cookiejar.New(nil)
	return &browser{e: e, c: &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

type page struct {
	status int
	header http.Header
	body   string
}

var csrfField = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

func (b *browser) do(req *http.Request) page {
	b.e.t.Helper()
	res, err := b.c.Do(req)
	if err != nil {
		b.e.t.Fatal(err)
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	if m := csrfField.FindStringSubmatch(string(body)); m != nil {
		b.csrf = m[1]
	}
	return page{status: res.StatusCode, header: res.Header, body: string(body)}
}

func (b *browser) get(path string) page {
	b.e.t.Helper()
	req, _ := http.NewRequest(http.MethodGet, b.e.http.URL+path, nil)
	return b.do(req)
}

// post sends a form with the page's CSRF token, from the portal's origin.
func (b *browser) post(path string, form url.Values) page {
	b.e.t.Helper()
	if form == nil {
		form = url.Values{}
	}
	if _, ok := form["csrf"]; !ok {
		form.Set("csrf", b.csrf)
	}
	return b.postRaw(path, form, map[string]string{"Origin": b.e.http.URL, "Sec-Fetch-Site": "same-origin"})
}

func (b *browser) postRaw(path string, form url.Values, headers map[string]string) page {
	b.e.t.Helper()
	req, _ := http.NewRequest(http.MethodPost, b.e.http.URL+path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	return b.do(req)
}

func (b *browser) signIn(token string) {
	b.e.t.Helper()
	b.get("/ui/signin")
	if p := b.post("/ui/signin", url.Values{"token": {token}}); p.status != http.StatusSeeOther || p.header.Get("Location") != "/ui/apps" {
		b.e.t.Fatalf("sign-in: %d %s", p.status, p.body)
	}
	b.get("/ui/apps") // picks up the session's CSRF token
}

func (b *browser) cookie() *http.Cookie {
	u, _ := url.Parse(b.e.http.URL + "/ui/")
	for _, c := range b.c.Jar.Cookies(u) {
		if c.Name == "keymint_session" {
			return c
		}
	}
	return nil
}

func want(t testing.TB, p page, status int, contains ...string) {
	t.Helper()
	if p.status != status {
		t.Fatalf("status %d, want %d; body:\n%s", p.status, status, p.body)
	}
	for _, c := range contains {
		if !strings.Contains(p.body, c) {
			t.Fatalf("page lacks %q:\n%s", c, p.body)
		}
	}
}

func wantNot(t testing.TB, p page, absent ...string) {
	t.Helper()
	for _, c := range absent {
		if strings.Contains(p.body, c) {
			t.Fatalf("page has %q:\n%s", c, p.body)
		}
	}
}

var secretField = regexp.MustCompile(`<textarea id="secret" readonly[^>]*>([^<]+)</textarea>`)

// secretOf is the secret a create or rotate page shows.
func secretOf(t testing.TB, p page) string {
	t.Helper()
	m := secretField.FindStringSubmatch(p.body)
	if m == nil {
		t.Fatalf("no secret on the page (%d):\n%s", p.status, p.body)
	}
	return m[1]
}

func rootPrincipal() *service.Principal { return service.Root() }

// newLocalServer serves h on another loopback origin, for a forged form.
func newLocalServer(t testing.TB, h http.Handler) string {
	s := httptest.NewServer(h)
	t.Cleanup(s.Close)
	return s.URL
}
