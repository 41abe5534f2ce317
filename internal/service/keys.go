package service

import (
	"context"
	"crypto/rand"
	"encoding/base32"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/keymint/terraform-provider-keymint/internal/keyformat"
	"github.com/keymint/terraform-provider-keymint/internal/store"
	"github.com/keymint/terraform-provider-keymint/internal/vocab"
	"github.com/keymint/terraform-provider-keymint/internal/wire"
)

var idEncoding = base32.NewEncoding("0123456789abcdefghjkmnpqrstvwxyz").WithPadding(base32.NoPadding)

// newKeyID is time-ordered (so listing pages in creation order) and unguessable.
func newKeyID(now time.Time) string {
	var b [15]byte
	binary.BigEndian.PutUint64(b[:8], uint64(now.UnixMilli())<<16)
	rand.Read(b[6:])
	return "key_" + idEncoding.EncodeToString(b[:])
}

// validKeyID reports whether id has the form newKeyID gives: a cursor
// holding anything else was not given out by this server.
func validKeyID(id string) bool {
	rest, ok := strings.CutPrefix(id, "key_")
	if !ok || len(rest) != idEncoding.EncodedLen(15) {
		return false
	}
	_, err := idEncoding.DecodeString(rest)
	return err == nil
}

// fractionDigits counts the digits after the seconds' decimal point of an RFC 3339 time.
func fractionDigits(v string) int {
	i := strings.IndexByte(v, '.')
	if i < 0 {
		return 0
	}
	n := 0
	for _, c := range v[i+1:] {
		if c < '0' || c > '9' {
			break
		}
		n++
	}
	return n
}

func keyJSON(k store.Key, now time.Time) wire.Key {
	out := wire.Key{ID: k.ID, App: k.App, Name: k.Name, Scopes: k.Scopes, Resources: k.Resources, Owner: k.Owner,
		Metadata: k.Metadata, ExpiresAt: k.ExpiresAt, Enabled: k.Enabled, Status: k.Status(now), Start: k.Start,
		CreatedAt: k.CreatedAt, LastUsedAt: k.LastUsedAt, RevokedAt: k.RevokedAt, RotatedAt: k.RotatedAt}
	if out.Metadata == nil {
		out.Metadata = map[string]string{}
	}
	if out.Resources == nil {
		out.Resources = []string{} // the same shape whether just created or read back
	}
	return out
}

// keysApp loads the app whose keys the caller asks for. The management app
// is open to every caller: which credentials in it the caller may see and
// touch is the management rule's to say, key by key.
func (s *Service) keysApp(ctx context.Context, p *Principal, slug string) (store.App, error) {
	if slug == wire.ManagementApp {
		a, err := s.store.GetApp(ctx, slug)
		return a, storeError(err, "app", slug)
	}
	return s.visibleApp(ctx, p, slug)
}

// mayTouch reports whether the caller may see key k, and if so what it
// holds beyond the caller (for a management credential; nil for app keys).
func (p *Principal) mayTouch(k *store.Key) (visible bool, excess []string) {
	if k.App != wire.ManagementApp {
		return p.sees(k.App), nil
	}
	if !p.seesCredential(k) {
		return false, nil
	}
	return true, p.exceeds(k.Scopes, k.Resources, k.ExpiresAt)
}

// keyFor loads key id for the caller: not found if it may not see it,
// exceeds_caller if it is a management credential the caller could not mint.
func (s *Service) keyFor(ctx context.Context, p *Principal, scope, id string) (store.Key, error) {
	if err := Require(p, scope); err != nil {
		return store.Key{}, err
	}
	k, err := s.store.GetKey(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return k, notFound("key", id)
	}
	if err != nil {
		return k, err
	}
	visible, excess := p.mayTouch(&k)
	if !visible {
		return k, notFound("key", id)
	}
	if len(excess) > 0 {
		return k, exceedsCaller("management credential "+id, excess)
	}
	return k, nil
}

// CreateKey creates a key under app slug and returns it with its secret.
// With idemKey, a retry of the same request gets the same key with a new
// secret, the lost one ending at once, and replayed true.
func (s *Service) CreateKey(ctx context.Context, p *Principal, slug string, req wire.CreateKey, idemKey string) (out wire.KeyWithSecret, replayed bool, err error) {
	if err := Require(p, wire.ScopeKeysWrite); err != nil {
		return out, false, err
	}
	app, err := s.keysApp(ctx, p, slug)
	if err != nil {
		return out, false, err
	}
	now := s.now().UTC()
	var fe fieldErrors
	validateText(&fe, "name", req.Name, true, vocab.NameMaxLen)
	validateText(&fe, "owner", req.Owner, false, vocab.OwnerMaxLen)
	scopes := validateScopes(&fe, "scopes", req.Scopes)
	if out := store.Outside(scopes, app.Scopes); len(out) > 0 {
		if app.Slug == wire.ManagementApp {
			fe.add("scopes", "%s: a management credential carries only the management scopes %v", join(out), app.Scopes)
		} else {
			fe.add("scopes", "%s not among app %q's scopes %v; add them to the app first or drop them from the key", join(out), app.Slug, app.Scopes)
		}
	}
	for _, res := range req.Resources {
		if res == "" || len(res) > vocab.ResourceMaxLen {
			fe.add("resources", "resource ids must be 1-%d bytes, got %q", vocab.ResourceMaxLen, res)
		}
		validatePrintable(&fe, "resources", res, "")
	}
	resources := sortedUnique(req.Resources)
	validateMetadata(&fe, req.Metadata)
	var expires *time.Time
	if req.ExpiresAt != "" {
		t, err := time.Parse(time.RFC3339, req.ExpiresAt)
		switch {
		case err != nil:
			fe.add("expires_at", "%q is not an RFC 3339 timestamp (e.g. 2030-01-02T15:04:05Z)", req.ExpiresAt)
		case !t.After(now):
			fe.add("expires_at", "%s is not in the future", req.ExpiresAt)
		case fractionDigits(req.ExpiresAt) > 9:
			fe.add("expires_at", "%s has more than 9 fractional digits; keymint keeps nanoseconds", req.ExpiresAt)
		case t.After(vocab.MaxTime):
			fe.add("expires_at", "%s is after %s, the latest time keymint stores", req.ExpiresAt, vocab.MaxTime.Format(time.RFC3339Nano))
		default:
			t = t.UTC()
			expires = &t
		}
	}
	management := app.Slug == wire.ManagementApp
	if management {
		// A management credential's resources are the apps it is confined to.
		for _, r := range resources {
			if r == wire.ManagementApp {
				fe.add("resources", "a management credential cannot be confined to the reserved %q app: confine it to the apps it manages, or leave resources empty for every app", r)
			} else if vocab.SlugPattern.MatchString(r) {
				continue
			} else {
				fe.add("resources", "%q is not an app slug (%s): a management credential's resources are the apps it is confined to", r, vocab.SlugRule)
			}
		}
	}
	sec := secretFor(&fe, app, req.Secret)
	if err := fe.err(); err != nil {
		return out, false, err
	}
	if management {
		if excess := p.exceeds(scopes, resources, expires); len(excess) > 0 {
			return out, false, exceedsCaller("the requested credential", excess)
		}
	}
	fingerprint := req
	fingerprint.Secret = fingerprinted(req.Secret)
	rec, earlier, err := s.idempotency(ctx, p, idemKey, "key", app.Slug, fingerprint, now)
	if err != nil {
		return out, false, err
	}
	if earlier != nil {
		out, err = s.reissue(ctx, p, app.Slug, secretFor(&fe, app, req.Secret), earlier.ResourceID, nil, "created")
		return out, err == nil, err
	}
	k := store.Key{ID: newKeyID(now), App: app.Slug, Name: req.Name, Scopes: scopes, Resources: resources,
		Owner: req.Owner, Metadata: req.Metadata, ExpiresAt: expires, Enabled: req.Enabled == nil || *req.Enabled,
		Start: sec.start, CreatedAt: now}
	if rec != nil {
		rec.ResourceID = k.ID
	}
	action := ActionKeyCreate
	if management {
		action = ActionCredentialMint
	}
	kj := keyJSON(k, now)
	ev := s.event(ctx, p, action, app.Slug, k.ID, now, map[string]any{"name": kj.Name, "scopes": kj.Scopes, "resources": kj.Resources,
		"owner": kj.Owner, "metadata": kj.Metadata, "expires_at": kj.ExpiresAt, "enabled": kj.Enabled, "start": kj.Start,
		"secret": secretOrigin(req.Secret)})
	err = s.store.CreateKey(ctx, k, sec.hash[:], rec, ev)
	if errors.Is(err, store.ErrIdempotencyRace) {
		winner, err := s.raceWinner(ctx, p, idemKey, "key", app.Slug, fingerprint)
		if err != nil {
			return out, false, err
		}
		out, err = s.reissue(ctx, p, app.Slug, secretFor(&fe, app, req.Secret), winner.ResourceID, nil, "created")
		return out, err == nil, err
	}
	if err != nil {
		return out, false, storeError(err, "app", app.Slug)
	}
	return wire.KeyWithSecret{Key: keyJSON(k, now), Secret: sec.value}, false, nil
}

// reissue answers the retry of a create or rotation whose response was lost.
// keymint keeps no secrets, so it cannot resend the one that was lost;
// instead the key gets a new secret in its place and the lost one ends at
// once, while secrets in a grace period from before keep it. A retry never
// leaves a second key, nor a valid secret that nobody holds. rotatedAt is
// the key's rotated_at as the first request left it: if the key has been
// rotated since, the lost secret is already gone and the retry is refused.
func (s *Service) reissue(ctx context.Context, p *Principal, app string, sec secret, id string, rotatedAt *time.Time, did string) (wire.KeyWithSecret, error) {
	ev := s.event(ctx, p, ActionSecretReissue, app, id, s.now().UTC(), map[string]any{"retry_of": did, "start": sec.start})
	k, err := s.store.ReplaceSecret(ctx, id, sec.hash[:], sec.start, rotatedAt, ev)
	switch {
	case errors.Is(err, store.ErrNotFound) || errors.Is(err, store.ErrRevoked):
		return wire.KeyWithSecret{}, Errorf(Conflict, "idempotency_key_used",
			"the key %s with this Idempotency-Key has since been revoked or deleted; send a new Idempotency-Key to do it again", did)
	case errors.Is(err, store.ErrRotatedSince):
		return wire.KeyWithSecret{}, Errorf(Conflict, "idempotency_key_used",
			"the key %s with this Idempotency-Key has been rotated since, so its secret from then is gone; send a new Idempotency-Key to rotate it again", did)
	case err != nil:
		return wire.KeyWithSecret{}, storeError(err, "key", id)
	}
	s.metrics.Replayed(map[string]string{"created": "key", "rotated": "rotate"}[did])
	return wire.KeyWithSecret{Key: keyJSON(k, s.now()), Secret: sec.value}, nil
}

// KeyQuery is a list request's query, as sent: every part may be empty.
type KeyQuery struct {
	Status string // one of vocab.Statuses
	Limit  string // 1 to vocab.MaxPageSize; default vocab.DefaultPageSize
	Cursor string // a next_cursor from an earlier page
	// Owner, if set, keeps the keys of this owner.
	Owner string
	// ExpiringWithin, if set, keeps the keys that expire within it from now
	// (and have not expired yet).
	ExpiringWithin time.Duration
	// UnusedFor, if set, keeps the keys not used for at least this long
	// (never used keys count from their creation).
	UnusedFor time.Duration
}

// matches reports whether k passes q's filters beyond status, at now.
func (q *KeyQuery) matches(k *store.Key, now time.Time) bool {
	if q.Owner != "" && k.Owner != q.Owner {
		return false
	}
	if q.ExpiringWithin > 0 && (k.ExpiresAt == nil || !k.ExpiresAt.After(now) || k.ExpiresAt.After(now.Add(q.ExpiringWithin))) {
		return false
	}
	if q.UnusedFor > 0 {
		last := k.CreatedAt
		if k.LastUsedAt != nil {
			last = *k.LastUsedAt
		}
		if last.After(now.Add(-q.UnusedFor)) {
			return false
		}
	}
	return true
}

// ListKeys lists one page of an app's keys that the caller may see. A page
// may hold fewer keys than the limit and still have a next_cursor.
func (s *Service) ListKeys(ctx context.Context, p *Principal, slug string, q KeyQuery) (wire.KeyList, error) {
	out := wire.KeyList{Keys: []wire.Key{}}
	if err := Require(p, wire.ScopeKeysRead); err != nil {
		return out, err
	}
	app, err := s.keysApp(ctx, p, slug)
	if err != nil {
		return out, err
	}
	f := store.KeyFilter{App: app.Slug, Status: q.Status, Now: s.now().UTC()}
	if f.Status != "" && !slices.Contains(vocab.Statuses, f.Status) {
		return out, Errorf(BadRequest, "invalid_query", "status must be one of %v, got %q", vocab.Statuses, f.Status)
	}
	want := vocab.DefaultPageSize
	if q.Limit != "" {
		n, err := strconv.Atoi(q.Limit)
		if err != nil || n < 1 || n > vocab.MaxPageSize {
			return out, Errorf(BadRequest, "invalid_query", "limit must be a number from 1 to %d, got %q", vocab.MaxPageSize, q.Limit)
		}
		want = n
	}
	if q.Cursor != "" {
		after, err := base64.RawURLEncoding.DecodeString(q.Cursor)
		if err != nil || !validKeyID(string(after)) {
			return out, Errorf(BadRequest, "invalid_query", "cursor is not one this server gave out; pass next_cursor back unchanged")
		}
		f.After = string(after)
	}
	// Read a key more than the page, to know whether there is a next page;
	// read on past keys the caller may not see until the page is full.
	f.Limit = want + 1
	for {
		keys, err := s.store.ListKeys(ctx, f)
		if err != nil {
			return out, err
		}
		for _, k := range keys {
			if visible, excess := p.mayTouch(&k); !visible || len(excess) > 0 || !q.matches(&k, f.Now) {
				continue
			}
			if len(out.Keys) == want {
				out.NextCursor = base64.RawURLEncoding.EncodeToString([]byte(out.Keys[want-1].ID))
				return out, nil
			}
			out.Keys = append(out.Keys, keyJSON(k, f.Now))
		}
		if len(keys) < f.Limit {
			return out, nil
		}
		f.After = keys[len(keys)-1].ID
	}
}

// GetKey returns key id.
func (s *Service) GetKey(ctx context.Context, p *Principal, id string) (wire.Key, error) {
	k, err := s.keyFor(ctx, p, wire.ScopeKeysRead, id)
	if err != nil {
		return wire.Key{}, err
	}
	return keyJSON(k, s.now()), nil
}

// UpdateKey applies a PATCH; immutable names the fields it sent that cannot change.
func (s *Service) UpdateKey(ctx context.Context, p *Principal, id string, req wire.UpdateKey, immutable []string) (wire.Key, error) {
	target, err := s.keyFor(ctx, p, wire.ScopeKeysWrite, id)
	if err != nil {
		return wire.Key{}, err
	}
	var fe fieldErrors
	refuseImmutable(&fe, "key", immutable)
	if req.Name != nil {
		validateText(&fe, "name", *req.Name, true, vocab.NameMaxLen)
	}
	if req.Metadata != nil {
		validateMetadata(&fe, *req.Metadata)
	}
	if err := fe.err(); err != nil {
		return wire.Key{}, err
	}
	ev := s.event(ctx, p, ActionKeyUpdate, target.App, id, s.now().UTC(), map[string]any{})
	k, err := s.store.UpdateKey(ctx, id, func(k *store.Key) error {
		if k.RevokedAt != nil {
			return store.ErrRevoked
		}
		if req.Name != nil && *req.Name != k.Name {
			ev.Changes["name"] = change(k.Name, *req.Name)
			k.Name = *req.Name
		}
		if req.Metadata != nil && !maps.Equal(*req.Metadata, k.Metadata) {
			ev.Changes["metadata"] = change(k.Metadata, *req.Metadata)
			k.Metadata = *req.Metadata
		}
		if req.Enabled != nil && *req.Enabled != k.Enabled {
			ev.Changes["enabled"] = change(k.Enabled, *req.Enabled)
			k.Enabled = *req.Enabled
			if len(ev.Changes) == 1 {
				ev.Action = map[bool]string{true: ActionKeyEnable, false: ActionKeyDisable}[k.Enabled]
			}
		}
		if len(ev.Changes) == 0 {
			return store.ErrNoChange
		}
		if len(ev.Changes) > 1 {
			ev.Action = ActionKeyUpdate
		}
		return nil
	}, ev)
	if err != nil {
		return wire.Key{}, storeError(err, "key", id)
	}
	if !k.Enabled {
		s.limits.Forget(id) // a disabled key's counts would only wait to be swept
	}
	return keyJSON(k, s.now()), nil
}

// RevokeKey revokes key id; revoking a revoked key is not an error.
func (s *Service) RevokeKey(ctx context.Context, p *Principal, id string) error {
	k, err := s.keyFor(ctx, p, wire.ScopeKeysWrite, id)
	if err != nil {
		return err
	}
	now := s.now().UTC()
	if _, err := s.store.RevokeKey(ctx, id, now, s.event(ctx, p, ActionKeyRevoke, k.App, id, now, map[string]any{"start": k.Start})); err != nil {
		return storeError(err, "key", id)
	}
	s.limits.Forget(id)
	return nil
}

// RotateKey gives key id a new secret; earlier secrets keep working for the
// grace period. With idemKey, a retry of the same request re-issues the new
// secret (the one the first answer carried ends at once) while the secrets
// from before the rotation keep their grace, and replayed is true.
func (s *Service) RotateKey(ctx context.Context, p *Principal, id string, req wire.RotateKey, idemKey string) (out wire.KeyWithSecret, replayed bool, err error) {
	k, err := s.keyFor(ctx, p, wire.ScopeKeysWrite, id)
	if err != nil {
		return out, false, err
	}
	grace, err := parseGrace(req.GracePeriod)
	if err != nil {
		return out, false, err
	}
	app, err := s.store.GetApp(ctx, k.App)
	if err != nil {
		return out, false, storeError(err, "key", id)
	}
	var fe fieldErrors
	sec := secretFor(&fe, app, req.Secret)
	if err := fe.err(); err != nil {
		return out, false, err
	}
	now := s.now().UTC()
	fingerprint := wire.RotateKey{GracePeriod: grace.String(), Secret: fingerprinted(req.Secret)}
	rec, earlier, err := s.idempotency(ctx, p, idemKey, "rotate", id, fingerprint, now)
	if err != nil {
		return out, false, err
	}
	if earlier != nil {
		out, err = s.reissue(ctx, p, app.Slug, sec, id, &earlier.CreatedAt, "rotated")
		return out, err == nil, err
	}
	ev := s.event(ctx, p, ActionKeyRotate, app.Slug, id, now, map[string]any{"grace_period": vocab.FormatDuration(grace),
		"start": change(k.Start, sec.start), "secret": secretOrigin(req.Secret)})
	k, err = s.store.RotateKey(ctx, id, sec.hash[:], sec.start, now, grace, rec, ev)
	if errors.Is(err, store.ErrIdempotencyRace) {
		winner, err := s.raceWinner(ctx, p, idemKey, "rotate", id, fingerprint)
		if err != nil {
			return out, false, err
		}
		out, err = s.reissue(ctx, p, app.Slug, sec, id, &winner.CreatedAt, "rotated")
		return out, err == nil, err
	}
	if err != nil {
		return out, false, storeError(err, "key", id)
	}
	return wire.KeyWithSecret{Key: keyJSON(k, now), Secret: sec.value}, false, nil
}

// FindKey names the key a secret belongs to (any of its secrets, a
// rotated-out one still stored included), as the caller may see it: for an
// operator holding a leaked key. Anything else is not found.
func (s *Service) FindKey(ctx context.Context, p *Principal, secret string) (wire.Key, error) {
	if err := Require(p, wire.ScopeKeysRead); err != nil {
		return wire.Key{}, err
	}
	if secret == "" {
		var fe fieldErrors
		fe.add("key", "is required: the secret whose key you want to find")
		return wire.Key{}, fe.err()
	}
	notFound := Errorf(NotFound, "not_found", "no key this credential can see has this secret")
	if _, err := keyformat.Parse(secret); err != nil {
		return wire.Key{}, notFound
	}
	hash := keyformat.Hash(secret)
	sec, err := s.store.LookupSecret(ctx, hash[:])
	if errors.Is(err, store.ErrNotFound) {
		return wire.Key{}, notFound
	}
	if err != nil {
		return wire.Key{}, err
	}
	visible, excess := p.mayTouch(&sec.Key)
	switch {
	case !visible:
		return wire.Key{}, notFound
	case len(excess) > 0:
		return wire.Key{}, exceedsCaller("management credential "+sec.Key.ID, excess)
	}
	return keyJSON(sec.Key, s.now()), nil
}

// secretOrigin says in an event where a secret came from, never what it is.
func secretOrigin(supplied string) string {
	if supplied != "" {
		return "supplied by the client"
	}
	return "generated by the server"
}
