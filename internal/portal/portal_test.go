package portal_test

import (
	"context"
	"crypto/sha256"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/keymint/terraform-provider-keymint/internal/service"
	"github.com/keymint/terraform-provider-keymint/internal/wire"
)

func wantHeaders(t *testing.T, path string, p page) {
	t.Helper()
	for h, v := range map[string]string{
		"Content-Security-Policy": "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
		"Referrer-Policy":         "no-referrer",
		"Cache-Control":           "no-store",
		"X-Content-Type-Options":  "nosniff",
	} {
		if got := p.header.Get(h); got != v {
			t.Errorf("%s: %s = %q, want %q", path, h, got, v)
		}
	}
}

// Every page and asset, signed in or not, carries the security headers, and
// every signed-in page answers 200.
func TestPagesAndHeaders(t *testing.T) {
	e := newEnv(t)
	e.app("acme", "read", "write")
	k := e.key("acme", "read")
	b := e.browser()
	for _, path := range []string{"/ui/signin", "/ui/static/portal.css", "/ui/static/copy.js", "/ui/static/favicon.svg"} {
		p := b.get(path)
		want(t, p, http.StatusOK)
		wantHeaders(t, path, p)
	}
	wantHeaders(t, "/ui/nope", b.get("/ui/nope"))
	if p := b.get("/ui/static/"); p.status == http.StatusOK {
		t.Fatalf("the static directory is listed: %s", p.body)
	}
	b.signIn(rootToken)
	for _, path := range []string{"/ui/apps", "/ui/apps?q=ac", "/ui/apps/new", "/ui/apps/acme", "/ui/apps/acme/edit", "/ui/apps/acme/delete",
		"/ui/apps/acme/keys/new", "/ui/credentials", "/ui/credentials/new", "/ui/keys/" + k.Key.ID, "/ui/keys/" + k.Key.ID + "/rotate",
		"/ui/keys/" + k.Key.ID + "/revoke", "/ui/find", "/ui/events", "/ui/events?app=acme&action=key.create", "/ui/verify",
		"/ui/apps/acme?status=active&owner=x&expiring_days=30&unused_days=90"} {
		p := b.get(path)
		want(t, p, http.StatusOK, "<h1>")
		wantHeaders(t, path, p)
		if strings.Contains(p.body, "<script>") || strings.Contains(p.body, "style=") {
			t.Errorf("%s has inline script or style", path)
		}
	}
	want(t, b.get("/ui/nope"), http.StatusNotFound)
	want(t, b.get("/ui/apps/none"), http.StatusNotFound, "does not exist")
	want(t, b.get("/ui/apps/acme?expiring_days=x"), http.StatusBadRequest, "days must be")
}

func TestRootRedirects(t *testing.T) {
	e := newEnv(t)
	b := e.browser()
	p := b.get("/")
	if p.status != http.StatusSeeOther || p.header.Get("Location") != "/ui/" {
		t.Fatalf("/ answers %d to %q", p.status, p.header.Get("Location"))
	}
	// Like every other answer: a request id, and a line in the log.
	id := p.header.Get(wire.RequestIDHeader)
	if id == "" || !strings.Contains(e.logs.String(), "path=/ status=303") || !strings.Contains(e.logs.String(), id) {
		t.Fatalf("/ answered without a request id (%q) or a log line:\n%s", id, e.logs.String())
	}
	if p := b.get("/ui/"); p.header.Get("Location") != "/ui/signin" {
		t.Fatalf("/ui/ without a session goes to %q", p.header.Get("Location"))
	}
	if p := b.get("/ui/apps"); p.status != http.StatusSeeOther || p.header.Get("Location") != "/ui/signin" {
		t.Fatalf("a page without a session: %d to %q", p.status, p.header.Get("Location"))
	}
	if p := b.get("/v1/whoami"); p.status != http.StatusUnauthorized {
		t.Fatalf("the API moved: %d", p.status)
	}
}

func TestSignIn(t *testing.T) {
	e := newEnv(t)
	b := e.browser()
	b.get("/ui/signin")
	p := b.post("/ui/signin", url.Values{"token": {"not-a-token"}})
	want(t, p, http.StatusUnauthorized, "not a valid keymint management credential")
	if b.cookie() != nil {
		t.Fatal("a failed sign-in set a cookie")
	}
	p = b.post("/ui/signin", url.Values{"token": {rootToken}})
	if p.status != http.StatusSeeOther {
		t.Fatalf("sign-in: %d %s", p.status, p.body)
	}
	var set *http.Cookie
	for _, c := range (&http.Response{Header: p.header}).Cookies() {
		set = c
	}
	if set == nil || !set.HttpOnly || set.SameSite != http.SameSiteStrictMode || set.Path != "/ui/" || set.Secure || len(set.Value) != 43 {
		t.Fatalf("session cookie %+v", set)
	}
	// The store keeps the id's hash, and no token.
	h := sha256.Sum256([]byte(set.Value))
	sess, err := e.store.GetSession(context.Background(), h[:])
	if err != nil || sess.Credential != service.RootID || strings.Contains(sess.Generation, rootToken) {
		t.Fatalf("stored session %+v, %v", sess, err)
	}
	if _, err := e.store.GetSession(context.Background(), []byte(set.Value)); err == nil {
		t.Fatal("the session is found by its raw id")
	}
	// The token is on no page and in no log line.
	for _, path := range []string{"/ui/apps", "/ui/credentials", "/ui/events"} {
		wantNot(t, b.get(path), rootToken)
	}
	if strings.Contains(e.logs.String(), rootToken) || !strings.Contains(e.logs.String(), "caller=root") {
		t.Fatalf("logs:\n%s", e.logs.String())
	}
}

// A state-changing request needs the session's CSRF token and the portal's
// origin; anything else is refused and changes nothing.
func TestCSRFAndCrossOrigin(t *testing.T) {
	e := newEnv(t)
	b := e.browser()
	b.signIn(rootToken)
	form := func(csrf string) url.Values {
		return url.Values{"csrf": {csrf}, "slug": {"evil"}, "name": {"Evil"}, "scopes": {"read"}, "key_prefix": {"evil_live"}}
	}
	same := map[string]string{"Origin": e.http.URL, "Sec-Fetch-Site": "same-origin"}
	want(t, b.postRaw("/ui/apps/new", form(""), same), http.StatusForbidden, "security token")
	want(t, b.postRaw("/ui/apps/new", form("forged"), same), http.StatusForbidden, "security token")
	want(t, b.postRaw("/ui/apps/new", form(b.csrf), map[string]string{"Origin": "http://evil.invalid"}), http.StatusForbidden, "another site")
	want(t, b.postRaw("/ui/apps/new", form(b.csrf), map[string]string{"Sec-Fetch-Site": "cross-site"}), http.StatusForbidden, "another site")
	want(t, b.postRaw("/ui/signin", url.Values{"token": {rootToken}}, map[string]string{"Sec-Fetch-Site": "cross-site"}), http.StatusForbidden)
	// A token from another session does not do either.
	other := e.browser()
	other.signIn(rootToken)
	want(t, b.postRaw("/ui/apps/new", form(other.csrf), same), http.StatusForbidden)
	if _, err := e.store.GetApp(context.Background(), "evil"); err == nil {
		t.Fatal("a refused request created the app")
	}
	p := b.postRaw("/ui/apps/new", form(b.csrf), same)
	if p.status != http.StatusSeeOther {
		t.Fatalf("the real form: %d %s", p.status, p.body)
	}
}

func TestApps(t *testing.T) {
	e := newEnv(t)
	b := e.browser()
	b.signIn(rootToken)
	b.get("/ui/apps/new")
	p := b.post("/ui/apps/new", url.Values{"slug": {"Bad Slug"}, "name": {"x"}, "scopes": {"read"}, "key_prefix": {"x"}})
	want(t, p, http.StatusUnprocessableEntity, "Nothing was saved", "slug", `value="Bad Slug"`)
	p = b.post("/ui/apps/new", url.Values{"slug": {"acme"}, "name": {"Acme API"}, "scopes": {"read:data write:data"}, "key_prefix": {"acme_live"},
		"rate_requests": {"100"}, "rate_window": {"1m"}})
	if p.status != http.StatusSeeOther || p.header.Get("Location") != "/ui/apps/acme" {
		t.Fatalf("create: %d %s", p.status, p.body)
	}
	want(t, b.get("/ui/apps"), http.StatusOK, "Acme API", "100 per 1m")
	want(t, b.post("/ui/apps/new", url.Values{"slug": {"acme"}, "name": {"Again"}, "scopes": {"read"}, "key_prefix": {"other_live"}}),
		http.StatusConflict, "Nothing was saved", `value="Again"`)
	want(t, b.get("/ui/apps?q=ACME"), http.StatusOK, "Acme API")
	wantNot(t, b.get("/ui/apps?q=zzz"), "Acme API")
	wantNot(t, b.get("/ui/apps"), `href="/ui/apps/keymint"`)
	b.get("/ui/apps/acme/edit")
	p = b.post("/ui/apps/acme/edit", url.Values{"name": {"Acme public API"}, "description": {"d"}, "scopes": {"read:data write:data admin"}})
	if p.status != http.StatusSeeOther {
		t.Fatalf("edit: %d %s", p.status, p.body)
	}
	a, _ := e.svc.GetApp(context.Background(), service.Root(), "acme")
	if a.Name != "Acme public API" || len(a.Scopes) != 3 || a.RateLimit != nil {
		t.Fatalf("edited app %+v", a)
	}
	// Delete: typed confirmation; live keys refuse with the reason unless forced.
	k := e.key("acme", "read:data")
	b.get("/ui/apps/acme/delete")
	want(t, b.post("/ui/apps/acme/delete", url.Values{"confirm": {"acm"}}), http.StatusUnprocessableEntity, "Type the app&#39;s slug")
	want(t, b.post("/ui/apps/acme/delete", url.Values{"confirm": {"acme"}}), http.StatusConflict, "live keys", k.Key.ID)
	p = b.post("/ui/apps/acme/delete", url.Values{"confirm": {"acme"}, "force": {"on"}})
	if p.status != http.StatusSeeOther {
		t.Fatalf("forced delete: %d %s", p.status, p.body)
	}
	if e.verify(k.Secret) != wire.CodeNotFound {
		t.Fatal("a key of the deleted app still verifies")
	}
}

var onceField = regexp.MustCompile(`name="once" value="([^"]+)"`)

func TestKeyLifecycle(t *testing.T) {
	e := newEnv(t)
	e.app("acme", "read", "write")
	b := e.browser()
	b.signIn(rootToken)
	form := b.get("/ui/apps/acme/keys/new")
	want(t, form, http.StatusOK, `value="read"`, `value="write"`)
	once := onceField.FindStringSubmatch(form.body)[1]
	create := url.Values{"name": {"ingest"}, "scopes": {"read", "write"}, "resources": {"vault-1 vault-2"},
		"owner": {"data-team"}, "metadata": {"cost=12\nteam=x"}, "expiry": {"30d"}, "once": {once}}
	p := b.post("/ui/apps/acme/keys/new", create)
	want(t, p, http.StatusOK, "only time this secret is shown")
	secret := secretOf(t, p)
	// Sending the form again (a reload) shows no secret and makes no key.
	create.Set("csrf", b.csrf)
	again := b.post("/ui/apps/acme/keys/new", create)
	if again.status != http.StatusSeeOther || !strings.HasSuffix(again.header.Get("Location"), "?shown=1") {
		t.Fatalf("the form sent again: %d %s", again.status, again.body)
	}
	want(t, b.get(again.header.Get("Location")), http.StatusOK, "is not shown again")
	if p.header.Get("Cache-Control") != "no-store" || e.verify(secret) != wire.CodeValid {
		t.Fatalf("secret page: %v, verdict %s", p.header, e.verify(secret))
	}
	keys, _ := e.svc.ListKeys(context.Background(), service.Root(), "acme", service.KeyQuery{})
	if len(keys.Keys) != 1 {
		t.Fatalf("%d keys after a form sent twice", len(keys.Keys))
	}
	k := keys.Keys[0]
	if k.Owner != "data-team" || len(k.Resources) != 2 || k.Metadata["cost"] != "12" || k.ExpiresAt == nil ||
		!k.ExpiresAt.Equal(e.clock.Now().Add(30*24*time.Hour)) {
		t.Fatalf("created %+v", k)
	}
	// The secret is on no page after that one.
	for _, path := range []string{"/ui/apps/acme", "/ui/keys/" + k.ID, "/ui/events"} {
		p := b.get(path)
		want(t, p, http.StatusOK, k.Start)
		wantNot(t, p, secret)
	}
	want(t, b.post("/ui/apps/acme/keys/new", url.Values{"name": {"x"}, "scopes": {"admin"}}), http.StatusUnprocessableEntity, "not among app")
	want(t, b.post("/ui/apps/acme/keys/new", url.Values{"name": {"x"}, "scopes": {"read"}, "metadata": {"novalue"}}), http.StatusUnprocessableEntity, "not key=value")

	// Filters and paging to the end.
	want(t, b.get("/ui/apps/acme?owner=data-team"), http.StatusOK, "ingest")
	wantNot(t, b.get("/ui/apps/acme?owner=other"), "ingest")
	want(t, b.get("/ui/apps/acme?expiring_days=31"), http.StatusOK, "ingest")
	wantNot(t, b.get("/ui/apps/acme?expiring_days=29"), "ingest")
	wantNot(t, b.get("/ui/apps/acme?unused_days=1"), "ingest")
	e.clock.Advance(48 * time.Hour)
	b.signIn(rootToken) // the idle timeout passed
	want(t, b.get("/ui/apps/acme?unused_days=1"), http.StatusOK, "ingest")
	for range 60 {
		e.key("acme", "read")
	}
	p = b.get("/ui/apps/acme")
	if n := strings.Count(p.body, `href="/ui/keys/`); n != 50 || !strings.Contains(p.body, `rel="next"`) {
		t.Fatalf("first page: %d keys", n)
	}
	next := p.body[strings.Index(p.body, `<a href="?`)+len(`<a href="?`):]
	next = strings.ReplaceAll(next[:strings.Index(next, `"`)], "&amp;", "&")
	p = b.get("/ui/apps/acme?" + next)
	if n := strings.Count(p.body, `href="/ui/keys/`); n != 11 || strings.Contains(p.body, `rel="next"`) {
		t.Fatalf("last page: %d keys", n)
	}

	// Edit, disable, enable.
	b.get("/ui/keys/" + k.ID)
	if p := b.post("/ui/keys/"+k.ID+"/edit", url.Values{"name": {"ingest-2"}, "metadata": {"team=y"}}); p.status != http.StatusSeeOther {
		t.Fatalf("edit: %d %s", p.status, p.body)
	}
	b.post("/ui/keys/"+k.ID+"/disable", nil)
	if e.verify(secret) != wire.CodeDisabled {
		t.Fatal("disable did not take")
	}
	want(t, b.get("/ui/keys/"+k.ID), http.StatusOK, "ingest-2", "team=y", "Enable")
	b.post("/ui/keys/"+k.ID+"/enable", nil)
	if e.verify(secret) != wire.CodeValid {
		t.Fatal("enable did not take")
	}

	// Rotate with a grace period: both secrets work until it ends.
	want(t, b.get("/ui/keys/"+k.ID+"/rotate"), http.StatusOK, "1 day")
	p = b.post("/ui/keys/"+k.ID+"/rotate", url.Values{"grace": {"1h"}})
	want(t, p, http.StatusOK, "keeps working for 1h")
	rotated := secretOf(t, p)
	if e.verify(rotated) != wire.CodeValid || e.verify(secret) != wire.CodeValid {
		t.Fatal("after rotation with grace, both secrets should verify")
	}
	e.clock.Advance(61 * time.Minute)
	if e.verify(secret) != wire.CodeNotFound {
		t.Fatal("the old secret outlived its grace")
	}
	b.signIn(rootToken)
	want(t, b.post("/ui/keys/"+k.ID+"/rotate", url.Values{"grace": {"5y"}}), http.StatusBadRequest)

	// Find by secret, then revoke.
	b.get("/ui/find")
	p = b.post("/ui/find", url.Values{"secret": {rotated}})
	want(t, p, http.StatusOK, "It is", k.ID, "Revoke ingest-2 now")
	wantNot(t, p, rotated)
	want(t, b.post("/ui/find", url.Values{"secret": {"acme_live_nothing"}}), http.StatusNotFound, "no key this credential can see")
	want(t, b.get("/ui/keys/"+k.ID+"/revoke"), http.StatusOK, "Revoke <strong>ingest-2</strong>", k.ID)
	if p := b.post("/ui/keys/"+k.ID+"/revoke", nil); p.status != http.StatusSeeOther {
		t.Fatalf("revoke: %d %s", p.status, p.body)
	}
	if e.verify(rotated) != wire.CodeRevoked {
		t.Fatal("revoke did not take")
	}
	p = b.get("/ui/keys/" + k.ID)
	want(t, p, http.StatusOK, "revoked")
	wantNot(t, p, "/rotate", "Disable")

	if evs, _ := e.svc.ListEvents(context.Background(), service.Root(), service.EventQuery{Key: k.ID, Limit: "1"}); !strings.HasPrefix(evs.Events[0].RequestID, "req_") ||
		!strings.Contains(e.logs.String(), "request_id="+evs.Events[0].RequestID) {
		t.Fatalf("the revoke's event has request id %q, not in the log", evs.Events[0].RequestID)
	}
	// The audit trail, filtered, links to what it names.
	p = b.get("/ui/events?key=" + k.ID + "&action=key.revoke&actor=root")
	want(t, p, http.StatusOK, "key.revoke", `href="/ui/keys/`+k.ID+`"`, `href="/ui/apps/acme"`)
	wantNot(t, p, `<td data-label="Action">key.rotate</td>`)
	wantNot(t, b.get("/ui/events?until=2030-06-01T11:00"), `<td data-label="Action">key.create</td>`)
	want(t, b.get("/ui/events?since=2030-06-01T11:00"), http.StatusOK, `<td data-label="Action">key.create</td>`)
	want(t, b.get("/ui/events?since=junk"), http.StatusBadRequest, "since must be")
}

// The portal acts as the signed-in credential: what it lacks is hidden,
// and refused with a clear page if tried anyway.
func TestAuthorization(t *testing.T) {
	e := newEnv(t)
	e.app("acme", "read")
	e.app("other", "read")
	k := e.key("acme", "read")
	o := e.key("other", "read")
	_, readOnly := e.credential([]string{wire.ScopeAppsRead, wire.ScopeKeysRead})
	b := e.browser()
	b.signIn(readOnly)
	p := b.get("/ui/apps/acme")
	want(t, p, http.StatusOK, k.Key.Start)
	wantNot(t, p, "New key", "Edit app", "Delete app", "Audit trail", "Verify")
	wantNot(t, b.get("/ui/apps"), "New app")
	wantNot(t, b.get("/ui/keys/"+k.Key.ID), "Rotate", "Revoke", "Disable")
	for _, path := range []string{"/ui/apps/new", "/ui/apps/acme/keys/new", "/ui/keys/" + k.Key.ID + "/rotate", "/ui/events", "/ui/verify"} {
		want(t, b.get(path), http.StatusForbidden, "Not allowed", "lacks the")
	}
	for path, form := range map[string]url.Values{
		"/ui/apps/acme/keys/new":           {"name": {"x"}, "scopes": {"read"}},
		"/ui/keys/" + k.Key.ID + "/revoke": nil,
		"/ui/keys/" + k.Key.ID + "/rotate": {"grace": {"0s"}},
		"/ui/apps/acme/delete":             {"confirm": {"acme"}},
	} {
		want(t, b.post(path, form), http.StatusForbidden, "lacks the")
	}
	if e.verify(k.Secret) != wire.CodeValid {
		t.Fatal("a refused revoke revoked")
	}

	// A confined credential sees only its apps.
	_, confined := e.credential([]string{wire.ScopeAppsRead, wire.ScopeKeysRead, wire.ScopeKeysWrite, wire.ScopeVerify}, "acme")
	c := e.browser()
	c.signIn(confined)
	p = c.get("/ui/apps")
	want(t, p, http.StatusOK, "App acme")
	wantNot(t, p, "App other")
	want(t, c.get("/ui/apps/other"), http.StatusNotFound)
	want(t, c.get("/ui/keys/"+o.Key.ID), http.StatusNotFound)
	c.get("/ui/verify")
	want(t, c.post("/ui/verify", url.Values{"secret": {o.Secret}}), http.StatusOK, "NOT_FOUND")
	p = c.post("/ui/verify", url.Values{"secret": {k.Secret}, "scopes": {"read"}})
	want(t, p, http.StatusOK, `id="verdict">VALID`)
	wantNot(t, p, k.Secret)

	// Credentials: minted only within the caller's power.
	p = c.get("/ui/credentials/new")
	want(t, p, http.StatusOK, `value="keys:read"`, `name="confine" value="acme"`)
	wantNot(t, p, `value="apps:write"`, `value="other"`)
	want(t, c.post("/ui/apps/keymint/keys/new", url.Values{"name": {"x"}, "scopes": {"apps:write"}, "confine": {"acme"}}), http.StatusForbidden, "goes beyond", `name="name" value="x"`)
	want(t, c.post("/ui/apps/keymint/keys/new", url.Values{"name": {"x"}, "scopes": {"keys:read"}}), http.StatusForbidden, "every app")
	p = c.post("/ui/apps/keymint/keys/new", url.Values{"name": {"helper"}, "scopes": {"keys:read"}, "confine": {"acme"}})
	want(t, p, http.StatusOK, "only time this secret is shown")
	want(t, c.get("/ui/credentials"), http.StatusOK, "helper")
}

// A session ends when its credential is revoked, disabled or rotated, when
// it is signed out (everywhere), and after its idle and absolute timeouts.
func TestSessionEnds(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	scopes := []string{wire.ScopeAppsRead, wire.ScopeKeysRead}
	ended := func(b *browser, how string) {
		t.Helper()
		if p := b.get("/ui/apps"); p.status != http.StatusSeeOther || p.header.Get("Location") != "/ui/signin" {
			t.Fatalf("after %s: %d %s", how, p.status, p.body)
		}
		if p := b.postRaw("/ui/signout", url.Values{"csrf": {b.csrf}}, nil); p.status != http.StatusUnauthorized {
			t.Fatalf("a POST after %s: %d", how, p.status)
		}
	}
	alive := func(b *browser) {
		t.Helper()
		want(t, b.get("/ui/apps"), http.StatusOK)
	}

	id, secret := e.credential(scopes)
	b := e.browser()
	b.signIn(secret)
	alive(b)
	if err := e.svc.RevokeKey(ctx, service.Root(), id); err != nil {
		t.Fatal(err)
	}
	ended(b, "revoke")

	id, secret = e.credential(scopes)
	b.signIn(secret)
	off := false
	if _, err := e.svc.UpdateKey(ctx, service.Root(), id, wire.UpdateKey{Enabled: &off}, nil); err != nil {
		t.Fatal(err)
	}
	ended(b, "disable")

	id, secret = e.credential(scopes)
	b.signIn(secret)
	if _, _, err := e.svc.RotateKey(ctx, service.Root(), id, wire.RotateKey{GracePeriod: "1h"}, ""); err != nil {
		t.Fatal(err)
	}
	ended(b, "rotate")
	// Signing in with the old secret in its grace period lasts no longer than it.
	b.signIn(secret)
	for range 3 {
		e.clock.Advance(19 * time.Minute)
		alive(b)
	}
	e.clock.Advance(4 * time.Minute)
	ended(b, "the grace period")

	b.signIn(rootToken)
	cookie := b.cookie()
	b.post("/ui/signout", nil)
	if b.cookie() != nil {
		t.Fatal("sign-out left the cookie")
	}
	h := sha256.Sum256([]byte(cookie.Value))
	if _, err := e.store.GetSession(ctx, h[:]); err == nil {
		t.Fatal("sign-out left the session")
	}
	b.c.Jar.SetCookies(&url.URL{Scheme: "http", Host: strings.TrimPrefix(e.http.URL, "http://"), Path: "/ui/"}, []*http.Cookie{cookie})
	ended(b, "sign-out (the old cookie sent again)")

	// Sign out everywhere ends the credential's other sessions.
	_, secret = e.credential(scopes)
	one, two := e.browser(), e.browser()
	one.signIn(secret)
	two.signIn(secret)
	one.post("/ui/signout-everywhere", nil)
	ended(two, "sign-out everywhere")

	// Idle and absolute timeouts.
	b.signIn(rootToken)
	e.clock.Advance(idle - time.Minute)
	alive(b)
	e.clock.Advance(idle - time.Minute)
	alive(b) // used within the idle timeout, each time
	e.clock.Advance(idle + time.Second)
	ended(b, "the idle timeout")
	b.signIn(rootToken)
	for range 4 {
		e.clock.Advance(idle - time.Minute) // 116 minutes in all
		alive(b)
	}
	e.clock.Advance(5 * time.Minute)
	ended(b, "the absolute timeout")

	// Housekeeping purges what has ended.
	b.signIn(rootToken)
	e.clock.Advance(idle + time.Minute)
	e.svc.Maintain(ctx)
	h = sha256.Sum256([]byte(b.cookie().Value))
	if _, err := e.store.GetSession(ctx, h[:]); err == nil {
		t.Fatal("an idle session survived the purge")
	}
}
