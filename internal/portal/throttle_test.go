package portal_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/keymint/terraform-provider-keymint/internal/api"
)

// TestFailedSignInsThrottled: failed sign-ins count against the same
// allowance as the API's failed authentications; past it a failed sign-in
// is 429 with Retry-After, a valid token still signs in, and an API call
// with a bad token from the address is 429 too.
func TestFailedSignInsThrottled(t *testing.T) {
	e := newEnv(t)
	b := e.browser()
	b.get("/ui/signin")
	for i := range api.AuthFailureBurst {
		if p := b.post("/ui/signin", url.Values{"token": {"not-a-token"}}); p.status != http.StatusUnauthorized {
			t.Fatalf("failed sign-in %d: %d, want 401", i+1, p.status)
		}
	}
	p := b.post("/ui/signin", url.Values{"token": {"not-a-token"}})
	if p.status != http.StatusTooManyRequests || p.header.Get("Retry-After") != "3" || !strings.Contains(p.body, "Wait 3 seconds") {
		t.Fatalf("past the allowance: %d, Retry-After %q: %s", p.status, p.header.Get("Retry-After"), p.body)
	}
	req, _ := http.NewRequest("GET", e.http.URL+"/v1/whoami", nil)
	req.Header.Set("Authorization", "Bearer not-a-token")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("the API after failed sign-ins: %d, want 429", res.StatusCode)
	}
	b.signIn(rootToken) // a valid token is never throttled
	e.clock.Advance(3 * time.Second)
	if p := e.browser().post("/ui/signin", url.Values{"token": {"not-a-token"}}); p.status != http.StatusUnauthorized {
		t.Fatalf("3s later: %d, want 401", p.status)
	}
}
