package keymintapi_test

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"testing"

	keymintapi "github.com/keymint/terraform-provider-keymint/examples/openapi-client"
	"github.com/keymint/terraform-provider-keymint/internal/server/servertest"
)

// client.gen.go is exactly what the generator pinned in go.mod makes of
// docs/openapi.json today: a change to the document that the generated
// client does not carry fails here (run go generate ./examples/openapi-client).
func TestGeneratedClientIsCurrent(t *testing.T) {
	var stderr bytes.Buffer
	cmd := exec.Command("go", "tool", "oapi-codegen", "-config", "oapi-codegen.yaml", "../../docs/openapi.json")
	cmd.Stderr = &stderr
	want, err := cmd.Output()
	if err != nil {
		t.Fatalf("oapi-codegen: %v\n%s", err, stderr.Bytes())
	}
	got, err := os.ReadFile("client.gen.go")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatal("client.gen.go is stale: run 'go generate ./examples/openapi-client' and commit the result")
	}
}

// The generated client, and nothing written for keymint by hand, against a
// real server: an app, a key verified VALID, revoked and verified REVOKED,
// keys listed page by page, and a problem document read as a typed value.
func TestGeneratedClientEndToEnd(t *testing.T) {
	ctx := context.Background()
	srv := servertest.New(t)
	bearer := func(token string) keymintapi.ClientOption {
		return keymintapi.WithRequestEditorFn(func(_ context.Context, req *http.Request) error {
			req.Header.Set("Authorization", "Bearer "+token)
			return nil
		})
	}
	c, err := keymintapi.NewClientWithResponses(srv.URL, bearer(srv.RootToken))
	if err != nil {
		t.Fatal(err)
	}

	app, err := c.CreateAppWithResponse(ctx, nil, keymintapi.CreateApp{Slug: "billing", Name: "Billing",
		KeyPrefix: "bil_live", Scopes: []string{"invoices:read", "invoices:write"}})
	if err != nil {
		t.Fatal(err)
	}
	if app.StatusCode() != http.StatusCreated || app.JSON201 == nil || app.JSON201.Slug != "billing" {
		t.Fatalf("create app: %d %s", app.StatusCode(), app.Body)
	}
	if app.Headers201 == nil || app.Headers201.XRequestId == "" {
		t.Errorf("create app: no X-Request-Id parsed: %+v", app.Headers201)
	}

	var ids []string
	for i := range 3 {
		owner := fmt.Sprintf("customer-%d", i)
		k, err := c.CreateKeyWithResponse(ctx, "billing", nil, keymintapi.CreateKey{Name: "key " + owner, Owner: &owner,
			Scopes: []string{"invoices:read"}})
		if err != nil {
			t.Fatal(err)
		}
		if k.StatusCode() != http.StatusCreated || k.JSON201 == nil {
			t.Fatalf("create key: %d %s", k.StatusCode(), k.Body)
		}
		if !strings.HasPrefix(k.JSON201.Secret, "bil_live_") || k.JSON201.Key.Status != keymintapi.KeyStatusActive {
			t.Fatalf("create key: secret %q…, status %q", k.JSON201.Key.Start, k.JSON201.Key.Status)
		}
		ids = append(ids, k.JSON201.Key.Id)
		if i > 0 {
			continue
		}
		secret, id := k.JSON201.Secret, k.JSON201.Key.Id
		verify := func() *keymintapi.VerifyResponse {
			t.Helper()
			v, err := c.VerifyKeyWithResponse(ctx, keymintapi.VerifyRequest{Key: &secret, Scopes: &[]string{"invoices:read"}})
			if err != nil {
				t.Fatal(err)
			}
			if v.StatusCode() != http.StatusOK || v.JSON200 == nil {
				t.Fatalf("verify: %d %s", v.StatusCode(), v.Body)
			}
			return v.JSON200
		}
		if v := verify(); !v.Valid || v.Code != keymintapi.VerifyResponseCodeVALID || v.KeyId == nil || *v.KeyId != id ||
			v.Owner == nil || *v.Owner != owner {
			t.Fatalf("verify a new key: %+v", v)
		}
		r, err := c.RevokeKeyWithResponse(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if r.StatusCode() != http.StatusNoContent {
			t.Fatalf("revoke: %d %s", r.StatusCode(), r.Body)
		}
		if v := verify(); v.Valid || v.Code != keymintapi.VerifyResponseCodeREVOKED {
			t.Fatalf("verify a revoked key: %+v", v)
		}
	}

	// Two pages of two, following next_cursor; the revoked key is listed too.
	limit := 2
	params := &keymintapi.ListKeysParams{Limit: &limit}
	var listed []string
	for page := 1; ; page++ {
		l, err := c.ListKeysWithResponse(ctx, "billing", params)
		if err != nil {
			t.Fatal(err)
		}
		if l.StatusCode() != http.StatusOK || l.JSON200 == nil {
			t.Fatalf("list keys, page %d: %d %s", page, l.StatusCode(), l.Body)
		}
		if len(l.JSON200.Keys) > limit {
			t.Fatalf("page %d has %d keys, limit %d", page, len(l.JSON200.Keys), limit)
		}
		for _, k := range l.JSON200.Keys {
			listed = append(listed, k.Id)
		}
		if l.JSON200.NextCursor == nil {
			break
		}
		if page == 2 {
			t.Fatalf("a third page after %d keys", len(listed))
		}
		params.Cursor = l.JSON200.NextCursor
	}
	if len(listed) != len(ids) {
		t.Fatalf("listed %v, created %v", listed, ids)
	}
	for _, id := range ids {
		if !strings.Contains(strings.Join(listed, " "), id) {
			t.Errorf("key %s not listed in %v", id, listed)
		}
	}

	// A problem document: 422 with the field that was wrong, as a typed value.
	bad, err := c.CreateKeyWithResponse(ctx, "billing", nil, keymintapi.CreateKey{Name: "bad", Scopes: []string{"invoices:delete"}})
	if err != nil {
		t.Fatal(err)
	}
	p := bad.ApplicationproblemJSON422
	if bad.StatusCode() != http.StatusUnprocessableEntity || p == nil {
		t.Fatalf("create key with an unknown scope: %d %s", bad.StatusCode(), bad.Body)
	}
	if ct := bad.HTTPResponse.Header.Get("Content-Type"); ct != "application/problem+json" {
		t.Errorf("problem Content-Type %q", ct)
	}
	if p.Code != "validation_failed" || p.Status != 422 || p.Errors == nil || len(*p.Errors) == 0 || (*p.Errors)[0].Field != "scopes" {
		t.Errorf("problem: %s", bad.Body)
	}

	// A wrong token: 401, a problem too.
	anon, err := keymintapi.NewClientWithResponses(srv.URL, bearer("not-a-token"))
	if err != nil {
		t.Fatal(err)
	}
	who, err := anon.WhoamiWithResponse(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if who.StatusCode() != http.StatusUnauthorized || who.ApplicationproblemJSON401 == nil || who.ApplicationproblemJSON401.Code == "" {
		t.Errorf("whoami with a wrong token: %d %s", who.StatusCode(), who.Body)
	}
}
