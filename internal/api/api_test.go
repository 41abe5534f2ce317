package api_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keymint/terraform-provider-keymint/internal/api"
	"github.com/keymint/terraform-provider-keymint/internal/keyformat"
	"github.com/keymint/terraform-provider-keymint/internal/service"
	"github.com/keymint/terraform-provider-keymint/internal/store"
	"github.com/keymint/terraform-provider-keymint/internal/wire"
	"github.com/keymint/terraform-provider-keymint/keymint"
)

func TestHealthz(t *testing.T) {
	e := newEnv(t)
	if r := e.do("", "GET", "/healthz", nil); r.status != 200 {
		t.Fatalf("healthz: %d", r.status)
	}
}

// /readyz answers as docs/openapi.json says (the contract check holds each
// answer to it): ready, ready with the verify cache's state, or 503.
func TestReadyz(t *testing.T) {
	e := newEnv(t)
	if r := e.do("", "GET", "/readyz", nil); r.status != 200 || string(r.body) != "{\"status\":\"ready\"}\n" {
		t.Fatalf("readyz: %d %s", r.status, r.body)
	}
	e.srv.Ready = func(context.Context) (string, error) { return "on", nil }
	if r := e.do("", "GET", "/readyz", nil); r.status != 200 || !strings.Contains(string(r.body), `"verify_cache":"on"`) {
		t.Fatalf("readyz: %d %s", r.status, r.body)
	}
	e.srv.Ready = func(context.Context) (string, error) { return "", errors.New("the database did not answer") }
	if r := e.do("", "GET", "/readyz", nil); r.status != 503 || r.problem(t).Code != "not_ready" {
		t.Fatalf("readyz: %d %s", r.status, r.body)
	}
}

func TestAppLifecycle(t *testing.T) {
	e := newEnv(t)
	var app wire.App
	e.must(201, "POST", "/v1/apps", wire.CreateApp{Slug: "acme", Name: "Acme", Description: "d", Scopes: []string{"write:data", "read:data"},
		KeyPrefix: "acme_live", RateLimit: &wire.RateLimit{Requests: 100, Window: "1m"}}, &app)
	if !slices.Equal(app.Scopes, []string{"read:data", "write:data"}) || app.RateLimit.Window != "1m" || app.CreatedAt.IsZero() {
		t.Fatalf("created %+v", app)
	}
	var got wire.App
	e.must(200, "GET", "/v1/apps/acme", nil, &got)
	if got.Slug != "acme" || got.KeyPrefix != "acme_live" {
		t.Fatalf("get %+v", got)
	}
	var list wire.AppList
	e.must(200, "GET", "/v1/apps", nil, &list)
	if len(list.Apps) != 2 || list.Apps[0].Slug != "acme" || list.Apps[1].Slug != wire.ManagementApp {
		t.Fatalf("list %+v", list)
	}
	e.clock.Advance(time.Minute)
	e.must(200, "PATCH", "/v1/apps/acme", `{"name":"Acme 2","scopes":["read:data","write:data","admin"],"rate_limit":null}`, &got)
	if got.Name != "Acme 2" || got.Description != "d" || len(got.Scopes) != 3 || got.RateLimit != nil || !got.UpdatedAt.After(got.CreatedAt) {
		t.Fatalf("patched %+v", got)
	}
	e.must(204, "DELETE", "/v1/apps/acme", nil, nil)
	e.must(404, "GET", "/v1/apps/acme", nil, nil)
	e.must(404, "DELETE", "/v1/apps/acme", nil, nil)
}

func TestKeyLifecycle(t *testing.T) {
	e := newEnv(t)
	e.createApp("acme", "read:data", "write:data")
	exp := e.clock.Now().Add(48 * time.Hour)
	k := e.createKey("acme", wire.CreateKey{Name: "ci", Scopes: []string{"read:data"}, Resources: []string{"vault-1"},
		Owner: "team-a", Metadata: map[string]string{"env": "prod"}, ExpiresAt: exp.Format(time.RFC3339)})
	if !strings.HasPrefix(k.Secret, "acme_live_") || !strings.HasPrefix(k.Secret, k.Key.Start) || len(k.Key.Start) >= len(k.Secret)/2 {
		t.Fatalf("secret %q, start %q", k.Secret, k.Key.Start)
	}
	if k.Key.Status != "active" || !k.Key.Enabled || k.Key.Owner != "team-a" || !k.Key.ExpiresAt.Equal(exp) {
		t.Fatalf("created %+v", k.Key)
	}
	var got wire.Key
	e.must(200, "GET", "/v1/keys/"+k.Key.ID, nil, &got)
	if got.ID != k.Key.ID || got.Metadata["env"] != "prod" || strings.Contains(fmt.Sprint(got), k.Secret) {
		t.Fatalf("get %+v", got)
	}
	e.must(200, "PATCH", "/v1/keys/"+k.Key.ID, `{"name":"ci-2","metadata":{"env":"stage"}}`, &got)
	if got.Name != "ci-2" || got.Metadata["env"] != "stage" || !got.Enabled {
		t.Fatalf("patched %+v", got)
	}
	var list wire.KeyList
	e.must(200, "GET", "/v1/apps/acme/keys", nil, &list)
	if len(list.Keys) != 1 || list.NextCursor != "" {
		t.Fatalf("list %+v", list)
	}
	e.wantCode(k.Secret, []string{"read:data"}, "vault-1", wire.CodeValid)
	e.wantCode(k.Secret, nil, "", wire.CodeValid)
	e.wantCode(k.Secret, []string{"write:data"}, "vault-1", wire.CodeInsufficientScope)
	e.wantCode(k.Secret, []string{"read:data"}, "vault-2", wire.CodeForbiddenResource)
	v := e.verify(k.Secret, []string{"read:data"}, "vault-1")
	if v.KeyID != k.Key.ID || v.App != "acme" || v.Owner != "team-a" || v.Metadata["env"] != "stage" || !v.ExpiresAt.Equal(exp) {
		t.Fatalf("verify response %+v", v)
	}
	e.must(204, "DELETE", "/v1/keys/"+k.Key.ID, nil, nil)
	e.must(204, "DELETE", "/v1/keys/"+k.Key.ID, nil, nil) // idempotent
	e.must(200, "GET", "/v1/keys/"+k.Key.ID, nil, &got)
	if got.Status != "revoked" || got.RevokedAt == nil {
		t.Fatalf("after revoke %+v", got)
	}
	e.wantCode(k.Secret, []string{"read:data"}, "vault-1", wire.CodeRevoked)
	e.must(404, "GET", "/v1/keys/key_nope", nil, nil)
	e.must(404, "DELETE", "/v1/keys/key_nope", nil, nil)
}

func TestStatusTransitions(t *testing.T) {
	e := newEnv(t)
	e.createApp("acme", "read")
	read := []string{"read"}

	t.Run("disable and enable", func(t *testing.T) {
		k := e.createKey("acme", wire.CreateKey{Scopes: read})
		e.must(200, "PATCH", "/v1/keys/"+k.Key.ID, `{"enabled":false}`, nil)
		e.wantCode(k.Secret, read, "", wire.CodeDisabled)
		e.must(200, "PATCH", "/v1/keys/"+k.Key.ID, `{"enabled":true}`, nil)
		e.wantCode(k.Secret, read, "", wire.CodeValid)
		disabled := e.createKey("acme", wire.CreateKey{Scopes: read, Enabled: new(bool)})
		e.wantCode(disabled.Secret, read, "", wire.CodeDisabled)
	})
	t.Run("expire", func(t *testing.T) {
		k := e.createKey("acme", wire.CreateKey{Scopes: read, ExpiresAt: e.clock.Now().Add(time.Hour).Format(time.RFC3339)})
		e.clock.Advance(59 * time.Minute)
		e.wantCode(k.Secret, read, "", wire.CodeValid)
		e.clock.Advance(time.Minute)
		e.wantCode(k.Secret, read, "", wire.CodeExpired)
		var got wire.Key
		e.must(200, "GET", "/v1/keys/"+k.Key.ID, nil, &got)
		if got.Status != "expired" {
			t.Fatalf("status %s", got.Status)
		}
	})
	t.Run("revoke beats disable", func(t *testing.T) {
		k := e.createKey("acme", wire.CreateKey{Scopes: read, Enabled: new(bool)})
		e.must(204, "DELETE", "/v1/keys/"+k.Key.ID, nil, nil)
		e.wantCode(k.Secret, read, "", wire.CodeRevoked)
		e.must(409, "PATCH", "/v1/keys/"+k.Key.ID, `{"enabled":true}`, nil)
		e.must(409, "POST", "/v1/keys/"+k.Key.ID+"/rotate", `{"grace_period":"0s"}`, nil)
	})
	t.Run("rotate with grace", func(t *testing.T) {
		k := e.createKey("acme", wire.CreateKey{Scopes: read})
		var r wire.KeyWithSecret
		e.must(200, "POST", "/v1/keys/"+k.Key.ID+"/rotate", `{"grace_period":"1h"}`, &r)
		if r.Key.ID != k.Key.ID || r.Secret == k.Secret || r.Key.RotatedAt == nil || r.Key.Start == k.Key.Start {
			t.Fatalf("rotated %+v", r.Key)
		}
		e.wantCode(r.Secret, read, "", wire.CodeValid)
		e.clock.Advance(59 * time.Minute)
		e.wantCode(k.Secret, read, "", wire.CodeValid)
		e.clock.Advance(time.Minute)
		e.wantCode(k.Secret, read, "", wire.CodeNotFound)
		e.wantCode(r.Secret, read, "", wire.CodeValid)
	})
	t.Run("rotate without grace", func(t *testing.T) {
		k := e.createKey("acme", wire.CreateKey{Scopes: read})
		var r wire.KeyWithSecret
		e.must(200, "POST", "/v1/keys/"+k.Key.ID+"/rotate", `{"grace_period":"0s"}`, &r)
		e.wantCode(k.Secret, read, "", wire.CodeNotFound)
		e.wantCode(r.Secret, read, "", wire.CodeValid)
		e.must(200, "POST", "/v1/keys/"+k.Key.ID+"/rotate", nil, &r) // empty body: no grace
	})
	t.Run("malformed keys never valid", func(t *testing.T) {
		k := e.createKey("acme", wire.CreateKey{Scopes: read})
		tampered := []byte(k.Secret)
		tampered[len("acme_live_")+2] ^= 1
		for _, bad := range []string{"", "nope", string(tampered), k.Secret + "x", strings.ToUpper(k.Secret)} {
			e.wantCode(bad, read, "", wire.CodeNotFound)
		}
	})
}

func TestRateLimit(t *testing.T) {
	e := newEnv(t)
	e.must(201, "POST", "/v1/apps", wire.CreateApp{Slug: "acme", Name: "Acme", Scopes: []string{"read"}, KeyPrefix: "acme",
		RateLimit: &wire.RateLimit{Requests: 3, Window: "1m"}}, nil)
	k := e.createKey("acme", wire.CreateKey{Scopes: []string{"read"}})
	other := e.createKey("acme", wire.CreateKey{Scopes: []string{"read"}})
	for i := range 3 {
		v := e.verify(k.Secret, nil, "")
		if !v.Valid || v.RateLimit.Limit != 3 || v.RateLimit.Remaining != 2-i {
			t.Fatalf("verify %d: %+v %+v", i, v, v.RateLimit)
		}
	}
	v := e.verify(k.Secret, nil, "")
	if v.Code != wire.CodeRateLimited || v.RateLimit.Remaining != 0 || !v.RateLimit.Reset.After(e.clock.Now()) {
		t.Fatalf("4th verify %+v", v)
	}
	e.wantCode(other.Secret, nil, "", wire.CodeValid) // counted per key
	// A sliding window, not a bucket: nothing comes back before the window has passed...
	e.clock.Advance(50 * time.Second)
	e.wantCode(k.Secret, nil, "", wire.CodeRateLimited)
	// ...and at reset, the verifies counted at the start stop counting.
	e.clock.Advance(v.RateLimit.Reset.Sub(e.clock.Now()))
	for range 3 {
		e.wantCode(k.Secret, nil, "", wire.CodeValid)
	}
	e.wantCode(k.Secret, nil, "", wire.CodeRateLimited)
	// Disabling a key drops its counts; enabled again, it starts afresh.
	e.must(200, "PATCH", "/v1/keys/"+k.Key.ID, `{"enabled":false}`, nil)
	e.must(200, "PATCH", "/v1/keys/"+k.Key.ID, `{"enabled":true}`, nil)
	e.wantCode(k.Secret, nil, "", wire.CodeValid)
}

func TestLastUsedAt(t *testing.T) {
	e := newEnv(t)
	e.createApp("acme", "read")
	k := e.createKey("acme", wire.CreateKey{Scopes: []string{"read"}})
	e.wantCode(k.Secret, nil, "", wire.CodeValid)
	var got wire.Key
	e.must(200, "GET", "/v1/keys/"+k.Key.ID, nil, &got)
	if got.LastUsedAt != nil {
		t.Fatal("verify wrote last_used_at on the request path")
	}
	e.svc.FlushUsage(context.Background())
	e.must(200, "GET", "/v1/keys/"+k.Key.ID, nil, &got)
	first := e.clock.Now()
	if got.LastUsedAt == nil || !got.LastUsedAt.Equal(first) {
		t.Fatalf("last_used_at %v, want %v", got.LastUsedAt, first)
	}
	// Within UsageResolution of the stored time, uses are not written again.
	e.clock.Advance(service.UsageResolution - time.Second)
	e.wantCode(k.Secret, nil, "", wire.CodeValid)
	e.svc.FlushUsage(context.Background())
	e.must(200, "GET", "/v1/keys/"+k.Key.ID, nil, &got)
	if !got.LastUsedAt.Equal(first) {
		t.Fatalf("last_used_at moved to %v within %v of the stored %v", got.LastUsedAt, service.UsageResolution, first)
	}
	// Past it, the next use is.
	e.clock.Advance(2 * time.Second)
	e.wantCode(k.Secret, nil, "", wire.CodeValid)
	e.svc.FlushUsage(context.Background())
	e.must(200, "GET", "/v1/keys/"+k.Key.ID, nil, &got)
	if !got.LastUsedAt.Equal(e.clock.Now()) {
		t.Fatalf("last_used_at %v, want %v: a use past the resolution was not written", got.LastUsedAt, e.clock.Now())
	}
}

func TestListKeysPaginationAndFilter(t *testing.T) {
	e := newEnv(t)
	e.createApp("acme", "read")
	var ids []string
	for i := range 7 {
		k := e.createKey("acme", wire.CreateKey{Scopes: []string{"read"}})
		ids = append(ids, k.Key.ID)
		if i%3 == 0 {
			e.must(204, "DELETE", "/v1/keys/"+k.Key.ID, nil, nil)
		}
		e.clock.Advance(time.Millisecond)
	}
	var seen []string
	cursor := ""
	for pages := 0; ; pages++ {
		var page wire.KeyList
		e.must(200, "GET", "/v1/apps/acme/keys?limit=3&cursor="+cursor, nil, &page)
		for _, k := range page.Keys {
			seen = append(seen, k.ID)
		}
		if page.NextCursor == "" {
			break
		}
		cursor = page.NextCursor
		if pages > 5 {
			t.Fatal("pagination does not end")
		}
	}
	if !slices.Equal(seen, ids) {
		t.Fatalf("paged %v, want %v (creation order)", seen, ids)
	}
	var revoked wire.KeyList
	e.must(200, "GET", "/v1/apps/acme/keys?status=revoked", nil, &revoked)
	if len(revoked.Keys) != 3 {
		t.Fatalf("%d revoked, want 3", len(revoked.Keys))
	}
	e.must(400, "GET", "/v1/apps/acme/keys?status=bogus", nil, nil)
	e.must(400, "GET", "/v1/apps/acme/keys?limit=0", nil, nil)
	e.must(400, "GET", "/v1/apps/acme/keys?cursor=!!!", nil, nil)
	// Valid base64 that no page gave out is refused as events refuse it, not
	// read as "after this id" (which answered an empty page).
	for _, cursor := range []string{"zzz", "a2V5", base64.RawURLEncoding.EncodeToString([]byte("key_!"))} {
		if r := e.do(rootToken, "GET", "/v1/apps/acme/keys?cursor="+cursor, nil); r.status != 400 || r.problem(t).Code != "invalid_query" {
			t.Errorf("cursor %q: %d %s, want 400 invalid_query", cursor, r.status, r.body)
		}
	}
}

func TestAppConflicts(t *testing.T) {
	e := newEnv(t)
	e.createApp("acme", "read", "write")
	k := e.createKey("acme", wire.CreateKey{Scopes: []string{"write"}})
	r := e.do(rootToken, "PATCH", "/v1/apps/acme", `{"scopes":["read"]}`)
	if p := r.problem(t); r.status != 409 || p.Code != "live_keys" || !slices.Equal(p.KeyIDs, []string{k.Key.ID}) {
		t.Fatalf("narrowing: %d %s", r.status, r.body)
	}
	r = e.do(rootToken, "DELETE", "/v1/apps/acme", nil)
	if p := r.problem(t); r.status != 409 || !slices.Contains(p.KeyIDs, k.Key.ID) {
		t.Fatalf("delete with live keys: %d %s", r.status, r.body)
	}
	e.wantCode(k.Secret, nil, "", wire.CodeValid) // the refused delete changed nothing
	e.must(204, "DELETE", "/v1/apps/acme?force=true", nil, nil)
	e.wantCode(k.Secret, nil, "", wire.CodeNotFound)
	e.must(404, "GET", "/v1/keys/"+k.Key.ID, nil, nil)
	// The reserved management app cannot be changed.
	e.must(403, "PATCH", "/v1/apps/keymint", `{"name":"x"}`, nil)
	e.must(403, "DELETE", "/v1/apps/keymint?force=true", nil, nil)
}

func TestBadInput(t *testing.T) {
	e := newEnv(t)
	e.createApp("acme", "read", "write")
	k := e.createKey("acme", wire.CreateKey{Scopes: []string{"read"}})
	past := e.clock.Now().Add(-time.Second).Format(time.RFC3339)
	big := `{"name":"` + strings.Repeat("x", 70<<10) + `"}`
	cases := []struct {
		name, method, path, body string
		status                   int
		code, field              string
	}{
		{"unknown field", "POST", "/v1/apps", `{"slug":"x1","name":"x","scopes":["a"],"key_prefix":"xx","color":"red"}`, 400, "invalid_json", ""},
		{"not json", "POST", "/v1/apps", `slug=x`, 400, "invalid_json", ""},
		{"empty body", "POST", "/v1/apps", ``, 400, "invalid_json", ""},
		{"null body", "POST", "/v1/apps", ` null `, 400, "invalid_json", ""}, // not taken as {}
		{"trailing data", "POST", "/v1/apps", `{"slug":"x1","name":"x","scopes":["a"],"key_prefix":"xx"} {}`, 400, "invalid_json", ""},
		{"oversized", "POST", "/v1/apps", big, 413, "body_too_large", ""},
		{"empty slug", "POST", "/v1/apps", `{"slug":"","name":"x","scopes":["a"],"key_prefix":"xx"}`, 422, "validation_failed", "slug"},
		{"bad slug", "POST", "/v1/apps", `{"slug":"Has Space","name":"x","scopes":["a"],"key_prefix":"xx"}`, 422, "validation_failed", "slug"},
		{"duplicate slug", "POST", "/v1/apps", `{"slug":"acme","name":"x","scopes":["a"],"key_prefix":"other"}`, 409, "slug_taken", ""},
		{"duplicate prefix", "POST", "/v1/apps", `{"slug":"acme2","name":"x","scopes":["a"],"key_prefix":"acme_live"}`, 409, "key_prefix_taken", ""},
		{"reserved slug", "POST", "/v1/apps", `{"slug":"keymint","name":"x","scopes":["a"],"key_prefix":"kmx"}`, 409, "slug_taken", ""},
		{"no scopes", "POST", "/v1/apps", `{"slug":"x1","name":"x","scopes":[],"key_prefix":"xx"}`, 422, "validation_failed", "scopes"},
		{"bad prefix", "POST", "/v1/apps", `{"slug":"x1","name":"x","scopes":["a"],"key_prefix":"Bad-Prefix"}`, 422, "validation_failed", "key_prefix"},
		{"bad window", "POST", "/v1/apps", `{"slug":"x1","name":"x","scopes":["a"],"key_prefix":"xx","rate_limit":{"requests":1,"window":"soon"}}`, 422, "validation_failed", "rate_limit.window"},
		{"window too long", "POST", "/v1/apps", `{"slug":"x1","name":"x","scopes":["a"],"key_prefix":"xx","rate_limit":{"requests":1,"window":"721h"}}`, 422, "validation_failed", "rate_limit.window"},
		{"zero requests", "POST", "/v1/apps", `{"slug":"x1","name":"x","scopes":["a"],"key_prefix":"xx","rate_limit":{"requests":0,"window":"1m"}}`, 422, "validation_failed", "rate_limit.requests"},
		{"immutable prefix", "PATCH", "/v1/apps/acme", `{"key_prefix":"new"}`, 422, "validation_failed", "key_prefix"},
		{"unknown app", "GET", "/v1/apps/nope", ``, 404, "not_found", ""},
		{"key for unknown app", "POST", "/v1/apps/nope/keys", `{"name":"k","scopes":["read"]}`, 404, "not_found", ""},
		{"scope outside app", "POST", "/v1/apps/acme/keys", `{"name":"k","scopes":["admin"]}`, 422, "validation_failed", "scopes"},
		{"past expiry", "POST", "/v1/apps/acme/keys", `{"name":"k","scopes":["read"],"expires_at":"` + past + `"}`, 422, "validation_failed", "expires_at"},
		{"bad expiry", "POST", "/v1/apps/acme/keys", `{"name":"k","scopes":["read"],"expires_at":"tomorrow"}`, 422, "validation_failed", "expires_at"},
		{"key without name", "POST", "/v1/apps/acme/keys", `{"scopes":["read"]}`, 422, "validation_failed", "name"},
		{"immutable scopes", "PATCH", "/v1/keys/" + k.Key.ID, `{"scopes":["write"]}`, 422, "validation_failed", "scopes"},
		{"bad grace", "POST", "/v1/keys/" + k.Key.ID + "/rotate", `{"grace_period":"1 hour"}`, 422, "validation_failed", "grace_period"},
		{"negative grace", "POST", "/v1/keys/" + k.Key.ID + "/rotate", `{"grace_period":"-1h"}`, 422, "validation_failed", "grace_period"},
		{"unknown key", "POST", "/v1/keys/key_nope/rotate", `{"grace_period":"1h"}`, 404, "not_found", ""},
		{"bad force", "DELETE", "/v1/apps/acme?force=yes", ``, 400, "invalid_query", ""},
		{"no route", "GET", "/v1/nothing", ``, 404, "no_route", ""},
		// Strict JSON: what a proxy or WAF reads is what keymint acts on.
		{"name in other case", "POST", "/v1/apps/acme/keys", `{"name":"k","Scopes":["write"]}`, 400, "invalid_json", ""},
		{"duplicate name", "POST", "/v1/apps/acme/keys", `{"name":"k","scopes":["read"],"scopes":["write"]}`, 400, "invalid_json", ""},
		{"unknown nested field", "POST", "/v1/apps", `{"slug":"x1","name":"x","scopes":["a"],"key_prefix":"xx","rate_limit":{"requests":1,"window":"1m","burst":9}}`, 400, "invalid_json", ""},
		{"unknown nested field in patch", "PATCH", "/v1/apps/acme", `{"rate_limit":{"requests":1,"window":"1m","Window":"1h"}}`, 400, "invalid_json", ""},
		{"invalid utf-8", "POST", "/v1/apps/acme/keys", "{\"name\":\"k\xff\",\"scopes\":[\"read\"]}", 400, "invalid_json", ""},
		{"NUL in name", "POST", "/v1/apps/acme/keys", `{"name":"k\u0000","scopes":["read"]}`, 422, "validation_failed", "name"},
		{"escape in owner", "POST", "/v1/apps/acme/keys", `{"name":"k","owner":"\u001b[31mroot","scopes":["read"]}`, 422, "validation_failed", "owner"},
		{"newline in resource", "POST", "/v1/apps/acme/keys", `{"name":"k","scopes":["read"],"resources":["a\nb"]}`, 422, "validation_failed", "resources"},
		{"control in metadata", "POST", "/v1/apps/acme/keys", `{"name":"k","scopes":["read"],"metadata":{"a":"\u0007"}}`, 422, "validation_failed", "metadata.a"},
		{"control in app name", "PATCH", "/v1/apps/acme", `{"name":"\u0000"}`, 422, "validation_failed", "name"},
		// Times past int64 nanoseconds would read back as another time.
		{"expiry past the storable range", "POST", "/v1/apps/acme/keys", `{"name":"k","scopes":["read"],"expires_at":"3000-01-01T00:00:00Z"}`, 422, "validation_failed", "expires_at"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := e.do(rootToken, c.method, c.path, c.body)
			if r.status != c.status || r.header.Get("Content-Type") != "application/problem+json" {
				t.Fatalf("status %d (%s), want %d problem+json: %s", r.status, r.header.Get("Content-Type"), c.status, r.body)
			}
			p := r.problem(t)
			if p.Code != c.code || p.Status != c.status || p.Detail == "" || p.Type == "" {
				t.Fatalf("problem %+v, want code %s", p, c.code)
			}
			if c.field != "" && !slices.ContainsFunc(p.Errors, func(f wire.FieldError) bool { return f.Field == c.field }) {
				t.Fatalf("no error for field %s in %+v", c.field, p.Errors)
			}
		})
	}
	// Nothing half-written: the only app is acme (and keymint), with one key, unchanged.
	var apps wire.AppList
	e.must(200, "GET", "/v1/apps", nil, &apps)
	var keys wire.KeyList
	e.must(200, "GET", "/v1/apps/acme/keys", nil, &keys)
	if len(apps.Apps) != 2 || len(keys.Keys) != 1 || len(keys.Keys[0].Scopes) != 1 || keys.Keys[0].RotatedAt != nil {
		t.Fatalf("bad input left %d apps, %d keys: %+v", len(apps.Apps), len(keys.Keys), keys.Keys)
	}
}

func TestIdempotentCreates(t *testing.T) {
	e := newEnv(t)
	body := `{"slug":"acme","name":"Acme","scopes":["read"],"key_prefix":"acme"}`
	first := e.do(rootToken, "POST", "/v1/apps", body, wire.IdempotencyHeader, "app-1")
	retry := e.do(rootToken, "POST", "/v1/apps", body, wire.IdempotencyHeader, "app-1")
	if first.status != 201 || retry.status != 201 || retry.header.Get(wire.ReplayedHeader) != "true" {
		t.Fatalf("app create %d, retry %d %s", first.status, retry.status, retry.body)
	}
	keyBody := `{"name":"k","scopes":["read"]}`
	r1 := e.do(rootToken, "POST", "/v1/apps/acme/keys", keyBody, wire.IdempotencyHeader, "key-1")
	r2 := e.do(rootToken, "POST", "/v1/apps/acme/keys", keyBody, wire.IdempotencyHeader, "key-1")
	var k1, k2 wire.KeyWithSecret
	r1.decode(t, &k1)
	r2.decode(t, &k2)
	if r2.status != 201 || r2.header.Get(wire.ReplayedHeader) != "true" || k1.Key.ID != k2.Key.ID || k1.Secret == k2.Secret {
		t.Fatalf("key retry: %d %+v vs %+v", r2.status, k1.Key, k2.Key)
	}
	// The lost first secret is dead, the retry's works, and there is one key.
	e.wantCode(k1.Secret, nil, "", wire.CodeNotFound)
	e.wantCode(k2.Secret, nil, "", wire.CodeValid)
	var list wire.KeyList
	e.must(200, "GET", "/v1/apps/acme/keys", nil, &list)
	if len(list.Keys) != 1 {
		t.Fatalf("%d keys after a retried create", len(list.Keys))
	}
	// The same idempotency key for a different request is refused.
	r := e.do(rootToken, "POST", "/v1/apps/acme/keys", `{"name":"other","scopes":["read"]}`, wire.IdempotencyHeader, "key-1")
	if r.status != 422 || r.problem(t).Code != "idempotency_key_reused" {
		t.Fatalf("reuse: %d %s", r.status, r.body)
	}
	e.must(204, "DELETE", "/v1/keys/"+k1.Key.ID, nil, nil)
	r = e.do(rootToken, "POST", "/v1/apps/acme/keys", keyBody, wire.IdempotencyHeader, "key-1")
	if r.status != 409 {
		t.Fatalf("retry after revoke: %d %s", r.status, r.body)
	}
}

func TestConcurrentCreatesAndRevokes(t *testing.T) {
	e := newEnv(t)
	e.createApp("acme", "read")
	const n = 24
	var wg sync.WaitGroup
	secrets := make([]wire.KeyWithSecret, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			secrets[i] = e.createKey("acme", wire.CreateKey{Scopes: []string{"read"}})
		}()
	}
	wg.Wait()
	// Half revoked concurrently, some twice; concurrent retries of one idempotent create.
	results := make(chan wire.KeyWithSecret, 8)
	for i := range n {
		if i%2 == 0 {
			for range 2 {
				wg.Add(1)
				go func() { defer wg.Done(); e.must(204, "DELETE", "/v1/keys/"+secrets[i].Key.ID, nil, nil) }()
			}
		}
	}
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := e.do(rootToken, "POST", "/v1/apps/acme/keys", `{"name":"once","scopes":["read"]}`, wire.IdempotencyHeader, "same")
			var k wire.KeyWithSecret
			r.decode(t, &k)
			results <- k
		}()
	}
	wg.Wait()
	close(results)
	ids := map[string]bool{}
	valid := 0
	for k := range results {
		ids[k.Key.ID] = true
		if e.verify(k.Secret, nil, "").Valid {
			valid++
		}
	}
	if len(ids) != 1 || valid != 1 {
		t.Fatalf("8 concurrent retries made %d keys with %d valid secrets, want 1 and 1", len(ids), valid)
	}
	for i, k := range secrets {
		want := wire.CodeValid
		if i%2 == 0 {
			want = wire.CodeRevoked
		}
		e.wantCode(k.Secret, nil, "", want)
	}
}

func TestNoPlaintextSecretInDatabase(t *testing.T) {
	e := newEnv(t)
	e.createApp("acme", "read")
	var secrets []string
	for range 5 {
		k := e.createKey("acme", wire.CreateKey{Scopes: []string{"read"}})
		var r wire.KeyWithSecret
		e.must(200, "POST", "/v1/keys/"+k.Key.ID+"/rotate", `{"grace_period":"1h"}`, &r)
		secrets = append(secrets, k.Secret, r.Secret)
	}
	r := e.do(rootToken, "POST", "/v1/apps/acme/keys", `{"name":"i","scopes":["read"]}`, wire.IdempotencyHeader, "x")
	var k wire.KeyWithSecret
	r.decode(t, &k)
	secrets = append(secrets, k.Secret)
	var data []byte
	for _, suffix := range []string{"", "-wal", "-shm"} {
		b, err := os.ReadFile(e.dbPath + suffix)
		if err != nil && !os.IsNotExist(err) {
			t.Fatal(err)
		}
		data = append(data, b...)
	}
	if len(data) == 0 {
		t.Fatal("read no database bytes")
	}
	for _, s := range secrets {
		random := s[len("acme_live_"):]
		if bytes.Contains(data, []byte(random)) || bytes.Contains(data, []byte(random[6:])) {
			t.Fatalf("a secret's random part is in the database file")
		}
	}
	if !bytes.Contains(data, []byte(secrets[0][:len("acme_live_")+6])) {
		t.Fatal("the start of a key is not in the database: the scan reads the wrong bytes")
	}
}

// Concurrent creates that share an Idempotency-Key but not a body: one wins,
// the others are told the key was used for a different request. None of them
// may replay (and so rotate) the winner's key.
func TestIdempotencyRaceWithDifferentBodies(t *testing.T) {
	e := newEnv(t)
	e.createApp("acme", "read")
	for round := range 10 {
		idem := fmt.Sprintf("race-%d", round)
		var wg sync.WaitGroup
		type result struct {
			status int
			name   string
			secret string
		}
		results := make(chan result, 8)
		for i := range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				name := fmt.Sprintf("body-%d", i%2)
				r := e.do(rootToken, "POST", "/v1/apps/acme/keys", `{"name":"`+name+`","scopes":["read"]}`, wire.IdempotencyHeader, idem)
				var k wire.KeyWithSecret
				if r.status == 201 {
					r.decode(t, &k)
				}
				results <- result{r.status, name, k.Secret}
			}()
		}
		wg.Wait()
		close(results)
		winner := ""
		for res := range results {
			switch res.status {
			case 201:
				if winner != "" && winner != res.name {
					t.Fatalf("round %d: both bodies got 201 for one Idempotency-Key", round)
				}
				winner = res.name
			case 422:
			default:
				t.Fatalf("round %d: status %d", round, res.status)
			}
		}
		if winner == "" {
			t.Fatalf("round %d: no request won", round)
		}
	}
}

func TestIdempotentRotate(t *testing.T) {
	e := newEnv(t)
	e.createApp("acme", "read")
	k := e.createKey("acme", wire.CreateKey{Scopes: []string{"read"}})
	path := "/v1/keys/" + k.Key.ID + "/rotate"
	first := e.do(rootToken, "POST", path, `{"grace_period":"1h"}`, wire.IdempotencyHeader, "rot-1")
	e.clock.Advance(time.Minute)
	retry := e.do(rootToken, "POST", path, `{"grace_period": "60m"}`, wire.IdempotencyHeader, "rot-1")
	var r1, r2 wire.KeyWithSecret
	first.decode(t, &r1)
	retry.decode(t, &r2)
	if first.status != 200 || retry.status != 200 || retry.header.Get(wire.ReplayedHeader) != "true" ||
		first.header.Get(wire.ReplayedHeader) != "" || r1.Key.ID != r2.Key.ID || r1.Secret == r2.Secret {
		t.Fatalf("rotate %d, retry %d %s", first.status, retry.status, retry.body)
	}
	if !r2.Key.RotatedAt.Equal(*r1.Key.RotatedAt) {
		t.Fatalf("the retry moved rotated_at from %v to %v: it rotated again", r1.Key.RotatedAt, r2.Key.RotatedAt)
	}
	// One new secret works, the retrier's; the pre-rotation one keeps its grace.
	e.wantCode(r1.Secret, nil, "", wire.CodeNotFound)
	e.wantCode(r2.Secret, nil, "", wire.CodeValid)
	e.wantCode(k.Secret, nil, "", wire.CodeValid)
	e.clock.Advance(59 * time.Minute)
	e.wantCode(k.Secret, nil, "", wire.CodeNotFound)
	e.wantCode(r2.Secret, nil, "", wire.CodeValid)
	// The same key with another grace is another request.
	if r := e.do(rootToken, "POST", path, `{"grace_period":"2h"}`, wire.IdempotencyHeader, "rot-1"); r.status != 422 || r.problem(t).Code != "idempotency_key_reused" {
		t.Fatalf("reuse for another grace: %d %s", r.status, r.body)
	}
	// Once the key is rotated again, the first rotation's secret is history.
	e.must(200, "POST", path, `{"grace_period":"0s"}`, nil)
	if r := e.do(rootToken, "POST", path, `{"grace_period":"1h"}`, wire.IdempotencyHeader, "rot-1"); r.status != 409 || r.problem(t).Code != "idempotency_key_used" {
		t.Fatalf("retry after a later rotation: %d %s", r.status, r.body)
	}
	// A create's retry after a rotation is refused too: it would end the rotated secret.
	body := `{"name":"c","scopes":["read"]}`
	var c wire.KeyWithSecret
	e.do(rootToken, "POST", "/v1/apps/acme/keys", body, wire.IdempotencyHeader, "create-1").decode(t, &c)
	var rotated wire.KeyWithSecret
	e.must(200, "POST", "/v1/keys/"+c.Key.ID+"/rotate", `{"grace_period":"0s"}`, &rotated)
	if r := e.do(rootToken, "POST", "/v1/apps/acme/keys", body, wire.IdempotencyHeader, "create-1"); r.status != 409 || r.problem(t).Code != "idempotency_key_used" {
		t.Fatalf("create retry after a rotation: %d %s", r.status, r.body)
	}
	e.wantCode(rotated.Secret, nil, "", wire.CodeValid)
}

// The typed client retries a rotation whose answer was lost (here a proxy
// lets the rotation reach the server, then answers 502): exactly one new
// secret is valid, the one the client returns, and the old one keeps its grace.
func TestClientRotateRetryAfterLostResponse(t *testing.T) {
	e := newEnv(t)
	e.createApp("acme", "read")
	k := e.createKey("acme", wire.CreateKey{Scopes: []string{"read"}})
	var lost wire.KeyWithSecret
	var rotations int
	proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !strings.HasSuffix(r.URL.Path, "/rotate") {
			e.srv.ServeHTTP(w, r)
			return
		}
		rotations++
		if rotations > 1 {
			e.srv.ServeHTTP(w, r)
			return
		}
		rec := httptest.NewRecorder()
		e.srv.ServeHTTP(rec, r)
		json.Unmarshal(rec.Body.Bytes(), &lost)
		w.WriteHeader(http.StatusBadGateway)
	}))
	defer proxy.Close()
	c, err := keymint.New(proxy.URL, rootToken)
	if err != nil {
		t.Fatal(err)
	}
	c.MinBackoff = time.Millisecond
	got, err := c.RotateKey(context.Background(), k.Key.ID, wire.RotateKey{GracePeriod: "1h"})
	if err != nil {
		t.Fatal(err)
	}
	if rotations != 2 || lost.Secret == "" || got.Secret == lost.Secret {
		t.Fatalf("%d rotation requests; lost secret %q", rotations, lost.Key.Start)
	}
	e.wantCode(lost.Secret, nil, "", wire.CodeNotFound)
	e.wantCode(got.Secret, nil, "", wire.CodeValid)
	e.wantCode(k.Secret, nil, "", wire.CodeValid)
}

// A time up to the storable bound reads back exactly, to the nanosecond.
func TestExpiryReadsBackExactly(t *testing.T) {
	e := newEnv(t)
	e.createApp("acme", "read")
	for _, at := range []string{"2262-04-11T23:47:16.854775807Z", "2031-02-03T04:05:06.123456789Z", "2099-12-31T23:59:59+02:00"} {
		k := e.createKey("acme", wire.CreateKey{Scopes: []string{"read"}, ExpiresAt: at})
		var got wire.Key
		e.must(200, "GET", "/v1/keys/"+k.Key.ID, nil, &got)
		want, _ := time.Parse(time.RFC3339Nano, at)
		if got.ExpiresAt == nil || !got.ExpiresAt.Equal(want) {
			t.Errorf("expires_at %s read back as %v", at, got.ExpiresAt)
		}
	}
	r := e.do(rootToken, "POST", "/v1/apps/acme/keys", `{"name":"k","scopes":["read"],"expires_at":"2262-04-11T23:47:16.854775808Z"}`)
	if p := r.problem(t); r.status != 422 || !strings.Contains(p.Errors[0].Message, "2262-04-11T23:47:16.854775807Z") {
		t.Fatalf("one nanosecond past the bound: %d %s", r.status, r.body)
	}
}

func TestHTTPEdges(t *testing.T) {
	e := newEnv(t)
	e.createApp("acme", "read")
	k := e.createKey("acme", wire.CreateKey{Scopes: []string{"read"}})
	problem := func(r response, status int, code string) {
		t.Helper()
		if r.status != status || r.header.Get("Content-Type") != "application/problem+json" || r.problem(t).Code != code {
			t.Fatalf("%d %s %s, want %d problem+json %s", r.status, r.header.Get("Content-Type"), r.body, status, code)
		}
	}
	// A known path with the wrong method is 405 with Allow.
	r := e.do(rootToken, "PUT", "/v1/apps", `{}`)
	problem(r, 405, "method_not_allowed")
	if r.header.Get("Allow") != "GET, HEAD, POST" {
		t.Fatalf("Allow: %q", r.header.Get("Allow"))
	}
	r = e.do(rootToken, "POST", "/v1/keys/"+k.Key.ID, `{}`)
	problem(r, 405, "method_not_allowed")
	if r.header.Get("Allow") != "GET, HEAD, PATCH, DELETE" {
		t.Fatalf("Allow: %q", r.header.Get("Allow"))
	}
	// Paths ServeMux would redirect (with an HTML body) are problem JSON.
	for _, p := range []string{"/v1//apps", "/v1/./apps", "/v1/apps/", "/v1/apps/../apps"} {
		req, _ := http.NewRequest("GET", e.http.URL+p, nil)
		req.Header.Set("Authorization", "Bearer "+rootToken)
		res, err := (&http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}).Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != 404 || res.Header.Get("Content-Type") != "application/problem+json" {
			t.Fatalf("GET %s: %d %s", p, res.StatusCode, res.Header.Get("Content-Type"))
		}
	}
	// The bearer scheme is case-insensitive (RFC 9110).
	for _, scheme := range []string{"bearer", "BEARER", "Bearer"} {
		req, _ := http.NewRequest("GET", e.http.URL+"/v1/whoami", nil)
		req.Header.Set("Authorization", scheme+" "+rootToken)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != 200 {
			t.Fatalf("scheme %q: %d", scheme, res.StatusCode)
		}
	}
	problem(e.do("", "GET", "/v1/whoami", nil, "Authorization", "Basic "+rootToken), 401, "unauthenticated")
	// A body must be JSON.
	for _, ct := range []string{"text/plain", "application/x-www-form-urlencoded", ""} {
		req, _ := http.NewRequest("POST", e.http.URL+"/v1/apps/acme/keys", strings.NewReader(`{"name":"k","scopes":["read"]}`))
		req.Header.Set("Authorization", "Bearer "+rootToken)
		if ct != "" {
			req.Header.Set("Content-Type", ct)
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != 415 {
			t.Fatalf("Content-Type %q: %d", ct, res.StatusCode)
		}
	}
	if r := e.do(rootToken, "POST", "/v1/apps/acme/keys", `{"name":"k","scopes":["read"]}`, "Content-Type", "application/json; charset=utf-8"); r.status != 201 {
		t.Fatalf("JSON with a charset: %d %s", r.status, r.body)
	}
	// A rotation may have no body at all, and then needs no Content-Type.
	req, _ := http.NewRequest("POST", e.http.URL+"/v1/keys/"+k.Key.ID+"/rotate", nil)
	req.Header.Set("Authorization", "Bearer "+rootToken)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != 200 {
		t.Fatalf("bodiless rotate: %d", res.StatusCode)
	}
}

// A secret sent in a path is neither echoed in the answer nor logged whole.
func TestSecretInPathNotEchoedOrLogged(t *testing.T) {
	var logs strings.Builder
	e := newEnv(t)
	e.srv = api.New(e.svc, slog.New(slog.NewTextHandler(&syncWriter{w: &logs}, nil)), e.metrics)
	hs := httptest.NewServer(e.srv)
	defer hs.Close()
	e.http = hs
	e.createApp("acme", "read")
	k := e.createKey("acme", wire.CreateKey{Scopes: []string{"read"}})
	for _, p := range []string{"/v1/verify/" + k.Secret, "/v1/keys/" + k.Secret, "/v1/" + k.Secret + "/x"} {
		r := e.do(rootToken, "POST", p, `{}`)
		if r.status < 400 || strings.Contains(string(r.body), k.Secret[len(k.Key.Start):]) {
			t.Fatalf("POST %s: %d echoes the secret: %s", keyformat.Start(k.Secret), r.status, r.body)
		}
	}
	if strings.Contains(logs.String(), k.Secret[len(k.Key.Start):]) {
		t.Fatalf("the secret reached the log:\n%s", logs.String())
	}
	if !strings.Contains(logs.String(), k.Key.Start+"…") {
		t.Fatalf("the redacted path is not in the log:\n%s", logs.String())
	}
}

type syncWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (s *syncWriter) Write(b []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(b)
}

// Idempotency-Keys are remembered for the retention (24h by default), then
// forgotten, whether or not the sweep has run yet.
func TestIdempotencyRetention(t *testing.T) {
	e := newEnv(t)
	e.createApp("acme", "read")
	body := `{"name":"k","scopes":["read"]}`
	create := func(idem string) (wire.KeyWithSecret, bool) {
		t.Helper()
		r := e.do(rootToken, "POST", "/v1/apps/acme/keys", body, wire.IdempotencyHeader, idem)
		if r.status != 201 {
			t.Fatalf("create: %d %s", r.status, r.body)
		}
		var k wire.KeyWithSecret
		r.decode(t, &k)
		return k, r.header.Get(wire.ReplayedHeader) == "true"
	}
	first, _ := create("a")
	e.clock.Advance(24*time.Hour - time.Second)
	if again, replayed := create("a"); !replayed || again.Key.ID != first.Key.ID {
		t.Fatal("a retry within the retention was not replayed")
	}
	e.clock.Advance(2 * time.Second)
	if again, replayed := create("a"); replayed || again.Key.ID == first.Key.ID {
		t.Fatal("a retry after the retention replayed: the key is remembered too long")
	}
	// The sweep removes records past their retention from the store.
	create("c")
	e.clock.Advance(24*time.Hour + time.Second)
	create("d")
	ctx := context.Background()
	if _, err := e.store.GetIdempotency(ctx, "root", "c"); err != nil {
		t.Fatalf("record c before the sweep: %v", err)
	}
	e.svc.Maintain(ctx)
	if _, err := e.store.GetIdempotency(ctx, "root", "c"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("record c after the sweep: %v", err)
	}
	if _, err := e.store.GetIdempotency(ctx, "root", "d"); err != nil {
		t.Fatalf("the sweep removed a record within its retention: %v", err)
	}
}

// A client may supply the secret (Terraform's keymint_secret, so that it is
// in no state): it must be a well-formed key of the app, unused anywhere.
func TestClientSuppliedSecret(t *testing.T) {
	e := newEnv(t)
	e.createApp("acme", "read")
	e.createApp("other", "read")
	mine := keyformat.Generate("acme_live")
	var k wire.KeyWithSecret
	e.must(201, "POST", "/v1/apps/acme/keys", wire.CreateKey{Name: "k", Scopes: []string{"read"}, Secret: mine}, &k)
	if k.Secret != "" || k.Key.Start != keyformat.Start(mine) {
		t.Fatalf("created with a supplied secret: secret %q echoed, start %q", k.Secret, k.Key.Start)
	}
	e.wantCode(mine, nil, "", wire.CodeValid)
	for name, c := range map[string]struct {
		secret string
		status int
		code   string
	}{
		"in use":         {mine, 409, "secret_taken"},
		"another prefix": {keyformat.Generate("other_live"), 422, "validation_failed"},
		"malformed":      {"acme_live_tooshort", 422, "validation_failed"},
		"bad checksum":   {flipLast(mine), 422, "validation_failed"},
	} {
		r := e.do(rootToken, "POST", "/v1/apps/acme/keys", wire.CreateKey{Name: "k2", Scopes: []string{"read"}, Secret: c.secret})
		if p := r.problem(t); r.status != c.status || p.Code != c.code || strings.Contains(string(r.body), k.Key.ID) {
			t.Errorf("%s: %d %s", name, r.status, r.body)
		}
	}
	var list wire.KeyList
	e.must(200, "GET", "/v1/apps/acme/keys", nil, &list)
	if len(list.Keys) != 1 {
		t.Fatalf("refused creates left %d keys", len(list.Keys))
	}
	// Rotating to a supplied secret keeps the old one for the grace period.
	next := keyformat.Generate("acme_live")
	var r wire.KeyWithSecret
	e.must(200, "POST", "/v1/keys/"+k.Key.ID+"/rotate", wire.RotateKey{GracePeriod: "1h", Secret: next}, &r)
	if r.Secret != "" || r.Key.Start != keyformat.Start(next) {
		t.Fatalf("rotated to a supplied secret: %+v", r)
	}
	e.wantCode(next, nil, "", wire.CodeValid)
	e.wantCode(mine, nil, "", wire.CodeValid)
	if r := e.do(rootToken, "POST", "/v1/keys/"+k.Key.ID+"/rotate", wire.RotateKey{Secret: mine}); r.status != 409 || r.problem(t).Code != "secret_taken" {
		t.Fatalf("rotate to a secret in use: %d %s", r.status, r.body)
	}
	// A retried create with a supplied secret replays: the same key, the same secret working.
	third := keyformat.Generate("acme_live")
	body := wire.CreateKey{Name: "k3", Scopes: []string{"read"}, Secret: third}
	var a, b wire.KeyWithSecret
	e.do(rootToken, "POST", "/v1/apps/acme/keys", body, wire.IdempotencyHeader, "s-1").decode(t, &a)
	rb := e.do(rootToken, "POST", "/v1/apps/acme/keys", body, wire.IdempotencyHeader, "s-1")
	rb.decode(t, &b)
	if rb.status != 201 || a.Key.ID != b.Key.ID || rb.header.Get(wire.ReplayedHeader) != "true" {
		t.Fatalf("replayed create with a supplied secret: %d %s", rb.status, rb.body)
	}
	e.wantCode(third, nil, "", wire.CodeValid)
}

// flipLast changes a key's last character, so that its checksum fails.
func flipLast(k string) string {
	last := byte('x')
	if k[len(k)-1] == last {
		last = 'y'
	}
	return k[:len(k)-1] + string(last)
}

// An operator holding a leaked key finds which key it is, sending it in the
// body; what the credential cannot see is not found.
func TestFindKey(t *testing.T) {
	e := newEnv(t)
	e.createApp("acme", "read")
	e.createApp("other", "read")
	k := e.createKey("acme", wire.CreateKey{Scopes: []string{"read"}})
	theirs := e.createKey("other", wire.CreateKey{Scopes: []string{"read"}})
	var got wire.Key
	e.must(200, "POST", "/v1/keys/find", wire.FindKey{Key: k.Secret}, &got)
	if got.ID != k.Key.ID || got.App != "acme" {
		t.Fatalf("found %+v", got)
	}
	// A rotated-out secret still names its key, while it is stored.
	var r wire.KeyWithSecret
	e.must(200, "POST", "/v1/keys/"+k.Key.ID+"/rotate", `{"grace_period":"1h"}`, &r)
	e.must(200, "POST", "/v1/keys/find", wire.FindKey{Key: k.Secret}, &got)
	confined := e.credential([]string{wire.ScopeKeysRead}, "acme")
	for name, c := range map[string]struct {
		token, key string
		status     int
	}{
		"unknown":           {rootToken, keyformat.Generate("acme_live"), 404},
		"malformed":         {rootToken, "nope", 404},
		"another's app":     {confined.Secret, theirs.Secret, 404},
		"its own app":       {confined.Secret, r.Secret, 200},
		"an administrator":  {confined.Secret, e.credential(wire.ManagementScopes).Secret, 404},
		"without keys:read": {e.credential([]string{wire.ScopeVerify}).Secret, k.Secret, 403},
		"an empty key":      {rootToken, "", 422},
	} {
		res := e.do(c.token, "POST", "/v1/keys/find", wire.FindKey{Key: c.key})
		if res.status != c.status || strings.Contains(string(res.body), c.key[min(len(c.key), 16):]) && len(c.key) > 16 {
			t.Errorf("%s: %d %s", name, res.status, res.body)
		}
	}
	// key is required: a body without it is a validation failure naming it.
	res := e.do(rootToken, "POST", "/v1/keys/find", `{}`)
	if p := res.problem(t); res.status != 422 || p.Code != "validation_failed" || len(p.Errors) != 1 || p.Errors[0].Field != "key" {
		t.Fatalf("find {}: %d %s, want 422 validation_failed on key", res.status, res.body)
	}
}
