package middleware_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/keymint/terraform-provider-keymint/internal/server/servertest"
	"github.com/keymint/terraform-provider-keymint/keymint"
	"github.com/keymint/terraform-provider-keymint/keymint/middleware"
)

type answer struct {
	status  int
	header  http.Header
	body    string
	problem keymint.Problem
}

// TestMiddlewareAgainstKeymint runs a protected service against a real keymint
// server: every verdict, the context, the headers, and fail-closed once keymint
// is gone.
func TestMiddlewareAgainstKeymint(t *testing.T) {
	ctx := context.Background()
	srv := servertest.New(t)
	root, err := keymint.New(srv.URL, srv.RootToken)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := root.CreateApp(ctx, keymint.CreateApp{Slug: "docs", Name: "Docs", Scopes: []string{"read:data", "write:data"},
		KeyPrefix: "docs_live", RateLimit: &keymint.RateLimit{Requests: 3, Window: "1h"}}); err != nil {
		t.Fatal(err)
	}
	mint := func(app string, req keymint.CreateKey) keymint.KeyWithSecret {
		t.Helper()
		k, err := root.CreateKey(ctx, app, req)
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	// The service verifies with a credential that may only verify.
	svc := mint(keymint.ManagementApp, keymint.CreateKey{Name: "docs-service", Scopes: []string{keymint.ScopeVerify}})
	reader := mint("docs", keymint.CreateKey{Name: "alice", Scopes: []string{"read:data"}, Resources: []string{"doc-1"},
		Owner: "alice@example.com", Metadata: map[string]string{"plan": "pro"}})
	other := mint("docs", keymint.CreateKey{Name: "bob", Scopes: []string{"read:data"}})
	revoked := mint("docs", keymint.CreateKey{Name: "gone", Scopes: []string{"read:data"}})
	if err := root.RevokeKey(ctx, revoked.Key.ID); err != nil {
		t.Fatal(err)
	}
	unknown := "docs_live_" + strings.Repeat("A", 38)
	secrets := []string{svc.Secret, reader.Secret, other.Secret, revoked.Secret, unknown}

	c, err := keymint.New(srv.URL, svc.Secret)
	if err != nil {
		t.Fatal(err)
	}
	c.MaxRetries, c.MinBackoff, c.MaxBackoff = 1, time.Millisecond, time.Millisecond
	var logs bytes.Buffer
	base := []middleware.Option{middleware.Logger(slog.New(slog.NewTextHandler(&logs, nil)))}
	docID := middleware.Resource(func(r *http.Request) string { return r.PathValue("id") })
	read := middleware.New(c, append(base, middleware.Scopes("read:data"), docID)...)
	write := middleware.New(c, append(base, middleware.Scopes("write:data"), docID)...)
	byHeader := middleware.New(c, append(base, middleware.Header("X-API-Key"), middleware.Scopes("read:data"))...)
	show := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		v, ok := middleware.FromContext(r.Context())
		if !ok {
			http.Error(w, "no verdict in the context", 500)
			return
		}
		json.NewEncoder(w).Encode(v)
	})
	mux := http.NewServeMux()
	mux.Handle("GET /docs/{id}", read(show))
	mux.Handle("POST /docs/{id}", write(show))
	mux.Handle("GET /header", byHeader(show))
	app := httptest.NewServer(mux)
	defer app.Close()

	var answers []answer
	call := func(method, path, header, value string) answer {
		t.Helper()
		req, _ := http.NewRequest(method, app.URL+path, nil)
		if header != "" {
			req.Header.Set(header, value)
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		a := answer{status: res.StatusCode, header: res.Header, body: string(b)}
		if res.StatusCode >= 400 {
			if ct := res.Header.Get("Content-Type"); ct != "application/problem+json" {
				t.Errorf("%s %s: %d with Content-Type %q, want application/problem+json", method, path, res.StatusCode, ct)
			}
			if err := json.Unmarshal(b, &a.problem); err != nil || a.problem.Status != res.StatusCode || a.problem.Detail == "" {
				t.Errorf("%s %s: %d with a bad problem %s (%v)", method, path, res.StatusCode, b, err)
			}
		}
		answers = append(answers, a)
		return a
	}
	bearer := func(s string) string { return "Bearer " + s }
	refused := func(a answer, status int, code string) {
		t.Helper()
		if a.status != status || a.problem.Code != code {
			t.Errorf("got %d %q (%s), want %d %q", a.status, a.problem.Code, a.body, status, code)
		}
	}

	a := call("GET", "/docs/doc-1", "Authorization", bearer(reader.Secret))
	var v keymint.VerifyResponse
	if a.status != 200 || json.Unmarshal([]byte(a.body), &v) != nil {
		t.Fatalf("valid key: %d %s", a.status, a.body)
	}
	if v.KeyID != reader.Key.ID || v.App != "docs" || v.Owner != "alice@example.com" || v.Metadata["plan"] != "pro" ||
		strings.Join(v.Scopes, " ") != "read:data" {
		t.Errorf("verdict in the context = %+v", v)
	}
	if a.header.Get("RateLimit-Limit") != "3" || a.header.Get("RateLimit-Remaining") != "2" {
		t.Errorf("rate-limit headers on success: %v", a.header)
	}

	refused(call("GET", "/docs/doc-1", "", ""), 401, "missing_key")
	if got := answers[len(answers)-1].header.Get("WWW-Authenticate"); got != "Bearer" {
		t.Errorf("WWW-Authenticate without a key = %q", got)
	}
	refused(call("GET", "/docs/doc-1", "Authorization", "Basic "+reader.Secret), 401, "missing_key")
	refused(call("GET", "/docs/doc-1", "Authorization", bearer(unknown)), 401, "not_found")
	refused(call("GET", "/docs/doc-1", "Authorization", bearer(revoked.Secret)), 401, "revoked")
	refused(call("POST", "/docs/doc-1", "Authorization", bearer(reader.Secret)), 403, "insufficient_scope")
	refused(call("GET", "/docs/doc-2", "Authorization", bearer(reader.Secret)), 403, "forbidden_resource")

	// X-API-Key: the header holds the key alone, and Authorization is not read.
	if a := call("GET", "/header", "X-API-Key", other.Secret); a.status != 200 || !strings.Contains(a.body, other.Key.ID) {
		t.Errorf("X-API-Key: %d %s", a.status, a.body)
	}
	refused(call("GET", "/header", "Authorization", bearer(other.Secret)), 401, "missing_key")

	// Refusals do not count: reader has used 1 of its 3.
	for i := range 2 {
		if a := call("GET", "/docs/doc-1", "Authorization", bearer(reader.Secret)); a.status != 200 {
			t.Fatalf("verify %d of 3: %d %s", i+2, a.status, a.body)
		}
	}
	a = call("GET", "/docs/doc-1", "Authorization", bearer(reader.Secret))
	refused(a, 429, "rate_limited")
	retry, err := strconv.Atoi(a.header.Get("Retry-After"))
	// keymint counts in window/16 slots, so the reset may be a slot past the hour.
	if err != nil || retry < 3500 || retry > 3600+3600/16 {
		t.Errorf("Retry-After = %q, want about an hour in seconds", a.header.Get("Retry-After"))
	}
	if a.header.Get("RateLimit-Limit") != "3" || a.header.Get("RateLimit-Remaining") != "0" || a.header.Get("RateLimit-Reset") != a.header.Get("Retry-After") {
		t.Errorf("rate-limit headers on 429: %v", a.header)
	}

	if logs.Len() != 0 {
		t.Errorf("logged while keymint was up: %s", logs.String())
	}
	if err := srv.Stop(); err != nil {
		t.Fatal(err)
	}
	down := call("GET", "/docs/doc-1", "Authorization", bearer(reader.Secret))
	refused(down, 503, "verifier_unavailable")
	if down.header.Get("Retry-After") == "" {
		t.Error("a 503 verifier_unavailable without Retry-After")
	}
	if !strings.Contains(logs.String(), "cannot verify") {
		t.Errorf("no log line for the 503: %q", logs.String())
	}

	for _, a := range answers {
		for _, s := range secrets {
			if strings.Contains(a.body, s) || strings.Contains(fmtHeader(a.header), s) {
				t.Errorf("a %d answer holds a key: %s", a.status, a.body)
			}
		}
	}
	for _, s := range secrets {
		if strings.Contains(logs.String(), s) {
			t.Errorf("the log holds a key: %s", logs.String())
		}
	}
}

func fmtHeader(h http.Header) string {
	var b strings.Builder
	h.Write(&b)
	return b.String()
}

func TestFromContextOutsideTheMiddleware(t *testing.T) {
	if _, ok := middleware.FromContext(context.Background()); ok {
		t.Error("FromContext found a verdict in a bare context")
	}
}
