package api_test

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/keymint/terraform-provider-keymint/internal/api"
	"github.com/keymint/terraform-provider-keymint/internal/wire"
)

type endpoint struct {
	method, pattern, scope string
	body                   string // the request body docs/openapi.json gives as its example
}

func (ep endpoint) path(slug, id string) string {
	return strings.NewReplacer("{slug}", slug, "{id}", id).Replace(ep.pattern)
}

// endpoints is every authenticated endpoint the server routes, with the scope
// and example body that docs/openapi.json documents for it: the route table
// is written once, and these tests hold the server to its documentation.
func endpoints(t testing.TB) []endpoint {
	t.Helper()
	doc := loadOpenAPI(t)
	var out []endpoint
	for _, rt := range api.Routes() {
		method, path, _ := strings.Cut(rt.Pattern, " ")
		op, ok := doc.Paths[path][strings.ToLower(method)]
		if !ok {
			t.Fatalf("%s is not in docs/openapi.json", rt.Pattern)
		}
		ep := endpoint{method: method, pattern: path}
		if op.Scope != nil {
			ep.scope = *op.Scope
		}
		if c, ok := op.RequestBody.Content["application/json"]; ok {
			if len(c.Example) == 0 {
				t.Fatalf("%s: docs/openapi.json gives its request body no example", rt.Pattern)
			}
			ep.body = string(c.Example)
		}
		out = append(out, ep)
	}
	return out
}

// exampleApp creates the app of the POST /v1/apps example, which the other
// examples (keys, verify) refer to, and returns its slug and scopes.
func (e *env) exampleApp() wire.App {
	e.t.Helper()
	for _, ep := range endpoints(e.t) {
		if ep.method == "POST" && ep.pattern == "/v1/apps" {
			var a wire.App
			e.must(201, "POST", "/v1/apps", ep.body, &a)
			return a
		}
	}
	e.t.Fatal("no POST /v1/apps endpoint")
	return wire.App{}
}

// credential mints a management credential as root.
func (e *env) credential(scopes []string, confineTo ...string) wire.KeyWithSecret {
	e.t.Helper()
	return e.createKey(wire.ManagementApp, wire.CreateKey{Name: "cred", Scopes: scopes, Resources: confineTo})
}

func TestAuthorizationMatrix(t *testing.T) {
	for _, scope := range wire.ManagementScopes {
		for _, ep := range endpoints(t) {
			t.Run(scope+" "+ep.method+" "+ep.pattern, func(t *testing.T) {
				e := newEnv(t)
				app := e.exampleApp()
				k := e.createKey(app.Slug, wire.CreateKey{Scopes: app.Scopes[:1]})
				cred := e.credential([]string{scope})
				r := e.do(cred.Secret, ep.method, ep.path(app.Slug, k.Key.ID), ep.body)
				if ep.scope == "" || scope == ep.scope {
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
	shop := e.exampleApp()
	e.createApp("other", shop.Scopes...)
	cred := e.credential(wire.ManagementScopes, shop.Slug)
	for _, ep := range endpoints(t) {
		if !strings.Contains(ep.pattern, "{") {
			continue
		}
		t.Run(ep.method+" "+ep.pattern, func(t *testing.T) {
			mine := e.createKey(shop.Slug, wire.CreateKey{Scopes: shop.Scopes[:1]})
			theirs := e.createKey("other", wire.CreateKey{Scopes: shop.Scopes[:1]})
			r := e.do(cred.Secret, ep.method, ep.path("other", theirs.Key.ID), ep.body)
			if r.status != 404 {
				t.Fatalf("on another app: %d %s, want 404", r.status, r.body)
			}
			if ep.method == "DELETE" && strings.HasPrefix(ep.pattern, "/v1/apps") {
				return // deleting the app here would end the test's app
			}
			r = e.do(cred.Secret, ep.method, ep.path(shop.Slug, mine.Key.ID), ep.body)
			if r.status >= 400 {
				t.Fatalf("on its own app: %d %s", r.status, r.body)
			}
		})
	}
	var apps wire.AppList
	r := e.do(cred.Secret, "GET", "/v1/apps", nil)
	r.decode(t, &apps)
	if len(apps.Apps) != 1 || apps.Apps[0].Slug != shop.Slug {
		t.Fatalf("confined list shows %+v", apps.Apps)
	}
	theirs := e.createKey("other", wire.CreateKey{Scopes: shop.Scopes[:1]})
	mine := e.createKey(shop.Slug, wire.CreateKey{Scopes: shop.Scopes[:1]})
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

// callerShape is a kind of management credential, as the issue that
// introduced the management rule lists them. Its scopes leave out apps:write
// (except root's), so that a stronger target exists for each.
type callerShape struct {
	name      string
	scopes    []string
	confineTo []string
	expires   bool // expires an hour from now
}

var callerShapes = []callerShape{
	{name: "root", scopes: wire.ManagementScopes},
	{name: "unconfined-narrow", scopes: []string{wire.ScopeKeysRead, wire.ScopeKeysWrite}},
	{name: "confined", scopes: []string{wire.ScopeAppsRead, wire.ScopeKeysRead, wire.ScopeKeysWrite, wire.ScopeVerify}, confineTo: []string{"shop"}},
	{name: "expiring", scopes: []string{wire.ScopeKeysRead, wire.ScopeKeysWrite, wire.ScopeVerify}, expires: true},
}

// verdict is what the management rule says of a caller acting on a target.
type verdict int

const (
	allowed   verdict = iota
	forbidden         // 403 exceeds_caller
	hidden            // 404: outside the caller's confinement
)

// targetShape builds a management credential relative to the caller, and
// says what the rule must answer for each caller shape (by name).
type targetShape struct {
	name    string
	build   func(c callerShape, callerExpiry *time.Time) wire.CreateKey
	verdict map[string]verdict // by caller name; absent: allowed
	names   string             // a word the refusal's detail must contain
}

func expiryString(t *time.Time) string {
	if t == nil {
		return ""
	}
	return t.Format(time.RFC3339)
}

var targetShapes = []targetShape{
	{name: "weaker", build: func(c callerShape, exp *time.Time) wire.CreateKey {
		return wire.CreateKey{Scopes: []string{wire.ScopeKeysRead}, Resources: c.confineTo, ExpiresAt: expiryString(exp)}
	}},
	{name: "equal", build: func(c callerShape, exp *time.Time) wire.CreateKey {
		return wire.CreateKey{Scopes: c.scopes, Resources: c.confineTo, ExpiresAt: expiryString(exp)}
	}},
	{name: "stronger", names: wire.ScopeAppsWrite, build: func(c callerShape, exp *time.Time) wire.CreateKey {
		return wire.CreateKey{Scopes: append(slices.Clone(c.scopes), wire.ScopeAppsWrite), Resources: c.confineTo, ExpiresAt: expiryString(exp)}
	}, verdict: map[string]verdict{"unconfined-narrow": forbidden, "confined": forbidden, "expiring": forbidden}},
	{name: "outside-confinement", names: "other", build: func(c callerShape, exp *time.Time) wire.CreateKey {
		return wire.CreateKey{Scopes: c.scopes, Resources: []string{"other"}, ExpiresAt: expiryString(exp)}
	}, verdict: map[string]verdict{"confined": hidden}},
	{name: "unconfined", names: "every app", build: func(c callerShape, exp *time.Time) wire.CreateKey {
		return wire.CreateKey{Scopes: c.scopes, ExpiresAt: expiryString(exp)}
	}, verdict: map[string]verdict{"confined": hidden}},
	{name: "longer-lived", names: "expiry", build: func(c callerShape, exp *time.Time) wire.CreateKey {
		if exp == nil {
			return wire.CreateKey{Scopes: c.scopes, Resources: c.confineTo}
		}
		return wire.CreateKey{Scopes: c.scopes, Resources: c.confineTo, ExpiresAt: exp.Add(time.Hour).Format(time.RFC3339)}
	}, verdict: map[string]verdict{"expiring": forbidden}},
	{name: "never-expiring", names: "no expiry", build: func(c callerShape, exp *time.Time) wire.CreateKey {
		return wire.CreateKey{Scopes: c.scopes, Resources: c.confineTo}
	}, verdict: map[string]verdict{"expiring": forbidden}},
}

// managementOps are the operations on a management credential, each with
// the status it answers when allowed. list is checked by whether the target
// is listed; create by minting the target.
var managementOps = []struct {
	name, method, path, body string
	ok                       int
}{
	{"create", "POST", "/v1/apps/keymint/keys", "", 201},
	{"get", "GET", "/v1/keys/{id}", "", 200},
	{"list", "GET", "/v1/apps/keymint/keys?limit=1000", "", 200},
	{"rename", "PATCH", "/v1/keys/{id}", `{"name":"renamed"}`, 200},
	{"re-enable", "PATCH", "/v1/keys/{id}", `{"enabled":true}`, 200},
	{"rotate", "POST", "/v1/keys/{id}/rotate", `{"grace_period":"720h"}`, 200},
	{"revoke", "DELETE", "/v1/keys/{id}", "", 204},
}

// TestManagementCredentialMatrix: a caller may act on a management
// credential only if it could mint it; one it may not see is not found.
func TestManagementCredentialMatrix(t *testing.T) {
	for _, caller := range callerShapes {
		t.Run(caller.name, func(t *testing.T) {
			e := newEnv(t)
			e.createApp("shop", "read")
			e.createApp("other", "read")
			token := rootToken
			var exp *time.Time
			if caller.name != "root" {
				req := wire.CreateKey{Name: "caller", Scopes: caller.scopes, Resources: caller.confineTo}
				if caller.expires {
					t := e.clock.Now().Add(time.Hour)
					exp, req.ExpiresAt = &t, t.Format(time.RFC3339)
				}
				token = e.createKey(wire.ManagementApp, req).Secret
			}
			for _, target := range targetShapes {
				want := target.verdict[caller.name]
				for _, op := range managementOps {
					t.Run(target.name+"/"+op.name, func(t *testing.T) {
						req := target.build(caller, exp)
						req.Name = "target"
						if op.name == "create" {
							r := e.do(token, "POST", op.path, req)
							wantStatus(t, r, want, op.ok, target.names, true)
							return
						}
						created := e.createKey(wire.ManagementApp, req)
						id := created.Key.ID
						if op.name == "re-enable" {
							e.must(200, "PATCH", "/v1/keys/"+id, `{"enabled":false}`, nil)
						}
						r := e.do(token, op.method, strings.ReplaceAll(op.path, "{id}", id), op.body)
						if op.name == "list" {
							var list wire.KeyList
							if r.status != 200 {
								t.Fatalf("list: %d %s", r.status, r.body)
							}
							r.decode(t, &list)
							listed := slices.ContainsFunc(list.Keys, func(k wire.Key) bool { return k.ID == id })
							if listed != (want == allowed) {
								t.Fatalf("listed %v, want %v", listed, want == allowed)
							}
							return
						}
						wantStatus(t, r, want, op.ok, target.names, false)
						if want != allowed && op.name == "rotate" {
							// The refused rotation left the target's secret as it was.
							e.wantCode(created.Secret, nil, "", wire.CodeValid)
						}
					})
				}
			}
		})
	}
}

func wantStatus(t *testing.T, r response, want verdict, ok int, names string, creating bool) {
	t.Helper()
	switch {
	case want == allowed:
		if r.status != ok {
			t.Fatalf("allowed: %d %s, want %d", r.status, r.body, ok)
		}
	case want == forbidden || creating: // a credential not yet minted has no existence to hide
		p := r.problem(t)
		if r.status != 403 || p.Code != "exceeds_caller" || !strings.Contains(p.Detail, names) {
			t.Fatalf("%d %s, want 403 exceeds_caller naming %q", r.status, r.body, names)
		}
	default:
		if r.status != 404 || r.problem(t).Code != "not_found" {
			t.Fatalf("%d %s, want 404 not_found", r.status, r.body)
		}
	}
}

func TestManagementCredentialConfinementChecks(t *testing.T) {
	e := newEnv(t)
	e.createApp("shop", "read")
	for name, body := range map[string]string{
		"the reserved app": `{"name":"c","scopes":["verify"],"resources":["keymint"]}`,
		"not an app slug":  `{"name":"c","scopes":["verify"],"resources":["Not A Slug"]}`,
	} {
		r := e.do(rootToken, "POST", "/v1/apps/keymint/keys", body)
		if p := r.problem(t); r.status != 422 || p.Code != "validation_failed" || len(p.Errors) != 1 || p.Errors[0].Field != "resources" {
			t.Errorf("%s: %d %s, want 422 on resources", name, r.status, r.body)
		}
	}
	// A confined credential sees exactly the management credentials within
	// its confinement, itself among them.
	minter := e.credential([]string{wire.ScopeKeysRead, wire.ScopeKeysWrite}, "shop")
	mine := e.do(minter.Secret, "POST", "/v1/apps/keymint/keys", `{"name":"ci","scopes":["keys:read"],"resources":["shop"]}`)
	if mine.status != 201 {
		t.Fatalf("confined mint within its confinement: %d %s", mine.status, mine.body)
	}
	e.credential(wire.ManagementScopes)
	e.credential([]string{wire.ScopeKeysRead}, "other")
	var ids []string
	cursor := ""
	for range 10 {
		var list wire.KeyList
		r := e.do(minter.Secret, "GET", "/v1/apps/keymint/keys?limit=1&cursor="+cursor, nil)
		if r.status != 200 {
			t.Fatalf("list: %d %s", r.status, r.body)
		}
		r.decode(t, &list)
		for _, k := range list.Keys {
			ids = append(ids, k.ID)
		}
		if list.NextCursor == "" {
			break
		}
		cursor = list.NextCursor
	}
	var created wire.KeyWithSecret
	mine.decode(t, &created)
	want := []string{minter.Key.ID, created.Key.ID}
	slices.Sort(want) // ids made in the same millisecond sort by their random part
	if !slices.Equal(ids, want) {
		t.Fatalf("confined credential lists %v, want %v", ids, want)
	}
}

// A key prefix is unique across the server, so a confined credential learns
// that one is taken, but not which app, outside its confinement, holds it.
func TestPrefixConflictConfined(t *testing.T) {
	e := newEnv(t)
	e.createApp("secret-project", "read") // key_prefix secret_project_live
	e.createApp("shop", "read")
	cred := e.credential(wire.ManagementScopes, "shop", "shop-eu")
	r := e.do(cred.Secret, "POST", "/v1/apps", `{"slug":"shop-eu","name":"n","scopes":["read"],"key_prefix":"secret_project_live"}`)
	if p := r.problem(t); r.status != 409 || p.Code != "key_prefix_taken" || strings.Contains(p.Detail, "secret-project") || strings.Contains(p.Detail, "import") {
		t.Fatalf("confined: %d %s", r.status, r.body)
	}
	r = e.do(cred.Secret, "POST", "/v1/apps", `{"slug":"shop-eu","name":"n","scopes":["read"],"key_prefix":"shop_live"}`)
	if p := r.problem(t); r.status != 409 || p.Code != "key_prefix_taken" || !strings.Contains(p.Detail, `"shop"`) {
		t.Fatalf("a prefix of an app it sees: %d %s", r.status, r.body)
	}
	r = e.do(rootToken, "POST", "/v1/apps", `{"slug":"other","name":"n","scopes":["read"],"key_prefix":"secret_project_live"}`)
	if p := r.problem(t); r.status != 409 || !strings.Contains(p.Detail, `"secret-project"`) {
		t.Fatalf("root: %d %s", r.status, r.body)
	}
}
