// Package keymintapi is a Go client generated from docs/openapi.json by
// oapi-codegen, with nothing written by hand: it shows that the OpenAPI
// document is enough to talk to keymint from any language with a generator.
// Go programs should use the typed SDK (package keymint) instead, which adds
// retries, idempotency keys and typed errors.
//
// Regenerate with `go generate ./examples/openapi-client`; the test fails when
// client.gen.go differs from what the pinned generator makes of the document.
package keymintapi

//go:generate go tool oapi-codegen -config oapi-codegen.yaml -o client.gen.go ../../docs/openapi.json
