package service

import (
	"context"
	"errors"
	"slices"

	"github.com/keymint/terraform-provider-keymint/internal/keyformat"
	"github.com/keymint/terraform-provider-keymint/internal/ratelimit"
	"github.com/keymint/terraform-provider-keymint/internal/store"
	"github.com/keymint/terraform-provider-keymint/internal/vocab"
	"github.com/keymint/terraform-provider-keymint/internal/wire"
)

var notFoundVerdict = &wire.VerifyResponse{Code: wire.CodeNotFound}

// Verify answers whether a key is good for the given scopes and resource. It
// reads the store once and writes nothing: last_used_at is batched in memory.
// The returned verdict may be shared: do not modify it.
func (s *Service) Verify(ctx context.Context, p *Principal, req *wire.VerifyRequest) (*wire.VerifyResponse, error) {
	if err := Require(p, wire.ScopeVerify); err != nil {
		return nil, err
	}
	res, err := s.judge(ctx, p, req)
	if err == nil {
		s.metrics.Verified(res.App, res.Code)
	}
	return res, err
}

func (s *Service) judge(ctx context.Context, p *Principal, req *wire.VerifyRequest) (*wire.VerifyResponse, error) {
	// A malformed key or a bad checksum never reaches the store; a missing or
	// empty key is a verdict (NOT_FOUND), as any key that is not one.
	if _, err := keyformat.Parse(req.Key); err != nil {
		return notFoundVerdict, nil
	}
	hash := keyformat.Hash(req.Key)
	sec, err := s.store.LookupSecret(ctx, hash[:])
	if errors.Is(err, store.ErrNotFound) {
		return notFoundVerdict, nil
	}
	if err != nil {
		return nil, err
	}
	k := &sec.Key
	now := s.now()
	// A verifier confined to some apps cannot learn about keys of others, and a
	// secret replaced by rotation is gone once its grace period ends.
	if !p.sees(k.App) || sec.ExpiresAt != nil && !now.Before(*sec.ExpiresAt) {
		return notFoundVerdict, nil
	}
	res := &wire.VerifyResponse{KeyID: k.ID, App: k.App, Scopes: k.Scopes, Owner: k.Owner, Metadata: k.Metadata, ExpiresAt: k.ExpiresAt}
	switch k.Status(now) {
	case vocab.StatusRevoked:
		res.Code = wire.CodeRevoked
	case vocab.StatusExpired:
		res.Code = wire.CodeExpired
	case vocab.StatusDisabled:
		res.Code = wire.CodeDisabled
	}
	if res.Code != "" {
		return res, nil
	}
	if !k.HasScopes(req.Scopes) {
		res.Code = wire.CodeInsufficientScope
		return res, nil
	}
	// A key confined to resources is good only for those; a verify that names
	// no resource asks about the key alone.
	if req.Resource != "" && len(k.Resources) > 0 && !slices.Contains(k.Resources, req.Resource) {
		res.Code = wire.CodeForbiddenResource
		return res, nil
	}
	if rl := sec.RateLimit; rl != nil {
		v, err := s.limits.Allow(ctx, k.ID, k.App, ratelimit.Limit{Requests: rl.Requests, Window: rl.Window}, now)
		if err != nil {
			return nil, err
		}
		res.RateLimit = &wire.VerifyRateLimit{Limit: v.Limit, Remaining: v.Remaining, Reset: v.Reset.UTC()}
		if !v.Allowed {
			res.Code = wire.CodeRateLimited
			return res, nil
		}
	}
	s.usage.touch(k.ID, now)
	res.Valid, res.Code = true, wire.CodeValid
	return res, nil
}
