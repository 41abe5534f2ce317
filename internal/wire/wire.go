// Package wire holds the JSON shapes of keymint's HTTP API (/v1), shared by
// the server and the typed client so the two cannot drift apart.
package wire

import (
	"bytes"
	"encoding/json"
	"time"

	jsonv2 "github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"
)

// Management scopes, carried by keys of the reserved ManagementApp.
const (
	ScopeAppsRead  = "apps:read"
	ScopeAppsWrite = "apps:write"
	ScopeKeysRead  = "keys:read"
	ScopeKeysWrite = "keys:write"
	ScopeVerify    = "verify"

	// ManagementApp is the reserved app whose keys are management credentials;
	// their resources, if any, are the app slugs they are confined to.
	ManagementApp = "keymint"
)

// ManagementScopes is every management scope; the root token has them all.
var ManagementScopes = []string{ScopeAppsRead, ScopeAppsWrite, ScopeKeysRead, ScopeKeysWrite, ScopeVerify}

// Verify codes.
const (
	CodeValid             = "VALID"
	CodeNotFound          = "NOT_FOUND"
	CodeExpired           = "EXPIRED"
	CodeRevoked           = "REVOKED"
	CodeDisabled          = "DISABLED"
	CodeInsufficientScope = "INSUFFICIENT_SCOPE"
	CodeForbiddenResource = "FORBIDDEN_RESOURCE"
	CodeRateLimited       = "RATE_LIMITED"
)

// Codes lists every verify code.
var Codes = []string{CodeValid, CodeNotFound, CodeExpired, CodeRevoked, CodeDisabled, CodeInsufficientScope, CodeForbiddenResource, CodeRateLimited}

// IdempotencyHeader makes a create safe to retry; ReplayedHeader marks a retry's answer.
const (
	IdempotencyHeader = "Idempotency-Key"
	ReplayedHeader    = "Idempotent-Replayed"
)

type RateLimit struct {
	Requests int    `json:"requests"`
	Window   string `json:"window"` // a Go duration, at most 720h
}

type App struct {
	Slug        string     `json:"slug"`
	Name        string     `json:"name"`
	Description string     `json:"description"`
	Scopes      []string   `json:"scopes"`
	KeyPrefix   string     `json:"key_prefix"`
	RateLimit   *RateLimit `json:"rate_limit"`
	CreatedAt   time.Time  `json:"created_at"`
	UpdatedAt   time.Time  `json:"updated_at"`
}

type CreateApp struct {
	Slug        string     `json:"slug"`
	Name        string     `json:"name"`
	Description string     `json:"description,omitempty"`
	Scopes      []string   `json:"scopes"`
	KeyPrefix   string     `json:"key_prefix"`
	RateLimit   *RateLimit `json:"rate_limit,omitempty"`
}

// UpdateApp is a PATCH: absent fields are left alone; rate_limit null removes the limit.
type UpdateApp struct {
	Name        *string             `json:"name,omitempty"`
	Description *string             `json:"description,omitempty"`
	Scopes      []string            `json:"scopes,omitempty"`
	RateLimit   Nullable[RateLimit] `json:"rate_limit,omitzero"`
}

type AppList struct {
	Apps []App `json:"apps"`
}

type Key struct {
	ID         string            `json:"id"`
	App        string            `json:"app"`
	Name       string            `json:"name"`
	Scopes     []string          `json:"scopes"`
	Resources  []string          `json:"resources"`
	Owner      string            `json:"owner"`
	Metadata   map[string]string `json:"metadata"`
	ExpiresAt  *time.Time        `json:"expires_at"`
	Enabled    bool              `json:"enabled"`
	Status     string            `json:"status"`
	Start      string            `json:"start"`
	CreatedAt  time.Time         `json:"created_at"`
	LastUsedAt *time.Time        `json:"last_used_at"`
	RevokedAt  *time.Time        `json:"revoked_at"`
	RotatedAt  *time.Time        `json:"rotated_at"`
}

type CreateKey struct {
	Name      string            `json:"name"`
	Scopes    []string          `json:"scopes"`
	Resources []string          `json:"resources,omitempty"`
	Owner     string            `json:"owner,omitempty"`
	Metadata  map[string]string `json:"metadata,omitempty"`
	ExpiresAt string            `json:"expires_at,omitempty"` // RFC 3339, in the future
	Enabled   *bool             `json:"enabled,omitempty"`    // default true
}

// UpdateKey is a PATCH: only these fields of a key can change.
type UpdateKey struct {
	Name     *string            `json:"name,omitempty"`
	Metadata *map[string]string `json:"metadata,omitempty"` // replaces the whole map; {} clears it
	Enabled  *bool              `json:"enabled,omitempty"`
}

type RotateKey struct {
	GracePeriod string `json:"grace_period"` // a Go duration; "0s" ends the old secret at once
}

// KeyWithSecret answers a create or rotate: the only time the secret is shown.
type KeyWithSecret struct {
	Key    Key    `json:"key"`
	Secret string `json:"secret"`
}

type KeyList struct {
	Keys       []Key  `json:"keys"`
	NextCursor string `json:"next_cursor,omitempty"`
}

type VerifyRequest struct {
	Key      string   `json:"key"`
	Scopes   []string `json:"scopes,omitempty"`
	Resource string   `json:"resource,omitempty"`
}

type VerifyRateLimit struct {
	Limit     int       `json:"limit"`
	Remaining int       `json:"remaining"`
	Reset     time.Time `json:"reset"`
}

type VerifyResponse struct {
	Valid     bool              `json:"valid"`
	Code      string            `json:"code"`
	KeyID     string            `json:"key_id,omitempty"`
	App       string            `json:"app,omitempty"`
	Scopes    []string          `json:"scopes,omitempty"`
	Owner     string            `json:"owner,omitempty"`
	Metadata  map[string]string `json:"metadata,omitempty"`
	ExpiresAt *time.Time        `json:"expires_at,omitempty"`
	RateLimit *VerifyRateLimit  `json:"rate_limit,omitempty"`
}

// Whoami describes the calling credential.
type Whoami struct {
	ID        string   `json:"id"` // "root" or the credential's key id
	Scopes    []string `json:"scopes"`
	ConfineTo []string `json:"confined_to"`
}

// Problem is an RFC 9457 problem document.
type Problem struct {
	Type   string       `json:"type"`
	Title  string       `json:"title"`
	Status int          `json:"status"`
	Detail string       `json:"detail,omitempty"`
	Code   string       `json:"code"`
	Errors []FieldError `json:"errors,omitempty"`
	KeyIDs []string     `json:"key_ids,omitempty"`
}

type FieldError struct {
	Field   string `json:"field"`
	Message string `json:"message"`
}

// Nullable distinguishes an absent field (Set false) from an explicit null (Set true, Value nil).
type Nullable[T any] struct {
	Set   bool
	Value *T
}

func (n Nullable[T]) IsZero() bool { return !n.Set }

func (n Nullable[T]) MarshalJSON() ([]byte, error) { return json.Marshal(n.Value) }

// UnmarshalJSONFrom decodes with the caller's options (the server's strict
// ones: exact names, no unknown members), as UnmarshalJSON cannot.
func (n *Nullable[T]) UnmarshalJSONFrom(dec *jsontext.Decoder) error {
	n.Set = true
	if dec.PeekKind() == 'n' {
		n.Value = nil
		_, err := dec.ReadToken()
		return err
	}
	n.Value = new(T)
	return jsonv2.UnmarshalDecode(dec, n.Value)
}

func (n *Nullable[T]) UnmarshalJSON(b []byte) error {
	n.Set = true
	if bytes.Equal(bytes.TrimSpace(b), []byte("null")) {
		n.Value = nil
		return nil
	}
	n.Value = new(T)
	return json.Unmarshal(b, n.Value)
}
