package api_test

import (
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/keymint/terraform-provider-keymint/internal/api"
	"github.com/keymint/terraform-provider-keymint/internal/wire"
)

// TestFailedAuthThrottled: past AuthFailureBurst failures a minute, an
// address gets 429 for a bad or missing token, while a valid token from the
// same address (and verify traffic) is served as before, and other
// addresses are not affected.
func TestFailedAuthThrottled(t *testing.T) {
	e := newEnv(t)
	e.srv.Now = e.clock.Now
	app := e.createApp("acme", "read")
	k := e.createKey(app.Slug, wire.CreateKey{Scopes: []string{"read"}})
	verifier := e.credential([]string{"verify"})
	bad := "keymint_not_a_real_token_at_all_1234567890"
	for i := range api.AuthFailureBurst {
		token := bad
		if i%2 == 0 {
			token = "" // a missing token counts too
		}
		if r := e.do(token, "GET", "/v1/whoami", nil); r.status != 401 {
			t.Fatalf("failure %d: status %d, want 401: %s", i+1, r.status, r.body)
		}
	}
	for _, token := range []string{bad, ""} {
		r := e.do(token, "GET", "/v1/apps", nil)
		if r.status != 429 || r.problem(t).Code != "too_many_auth_failures" || r.header.Get("Retry-After") != "3" {
			t.Fatalf("token %q past the burst: status %d, Retry-After %q: %s", token, r.status, r.header.Get("Retry-After"), r.body)
		}
	}
	// Valid tokens are never throttled, not even one first used now.
	if r := e.do(rootToken, "GET", "/v1/whoami", nil); r.status != 200 {
		t.Fatalf("root from a throttled address: %d %s", r.status, r.body)
	}
	var v wire.VerifyResponse
	r := e.do(verifier.Secret, "POST", "/v1/verify", wire.VerifyRequest{Key: k.Secret})
	if r.status != 200 {
		t.Fatalf("verify from a throttled address: %d %s", r.status, r.body)
	}
	if r.decode(t, &v); !v.Valid {
		t.Fatalf("verify: %+v", v)
	}
	// Another address is not throttled.
	req := httptest.NewRequest("GET", "/v1/whoami", nil)
	req.RemoteAddr = "192.0.2.7:41000"
	rec := httptest.NewRecorder()
	e.srv.ServeHTTP(rec, req)
	if rec.Code != 401 {
		t.Fatalf("another address: %d %s", rec.Code, rec.Body)
	}
	// The bucket refills at AuthFailureBurst per AuthFailureWindow: one failure every 3s.
	e.clock.Advance(3 * time.Second)
	if r := e.do(bad, "GET", "/v1/whoami", nil); r.status != 401 {
		t.Fatalf("after 3s: status %d, want 401", r.status)
	}
	if r := e.do(bad, "GET", "/v1/whoami", nil); r.status != 429 {
		t.Fatalf("after the refilled failure: status %d, want 429", r.status)
	}
	e.clock.Advance(api.AuthFailureWindow)
	for i := range api.AuthFailureBurst {
		if r := e.do(bad, "GET", "/v1/whoami", nil); r.status != http.StatusUnauthorized {
			t.Fatalf("a window later, failure %d: status %d, want 401", i+1, r.status)
		}
	}
}
