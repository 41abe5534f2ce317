package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"testing"
	"time"

	"github.com/keymint/terraform-provider-keymint/internal/api"
	"github.com/keymint/terraform-provider-keymint/internal/clock"
	"github.com/keymint/terraform-provider-keymint/internal/keyformat"
	"github.com/keymint/terraform-provider-keymint/internal/metrics"
	"github.com/keymint/terraform-provider-keymint/internal/server"
	"github.com/keymint/terraform-provider-keymint/internal/service"
	"github.com/keymint/terraform-provider-keymint/internal/store"
	"github.com/keymint/terraform-provider-keymint/internal/wire"
)

const rootToken = "test-root-token"

type env struct {
	t       testing.TB
	store   store.Store
	metrics *metrics.Metrics
	svc     *service.Service
	srv     *api.Server
	http    *httptest.Server
	clock   *clock.Fake
	dbPath  string
	grep    *logGrep // every log line of srv, checked for issued secrets when the test ends
}

func newEnv(t testing.TB) *env {
	t.Helper()
	dbPath := filepath.Join(t.TempDir(), "keymint.db")
	c := clock.NewFake(time.Date(2030, 6, 1, 12, 0, 0, 0, time.UTC))
	// As keymint serve runs SQLite with --metrics-addr: with the verify
	// cache, instrumented.
	m := metrics.New()
	opened, err := server.OpenStore(context.Background(), server.Database{Path: dbPath}, server.StoreOptions{CacheSize: 100000, Metrics: m})
	if err != nil {
		t.Fatal(err)
	}
	st := opened.Store
	t.Cleanup(func() { st.Close() })
	svc := service.New(service.Config{Store: st, RootTokenHash: keyformat.Hash(rootToken), Now: c.Now, Metrics: m})
	if err := svc.Bootstrap(context.Background()); err != nil {
		t.Fatal(err)
	}
	var grep *logGrep
	var logger *slog.Logger
	if tt, ok := t.(*testing.T); ok {
		grep = newLogGrep(tt)
		logger = grep.logger()
	}
	srv := api.New(svc, logger, m)
	e := &env{t: t, store: st, metrics: m, svc: svc, srv: srv, clock: c, dbPath: dbPath, grep: grep}
	// Every answer is held to docs/openapi.json (contract_test.go).
	e.http = httptest.NewServer(contractHandler(func() testing.TB { return e.t }, srv))
	t.Cleanup(e.http.Close)
	return e
}

type response struct {
	status int
	header http.Header
	body   []byte
}

func (r response) decode(t testing.TB, v any) {
	t.Helper()
	if err := json.Unmarshal(r.body, v); err != nil {
		t.Fatalf("decoding %s: %v", r.body, err)
	}
}

func (r response) problem(t testing.TB) wire.Problem {
	t.Helper()
	var p wire.Problem
	r.decode(t, &p)
	return p
}

// do sends a request; body may be a string (sent as is) or a value (sent as JSON).
func (e *env) do(token, method, path string, body any, headers ...string) response {
	e.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = bytes.NewBufferString(b)
	default:
		j, _ := json.Marshal(b)
		rd = bytes.NewReader(j)
	}
	req, _ := http.NewRequest(method, e.http.URL+path, rd)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	if e.grep != nil {
		e.grep.issued(token, b)
	}
	return response{status: res.StatusCode, header: res.Header, body: b}
}

// must sends a request as root and fails the test unless it gets want.
func (e *env) must(want int, method, path string, body any, out any) {
	e.t.Helper()
	r := e.do(rootToken, method, path, body)
	if r.status != want {
		e.t.Fatalf("%s %s: status %d, want %d: %s", method, path, r.status, want, r.body)
	}
	if out != nil {
		r.decode(e.t, out)
	}
}

func (e *env) createApp(slug string, scopes ...string) wire.App {
	e.t.Helper()
	var a wire.App
	e.must(201, "POST", "/v1/apps", wire.CreateApp{Slug: slug, Name: "App " + slug, Scopes: scopes, KeyPrefix: prefixFor(slug)}, &a)
	return a
}

func prefixFor(slug string) string {
	b := []byte(slug)
	for i := range b {
		if b[i] == '-' {
			b[i] = '_'
		}
	}
	return string(b) + "_live"
}

func (e *env) createKey(app string, req wire.CreateKey) wire.KeyWithSecret {
	e.t.Helper()
	if req.Name == "" {
		req.Name = "test key"
	}
	var k wire.KeyWithSecret
	e.must(201, "POST", "/v1/apps/"+app+"/keys", req, &k)
	return k
}

func (e *env) verify(secret string, scopes []string, resource string) wire.VerifyResponse {
	e.t.Helper()
	var v wire.VerifyResponse
	e.must(200, "POST", "/v1/verify", wire.VerifyRequest{Key: secret, Scopes: scopes, Resource: resource}, &v)
	return v
}

func (e *env) wantCode(secret string, scopes []string, resource, want string) {
	e.t.Helper()
	if v := e.verify(secret, scopes, resource); v.Code != want || v.Valid != (want == wire.CodeValid) {
		e.t.Fatalf("verify(%v, %q) = %s (valid %v), want %s", scopes, resource, v.Code, v.Valid, want)
	}
}
