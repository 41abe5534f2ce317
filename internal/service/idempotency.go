package service

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"time"

	"github.com/keymint/terraform-provider-keymint/internal/store"
	"github.com/keymint/terraform-provider-keymint/internal/wire"
)

const maxIdempotencyKey = 255

// idempotency prepares the record for a request sent with an Idempotency-Key
// (nil without one) and finds an earlier use of the key by the same caller.
// The request is fingerprinted by operation, target and decoded content, so
// a retry matches however its JSON was spelled; the same key with another
// request is refused.
func (s *Service) idempotency(ctx context.Context, p *Principal, key, kind, target string, request any, now time.Time) (rec, earlier *store.Idempotency, err error) {
	if key == "" {
		return nil, nil, nil
	}
	if len(key) > maxIdempotencyKey {
		return nil, nil, Errorf(BadRequest, "invalid_idempotency_key", "the %s header must be at most %d characters", wire.IdempotencyHeader, maxIdempotencyKey)
	}
	body, err := json.Marshal(request)
	if err != nil {
		return nil, nil, err
	}
	h := sha256.New()
	h.Write([]byte(kind + "\n" + target + "\n"))
	h.Write(body)
	rec = &store.Idempotency{Principal: p.ID, Key: key, Kind: kind, ResourceID: target, RequestHash: h.Sum(nil), CreatedAt: now}
	found, err := s.store.GetIdempotency(ctx, p.ID, key)
	if err == nil && found.CreatedAt.Before(now.Add(-s.idemRetention)) {
		// Past its retention, though not swept yet: forget it now, so the
		// key behaves as documented whenever the sweep runs.
		if _, err = s.store.PurgeIdempotency(ctx, now.Add(-s.idemRetention)); err == nil {
			err = store.ErrNotFound
		}
	}
	if errors.Is(err, store.ErrNotFound) {
		return rec, nil, nil
	}
	if err != nil {
		return nil, nil, err
	}
	if found.Kind != kind || !bytes.Equal(found.RequestHash, rec.RequestHash) {
		return nil, nil, Errorf(Invalid, "idempotency_key_reused",
			"this %s was already used for a different request; use a new key for a new request", wire.IdempotencyHeader)
	}
	return rec, &found, nil
}

// raceWinner is the request that took this one's Idempotency-Key while it
// was being served. Its answer is this request's, if the two are the same
// request (else idempotency refuses, as for any reuse).
func (s *Service) raceWinner(ctx context.Context, p *Principal, key, kind, target string, request any) (*store.Idempotency, error) {
	_, earlier, err := s.idempotency(ctx, p, key, kind, target, request, s.now().UTC())
	if err == nil && earlier == nil {
		err = errors.New("idempotency record missing after a conflicting insert")
	}
	return earlier, err
}
