package middleware_test

import (
	"context"
	"fmt"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"

	"github.com/keymint/terraform-provider-keymint/internal/server/servertest"
	"github.com/keymint/terraform-provider-keymint/keymint"
	"github.com/keymint/terraform-provider-keymint/keymint/middleware"
)

// Protect routes with scopes; the handler reads the verdict from the context.
func ExampleNew() {
	endpoint, token, key, stop := startKeymint() // a keymint server, a verify token, a caller's key
	defer stop()

	c, err := keymint.New(endpoint, token)
	if err != nil {
		log.Fatal(err)
	}
	hello := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		v, _ := middleware.FromContext(r.Context())
		fmt.Fprintf(w, "hello %s", v.Owner)
	})
	mux := http.NewServeMux()
	mux.Handle("GET /data", middleware.New(c, middleware.Scopes("read:data"))(hello))
	mux.Handle("POST /data", middleware.New(c, middleware.Scopes("write:data"))(hello))

	send := func(method, key string) {
		req := httptest.NewRequest(method, "/data", nil)
		if key != "" {
			req.Header.Set("Authorization", "Bearer "+key)
		}
		w := httptest.NewRecorder()
		mux.ServeHTTP(w, req)
		fmt.Println(w.Code, w.Header().Get("Content-Type"), strings.TrimSpace(w.Body.String()))
	}
	send("GET", key)
	send("GET", "")
	send("POST", key)
	// Output:
	// 200 text/plain; charset=utf-8 hello alice@example.com
	// 401 application/problem+json {"type":"urn:keymint:problem:missing_key","title":"Unauthorized","status":401,"detail":"send an API key as Authorization: Bearer <key>","code":"missing_key"}
	// 403 application/problem+json {"type":"urn:keymint:problem:insufficient_scope","title":"Forbidden","status":403,"detail":"the API key lacks a scope this route requires: write:data","code":"insufficient_scope"}
}

// Read the key from X-API-Key, and confine it to the resource the path names.
func ExampleHeader() {
	c, err := keymint.New(os.Getenv("KEYMINT_ENDPOINT"), os.Getenv("KEYMINT_TOKEN"))
	if err != nil {
		log.Fatal(err)
	}
	project := middleware.Resource(func(r *http.Request) string { return r.PathValue("project") })
	mw := middleware.New(c, middleware.Header("X-API-Key"), middleware.Scopes("builds:read"), project)
	http.Handle("GET /projects/{project}/builds", mw(http.NotFoundHandler()))
}

func startKeymint() (endpoint, token, key string, stop func()) {
	dir, err := os.MkdirTemp("", "keymint-example")
	if err != nil {
		log.Fatal(err)
	}
	s, err := servertest.Start(dir)
	if err != nil {
		log.Fatal(err)
	}
	ctx := context.Background()
	root, _ := keymint.New(s.URL, s.RootToken)
	if _, err := root.CreateApp(ctx, keymint.CreateApp{Slug: "data", Name: "Data", Scopes: []string{"read:data", "write:data"}, KeyPrefix: "data_live"}); err != nil {
		log.Fatal(err)
	}
	svc, err := root.CreateKey(ctx, keymint.ManagementApp, keymint.CreateKey{Name: "data-service", Scopes: []string{keymint.ScopeVerify}})
	if err != nil {
		log.Fatal(err)
	}
	k, err := root.CreateKey(ctx, "data", keymint.CreateKey{Name: "alice", Owner: "alice@example.com", Scopes: []string{"read:data"}})
	if err != nil {
		log.Fatal(err)
	}
	return s.URL, svc.Secret, k.Secret, func() { s.Stop(); os.RemoveAll(dir) }
}
