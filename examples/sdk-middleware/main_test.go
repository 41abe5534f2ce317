package main

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/keymint/terraform-provider-keymint/internal/server/servertest"
	"github.com/keymint/terraform-provider-keymint/keymint"
)

// The example service against a real keymint server: a key that may read
// report q3, and what it gets on each route.
func TestServiceEndToEnd(t *testing.T) {
	ctx := context.Background()
	srv := servertest.New(t)
	root, err := keymint.New(srv.URL, srv.RootToken)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := root.CreateApp(ctx, keymint.CreateApp{Slug: "reports", Name: "Reports", KeyPrefix: "rep_live",
		Scopes: []string{"reports:read", "reports:write"}}); err != nil {
		t.Fatal(err)
	}
	svc, err := root.CreateKey(ctx, keymint.ManagementApp, keymint.CreateKey{Name: "reports-service", Scopes: []string{keymint.ScopeVerify}})
	if err != nil {
		t.Fatal(err)
	}
	key, err := root.CreateKey(ctx, "reports", keymint.CreateKey{Name: "acme", Owner: "acme-corp", Scopes: []string{"reports:read"},
		Resources: []string{"q3"}, Metadata: map[string]string{"plan": "pro"}})
	if err != nil {
		t.Fatal(err)
	}
	c, err := keymint.New(srv.URL, svc.Secret)
	if err != nil {
		t.Fatal(err)
	}
	app := httptest.NewServer(routes(c))
	defer app.Close()

	for _, tc := range []struct {
		method, path, key string
		status            int
		body              string // the body, or the problem's code
	}{
		{"GET", "/reports/q3", key.Secret, 200, "report q3 for acme-corp (plan pro)\n"},
		{"GET", "/reports/q4", key.Secret, 403, "forbidden_resource"},
		{"PUT", "/reports/q3", key.Secret, 403, "insufficient_scope"},
		{"GET", "/reports/q3", "", 401, "missing_key"},
		{"GET", "/reports/q3", "rep_live_" + strings.Repeat("x", 38), 401, "not_found"},
	} {
		req, _ := http.NewRequest(tc.method, app.URL+tc.path, nil)
		if tc.key != "" {
			req.Header.Set("Authorization", "Bearer "+tc.key)
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(res.Body)
		res.Body.Close()
		got := string(b)
		if res.StatusCode >= 400 {
			var p keymint.Problem
			json.Unmarshal(b, &p)
			got = p.Code
		}
		if res.StatusCode != tc.status || got != tc.body {
			t.Errorf("%s %s: %d %q, want %d %q", tc.method, tc.path, res.StatusCode, got, tc.status, tc.body)
		}
		if strings.Contains(string(b), key.Secret) {
			t.Errorf("%s %s: the answer holds the key", tc.method, tc.path)
		}
	}
}
