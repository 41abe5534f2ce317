package sqlstore

import (
	"context"
	"database/sql"
	"log/slog"
	"time"

	"github.com/keymint/terraform-provider-keymint/internal/store"
)

// fillQuery reads every secret as lookupQuery reads one, with its hash.
const fillQuery = `SELECT ` + keyColumns + `, s.expires_at, a.rate_requests, a.rate_window, s.hash
	FROM key_secrets s JOIN keys k ON k.id = s.key_id JOIN apps a ON a.slug = k.app`

// KeepCacheFilled fills the verify cache with every secret, at first and
// whenever the cache is emptied, if they all fit (store.VerifyCache.Fill):
// then no verify waits on the database for a key's first lookup, and one
// of a key that does not exist (a typo, a guess, a key from another
// environment) never reaches it. Without a fill, each key's first verify
// on each process reads the database: under load on a busy database that
// was the slowest verify there was. It runs until ctx ends.
func (s *Store) KeepCacheFilled(ctx context.Context, log *slog.Logger) {
	c := s.cache
	if c == nil {
		return
	}
	for {
		select {
		case <-ctx.Done():
			return
		case <-c.RefillWanted():
		}
		// A PostgreSQL replica fills only under its lease: before it, its
		// first resync would empty the cache anyway.
		for c.Usable != nil && !c.Usable() {
			select {
			case <-ctx.Done():
				return
			case <-time.After(10 * time.Millisecond):
			}
		}
		s.fillLogged(ctx, log)
	}
}

// FillCacheNow fills the verify cache once, now (see KeepCacheFilled).
func (s *Store) FillCacheNow(ctx context.Context, log *slog.Logger) {
	if s.cache == nil {
		return
	}
	select {
	case <-s.cache.RefillWanted(): // this is the fill it wanted
	default:
	}
	s.fillLogged(ctx, log)
}

func (s *Store) fillLogged(ctx context.Context, log *slog.Logger) {
	c := s.cache
	start := time.Now()
	n, err := s.fill(ctx)
	c.MarkFillTried()
	switch {
	case ctx.Err() != nil:
	case err != nil:
		log.Warn("could not fill the verify cache; keys are cached as they are verified, and it is tried again in a minute", "err", err)
		go func() {
			select {
			case <-ctx.Done():
			case <-time.After(time.Minute):
				c.WantRefill()
			}
		}()
	case n > c.Max():
		log.Info("the verify cache holds fewer secrets than the database has: keys are cached as they are verified, and a verify of an unknown key reads the database (raise --verify-cache-size to hold them all)",
			"secrets", n, "verify_cache_size", c.Max())
	case n >= 0:
		log.Info("verify cache filled: a verify of any key, known or not, is answered from memory", "secrets", n, "took", time.Since(start).Round(time.Millisecond))
	}
}

// fill reads every secret into the cache. It returns how many secrets the
// database has (-1 if the cache was emptied while they were read: the
// fill is void and another is wanted already).
func (s *Store) fill(ctx context.Context) (int, error) {
	c := s.cache
	var n int
	if err := s.queryRow(ctx, `SELECT count(*) FROM key_secrets`).Scan(&n); err != nil {
		return 0, err
	}
	if n > c.Max() {
		return n, nil
	}
	c.BeginFill()
	secrets, err := s.readSecrets(ctx, c.Max())
	if err != nil {
		c.AbandonFill()
		return 0, err
	}
	if len(secrets) > c.Max() { // keys were created since the count
		c.AbandonFill()
		return len(secrets), nil
	}
	if !c.Fill(secrets) {
		return -1, nil
	}
	return len(secrets), nil
}

// readSecrets reads every secret in one statement (one snapshot), or stops
// at more than limit.
func (s *Store) readSecrets(ctx context.Context, limit int) (map[[32]byte]store.Secret, error) {
	rows, err := s.query(ctx, fillQuery)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := make(map[[32]byte]store.Secret)
	for rows.Next() && len(out) <= limit {
		var expires, rr, rw sql.NullInt64
		var hash []byte
		k, err := scanKey(rows, &expires, &rr, &rw, &hash)
		if err != nil {
			return nil, err
		}
		if len(hash) != 32 {
			continue // no lookup can ask for it
		}
		out[[32]byte(hash)] = store.Secret{Key: k, ExpiresAt: nullTime(expires), RateLimit: rateLimit(rr, rw)}
	}
	return out, rows.Err()
}
