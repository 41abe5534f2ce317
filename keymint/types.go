package keymint

import "github.com/keymint/terraform-provider-keymint/internal/wire"

// The JSON shapes of the API, named here so that code outside this module
// can use the client (they are defined once, in keymint's internal wire
// package, shared with the server).
type (
	// App is an application: a namespace of keys with its scopes, key prefix and rate limit.
	App = wire.App
	// CreateApp is the body of [Client.CreateApp].
	CreateApp = wire.CreateApp
	// UpdateApp is the body of [Client.UpdateApp]: nil fields are left alone.
	UpdateApp = wire.UpdateApp
	// RateLimit is an app's limit: at most Requests successful verifies per key in any Window (a Go duration).
	RateLimit = wire.RateLimit
	// Key is an API key as stored: never its secret.
	Key = wire.Key
	// CreateKey is the body of [Client.CreateKey].
	CreateKey = wire.CreateKey
	// UpdateKey is the body of [Client.UpdateKey].
	UpdateKey = wire.UpdateKey
	// RotateKey is the body of [Client.RotateKey].
	RotateKey = wire.RotateKey
	// KeyWithSecret answers a create or rotation: the only time a secret is shown.
	KeyWithSecret = wire.KeyWithSecret
	// Event is one lifecycle change from the audit trail.
	Event = wire.Event
	// Whoami describes the calling credential.
	Whoami = wire.Whoami
	// VerifyRequest is the body of [Client.Verify].
	VerifyRequest = wire.VerifyRequest
	// VerifyResponse is a verdict: Valid, its Code, and what the key carries.
	VerifyResponse = wire.VerifyResponse
	// VerifyRateLimit is the state of the key's rate limit after a verify.
	VerifyRateLimit = wire.VerifyRateLimit
	// Problem is an RFC 9457 problem document, the body of every API error.
	Problem = wire.Problem
	// FieldError names an invalid field of a request, in a Problem.
	FieldError = wire.FieldError
)

// Nullable distinguishes an absent field (Set false) from an explicit null
// (Set true, Value nil), as in [UpdateApp]'s RateLimit.
type Nullable[T any] = wire.Nullable[T]

// Verdict codes: [VerifyResponse].Code is one of these.
const (
	CodeValid             = wire.CodeValid
	CodeNotFound          = wire.CodeNotFound
	CodeExpired           = wire.CodeExpired
	CodeRevoked           = wire.CodeRevoked
	CodeDisabled          = wire.CodeDisabled
	CodeInsufficientScope = wire.CodeInsufficientScope
	CodeForbiddenResource = wire.CodeForbiddenResource
	CodeRateLimited       = wire.CodeRateLimited
)

// Management scopes, held by the credentials (keys of the reserved
// ManagementApp) that call the API. A service that only verifies keys needs
// ScopeVerify alone.
const (
	ScopeAppsRead  = wire.ScopeAppsRead
	ScopeAppsWrite = wire.ScopeAppsWrite
	ScopeKeysRead  = wire.ScopeKeysRead
	ScopeKeysWrite = wire.ScopeKeysWrite
	ScopeVerify    = wire.ScopeVerify
	ScopeAuditRead = wire.ScopeAuditRead
	ManagementApp  = wire.ManagementApp
)
