// Package service owns every rule of keymint's key lifecycle: validation,
// authorization (scopes, confinement, the management-credential rule),
// idempotency, minting and verification. Every entry point (the HTTP API,
// the keymint command, the benchmark tool) is a thin adapter over it: it
// takes the calling Principal and returns values or coded *Error.
package service

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/keymint/terraform-provider-keymint/internal/keyformat"
	"github.com/keymint/terraform-provider-keymint/internal/metrics"
	"github.com/keymint/terraform-provider-keymint/internal/ratelimit"
	"github.com/keymint/terraform-provider-keymint/internal/store"
	"github.com/keymint/terraform-provider-keymint/internal/vocab"
	"github.com/keymint/terraform-provider-keymint/internal/wire"
)

// Config configures a Service.
type Config struct {
	Store store.Store
	// RootTokenHash, if not zero, is the SHA-256 of the root token, fixed
	// for the process (KEYMINT_ROOT_TOKEN). Zero: the one stored (see
	// EnsureRootToken), read through the store's cache, so that a reset on
	// any replica takes effect on every replica before it returns.
	RootTokenHash [sha256.Size]byte
	Logger        *slog.Logger
	// Now is the clock; tests inject one so expiry and grace need no sleeping.
	Now func() time.Time
	// IdempotencyRetention is how long an Idempotency-Key is remembered
	// (DefaultIdempotencyRetention if zero): a retry after it is a new request.
	IdempotencyRetention time.Duration
	// EventRetention is how long audit events are kept (DefaultEventRetention if zero).
	EventRetention time.Duration
	// Metrics, if not nil, counts verdicts, replays and authentication failures.
	Metrics *metrics.Metrics
	// RateLimits counts verifies against rate limits: in this process if nil
	// (one server), or shared by the replicas of one database.
	RateLimits ratelimit.Counter
}

// DefaultIdempotencyRetention is how long Idempotency-Keys are remembered by default.
const DefaultIdempotencyRetention = 24 * time.Hour

// Service is keymint's key lifecycle. Create it with New.
type Service struct {
	store    store.Store
	rootHash [sha256.Size]byte
	log      *slog.Logger
	now      func() time.Time
	limits   ratelimit.Counter
	usage    usage
	// idemRetention, eventRetention: see Config.
	idemRetention, eventRetention time.Duration
	metrics                       *metrics.Metrics
}

// New returns a Service over cfg.Store. Call Bootstrap once before serving.
func New(cfg Config) *Service {
	s := &Service{store: cfg.Store, rootHash: cfg.RootTokenHash, log: cfg.Logger, now: cfg.Now, idemRetention: cfg.IdempotencyRetention}
	if s.idemRetention <= 0 {
		s.idemRetention = DefaultIdempotencyRetention
	}
	s.metrics = cfg.Metrics
	s.limits = cfg.RateLimits
	if s.limits == nil {
		s.limits = &ratelimit.Limiters{}
	}
	s.eventRetention = cfg.EventRetention
	if s.eventRetention <= 0 {
		s.eventRetention = DefaultEventRetention
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	s.log = slog.New(keyformat.RedactingHandler(s.log.Handler()))
	if s.now == nil {
		s.now = time.Now
	}
	s.usage.pending, s.usage.written = map[string]time.Time{}, map[string]time.Time{}
	return s
}

// Bootstrap makes sure the reserved management app exists, with every
// management scope this version knows (a newer version may add one).
func (s *Service) Bootstrap(ctx context.Context) error {
	now := s.now().UTC()
	err := s.store.CreateApp(ctx, store.App{
		Slug: wire.ManagementApp, Name: "keymint management", Description: "Credentials for the keymint API itself.",
		Scopes: wire.ManagementScopes, KeyPrefix: wire.ManagementApp, CreatedAt: now, UpdatedAt: now,
	}, nil, nil)
	if !errors.Is(err, store.ErrExists) {
		return err
	}
	_, err = s.store.UpdateApp(ctx, wire.ManagementApp, func(a *store.App, _ []store.Key) error {
		if len(store.Outside(wire.ManagementScopes, a.Scopes)) == 0 {
			return store.ErrNoChange
		}
		a.Scopes, a.UpdatedAt = wire.ManagementScopes, now
		return nil
	}, nil)
	return err
}

// secret is a freshly minted key: the secret, shown once, and what is stored.
type secret struct {
	value string
	hash  [sha256.Size]byte
	start string
}

// mint makes a new secret for an app's key prefix: the one place keys are made.
func mint(prefix string) secret {
	v := keyformat.Generate(prefix)
	return secret{value: v, hash: keyformat.Hash(v), start: keyformat.Start(v)}
}

// secretFor is the secret a create or rotation gives a key of app: the one
// the client supplied, checked, or else a new one. A supplied secret is
// never sent back (value stays empty): the client has it.
func secretFor(fe *fieldErrors, app store.App, supplied string) secret {
	if supplied == "" {
		return mint(app.KeyPrefix)
	}
	switch prefix, err := keyformat.Parse(supplied); {
	case app.Slug == wire.ManagementApp:
		// A management credential guards every app: only the server makes one.
		fe.add("secret", "a management credential (a key of the reserved %q app) never takes a supplied secret: leave secret out and the server generates one", wire.ManagementApp)
	case err != nil:
		fe.add("secret", "is not a keymint key: %s_ then %d base62 characters ending in a valid checksum; generate one with the provider's ephemeral keymint_secret",
			app.KeyPrefix, keyformat.RandomLen+keyformat.ChecksumLen)
	case prefix != app.KeyPrefix:
		fe.add("secret", "must start with the app's key_prefix %q", app.KeyPrefix+"_")
	case !keyformat.Strong(supplied):
		fe.add("secret", "is too easy to guess: %s", vocab.SecretRule)
	}
	return secret{hash: keyformat.Hash(supplied), start: keyformat.Start(supplied)}
}

// fingerprinted is req as idempotency fingerprints it: a supplied secret by its hash.
func fingerprinted(supplied string) string {
	if supplied == "" {
		return ""
	}
	h := keyformat.Hash(supplied)
	return fmt.Sprintf("sha256:%x", h)
}

// RootTokenPrefix starts every generated root token.
const RootTokenPrefix = "keymint_root"

// EnsureRootToken returns the hash of the root token: fromEnv's if set, else
// the one stored at first start. With neither, it mints a token and hands it
// to deliver (to be shown once; it is never stored), then stores its hash. A
// token that could not be delivered is not stored.
func EnsureRootToken(ctx context.Context, st store.Store, fromEnv string, deliver func(token string) error) ([sha256.Size]byte, error) {
	if fromEnv != "" {
		return keyformat.Hash(fromEnv), nil
	}
	stored, err := st.RootTokenHash(ctx)
	if err == nil && len(stored) == sha256.Size {
		return [sha256.Size]byte(stored), nil
	}
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return [sha256.Size]byte{}, err
	}
	return newRootToken(ctx, st, false, deliver)
}

// ResetRootToken replaces the stored root token with a new one, handed to
// deliver first: for an operator who has the database and lost the token.
func ResetRootToken(ctx context.Context, st store.Store, deliver func(token string) error) error {
	_, err := newRootToken(ctx, st, true, deliver)
	return err
}

func newRootToken(ctx context.Context, st store.Store, replace bool, deliver func(string) error) ([sha256.Size]byte, error) {
	t := mint(RootTokenPrefix)
	if err := deliver(t.value); err != nil {
		return t.hash, err
	}
	return t.hash, st.SetRootTokenHash(ctx, t.hash[:], replace)
}

// Run flushes key usage every flush interval and does the housekeeping of
// Maintain every maintain interval, until ctx ends; then it flushes once more.
func (s *Service) Run(ctx context.Context, flush, maintain time.Duration) {
	f := time.NewTicker(flush)
	defer f.Stop()
	m := time.NewTicker(maintain)
	defer m.Stop()
	for {
		select {
		case <-ctx.Done():
			// Everything gathered is written before the process ends, however
			// many flushes the backlog takes.
			for s.flushUsage(context.WithoutCancel(ctx)) {
			}
			return
		case <-f.C:
			// A flush under way when ctx ends completes: it is not aborted
			// (and its batch carried over) halfway.
			s.flushUsage(context.WithoutCancel(ctx))
		case <-m.C:
			s.Maintain(ctx)
		}
	}
}

// Maintain keeps what keymint holds bounded: it forgets Idempotency-Keys and
// events past their retention, drops the rate-limit counts of keys that have gone idle
// (disabled, expired and deleted keys among them), and compacts the store.
func (s *Service) Maintain(ctx context.Context) {
	now := s.now()
	purged, err := s.store.PurgeIdempotency(ctx, now.Add(-s.idemRetention))
	if err != nil {
		s.log.ErrorContext(ctx, "purging idempotency records", "err", err)
	}
	events, err := s.store.PurgeEvents(ctx, now.Add(-s.eventRetention))
	if err != nil {
		s.log.ErrorContext(ctx, "purging events", "err", err)
	}
	sessions, err := s.store.PurgeSessions(ctx, now)
	if err != nil {
		s.log.ErrorContext(ctx, "purging portal sessions", "err", err)
	}
	kept, err := s.limits.Sweep(ctx, now)
	if err != nil {
		s.log.ErrorContext(ctx, "sweeping rate limit counts", "err", err)
	}
	if err := s.store.Compact(ctx); err != nil {
		s.log.ErrorContext(ctx, "compacting the store", "err", err)
	}
	s.log.DebugContext(ctx, "maintenance", "idempotency_records_purged", purged, "events_purged", events, "sessions_purged", sessions, "rate_limited_keys", kept)
}

// FlushUsage writes the last_used_at times gathered since the last flush.
func (s *Service) FlushUsage(ctx context.Context) { s.flushUsage(ctx) }

// flushUsage writes one batch and says whether it wrote one.
func (s *Service) flushUsage(ctx context.Context) bool {
	batch := s.usage.take()
	if len(batch) == 0 {
		return false
	}
	if err := s.store.RecordUse(ctx, batch); err != nil {
		s.log.ErrorContext(ctx, "recording key usage", "keys", len(batch), "err", err)
		s.usage.putBack(batch)
		return false
	}
	return true
}

// UsageResolution is how fresh a stored last_used_at is kept: a key's first
// use is written at the next flush (within a second; within ten when a burst
// exceeds usageBatchMin), and while it stays in
// use at most once per UsageResolution. Writing every key on every flush was
// the server's largest cost under verify load after HTTP itself.
const UsageResolution = time.Minute

// usage gathers last-used times in memory so verify never writes to the store.
type usage struct {
	mu      sync.Mutex
	pending map[string]time.Time
	// written is the last time taken for writing, per key, for UsageResolution;
	// entries older than that are swept at most once per UsageResolution.
	written map[string]time.Time
	swept   time.Time
}

func (u *usage) touch(id string, t time.Time) {
	u.mu.Lock()
	if w, ok := u.written[id]; !ok || t.Sub(w) >= UsageResolution || t.Before(w) {
		if t.After(u.pending[id]) {
			u.pending[id] = t
		}
	}
	u.mu.Unlock()
}

// usageBatch is how many keys' usage one flush writes: at least
// usageBatchMin, and a tenth of what is pending, so a backlog drains within
// ten flushes. A burst of first uses (a new replica, keys just created) is
// spread over seconds instead of one statement burst that stalled verifies
// on the database's cores: 150 ms after seeding 5,000 keys, before.
func usageBatch(pending int) int { return max(usageBatchMin, (pending+9)/10) }

const usageBatchMin = 500

func (u *usage) take() map[string]time.Time {
	u.mu.Lock()
	defer u.mu.Unlock()
	b := u.pending
	if n := usageBatch(len(b)); len(b) > n {
		// Map order is random: what waits is a random part of the backlog.
		b = make(map[string]time.Time, n)
		for id, t := range u.pending {
			if len(b) == n {
				break
			}
			b[id] = t
			delete(u.pending, id)
		}
	} else {
		u.pending = make(map[string]time.Time, len(b))
	}
	var latest time.Time
	for id, t := range b {
		u.written[id] = t
		if t.After(latest) {
			latest = t
		}
	}
	if latest.Sub(u.swept) >= UsageResolution {
		for id, t := range u.written {
			if latest.Sub(t) >= UsageResolution {
				delete(u.written, id)
			}
		}
		u.swept = latest
	}
	return b
}

// putBack returns a batch that could not be written.
func (u *usage) putBack(b map[string]time.Time) {
	u.mu.Lock()
	for id := range b {
		delete(u.written, id)
	}
	u.mu.Unlock()
	for id, t := range b {
		u.touch(id, t)
	}
}
