package portal_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/keymint/terraform-provider-keymint/internal/api"
	"github.com/keymint/terraform-provider-keymint/internal/keyformat"
	"github.com/keymint/terraform-provider-keymint/internal/portal"
	"github.com/keymint/terraform-provider-keymint/internal/server"
	"github.com/keymint/terraform-provider-keymint/internal/service"
	"github.com/keymint/terraform-provider-keymint/internal/store/postgres/pgtest"
	"github.com/keymint/terraform-provider-keymint/internal/wire"
)

func TestMain(m *testing.M) {
	code := m.Run()
	pgtest.StopShared()
	os.Exit(code)
}

// replica is one keymint server on a shared PostgreSQL database, as
// keymint serve wires it.
type replica struct {
	svc *service.Service
	url string
}

func newReplica(t *testing.T, dsn string) replica {
	opened, err := server.OpenStore(context.Background(), server.Database{URL: dsn}, server.StoreOptions{CacheSize: 1000})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { opened.Store.Close() })
	svc := service.New(service.Config{Store: opened.Store, RootTokenHash: keyformat.Hash(rootToken), RateLimits: opened.Limits})
	if err := svc.Bootstrap(context.Background()); err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(portal.Mount(api.New(svc, nil, nil), portal.New(portal.Config{Service: svc, Sessions: opened.Store})))
	t.Cleanup(hs.Close)
	return replica{svc: svc, url: hs.URL}
}

// A session made on one replica is served by another, and ends everywhere:
// sign-out on one, or its credential revoked through another.
func TestReplicasShareSessions(t *testing.T) {
	dsn := pgtest.Shared(t).NewDatabase(t)
	a, b := newReplica(t, dsn), newReplica(t, dsn)
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	csrfRe := regexp.MustCompile(`name="csrf" value="([^"]+)"`)
	type answer struct {
		status int
		body   string
	}
	send := func(method, u, cookie string, form url.Values) (answer, []*http.Cookie) {
		t.Helper()
		req, _ := http.NewRequest(method, u, strings.NewReader(form.Encode()))
		if method == http.MethodPost {
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			req.Header.Set("Sec-Fetch-Site", "same-origin")
		}
		if cookie != "" {
			req.AddCookie(&http.Cookie{Name: "keymint_session", Value: cookie})
		}
		res, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		body, _ := io.ReadAll(res.Body)
		return answer{res.StatusCode, string(body)}, res.Cookies()
	}
	signIn := func(r replica, token string) string {
		t.Helper()
		ans, cookies := send(http.MethodPost, r.url+"/ui/signin", "", url.Values{"token": {token}})
		for _, c := range cookies {
			if c.Name == "keymint_session" && c.Value != "" {
				return c.Value
			}
		}
		t.Fatalf("no session from %s: %d", r.url, ans.status)
		return ""
	}
	if ans, _ := send(http.MethodGet, b.url+"/ui/apps", signIn(a, rootToken), nil); ans.status != http.StatusOK {
		t.Fatalf("root's session from replica a, on b: %d", ans.status)
	}

	out, _, err := a.svc.CreateKey(context.Background(), service.Root(), wire.ManagementApp,
		wire.CreateKey{Name: "ops", Scopes: []string{wire.ScopeAppsRead, wire.ScopeKeysRead}}, "")
	if err != nil {
		t.Fatal(err)
	}
	session := signIn(a, out.Secret)
	ans, _ := send(http.MethodGet, b.url+"/ui/apps", session, nil)
	if ans.status != http.StatusOK {
		t.Fatalf("a credential's session from a, on b: %d", ans.status)
	}
	if err := b.svc.RevokeKey(context.Background(), service.Root(), out.Key.ID); err != nil {
		t.Fatal(err)
	}
	if ans, _ := send(http.MethodGet, a.url+"/ui/apps", session, nil); ans.status != http.StatusSeeOther {
		t.Fatalf("after revoking the credential on b, its session on a: %d", ans.status)
	}

	session = signIn(b, rootToken)
	ans, _ = send(http.MethodGet, a.url+"/ui/apps", session, nil)
	csrf := csrfRe.FindStringSubmatch(ans.body)[1]
	if ans, _ := send(http.MethodPost, b.url+"/ui/signout", session, url.Values{"csrf": {csrf}}); ans.status != http.StatusOK {
		t.Fatalf("sign-out on b: %d", ans.status)
	}
	if ans, _ := send(http.MethodGet, a.url+"/ui/apps", session, nil); ans.status != http.StatusSeeOther {
		t.Fatalf("after signing out on b, the session on a: %d", ans.status)
	}
}
