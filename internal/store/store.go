// Package store defines keymint's persistent model and the Store interface
// that every backend implements. storetest holds the conformance suite.
package store

import (
	"context"
	"errors"
	"slices"
	"time"

	"github.com/keymint/terraform-provider-keymint/internal/vocab"
)

var (
	ErrNotFound = errors.New("not found")
	ErrExists   = errors.New("already exists")
	// ErrRevoked is returned when an operation needs a key that is not revoked.
	ErrRevoked = errors.New("key is revoked")
	// ErrIdempotencyRace: another request with the same idempotency key won.
	ErrIdempotencyRace = errors.New("idempotency key used concurrently")
	// ErrNoChange, returned by an update's fn, ends it with nothing written
	// (no event either) and no error.
	ErrNoChange = errors.New("no change")
	// ErrSecretTaken: a secret with this hash is stored already (for any key).
	ErrSecretTaken = errors.New("secret already in use")
	// ErrRotatedSince: ReplaceSecret found the key rotated after the rotation it was to redo.
	ErrRotatedSince = errors.New("key rotated since")
)

// RateLimit allows Requests verifies per Window, per key.
type RateLimit struct {
	Requests int
	Window   time.Duration
}

// App is an auth app: a product's API whose keys keymint manages.
type App struct {
	Slug        string
	Name        string
	Description string
	Scopes      []string
	KeyPrefix   string
	RateLimit   *RateLimit
	CreatedAt   time.Time
	UpdatedAt   time.Time
}

// Key is an API key's metadata. Its secret is never stored, only hashes of it.
type Key struct {
	ID         string
	App        string
	Name       string
	Scopes     []string
	Resources  []string
	Owner      string
	Metadata   map[string]string
	ExpiresAt  *time.Time
	Enabled    bool
	Start      string
	CreatedAt  time.Time
	LastUsedAt *time.Time
	RevokedAt  *time.Time
	RotatedAt  *time.Time
}

// Status derives the key's status at now (see vocab.KeyStatus). ListKeys's
// status filter must agree with it; the conformance suite checks that it does.
func (k *Key) Status(now time.Time) string {
	return vocab.KeyStatus(k.RevokedAt != nil, k.ExpiresAt, k.Enabled, now)
}

// HasScopes reports whether every scope in want is among the key's.
func (k *Key) HasScopes(want []string) bool { return subset(want, k.Scopes) }

// HasScopesIn reports whether every scope of the key is among allowed.
func (k *Key) HasScopesIn(allowed []string) bool { return subset(k.Scopes, allowed) }

// Outside returns the scopes of k that are not in allowed.
func Outside(scopes, allowed []string) []string {
	var out []string
	for _, s := range scopes {
		if !slices.Contains(allowed, s) {
			out = append(out, s)
		}
	}
	return out
}

func subset(a, b []string) bool { return len(Outside(a, b)) == 0 }

// Secret is a hash of a key's secret as the verify path finds it, with what
// verify needs to judge it, in one lookup.
type Secret struct {
	Key Key
	// ExpiresAt is set on a previous secret kept for a rotation grace period.
	ExpiresAt *time.Time
	RateLimit *RateLimit
}

// Idempotency records a create made under an Idempotency-Key header, so a retry
// can be recognised. Principal scopes the key to the credential that sent it.
type Idempotency struct {
	Principal   string
	Key         string
	RequestHash []byte
	Kind        string // "app", "key" or "rotate"
	ResourceID  string // the slug or key id created or rotated
	// CreatedAt is the time of the create or rotation: a rotation's replay
	// checks the key's rotated_at against it.
	CreatedAt time.Time
}

// Event records one lifecycle change, written in the same transaction as
// the change: a change is never committed without its event, nor an event
// without its change. It never holds a secret or a hash.
type Event struct {
	ID        int64 // assigned by the store, increasing
	At        time.Time
	Actor     string // the acting credential's id, or "root"
	RequestID string
	Action    string // e.g. key.rotate
	App       string
	KeyID     string
	Changes   map[string]any // what changed: field -> new value, or {"from", "to"}
}

// EventFilter selects events for ListEvents, newest first.
type EventFilter struct {
	Apps   []string  // only these apps' events; nil: every app
	App    string    // "" for all
	KeyID  string    // "" for all
	Actor  string    // "" for all
	Action string    // "" for all
	Since  time.Time // events at or after this; zero for all
	Until  time.Time // events before this; zero for all
	Before int64     // cursor: events with ids below this; 0 for the newest
	Limit  int
}

// KeyFilter selects keys for ListKeys.
type KeyFilter struct {
	App    string
	Status string // "" for all
	After  string // cursor: list ids greater than this
	Limit  int
	Now    time.Time
}

// Session is a signed-in portal session. The cookie holds a random id; the
// store keeps only its SHA-256, so a database reader cannot resume one. It
// holds no token either: only which credential signed in and what it was
// then (Generation), for the service to check on every request.
type Session struct {
	Hash       []byte // SHA-256 of the cookie's id
	Credential string // the management credential's key id, or "root"
	Generation string // the credential as it was at sign-in; any change ends the session
	CreatedAt  time.Time
	ExpiresAt  time.Time // the absolute end
	IdleUntil  time.Time // the end if not used before; never after ExpiresAt
}

// Invalidation names what a committed write changed for verify: the secrets
// of these keys, or of every key of App, or the root token's hash, or new
// secrets (by hash) that a cached "not found" may name. The store hands it
// to its verify cache after commit, and on PostgreSQL to every other
// replica (see VerifyCache).
//
// It fails closed: the zero Invalidation names nothing in particular and so
// empties the caches; a write that changes no verdict (a new app, usage)
// says so with Nothing.
type Invalidation struct {
	KeyIDs []string
	App    string
	Root   bool
	// Secrets are the hashes of secrets the write added (a create, a
	// rotation): a lookup that found none of them may be cached.
	Secrets [][]byte
	All     bool
	Nothing bool
}

// NoVerdictChange is the Invalidation of a write that changes no verdict.
var NoVerdictChange = Invalidation{Nothing: true}

// Everything reports whether inv empties the caches.
func (inv Invalidation) Everything() bool {
	return inv.All || !inv.Nothing && len(inv.KeyIDs) == 0 && inv.App == "" && !inv.Root && len(inv.Secrets) == 0
}

// Store is keymint's persistence. Every method is atomic: on error nothing was written.
type Store interface {
	// Every write that changes something records ev (if not nil) in the same
	// transaction; a write that changes nothing (a second revoke) records none.

	CreateApp(ctx context.Context, app App, idem *Idempotency, ev *Event) error
	GetApp(ctx context.Context, slug string) (App, error)
	ListApps(ctx context.Context) ([]App, error)
	// UpdateApp applies fn to the stored app in one transaction and stores
	// what fn left; fn also gets the app's keys that are not revoked, to refuse
	// a change that would strand them. An error from fn writes nothing.
	UpdateApp(ctx context.Context, slug string, fn func(app *App, unrevoked []Key) error, ev *Event) (App, error)
	// DeleteApp removes the app with its keys and their secrets, so none of
	// them verifies again, unless check, given the app's keys that are not
	// revoked in the same transaction, returns an error; else it records the
	// events check returns (the app's, and one per key that goes with it).
	DeleteApp(ctx context.Context, slug string, check func(unrevoked []Key) ([]*Event, error)) error

	CreateKey(ctx context.Context, key Key, hash []byte, idem *Idempotency, ev *Event) error
	GetKey(ctx context.Context, id string) (Key, error)
	ListKeys(ctx context.Context, f KeyFilter) ([]Key, error)
	// UpdateKey applies fn to the stored key in one transaction.
	UpdateKey(ctx context.Context, id string, fn func(*Key) error, ev *Event) (Key, error)
	// RevokeKey revokes the key. Revoking twice is not an error.
	RevokeKey(ctx context.Context, id string, now time.Time, ev *Event) (Key, error)
	// RotateKey makes hash the key's secret; previous secrets stay valid until
	// now+grace (at most their own earlier expiry), or stop at once if grace is 0.
	// A non-nil idem is recorded in the same transaction (ErrIdempotencyRace if taken).
	RotateKey(ctx context.Context, id string, hash []byte, start string, now time.Time, grace time.Duration, idem *Idempotency, ev *Event) (Key, error)
	// ReplaceSecret swaps the key's current secret (the one with no expiry) for
	// hash, leaving secrets in a grace period as they are: it re-issues the
	// secret of a create or rotation whose answer was lost. It fails with
	// ErrRotatedSince unless the key's rotated_at equals rotatedAt (nil: never
	// rotated), and with ErrRevoked on a revoked key.
	ReplaceSecret(ctx context.Context, id string, hash []byte, start string, rotatedAt *time.Time, ev *Event) (Key, error)

	// ListEvents lists events newest first.
	ListEvents(ctx context.Context, f EventFilter) ([]Event, error)
	// PurgeEvents deletes the events before before, and says how many.
	PurgeEvents(ctx context.Context, before time.Time) (int64, error)

	// LookupSecret finds the key whose secret hashes to hash: the verify path.
	LookupSecret(ctx context.Context, hash []byte) (Secret, error)
	// RecordUse sets last_used_at for a batch of keys (never moving it back).
	RecordUse(ctx context.Context, used map[string]time.Time) error

	GetIdempotency(ctx context.Context, principal, key string) (Idempotency, error)
	// PurgeIdempotency deletes the records created before before, and says how many.
	PurgeIdempotency(ctx context.Context, before time.Time) (int64, error)
	// Compact gives space the backend no longer needs back to the system
	// (SQLite: a checkpoint that truncates the write-ahead log). It runs
	// periodically, beside the requests.
	Compact(ctx context.Context) error
	// CreateSession stores a new session (ErrExists if its hash is taken).
	CreateSession(ctx context.Context, sess Session) error
	// GetSession returns the session with this hash, or ErrNotFound.
	GetSession(ctx context.Context, hash []byte) (Session, error)
	// TouchSession moves the session's IdleUntil (ErrNotFound if it is gone).
	TouchSession(ctx context.Context, hash []byte, idleUntil time.Time) error
	// DeleteSession ends one session; ending one that is gone is not an error.
	DeleteSession(ctx context.Context, hash []byte) error
	// DeleteSessionsOf ends every session of a credential, and says how many.
	DeleteSessionsOf(ctx context.Context, credential string) (int64, error)
	// PurgeSessions deletes the sessions whose IdleUntil is before before, and says how many.
	PurgeSessions(ctx context.Context, before time.Time) (int64, error)

	// RootTokenHash returns the stored root token hash, or ErrNotFound.
	RootTokenHash(ctx context.Context) ([]byte, error)
	// SetRootTokenHash stores hash unless one is stored already (ErrExists);
	// with replace, it replaces the stored one (an operator's reset).
	SetRootTokenHash(ctx context.Context, hash []byte, replace bool) error

	Close() error
}
