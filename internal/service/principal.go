package service

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
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
	root := s.rootHash[:]
	if s.rootHash == ([sha256.Size]byte{}) {
		stored, err := s.store.RootTokenHash(ctx)
		if errors.Is(err, store.ErrNotFound) {
			return false, nil
		}
		if err != nil {
			return false, err
		}
		root = stored
	}
	return subtle.ConstantTimeCompare(hash[:], root) == 1, nil
}

// Whoami describes the caller.
func (s *Service) Whoami(p *Principal) wire.Whoami {
	return wire.Whoami{ID: p.ID, Scopes: p.Scopes, ConfineTo: append([]string{}, p.ConfineTo...)}
}
