package api

import (
	"bytes"
	"crypto/rand"
	"encoding/base32"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/keymint/terraform-provider-keymint/internal/keyformat"
	"github.com/keymint/terraform-provider-keymint/internal/store"
	"github.com/keymint/terraform-provider-keymint/internal/wire"
)

const (
	defaultPageSize = 100
	maxPageSize     = 1000
	maxMetadata     = 50
)

var idEncoding = base32.NewEncoding("0123456789abcdefghjkmnpqrstvwxyz").WithPadding(base32.NoPadding)

// newKeyID is time-ordered (so listing pages in creation order) and unguessable.
func newKeyID(now time.Time) string {
	var b [15]byte
	binary.BigEndian.PutUint64(b[:8], uint64(now.UnixMilli())<<16)
	rand.Read(b[6:])
	return "key_" + idEncoding.EncodeToString(b[:])
}

func keyJSON(k store.Key, now time.Time) wire.Key {
	out := wire.Key{ID: k.ID, App: k.App, Name: k.Name, Scopes: k.Scopes, Resources: k.Resources, Owner: k.Owner,
		Metadata: k.Metadata, ExpiresAt: k.ExpiresAt, Enabled: k.Enabled, Status: k.Status(now), Start: k.Start,
		CreatedAt: k.CreatedAt, LastUsedAt: k.LastUsedAt, RevokedAt: k.RevokedAt, RotatedAt: k.RotatedAt}
	if out.Metadata == nil {
		out.Metadata = map[string]string{}
	}
	return out
}

func validateMetadata(fe *fieldErrors, m map[string]string) {
	if len(m) > maxMetadata {
		fe.add("metadata", "at most %d entries, got %d", maxMetadata, len(m))
	}
	for k, v := range m {
		if k == "" || len(k) > 64 {
			fe.add("metadata", "key %q must be 1-64 bytes", k)
		}
		if len(v) > 512 {
			fe.add("metadata."+k, "must be at most 512 bytes")
		}
	}
}

func (s *Server) createKey(w http.ResponseWriter, r *http.Request, p *principal) error {
	app, err := s.visibleApp(r, p)
	if err != nil {
		return err
	}
	body, err := readBody(w, r)
	if err != nil {
		return err
	}
	var req wire.CreateKey
	if err := decodeBytes(body, &req); err != nil {
		return err
	}
	now := s.now().UTC()
	var fe fieldErrors
	validateText(&fe, "name", req.Name, true, 200)
	validateText(&fe, "owner", req.Owner, false, 200)
	scopes := validateScopes(&fe, "scopes", req.Scopes)
	if out := store.Outside(scopes, app.Scopes); len(out) > 0 {
		fe.add("scopes", "%s not among app %q's scopes %v; add them to the app first or drop them from the key",
			strings.Join(out, ", "), app.Slug, app.Scopes)
	}
	for _, res := range req.Resources {
		if res == "" || len(res) > 200 {
			fe.add("resources", "resource ids must be 1-200 bytes, got %q", res)
		}
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
		default:
			t = t.UTC()
			expires = &t
		}
	}
	if app.Slug == wire.ManagementApp {
		escalationErrors(&fe, p, scopes, resources)
	}
	if err := fe.err(); err != nil {
		return err
	}
	rec, earlier, err := s.idempotencyRecord(r, p, "key", body)
	if err != nil {
		return err
	}
	if earlier != nil {
		return s.replayKeyCreate(w, r, earlier.ResourceID)
	}
	secret := keyformat.Generate(app.KeyPrefix)
	hash := keyformat.Hash(secret)
	k := store.Key{ID: newKeyID(now), App: app.Slug, Name: req.Name, Scopes: scopes, Resources: resources,
		Owner: req.Owner, Metadata: req.Metadata, ExpiresAt: expires, Enabled: req.Enabled == nil || *req.Enabled,
		Start: keyformat.Start(secret), CreatedAt: now}
	if rec != nil {
		rec.ResourceID = k.ID
	}
	err = s.store.CreateKey(r.Context(), k, hash[:], rec)
	if errors.Is(err, store.ErrIdempotencyRace) {
		winner, err := s.raceWinner(r, p, "key", body)
		if err != nil {
			return err
		}
		return s.replayKeyCreate(w, r, winner.ResourceID)
	}
	if errors.Is(err, store.ErrNotFound) {
		return notFound("app", app.Slug) // deleted while we were here
	}
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, wire.KeyWithSecret{Key: keyJSON(k, now), Secret: secret})
	return nil
}

// escalationErrors stops a credential from minting a credential stronger than itself.
func escalationErrors(fe *fieldErrors, p *principal, scopes, resources []string) {
	if out := store.Outside(scopes, p.scopes); len(out) > 0 {
		fe.add("scopes", "a credential cannot grant scopes it does not hold: %s", strings.Join(out, ", "))
	}
	if len(p.confineTo) > 0 {
		if len(resources) == 0 {
			fe.add("resources", "this credential is confined to apps %v, so the credentials it mints must be confined too", p.confineTo)
		} else if out := store.Outside(resources, p.confineTo); len(out) > 0 {
			fe.add("resources", "outside this credential's confinement: %s", strings.Join(out, ", "))
		}
	}
}

// replayKeyCreate answers a retried create. The first response, with the only
// copy of the secret, was lost; keymint does not store secrets, so it cannot
// resend it. Instead it rotates the key it created, with no grace period: the
// lost secret stops working at once and the retry gets the same key with a new
// secret. So a retry never leaves a second key, nor a valid secret nobody holds.
func (s *Server) replayKeyCreate(w http.ResponseWriter, r *http.Request, id string) error {
	k, err := s.rotate(r, id, 0)
	if errors.Is(err, store.ErrNotFound) || errors.Is(err, store.ErrRevoked) {
		return newProblem(http.StatusConflict, "idempotency_key_used", "the key created with this Idempotency-Key has since been revoked or deleted; send a new Idempotency-Key to create another")
	}
	if err != nil {
		return err
	}
	w.Header().Set(wire.ReplayedHeader, "true")
	writeJSON(w, http.StatusCreated, k)
	return nil
}

func (s *Server) rotate(r *http.Request, id string, grace time.Duration) (wire.KeyWithSecret, error) {
	k, err := s.store.GetKey(r.Context(), id)
	if err != nil {
		return wire.KeyWithSecret{}, err
	}
	app, err := s.store.GetApp(r.Context(), k.App)
	if err != nil {
		return wire.KeyWithSecret{}, err
	}
	secret := keyformat.Generate(app.KeyPrefix)
	hash := keyformat.Hash(secret)
	now := s.now().UTC()
	k, err = s.store.RotateKey(r.Context(), id, hash[:], keyformat.Start(secret), now, grace)
	if err != nil {
		return wire.KeyWithSecret{}, err
	}
	return wire.KeyWithSecret{Key: keyJSON(k, now), Secret: secret}, nil
}

func (s *Server) listKeys(w http.ResponseWriter, r *http.Request, p *principal) error {
	app, err := s.visibleApp(r, p)
	if err != nil {
		return err
	}
	q := r.URL.Query()
	f := store.KeyFilter{App: app.Slug, Status: q.Get("status"), Limit: defaultPageSize, Now: s.now().UTC()}
	if f.Status != "" && !slices.Contains(store.Statuses, f.Status) {
		return newProblem(http.StatusBadRequest, "invalid_query", "status must be one of %v, got %q", store.Statuses, f.Status)
	}
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > maxPageSize {
			return newProblem(http.StatusBadRequest, "invalid_query", "limit must be a number from 1 to %d, got %q", maxPageSize, v)
		}
		f.Limit = n
	}
	if c := q.Get("cursor"); c != "" {
		after, err := base64.RawURLEncoding.DecodeString(c)
		if err != nil {
			return newProblem(http.StatusBadRequest, "invalid_query", "cursor is not one this server gave out; pass next_cursor back unchanged")
		}
		f.After = string(after)
	}
	want := f.Limit
	f.Limit++ // one more tells whether there is a next page
	keys, err := s.store.ListKeys(r.Context(), f)
	if err != nil {
		return err
	}
	out := wire.KeyList{Keys: make([]wire.Key, 0, len(keys))}
	if len(keys) > want {
		keys = keys[:want]
		out.NextCursor = base64.RawURLEncoding.EncodeToString([]byte(keys[want-1].ID))
	}
	for _, k := range keys {
		out.Keys = append(out.Keys, keyJSON(k, f.Now))
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// visibleKey loads the key named in the path, as 404 if the caller cannot see its app.
func (s *Server) visibleKey(r *http.Request, p *principal) (store.Key, error) {
	id := r.PathValue("id")
	k, err := s.store.GetKey(r.Context(), id)
	if errors.Is(err, store.ErrNotFound) || err == nil && !p.sees(k.App) {
		return k, notFound("key", id)
	}
	return k, err
}

func (s *Server) getKey(w http.ResponseWriter, r *http.Request, p *principal) error {
	k, err := s.visibleKey(r, p)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, keyJSON(k, s.now()))
	return nil
}

// updateKeyRequest catches the immutable fields, to say why they cannot change.
type updateKeyRequest struct {
	wire.UpdateKey
	Scopes    any `json:"scopes,omitempty"`
	Resources any `json:"resources,omitempty"`
	Owner     any `json:"owner,omitempty"`
	ExpiresAt any `json:"expires_at,omitempty"`
	App       any `json:"app,omitempty"`
}

func (s *Server) updateKey(w http.ResponseWriter, r *http.Request, p *principal) error {
	if _, err := s.visibleKey(r, p); err != nil {
		return err
	}
	var req updateKeyRequest
	if err := decode(w, r, &req); err != nil {
		return err
	}
	var fe fieldErrors
	for field, v := range map[string]any{"scopes": req.Scopes, "resources": req.Resources, "owner": req.Owner, "expires_at": req.ExpiresAt, "app": req.App} {
		if v != nil {
			fe.add(field, "keys are immutable except name, metadata and enabled; create a new key to change %s", field)
		}
	}
	if req.Name != nil {
		validateText(&fe, "name", *req.Name, true, 200)
	}
	if req.Metadata != nil {
		validateMetadata(&fe, *req.Metadata)
	}
	if err := fe.err(); err != nil {
		return err
	}
	k, err := s.store.UpdateKey(r.Context(), r.PathValue("id"), func(k *store.Key) error {
		if k.RevokedAt != nil {
			return store.ErrRevoked
		}
		if req.Name != nil {
			k.Name = *req.Name
		}
		if req.Metadata != nil {
			k.Metadata = *req.Metadata
		}
		if req.Enabled != nil {
			k.Enabled = *req.Enabled
		}
		return nil
	})
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, keyJSON(k, s.now()))
	return nil
}

func (s *Server) revokeKey(w http.ResponseWriter, r *http.Request, p *principal) error {
	if _, err := s.visibleKey(r, p); err != nil {
		return err
	}
	id := r.PathValue("id")
	if _, err := s.store.RevokeKey(r.Context(), id, s.now().UTC()); err != nil {
		return err
	}
	s.limits.Forget(id)
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Server) rotateKey(w http.ResponseWriter, r *http.Request, p *principal) error {
	if _, err := s.visibleKey(r, p); err != nil {
		return err
	}
	body, err := readBody(w, r)
	if err != nil {
		return err
	}
	req := wire.RotateKey{GracePeriod: "0s"} // an empty body rotates with no grace
	if len(bytes.TrimSpace(body)) > 0 {
		if err := decodeBytes(body, &req); err != nil {
			return err
		}
	}
	grace, err := time.ParseDuration(req.GracePeriod)
	if err != nil || grace < 0 || grace > maxRateWindow {
		var fe fieldErrors
		fe.add("grace_period", "%q is not a duration from 0s to 720h: use a Go duration such as 0s, 30m or 24h", req.GracePeriod)
		return fe.err()
	}
	k, err := s.rotate(r, r.PathValue("id"), grace)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, k)
	return nil
}
