package keymint_test

import (
	"context"
	"fmt"
	"log"
	"os"
	"time"

	"github.com/keymint/terraform-provider-keymint/internal/server/servertest"
	"github.com/keymint/terraform-provider-keymint/keymint"
)

// A service checks the key a request came with.
func ExampleClient_Verify() {
	endpoint, token, stop := startKeymint() // a keymint server, and a token with the verify scope
	defer stop()
	ctx := context.Background()

	c, err := keymint.New(endpoint, token)
	if err != nil {
		log.Fatal(err)
	}
	key := mintKey(c) // the key a caller sent, e.g. in Authorization: Bearer
	v, err := c.Verify(ctx, keymint.VerifyRequest{Key: key, Scopes: []string{"read:data"}})
	if err != nil {
		log.Fatal(err) // keymint could not answer: refuse the request
	}
	fmt.Println(v.Valid, v.Code, v.Owner)

	v, _ = c.Verify(ctx, keymint.VerifyRequest{Key: key, Scopes: []string{"write:data"}})
	fmt.Println(v.Valid, v.Code)
	// Output:
	// true VALID alice@example.com
	// false INSUFFICIENT_SCOPE
}

// An app and a key in it; the secret is shown only in this answer.
func ExampleClient_CreateKey() {
	endpoint, token, stop := startKeymint()
	defer stop()
	ctx := context.Background()

	c, err := keymint.New(endpoint, token, keymint.WithTimeout(10*time.Second))
	if err != nil {
		log.Fatal(err)
	}
	_, err = c.CreateApp(ctx, keymint.CreateApp{Slug: "billing", Name: "Billing", Scopes: []string{"invoices:read"},
		KeyPrefix: "bill_live", RateLimit: &keymint.RateLimit{Requests: 100, Window: "1m"}})
	if err != nil {
		log.Fatal(err)
	}
	k, err := c.CreateKey(ctx, "billing", keymint.CreateKey{Name: "reporting", Scopes: []string{"invoices:read"}})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(k.Key.Status, len(k.Secret) > len("bill_live_"))

	_, err = c.GetApp(ctx, "no-such-app")
	fmt.Println(keymint.IsNotFound(err), keymint.ProblemCode(err))
	// Output:
	// active true
	// true not_found
}

// New takes the server's URL and a token: a management credential or the root token.
func ExampleNew() {
	c, err := keymint.New(os.Getenv("KEYMINT_ENDPOINT"), os.Getenv("KEYMINT_TOKEN"), keymint.WithUserAgent("billing-service/1.0"))
	if err != nil {
		log.Fatal(err) // e.g. not an http(s) URL, or no token
	}
	c.MaxRetries = 2 // on a request path, fail sooner than the default 4 retries
	_ = c
}

// startKeymint runs a keymint server for an example: its URL, a token with
// every management scope, and how to stop it.
func startKeymint() (endpoint, token string, stop func()) {
	dir, err := os.MkdirTemp("", "keymint-example")
	if err != nil {
		log.Fatal(err)
	}
	s, err := servertest.Start(dir)
	if err != nil {
		log.Fatal(err)
	}
	return s.URL, s.RootToken, func() { s.Stop(); os.RemoveAll(dir) }
}

// mintKey makes an app "data" and a key in it for alice that may read.
func mintKey(c *keymint.Client) string {
	ctx := context.Background()
	if _, err := c.CreateApp(ctx, keymint.CreateApp{Slug: "data", Name: "Data", Scopes: []string{"read:data", "write:data"}, KeyPrefix: "data_live"}); err != nil {
		log.Fatal(err)
	}
	k, err := c.CreateKey(ctx, "data", keymint.CreateKey{Name: "alice", Owner: "alice@example.com", Scopes: []string{"read:data"}})
	if err != nil {
		log.Fatal(err)
	}
	return k.Secret
}
