package api_test

import (
	"crypto/sha256"
	"encoding/json"
	"net/url"
	"strings"
	"testing"

	"github.com/keymint/terraform-provider-keymint/internal/wire"
)

// Fuzzing every request body and query the API decodes. Each input must get
// an answer that is not a 5xx; a 4xx must be problem JSON and must leave the
// store as it was. Seeds are the documented examples and known edge cases;
// `make fuzz` runs each target for a fixed time.

// fuzzEnv is a server with an app and a key to aim requests at.
type fuzzEnv struct {
	*env
	keyID string
}

func newFuzzEnv(f *testing.F) *fuzzEnv {
	e := newEnv(f)
	e.createApp("acme", "read", "write")
	k := e.createKey("acme", wire.CreateKey{Scopes: []string{"read"}})
	return &fuzzEnv{env: e, keyID: k.Key.ID}
}

// snapshot digests everything the API can show of the store.
func (e *fuzzEnv) snapshot(t *testing.T) [32]byte {
	h := sha256.New()
	var apps wire.AppList
	e.do(rootToken, "GET", "/v1/apps", nil).decode(t, &apps)
	json.NewEncoder(h).Encode(apps)
	for _, a := range apps.Apps {
		var keys wire.KeyList
		e.do(rootToken, "GET", "/v1/apps/"+a.Slug+"/keys?limit=1000", nil).decode(t, &keys)
		for _, k := range keys.Keys {
			k.LastUsedAt = nil // verifies may move it; it is not a write of the request's
			json.NewEncoder(h).Encode(k)
		}
	}
	return [32]byte(h.Sum(nil))
}

// check sends one request and holds its answer to the rules above.
func (e *fuzzEnv) check(t *testing.T, method, path, body string) {
	before := e.snapshot(t)
	r := e.do(rootToken, method, path, body)
	switch {
	case r.status >= 500:
		t.Fatalf("%s %s %q: %d %s", method, path, body, r.status, r.body)
	case r.status >= 400:
		if ct := r.header.Get("Content-Type"); ct != "application/problem+json" {
			t.Fatalf("%s %s %q: %d with Content-Type %q", method, path, body, r.status, ct)
		}
		if p := r.problem(t); p.Status != r.status || p.Code == "" || p.Detail == "" {
			t.Fatalf("%s %s %q: problem %+v", method, path, body, p)
		}
		if e.snapshot(t) != before {
			t.Fatalf("%s %s %q: a %d wrote to the store", method, path, body, r.status)
		}
	}
}

var commonBodySeeds = []string{``, `{}`, `null`, `[]`, `{"name":"x"}`, `{"name":"x","name":"y"}`, "{\"name\":\"\xff\"}",
	`{"name":"\u0000"}`, `{"Name":"x"}`, `{"name":1}`, `{"name":"x"} {}`, `{"rate_limit":{"requests":1,"window":"1m","x":1}}`}

func bodyTarget(f *testing.F, method, path func(*fuzzEnv) string, seeds ...string) {
	for _, s := range append(seeds, commonBodySeeds...) {
		f.Add(s)
	}
	e := newFuzzEnv(f)
	f.Fuzz(func(t *testing.T, body string) {
		e.t = t
		e.check(t, method(e), path(e), body)
	})
}

func fixed(s string) func(*fuzzEnv) string { return func(*fuzzEnv) string { return s } }

func FuzzCreateApp(f *testing.F) {
	bodyTarget(f, fixed("POST"), fixed("/v1/apps"),
		`{"slug":"shop","name":"Shop API","scopes":["orders:read"],"key_prefix":"shop_live","rate_limit":{"requests":100,"window":"1m"}}`,
		`{"slug":"acme","name":"x","scopes":["a"],"key_prefix":"acme_live"}`,
		`{"slug":"x1","name":"x","scopes":["a"],"key_prefix":"xx","rate_limit":{"requests":1,"window":"720h1ns"}}`)
}

func FuzzUpdateApp(f *testing.F) {
	bodyTarget(f, fixed("PATCH"), fixed("/v1/apps/acme"),
		`{"name":"Shop API (v2)"}`, `{"scopes":["read"]}`, `{"rate_limit":null}`, `{"key_prefix":"new"}`, `{"description":"a\nb"}`)
}

func FuzzCreateKey(f *testing.F) {
	bodyTarget(f, fixed("POST"), fixed("/v1/apps/acme/keys"),
		`{"name":"checkout service","scopes":["read"],"owner":"team","metadata":{"env":"prod"}}`,
		`{"name":"k","scopes":["read"],"expires_at":"2262-04-11T23:47:16.854775808Z"}`,
		`{"name":"k","scopes":["read"],"expires_at":"9999-12-31T23:59:59Z"}`,
		`{"name":"k","scopes":["read"],"resources":["a","a",""]}`)
}

func FuzzManagementKey(f *testing.F) {
	bodyTarget(f, fixed("POST"), fixed("/v1/apps/keymint/keys"),
		`{"name":"ci","scopes":["verify"],"resources":["acme"]}`, `{"name":"ci","scopes":["verify"],"resources":["keymint"]}`)
}

func FuzzUpdateKey(f *testing.F) {
	bodyTarget(f, fixed("PATCH"), func(e *fuzzEnv) string { return "/v1/keys/" + e.keyID },
		`{"name":"renamed"}`, `{"metadata":{}}`, `{"scopes":["write"]}`, `{"enabled":"yes"}`)
}

func FuzzRotateKey(f *testing.F) {
	// A 2xx rotation writes: aim it at a key that rotates freely.
	bodyTarget(f, fixed("POST"), func(e *fuzzEnv) string { return "/v1/keys/" + e.keyID + "/rotate" },
		`{"grace_period":"1h"}`, `{"grace_period":"-1s"}`, `{"grace_period":"721h"}`, `{"grace_period":"1e9h"}`)
}

func FuzzVerify(f *testing.F) {
	bodyTarget(f, fixed("POST"), fixed("/v1/verify"),
		`{"key":"acme_live_3kT9xQ2mZb7LpV4nR8sW1yC6dF0hJ5gA1b2C3d","scopes":["read"]}`, `{"key":"","resource":"x"}`, `{"key":["a"]}`)
}

// FuzzQueries covers the queries the API reads: list filters and pages, and delete's force.
func FuzzQueries(f *testing.F) {
	for _, s := range []string{"status=active&limit=10", "limit=0", "limit=1001", "limit=-1", "cursor=%%%", "cursor=a2V5", "status=nope",
		"force=maybe", "force=false", "limit=1&limit=2", "status=revoked&cursor=" + strings.Repeat("A", 500)} {
		f.Add(s)
	}
	e := newFuzzEnv(f)
	f.Fuzz(func(t *testing.T, query string) {
		e.t = t
		// Sent as a client would: a request line with a raw space or control
		// character never reaches a handler (Go's server answers it itself).
		if q, err := url.ParseQuery(query); err == nil {
			query = q.Encode()
		} else {
			query = url.QueryEscape(query)
		}
		e.check(t, "GET", "/v1/apps/acme/keys?"+query, "")
		e.check(t, "GET", "/v1/apps/keymint/keys?"+query, "")
		// Delete with force=true would end the app the other inputs aim at.
		if q, _ := url.ParseQuery(query); q.Get("force") != "true" {
			e.check(t, "DELETE", "/v1/apps/nope?"+query, "")
		}
	})
}
