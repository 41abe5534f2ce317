package service

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/keymint/terraform-provider-keymint/internal/keyformat"
	"github.com/keymint/terraform-provider-keymint/internal/store"
	"github.com/keymint/terraform-provider-keymint/internal/vocab"
	"github.com/keymint/terraform-provider-keymint/internal/wire"
)

// RootID is the Principal.ID of the root token.
const RootID = "root"

// Principal is an authenticated caller: the root token or a management
// credential (a key of the reserved wire.ManagementApp).
type Principal struct {
	ID        string     // RootID or the credential's key id
	Scopes    []string   // management scopes
	ConfineTo []string   // app slugs; empty: every app
	ExpiresAt *time.Time // the credential's expiry; nil: never
}

// Root is the root token's principal: every scope, every app, no expiry.
func Root() *Principal {
	return &Principal{ID: RootID, Scopes: slices.Clone(wire.ManagementScopes)}
}

// sees reports whether the caller may see app slug and its keys at all.
// Management credentials are seen by the rule of seesCredential instead.
func (p *Principal) sees(slug string) bool {
	return len(p.ConfineTo) == 0 || slices.Contains(p.ConfineTo, slug)
}

// seesCredential reports whether management credential k is visible to the
// caller: an unconfined caller sees every one; a confined caller only those
// confined within its own apps, as a credential it mints must be.
func (p *Principal) seesCredential(k *store.Key) bool {
	return len(p.ConfineTo) == 0 || len(k.Resources) > 0 && len(store.Outside(k.Resources, p.ConfineTo)) == 0
}

// exceeds lists what a management credential with these scopes, confinement
// and expiry holds beyond the caller. Empty means the caller could mint it,
// and so may act on it: this is the one rule for every operation on a
// management credential (create, list, get, update, rotate, revoke).
func (p *Principal) exceeds(scopes, confineTo []string, expiresAt *time.Time) []string {
	var out []string
	if extra := store.Outside(scopes, p.Scopes); len(extra) > 0 {
		out = append(out, "the scopes "+strings.Join(extra, ", "))
	}
	if len(p.ConfineTo) > 0 {
		if len(confineTo) == 0 {
			out = append(out, fmt.Sprintf("every app, while this credential is confined to %s", strings.Join(p.ConfineTo, ", ")))
		} else if extra := store.Outside(confineTo, p.ConfineTo); len(extra) > 0 {
			out = append(out, "the apps "+strings.Join(extra, ", "))
		}
	}
	if p.ExpiresAt != nil {
		switch {
		case expiresAt == nil:
			out = append(out, fmt.Sprintf("no expiry, while this credential expires at %s", p.ExpiresAt.Format(time.RFC3339)))
		case expiresAt.After(*p.ExpiresAt):
			out = append(out, fmt.Sprintf("a later expiry (%s, after this credential's %s)", expiresAt.Format(time.RFC3339), p.ExpiresAt.Format(time.RFC3339)))
		}
	}
	return out
}

func exceedsCaller(what string, excess []string) error {
	return Errorf(Forbidden, "exceeds_caller", "%s goes beyond this credential: %s. A credential may act only on credentials it could mint",
		what, strings.Join(excess, "; "))
}

// Require checks that p holds scope ("" for any).
func Require(p *Principal, scope string) error {
	if scope != "" && !slices.Contains(p.Scopes, scope) {
		return Errorf(Forbidden, "insufficient_scope", "this credential lacks the %q scope", scope)
	}
	return nil
}

var errUnauthenticated = Errorf(Unauthenticated, "unauthenticated",
	"the token is not a valid keymint management credential (unknown, revoked, expired or disabled)")

// Authenticate resolves a bearer token to its principal.
func (s *Service) Authenticate(ctx context.Context, token string) (*Principal, error) {
	p, err := s.authenticate(ctx, token)
	var e *Error
	if errors.As(err, &e) && e.Kind == Unauthenticated {
		s.metrics.AuthFailed()
	}
	return p, err
}

func (s *Service) authenticate(ctx context.Context, token string) (*Principal, error) {
	if token == "" {
		return nil, Errorf(Unauthenticated, "unauthenticated", "send a management token as 'Authorization: Bearer <token>'")
	}
	hash := keyformat.Hash(token)
	root, err := s.isRoot(ctx, hash)
	if err != nil {
		return nil, err
	}
	if root {
		return Root(), nil
	}
	if _, err := keyformat.Parse(token); err != nil {
		return nil, errUnauthenticated
	}
	sec, err := s.store.LookupSecret(ctx, hash[:])
	if errors.Is(err, store.ErrNotFound) {
		return nil, errUnauthenticated
	}
	if err != nil {
		return nil, err
	}
	now := s.now()
	if sec.Key.App != wire.ManagementApp || sec.Key.Status(now) != vocab.StatusActive ||
		sec.ExpiresAt != nil && !now.Before(*sec.ExpiresAt) {
		return nil, errUnauthenticated
	}
	s.usage.touch(sec.Key.ID, now)
	return &Principal{ID: sec.Key.ID, Scopes: sec.Key.Scopes, ConfineTo: sec.Key.Resources, ExpiresAt: sec.Key.ExpiresAt}, nil
}

// isRoot reports whether hash is the root token's.
func (s *Service) isRoot(ctx context.Context, hash [sha256.Size]byte) (bool, error) {
	root, err := s.rootTokenHash(ctx)
	if err != nil || root == nil {
		return false, err
	}
	return subtle.ConstantTimeCompare(hash[:], root) == 1, nil
}

// rootTokenHash is the root token's hash: fixed at start, or else the stored
// one as it is now (nil if there is none).
func (s *Service) rootTokenHash(ctx context.Context) ([]byte, error) {
	if s.rootHash != ([sha256.Size]byte{}) {
		return s.rootHash[:], nil
	}
	stored, err := s.store.RootTokenHash(ctx)
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil
	}
	return stored, err
}

// Credential names a signed-in credential without its token: what a portal
// session keeps, to check on every request that the credential is still the
// one that signed in.
type Credential struct {
	ID string // the management credential's key id, or RootID
	// Generation is the credential as it was at sign-in (a key: its last
	// rotation and its secret's start; root: a digest of the root token's
	// hash). Rotating the key, or replacing the root token, changes it.
	Generation string
	// Until, if set, is when the secret used to sign in ends: a secret
	// replaced by a rotation and still in its grace period.
	Until *time.Time
}

// SignIn authenticates a token, as Authenticate does, and names the
// credential for a session that must not keep the token.
func (s *Service) SignIn(ctx context.Context, token string) (*Principal, Credential, error) {
	p, err := s.Authenticate(ctx, token)
	if err != nil {
		return nil, Credential{}, err
	}
	if p.ID == RootID {
		gen, err := s.rootGeneration(ctx)
		if err != nil {
			return nil, Credential{}, err
		}
		return p, Credential{ID: RootID, Generation: gen}, nil
	}
	hash := keyformat.Hash(token)
	sec, err := s.store.LookupSecret(ctx, hash[:])
	if err != nil {
		return nil, Credential{}, err
	}
	return p, Credential{ID: sec.Key.ID, Generation: keyGeneration(&sec.Key), Until: sec.ExpiresAt}, nil
}

// Resume is the principal of a signed-in credential, checked again now:
// unauthenticated if it has since been revoked, disabled, rotated or has
// expired (a key), or replaced (root).
func (s *Service) Resume(ctx context.Context, c Credential) (*Principal, error) {
	ended := Errorf(Unauthenticated, "unauthenticated", "the credential this session signed in with was revoked, disabled, rotated or has expired; sign in again")
	if c.ID == RootID {
		gen, err := s.rootGeneration(ctx)
		if err != nil {
			return nil, err
		}
		if gen == "" || subtle.ConstantTimeCompare([]byte(c.Generation), []byte(gen)) != 1 {
			return nil, ended
		}
		return Root(), nil
	}
	k, err := s.store.GetKey(ctx, c.ID)
	if errors.Is(err, store.ErrNotFound) {
		return nil, ended
	}
	if err != nil {
		return nil, err
	}
	now := s.now()
	if k.App != wire.ManagementApp || k.Status(now) != vocab.StatusActive || keyGeneration(&k) != c.Generation {
		return nil, ended
	}
	s.usage.touch(k.ID, now)
	return &Principal{ID: k.ID, Scopes: k.Scopes, ConfineTo: k.Resources, ExpiresAt: k.ExpiresAt}, nil
}

// keyGeneration changes whenever the key gets a new secret (a rotation, or
// the re-issue of a lost one).
func keyGeneration(k *store.Key) string {
	var rotated int64
	if k.RotatedAt != nil {
		rotated = k.RotatedAt.UnixNano()
	}
	return fmt.Sprintf("%d/%s", rotated, k.Start)
}

// rootGeneration is a digest of the root token's current hash ("" if there
// is none): a session of root keeps this, never the hash itself, and ends
// when the token is replaced (keymint reset-root-token).
func (s *Service) rootGeneration(ctx context.Context) (string, error) {
	root, err := s.rootTokenHash(ctx)
	if err != nil || root == nil {
		return "", err
	}
	d := sha256.Sum256(append([]byte("keymint portal root session\x00"), root...))
	return hex.EncodeToString(d[:16]), nil
}

// Whoami describes the caller.
func (s *Service) Whoami(p *Principal) wire.Whoami {
	return wire.Whoami{ID: p.ID, Scopes: p.Scopes, ConfineTo: append([]string{}, p.ConfineTo...)}
}
