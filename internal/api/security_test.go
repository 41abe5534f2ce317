package api_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/keymint/terraform-provider-keymint/internal/keyformat"
	"github.com/keymint/terraform-provider-keymint/internal/vocab"
	"github.com/keymint/terraform-provider-keymint/internal/wire"
)

// wellFormed is prefix_body with a valid checksum: a key anyone can build
// from a guessable body.
func wellFormed(prefix, body string) string {
	k := keyformat.WithChecksum(prefix + "_" + body)
	if _, err := keyformat.Parse(k); err != nil {
		panic(err)
	}
	return k
}

func fieldMessage(t *testing.T, r response, field string) string {
	t.Helper()
	if r.status != 422 {
		t.Fatalf("status %d, want 422: %s", r.status, r.body)
	}
	p := r.problem(t)
	for _, f := range p.Errors {
		if f.Field == field {
			return f.Message
		}
	}
	t.Fatalf("no error on %s: %s", field, r.body)
	return ""
}

// The reported escalation: a credential holding only audit:read read
// "start: keymint_000000" in the events of a management credential created
// with a supplied all-zero secret, rebuilt the secret and became
// administrator. A guessable secret, and any supplied secret for a
// management credential, is now refused, so there is nothing to rebuild.
func TestGuessedManagementSecretEscalation(t *testing.T) {
	e := newEnv(t)
	var auditor wire.KeyWithSecret
	e.must(201, "POST", "/v1/apps/keymint/keys", wire.CreateKey{Name: "auditor", Scopes: []string{wire.ScopeAuditRead}}, &auditor)

	guessable := wellFormed("keymint", strings.Repeat("0", keyformat.RandomLen))
	strong := keyformat.Generate("keymint")
	for _, secret := range []string{guessable, strong} {
		r := e.do(rootToken, "POST", "/v1/apps/keymint/keys", wire.CreateKey{Name: "admin", Scopes: wire.ManagementScopes, Secret: secret})
		if msg := fieldMessage(t, r, "secret"); !strings.Contains(msg, "never takes a supplied secret") {
			t.Fatalf("management credential with a supplied secret: %s", msg)
		}
	}
	// What the attacker does: read the events, rebuild, authenticate.
	var events wire.EventList
	r := e.do(auditor.Secret, "GET", "/v1/events", nil)
	r.decode(t, &events)
	for _, ev := range events.Events {
		if ev.Changes["start"] == keyformat.Start(guessable) {
			t.Fatalf("an event shows the guessable credential: %+v", ev)
		}
	}
	if r := e.do(guessable, "GET", "/v1/whoami", nil); r.status != 401 {
		t.Fatalf("the rebuilt secret authenticates: %d %s", r.status, r.body)
	}
	// Rotating a management credential to a supplied secret is refused too.
	r = e.do(rootToken, "POST", "/v1/keys/"+auditor.Key.ID+"/rotate", wire.RotateKey{Secret: keyformat.Generate("keymint")})
	fieldMessage(t, r, "secret")
}

// Any app's supplied secret must carry vocab.MinSecretBits: repeated,
// sequential and low-variety bodies are refused, naming the rule.
func TestGuessableSuppliedSecretRefused(t *testing.T) {
	e := newEnv(t)
	e.createApp("acme", "read")
	k := e.createKey("acme", wire.CreateKey{Scopes: []string{"read"}})
	for _, body := range []string{
		strings.Repeat("0", 32),
		strings.Repeat("aB", 16),
		"0123456789ABCDEFGHIJKLMNOPQRSTUV",
		"abcdefghABCDEFGHabcdefghABCDEFGH",
	} {
		weak := wellFormed("acme_live", body)
		r := e.do(rootToken, "POST", "/v1/apps/acme/keys", wire.CreateKey{Name: "k", Scopes: []string{"read"}, Secret: weak})
		if msg := fieldMessage(t, r, "secret"); !strings.Contains(msg, fmt.Sprintf("at least %d bits", vocab.MinSecretBits)) || !strings.Contains(msg, "keymint_secret") {
			t.Errorf("%s: %s", body, msg)
		}
		r = e.do(rootToken, "POST", "/v1/keys/"+k.Key.ID+"/rotate", wire.RotateKey{Secret: weak})
		fieldMessage(t, r, "secret")
		e.wantCode(weak, nil, "", wire.CodeNotFound)
	}
	e.wantCode(k.Secret, nil, "", wire.CodeValid)
}

// rate_limit.requests is bounded (it fits 32 bits on every backend).
func TestRateLimitRequestsBounded(t *testing.T) {
	e := newEnv(t)
	for _, n := range []int{3_000_000_000, vocab.MaxRateRequests + 1, 0} {
		r := e.do(rootToken, "POST", "/v1/apps", wire.CreateApp{Slug: "big", Name: "Big", Scopes: []string{"read"}, KeyPrefix: "big_live",
			RateLimit: &wire.RateLimit{Requests: n, Window: "1m"}})
		if msg := fieldMessage(t, r, "rate_limit.requests"); !strings.Contains(msg, fmt.Sprint(vocab.MaxRateRequests)) {
			t.Errorf("%d: %s", n, msg)
		}
	}
	e.must(201, "POST", "/v1/apps", wire.CreateApp{Slug: "big", Name: "Big", Scopes: []string{"read"}, KeyPrefix: "big_live",
		RateLimit: &wire.RateLimit{Requests: vocab.MaxRateRequests, Window: "1m"}}, nil)
	r := e.do(rootToken, "PATCH", "/v1/apps/big", `{"rate_limit":{"requests":3000000000,"window":"1m"}}`)
	fieldMessage(t, r, "rate_limit.requests")
}

// Invisible and direction-changing characters are refused in every text
// field, at their character position.
func TestInvisibleCharactersRefused(t *testing.T) {
	e := newEnv(t)
	e.createApp("acme", "read")
	k := e.createKey("acme", wire.CreateKey{Scopes: []string{"read"}})
	for _, c := range []struct {
		method, path, field string
		body                any
	}{
		{"POST", "/v1/apps", "name", wire.CreateApp{Slug: "x1", Name: "ab\u202Ecd", Scopes: []string{"read"}, KeyPrefix: "x1_live"}},
		{"POST", "/v1/apps", "description", wire.CreateApp{Slug: "x1", Name: "n", Description: "ab\u200Bcd", Scopes: []string{"read"}, KeyPrefix: "x1_live"}},
		{"PATCH", "/v1/apps/acme", "name", map[string]any{"name": "ab\u2028cd"}},
		{"POST", "/v1/apps/acme/keys", "name", wire.CreateKey{Name: "ab\u2029cd", Scopes: []string{"read"}}},
		{"POST", "/v1/apps/acme/keys", "owner", wire.CreateKey{Name: "n", Owner: "ab\u202Dcd", Scopes: []string{"read"}}},
		{"POST", "/v1/apps/acme/keys", "resources", wire.CreateKey{Name: "n", Resources: []string{"ab\u2066cd"}, Scopes: []string{"read"}}},
		{"POST", "/v1/apps/acme/keys", "metadata", wire.CreateKey{Name: "n", Metadata: map[string]string{"ab\uFEFFcd": "v"}, Scopes: []string{"read"}}},
		{"POST", "/v1/apps/acme/keys", "metadata.k", wire.CreateKey{Name: "n", Metadata: map[string]string{"k": "ab\u200Dcd"}, Scopes: []string{"read"}}},
		{"PATCH", "/v1/keys/" + k.Key.ID, "name", map[string]any{"name": "ab\u202Ecd"}},
		{"PATCH", "/v1/keys/" + k.Key.ID, "metadata.k", map[string]any{"metadata": map[string]string{"k": "éa\u202Ecd"}}},
	} {
		r := e.do(rootToken, c.method, c.path, c.body)
		if msg := fieldMessage(t, r, c.field); !strings.Contains(msg, "at character 2") {
			t.Errorf("%s %s %s: %s", c.method, c.path, c.field, msg)
		}
	}
	var list wire.KeyList
	e.must(200, "GET", "/v1/apps/acme/keys", nil, &list)
	if len(list.Keys) != 1 || list.Keys[0].Name != k.Key.Name {
		t.Fatalf("refused requests wrote: %+v", list.Keys)
	}
}
