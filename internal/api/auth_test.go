package api_test

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/keymint/terraform-provider-keymint/internal/wire"
)

type endpoint struct {
	method, pattern, scope string
	body                   string
}

func (ep endpoint) path(slug, id string) string {
	return strings.NewReplacer("{slug}", slug, "{id}", id).Replace(ep.pattern)
}

// endpoints is every authenticated endpoint with the scope it needs.
var endpoints = []endpoint{
	{"GET", "/v1/apps", wire.ScopeAppsRead, ""},
	{"POST", "/v1/apps", wire.ScopeAppsWrite, `{"slug":"{slug}-new","name":"n","scopes":["read"],"key_prefix":"zz"}`},
	{"GET", "/v1/apps/{slug}", wire.ScopeAppsRead, ""},
	{"PATCH", "/v1/apps/{slug}", wire.ScopeAppsWrite, `{"name":"renamed"}`},
	{"DELETE", "/v1/apps/{slug}", wire.ScopeAppsWrite, ""},
	{"POST", "/v1/apps/{slug}/keys", wire.ScopeKeysWrite, `{"name":"k","scopes":["read"]}`},
	{"GET", "/v1/apps/{slug}/keys", wire.ScopeKeysRead, ""},
	{"GET", "/v1/keys/{id}", wire.ScopeKeysRead, ""},
	{"PATCH", "/v1/keys/{id}", wire.ScopeKeysWrite, `{"name":"renamed"}`},
	{"DELETE", "/v1/keys/{id}", wire.ScopeKeysWrite, ""},
	{"POST", "/v1/keys/{id}/rotate", wire.ScopeKeysWrite, `{"grace_period":"0s"}`},
	{"POST", "/v1/verify", wire.ScopeVerify, `{"key":"x"}`},
}

// credential mints a management credential as root.
func (e *env) credential(scopes []string, confineTo ...string) wire.KeyWithSecret {
	e.t.Helper()
	return e.createKey(wire.ManagementApp, wire.CreateKey{Name: "cred", Scopes: scopes, Resources: confineTo})
}

func TestAuthorizationMatrix(t *testing.T) {
	for _, scope := range wire.ManagementScopes {
		for _, ep := range endpoints {
			t.Run(scope+" "+ep.method+" "+ep.pattern, func(t *testing.T) {
				e := newEnv(t)
				e.createApp("billing", "read")
				k := e.createKey("billing", wire.CreateKey{Scopes: []string{"read"}})
				cred := e.credential([]string{scope})
				r := e.do(cred.Secret, ep.method, ep.path("billing", k.Key.ID), strings.ReplaceAll(ep.body, "{slug}", "billing"))
				if scope == ep.scope {
					if r.status == 401 || r.status == 403 || r.status >= 500 {
						t.Fatalf("holder of %s refused: %d %s", scope, r.status, r.body)
					}
					return
				}
				if p := r.problem(t); r.status != 403 || p.Code != "insufficient_scope" || !strings.Contains(p.Detail, ep.scope) {
					t.Fatalf("holder of %s: %d %s, want 403 naming %s", scope, r.status, r.body, ep.scope)
				}
			})
		}
	}
}

func TestConfinement(t *testing.T) {
	e := newEnv(t)
	e.createApp("billing", "read")
	e.createApp("other", "read")
	cred := e.credential(wire.ManagementScopes, "billing")
	for _, ep := range endpoints {
		if !strings.Contains(ep.pattern, "{") {
			continue
		}
		t.Run(ep.method+" "+ep.pattern, func(t *testing.T) {
			mine := e.createKey("billing", wire.CreateKey{Scopes: []string{"read"}})
			theirs := e.createKey("other", wire.CreateKey{Scopes: []string{"read"}})
			r := e.do(cred.Secret, ep.method, ep.path("other", theirs.Key.ID), ep.body)
			if r.status != 404 {
				t.Fatalf("on another app: %d %s, want 404", r.status, r.body)
			}
			if ep.method == "DELETE" && strings.HasPrefix(ep.pattern, "/v1/apps") {
				return // deleting billing here would end the test's app
			}
			r = e.do(cred.Secret, ep.method, ep.path("billing", mine.Key.ID), ep.body)
			if r.status >= 400 {
				t.Fatalf("on its own app: %d %s", r.status, r.body)
			}
		})
	}
	var apps wire.AppList
	r := e.do(cred.Secret, "GET", "/v1/apps", nil)
	r.decode(t, &apps)
	if len(apps.Apps) != 1 || apps.Apps[0].Slug != "billing" {
		t.Fatalf("confined list shows %+v", apps.Apps)
	}
	theirs := e.createKey("other", wire.CreateKey{Scopes: []string{"read"}})
	mine := e.createKey("billing", wire.CreateKey{Scopes: []string{"read"}})
	var v wire.VerifyResponse
	e.do(cred.Secret, "POST", "/v1/verify", wire.VerifyRequest{Key: theirs.Secret}).decode(t, &v)
	if v.Code != wire.CodeNotFound || v.KeyID != "" {
		t.Fatalf("confined verify of another app's key: %+v", v)
	}
	e.do(cred.Secret, "POST", "/v1/verify", wire.VerifyRequest{Key: mine.Secret}).decode(t, &v)
	if v.Code != wire.CodeValid {
		t.Fatalf("confined verify of its own app's key: %+v", v)
	}
	if r := e.do(cred.Secret, "POST", "/v1/apps", `{"slug":"elsewhere","name":"n","scopes":["read"],"key_prefix":"ew"}`); r.status != 403 {
		t.Fatalf("confined create of another app: %d %s", r.status, r.body)
	}
}

func TestNoPrivilegeEscalation(t *testing.T) {
	e := newEnv(t)
	e.createApp("billing", "read")
	// A credential that may mint credentials, confined to billing.
	minter := e.credential([]string{wire.ScopeKeysWrite, wire.ScopeVerify}, "billing", wire.ManagementApp)
	for name, body := range map[string]string{
		"broader scopes":    `{"name":"c","scopes":["apps:write"],"resources":["billing"]}`,
		"unconfined":        `{"name":"c","scopes":["verify"]}`,
		"other confinement": `{"name":"c","scopes":["verify"],"resources":["payroll"]}`,
	} {
		if r := e.do(minter.Secret, "POST", "/v1/apps/keymint/keys", body); r.status != 422 {
			t.Errorf("%s: %d %s, want 422", name, r.status, r.body)
		}
	}
	r := e.do(minter.Secret, "POST", "/v1/apps/keymint/keys", `{"name":"ci","scopes":["verify"],"resources":["billing"]}`)
	if r.status != 201 {
		t.Fatalf("narrower credential: %d %s", r.status, r.body)
	}
}

func TestAuthentication(t *testing.T) {
	e := newEnv(t)
	e.createApp("billing", "read")
	appKey := e.createKey("billing", wire.CreateKey{Scopes: []string{"read"}})
	revoked := e.credential(wire.ManagementScopes)
	e.must(204, "DELETE", "/v1/keys/"+revoked.Key.ID, nil, nil)
	disabled := e.credential(wire.ManagementScopes)
	e.must(200, "PATCH", "/v1/keys/"+disabled.Key.ID, `{"enabled":false}`, nil)
	expiring := e.createKey(wire.ManagementApp, wire.CreateKey{Name: "c", Scopes: wire.ManagementScopes,
		ExpiresAt: e.clock.Now().Add(time.Minute).Format(time.RFC3339)})
	e.clock.Advance(time.Minute)
	good := e.credential(wire.ManagementScopes)
	for name, token := range map[string]string{
		"none": "", "garbage": "nope", "root with a typo": rootToken + "x", "app key": appKey.Secret,
		"revoked": revoked.Secret, "disabled": disabled.Secret, "expired": expiring.Secret,
	} {
		r := e.do(token, "GET", "/v1/apps", nil)
		if r.status != 401 || r.header.Get("WWW-Authenticate") == "" || r.problem(t).Code != "unauthenticated" {
			t.Errorf("%s: %d %s, want 401", name, r.status, r.body)
		}
		if token != "" && strings.Contains(string(r.body), token) {
			t.Errorf("%s: the response echoes the token", name)
		}
	}
	if r := e.do(good.Secret, "GET", "/v1/apps", nil); r.status != 200 {
		t.Fatalf("valid credential: %d", r.status)
	}
	narrow := e.credential([]string{wire.ScopeVerify}, "billing")
	var who wire.Whoami
	e.do(narrow.Secret, "GET", "/v1/whoami", nil).decode(t, &who)
	if who.ID != narrow.Key.ID || !slices.Equal(who.Scopes, []string{"verify"}) || !slices.Equal(who.ConfineTo, []string{"billing"}) {
		t.Fatalf("whoami %+v", who)
	}
	if r := e.do(rootToken, "GET", fmt.Sprintf("/v1/keys/%s", good.Key.ID), nil); r.status != 200 {
		t.Fatalf("credential is a readable key: %d", r.status)
	}
}
