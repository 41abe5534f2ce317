package api_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/keymint/terraform-provider-keymint/internal/service"
	"github.com/keymint/terraform-provider-keymint/internal/wire"
)

func (e *env) events(token, query string) wire.EventList {
	e.t.Helper()
	r := e.do(token, "GET", "/v1/events"+query, nil)
	if r.status != 200 {
		e.t.Fatalf("GET /v1/events%s: %d %s", query, r.status, r.body)
	}
	var l wire.EventList
	r.decode(e.t, &l)
	return l
}

// Every lifecycle change writes exactly one event, with who, which request
// and what changed, and never a secret; a change that fails writes none.
func TestAuditTrail(t *testing.T) {
	e := newEnv(t)
	n := 0
	var secrets []string
	// step makes a request with its own X-Request-Id and checks the events it wrote.
	step := func(method, path string, body any, wantStatus int, wantAction, wantKey string) response {
		t.Helper()
		n++
		id := fmt.Sprintf("req-%d", n)
		before := len(e.events(rootToken, "?limit=1000").Events)
		r := e.do(rootToken, method, path, body, wire.RequestIDHeader, id)
		if r.status != wantStatus || r.header.Get(wire.RequestIDHeader) != id {
			t.Fatalf("%s %s: %d (request id %q) %s", method, path, r.status, r.header.Get(wire.RequestIDHeader), r.body)
		}
		var k wire.KeyWithSecret
		if json.Unmarshal(r.body, &k) == nil && k.Secret != "" {
			secrets = append(secrets, k.Secret)
		}
		evs := e.events(rootToken, "?limit=1000").Events
		if wantAction == "" {
			if len(evs) != before {
				t.Fatalf("%s %s (%d) wrote %d event(s): %+v", method, path, r.status, len(evs)-before, evs[0])
			}
			return r
		}
		if len(evs) != before+1 {
			t.Fatalf("%s %s wrote %d events, want 1", method, path, len(evs)-before)
		}
		ev := evs[0]
		if ev.Action != wantAction || ev.Actor != "root" || ev.RequestID != id || ev.At.IsZero() || (wantKey != "" && ev.KeyID != wantKey) {
			t.Fatalf("%s %s: event %+v, want %s", method, path, ev, wantAction)
		}
		return r
	}
	step("POST", "/v1/apps", `{"slug":"shop","name":"Shop","scopes":["read","write"],"key_prefix":"shop_live"}`, 201, "app.create", "")
	step("POST", "/v1/apps", `{"slug":"shop","name":"Shop","scopes":["read"],"key_prefix":"shop_live"}`, 409, "", "")
	step("PATCH", "/v1/apps/shop", `{"name":"Shop API"}`, 200, "app.update", "")
	step("PATCH", "/v1/apps/shop", `{"name":"Shop API"}`, 200, "", "") // no change
	var k wire.KeyWithSecret
	step("POST", "/v1/apps/shop/keys", `{"name":"k","scopes":["read","write"]}`, 201, "key.create", "").decode(t, &k)
	step("POST", "/v1/apps/shop/keys", `{"name":"","scopes":["read"]}`, 422, "", "")
	step("PATCH", "/v1/apps/shop", `{"scopes":["read"]}`, 409, "", "") // would strand k
	step("PATCH", "/v1/keys/"+k.Key.ID, `{"enabled":false}`, 200, "key.disable", k.Key.ID)
	step("PATCH", "/v1/keys/"+k.Key.ID, `{"enabled":true}`, 200, "key.enable", k.Key.ID)
	step("PATCH", "/v1/keys/"+k.Key.ID, `{"name":"renamed","metadata":{"a":"b"}}`, 200, "key.update", k.Key.ID)
	step("POST", "/v1/keys/"+k.Key.ID+"/rotate", `{"grace_period":"1h"}`, 200, "key.rotate", k.Key.ID)
	step("POST", "/v1/apps/keymint/keys", `{"name":"ci","scopes":["verify"]}`, 201, "credential.mint", "")
	step("DELETE", "/v1/keys/"+k.Key.ID, nil, 204, "key.revoke", k.Key.ID)
	step("DELETE", "/v1/keys/"+k.Key.ID, nil, 204, "", "") // revoked already
	step("POST", "/v1/keys/"+k.Key.ID+"/rotate", `{}`, 409, "", "")
	step("POST", "/v1/apps/shop/keys", `{"name":"k2","scopes":["read"]}`, 201, "key.create", "")
	step("DELETE", "/v1/apps/shop", nil, 409, "", "")
	// A forced delete records the app's event and one per live key that goes with it.
	before := len(e.events(rootToken, "?limit=1000").Events)
	e.must(204, "DELETE", "/v1/apps/shop?force=true", nil, nil)
	if evs := e.events(rootToken, "?limit=1000").Events; len(evs) != before+2 || evs[0].Action != "key.delete" || evs[1].Action != "app.delete" {
		t.Fatalf("forced delete recorded %+v", evs[:2])
	}
	// A retried create that re-issues a secret is recorded as such.
	e.createApp("other", "read")
	body := `{"name":"r","scopes":["read"]}`
	e.do(rootToken, "POST", "/v1/apps/other/keys", body, wire.IdempotencyHeader, "i-1")
	e.do(rootToken, "POST", "/v1/apps/other/keys", body, wire.IdempotencyHeader, "i-1")
	if ev := e.events(rootToken, "?limit=1").Events[0]; ev.Action != "key.secret_reissue" {
		t.Fatalf("a replayed create recorded %+v", ev)
	}

	all := e.events(rootToken, "?limit=1000")
	raw, _ := json.Marshal(all)
	for _, s := range secrets {
		if strings.Contains(string(raw), s[16:]) {
			t.Fatal("an event holds a secret")
		}
	}
	update := all.Events[len(all.Events)-2] // the second event: app.update, name from Shop to Shop API
	if update.Action != "app.update" || fmt.Sprint(update.Changes["name"]) != "map[from:Shop to:Shop API]" {
		t.Fatalf("app.update changes: %+v", update)
	}
	// Filters and pages.
	if l := e.events(rootToken, "?key="+k.Key.ID); len(l.Events) != 6 {
		t.Fatalf("events of %s: %d, want 6", k.Key.ID, len(l.Events))
	}
	if l := e.events(rootToken, "?key="+k.Key.ID+"&action=key.rotate&actor=root"); len(l.Events) != 1 || l.Events[0].Action != "key.rotate" {
		t.Fatalf("k's rotations by root: %+v", l.Events)
	}
	if l := e.events(rootToken, "?actor=key_nobody"); len(l.Events) != 0 {
		t.Fatalf("events by nobody: %+v", l.Events)
	}
	at := all.Events[0].At
	if l := e.events(rootToken, "?since="+at.Add(time.Second).Format(time.RFC3339)); len(l.Events) != 0 {
		t.Fatalf("events after the last: %+v", l.Events)
	}
	if l := e.events(rootToken, "?until="+at.Add(time.Second).Format(time.RFC3339)); len(l.Events) != len(all.Events) {
		t.Fatalf("events until after the last: %d of %d", len(l.Events), len(all.Events))
	}
	if r := e.do(rootToken, "GET", "/v1/events?since=yesterday", nil); r.status != 400 || r.problem(t).Code != "invalid_query" {
		t.Fatalf("a bad since: %d %s", r.status, r.body)
	}
	if r := e.do(rootToken, "GET", "/v1/events?action=key.revok", nil); r.status != 400 || r.problem(t).Code != "invalid_query" ||
		!strings.Contains(r.problem(t).Detail, "key.revoke") {
		t.Fatalf("an unknown action should be refused with the list of actions: %d %s", r.status, r.body)
	}
	for _, action := range service.Actions {
		if r := e.do(rootToken, "GET", "/v1/events?action="+action, nil); r.status != 200 {
			t.Fatalf("action %s: %d %s", action, r.status, r.body)
		}
	}
	first := e.events(rootToken, "?limit=2")
	next := e.events(rootToken, "?limit=2&cursor="+first.NextCursor)
	if first.NextCursor == "" || next.Events[0].ID >= first.Events[1].ID {
		t.Fatalf("pages: %+v then %+v", first.Events, next.Events)
	}
	// A request id is made up when the client sends none, or a bad one.
	for _, sent := range []string{"", strings.Repeat("x", 200), "has space"} {
		r := e.do(rootToken, "GET", "/v1/whoami", nil, wire.RequestIDHeader, sent)
		if got := r.header.Get(wire.RequestIDHeader); !strings.HasPrefix(got, "req_") {
			t.Fatalf("sent %q, got request id %q", sent, got)
		}
	}
}

func TestAuditTrailConfinementAndRetention(t *testing.T) {
	e := newEnv(t)
	e.createApp("shop", "read")
	e.createApp("other", "read")
	e.createKey("shop", wire.CreateKey{Scopes: []string{"read"}})
	e.createKey("other", wire.CreateKey{Scopes: []string{"read"}})
	auditor := e.credential([]string{wire.ScopeAuditRead}, "shop")
	for _, ev := range e.events(auditor.Secret, "").Events {
		if ev.App != "shop" {
			t.Fatalf("a credential confined to shop sees %+v", ev)
		}
	}
	if l := e.events(auditor.Secret, ""); len(l.Events) != 2 { // shop's create and its key's
		t.Fatalf("confined auditor sees %d events", len(l.Events))
	}
	if l := e.events(auditor.Secret, "?app=other"); len(l.Events) != 0 {
		t.Fatalf("confined auditor filtering on another app sees %+v", l.Events)
	}
	noAudit := e.credential([]string{wire.ScopeKeysRead})
	if r := e.do(noAudit.Secret, "GET", "/v1/events", nil); r.status != 403 || r.problem(t).Code != "insufficient_scope" {
		t.Fatalf("without audit:read: %d %s", r.status, r.body)
	}
	// Events are kept for 90 days, then swept.
	before := len(e.events(rootToken, "?limit=1000").Events)
	e.clock.Advance(90*24*time.Hour + time.Second)
	e.createApp("later", "read")
	e.svc.Maintain(context.Background())
	if l := e.events(rootToken, "?limit=1000"); len(l.Events) != 1 || before < 5 {
		t.Fatalf("after the retention: %d events (before: %d)", len(l.Events), before)
	}
}

// /metrics counts verifies by app and code, among the rest.
func TestMetrics(t *testing.T) {
	e := newEnv(t)
	e.createApp("acme", "read")
	k := e.createKey("acme", wire.CreateKey{Scopes: []string{"read"}})
	revoked := e.createKey("acme", wire.CreateKey{Scopes: []string{"read"}})
	e.must(204, "DELETE", "/v1/keys/"+revoked.Key.ID, nil, nil)
	e.wantCode(k.Secret, nil, "", wire.CodeValid)
	e.wantCode(k.Secret, nil, "", wire.CodeValid)
	e.wantCode(k.Secret, []string{"write"}, "", wire.CodeInsufficientScope)
	e.wantCode(revoked.Secret, nil, "", wire.CodeRevoked)
	e.wantCode("nope", nil, "", wire.CodeNotFound)
	e.do("wrong-token", "GET", "/v1/apps", nil)
	body := `{"name":"r","scopes":["read"]}`
	e.do(rootToken, "POST", "/v1/apps/acme/keys", body, wire.IdempotencyHeader, "m-1")
	e.do(rootToken, "POST", "/v1/apps/acme/keys", body, wire.IdempotencyHeader, "m-1")

	rec := httptest.NewRecorder()
	e.metrics.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	text := rec.Body.String()
	for _, want := range []string{
		`keymint_verifications_total{app="acme",code="VALID"} 2`,
		`keymint_verifications_total{app="acme",code="INSUFFICIENT_SCOPE"} 1`,
		`keymint_verifications_total{app="acme",code="REVOKED"} 1`,
		`keymint_verifications_total{app="",code="NOT_FOUND"} 1`,
		`keymint_http_request_duration_seconds_count{route="POST /v1/verify",status="200"} 5`,
		`keymint_authentication_failures_total 1`,
		`keymint_idempotent_replays_total{kind="key"} 1`,
		`keymint_verify_cache_lookups_total{result="hit"}`,
		`keymint_store_operation_duration_seconds_count{op="create_key"}`,
		`go_goroutines`,
	} {
		if !strings.Contains(text, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	if strings.Contains(text, k.Secret[16:]) || strings.Contains(text, k.Key.ID) {
		t.Fatal("/metrics names a key or holds a secret")
	}

	// A deleted app's series go with it; another app's stay.
	e.createApp("other", "read")
	o := e.createKey("other", wire.CreateKey{Scopes: []string{"read"}})
	e.wantCode(o.Secret, nil, "", wire.CodeValid)
	e.must(204, "DELETE", "/v1/apps/acme?force=true", nil, nil)
	rec = httptest.NewRecorder()
	e.metrics.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	text = rec.Body.String()
	if strings.Contains(text, `app="acme"`) {
		t.Error("/metrics keeps series of the deleted app acme")
	}
	if !strings.Contains(text, `keymint_verifications_total{app="other",code="VALID"} 1`) {
		t.Error("/metrics lost the series of app other")
	}
}
