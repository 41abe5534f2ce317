// Package keymint is the Go SDK for keymint: a typed client for its HTTP API
// (apps, keys, events, verify), used by keymint's own CLI and Terraform
// provider. Package [github.com/keymint/terraform-provider-keymint/keymint/middleware]
// protects a net/http service with it.
//
// The client retries 429, 5xx and connection errors with exponential backoff,
// honours Retry-After, and sends an Idempotency-Key on creates and rotations so
// a retried create never makes a second key, nor a retried rotation a second
// secret.
//
// A service checks a key it was sent with a token that has the verify scope:
//
//	c, err := keymint.New("https://keymint.internal:8080", os.Getenv("KEYMINT_TOKEN"))
//	if err != nil {
//		return err
//	}
//	v, err := c.Verify(ctx, keymint.VerifyRequest{Key: key, Scopes: []string{"read:data"}})
//	if err != nil {
//		return err // keymint could not answer: refuse the request
//	}
//	if !v.Valid {
//		return fmt.Errorf("refused: %s", v.Code) // e.g. REVOKED, RATE_LIMITED
//	}
package keymint
