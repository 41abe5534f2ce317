// Package sqlstore is keymint's store.Store on database/sql, shared by the
// SQLite and PostgreSQL backends: one implementation of every query and
// transaction, with what differs between the two in a Dialect.
package sqlstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/keymint/terraform-provider-keymint/internal/store"
	"github.com/keymint/terraform-provider-keymint/internal/vocab"
)

const keyColumns = `k.id, k.app, k.name, k.scopes, k.resources, k.owner, k.metadata, k.expires_at,
	k.enabled, k.start, k.created_at, k.last_used_at, k.revoked_at, k.rotated_at`

const appColumns = `slug, name, description, scopes, key_prefix, rate_requests, rate_window, created_at, updated_at`

// Dialect is what differs between the backends.
type Dialect struct {
	// Numbered placeholders ($1, $2, ...) instead of ?.
	Numbered bool
	// IsUnique reports a unique or primary-key violation; IsForeignKey a
	// foreign-key violation (a write racing the deletion of its parent).
	IsUnique, IsForeignKey func(error) bool
	// ForUpdate is appended to the read of a row a transaction then writes
	// (PostgreSQL: FOR UPDATE; SQLite's write transactions lock the file).
	ForUpdate string
	// Compact gives space back to the system (see store.Store.Compact).
	Compact func(context.Context, *sql.DB) error
	// Changed, if set, runs in each write transaction that can change a
	// verdict, before commit, with what the write touched; the function it
	// returns runs after commit and before the write returns (PostgreSQL:
	// tell the other replicas and wait for them, see postgres.Replica).
	Changed func(context.Context, *sql.Tx, store.Invalidation) (afterCommit func(context.Context), err error)
	// AfterCopy runs in Copy's transaction once the rows are in (PostgreSQL:
	// move the events id sequence past the copied ids).
	AfterCopy string
	// Prepare prepares the verify lookup once on each connection (SQLite).
	// PostgreSQL leaves statements to the driver, whose DSN says whether
	// it may name them (a transaction pooler forbids it).
	Prepare bool
}

// Store is a store.Store on a database/sql handle.
type Store struct {
	// Applied are the schema versions that opening this store applied.
	Applied []int64

	db      *sql.DB
	dialect Dialect
	cache   *store.VerifyCache // nil: every lookup reads the database
	lookup  *sql.Stmt          // with Dialect.Prepare
}

var _ store.Store = (*Store)(nil)

const lookupQuery = `SELECT ` + keyColumns + `, s.expires_at, a.rate_requests, a.rate_window
	FROM key_secrets s JOIN keys k ON k.id = s.key_id JOIN apps a ON a.slug = k.app WHERE s.hash = ?`

// New returns a Store on db, whose schema is migrated already. cache, if
// not nil, answers the verify path's lookups; every write transaction's
// Invalidation reaches it after commit, before the write returns.
func New(ctx context.Context, db *sql.DB, d Dialect, cache *store.VerifyCache) (*Store, error) {
	s := &Store{db: db, dialect: d, cache: cache}
	if d.Prepare {
		lookup, err := db.PrepareContext(ctx, s.q(lookupQuery))
		if err != nil {
			return nil, err
		}
		s.lookup = lookup
	}
	return s, nil
}

// WarmUp runs the verify path's lookup once on c (for a hash no secret
// has), so that the database session behind c has parsed, planned and
// loaded the catalog entries of what verify reads before the first verify
// needs them.
func (s *Store) WarmUp(ctx context.Context, c *sql.Conn) error {
	rows, err := c.QueryContext(ctx, s.q(lookupQuery), make([]byte, 32))
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() { // no secret has an all-zero hash: none
	}
	return rows.Err()
}

// DB is the handle the store runs on.
func (s *Store) DB() *sql.DB { return s.db }

// Cache is the store's verify cache (nil if it has none).
func (s *Store) Cache() *store.VerifyCache { return s.cache }

func (s *Store) Close() error {
	if s.lookup != nil {
		s.lookup.Close()
	}
	return s.db.Close()
}

// q rewrites a query written with ? placeholders for the dialect.
func (s *Store) q(query string) string {
	if !s.dialect.Numbered {
		return query
	}
	var b strings.Builder
	n := 0
	for _, r := range query {
		if r == '?' {
			n++
			b.WriteByte('$')
			b.WriteString(strconv.Itoa(n))
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}

func (s *Store) exec(ctx context.Context, query string, args ...any) (sql.Result, error) {
	return s.db.ExecContext(ctx, s.q(query), args...)
}

func (s *Store) query(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	return s.db.QueryContext(ctx, s.q(query), args...)
}

func (s *Store) queryRow(ctx context.Context, query string, args ...any) *sql.Row {
	return s.db.QueryRowContext(ctx, s.q(query), args...)
}

func (s *Store) isUnique(err error) bool { return err != nil && s.dialect.IsUnique(err) }

func (s *Store) isForeignKey(err error) bool {
	return err != nil && s.dialect.IsForeignKey != nil && s.dialect.IsForeignKey(err)
}

// wtx is a write transaction.
type wtx struct {
	tx *sql.Tx
	*Store
}

func (w *wtx) exec(ctx context.Context, query string, args ...any) (sql.Result, error) {
	return w.tx.ExecContext(ctx, w.q(query), args...)
}

func (w *wtx) query(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	return w.tx.QueryContext(ctx, w.q(query), args...)
}

func (w *wtx) queryRow(ctx context.Context, query string, args ...any) *sql.Row {
	return w.tx.QueryRowContext(ctx, w.q(query), args...)
}

// tx runs fn in a write transaction: the one way a write reaches the
// database. inv is what the write changes for verify (the zero value: it
// may have changed anything). The dialect's Changed hook hears of it before
// commit (PostgreSQL: numbered and notified to every replica); after commit
// this process's cache drops it, and then what Changed returned runs
// (PostgreSQL: wait for the replicas), all before the write returns.
func (s *Store) tx(ctx context.Context, inv store.Invalidation, fn func(*wtx) error) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	w := &wtx{tx: tx, Store: s}
	var after func(context.Context)
	err = fn(w)
	if err == nil && s.dialect.Changed != nil {
		after, err = s.dialect.Changed(ctx, tx, inv)
	}
	if err != nil {
		tx.Rollback()
		return err
	}
	err = tx.Commit()
	// Dropped even when the commit's outcome is unknown (an error may come
	// after the database committed): a cache never keeps what may be stale.
	s.cache.Invalidate(inv)
	if err != nil {
		return err
	}
	if after != nil {
		after(ctx)
	}
	return nil
}

func insertIdempotency(ctx context.Context, tx *wtx, idem *store.Idempotency) error {
	if idem == nil {
		return nil
	}
	_, err := tx.exec(ctx, `INSERT INTO idempotency VALUES (?, ?, ?, ?, ?, ?)`,
		idem.Principal, idem.Key, idem.RequestHash, idem.Kind, idem.ResourceID, idem.CreatedAt.UnixNano())
	if tx.isUnique(err) {
		return store.ErrIdempotencyRace
	}
	return err
}

// insertEvent records ev (if any) in the write's transaction.
func insertEvent(ctx context.Context, tx *wtx, ev *store.Event) error {
	if ev == nil {
		return nil
	}
	changes := ev.Changes
	if changes == nil {
		changes = map[string]any{}
	}
	return tx.queryRow(ctx, `INSERT INTO events (at, actor, request_id, action, app, key_id, changes) VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING id`,
		ev.At.UnixNano(), ev.Actor, ev.RequestID, ev.Action, ev.App, ev.KeyID, mustJSON(changes)).Scan(&ev.ID)
}

// ---- apps

func (s *Store) CreateApp(ctx context.Context, a store.App, idem *store.Idempotency, ev *store.Event) error {
	return s.tx(ctx, store.NoVerdictChange, func(tx *wtx) error {
		if err := insertIdempotency(ctx, tx, idem); err != nil {
			return err
		}
		if err := insertEvent(ctx, tx, ev); err != nil {
			return err
		}
		rr, rw := rateCols(a.RateLimit)
		_, err := tx.exec(ctx, `INSERT INTO apps (`+appColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			a.Slug, a.Name, a.Description, mustJSON(a.Scopes), a.KeyPrefix, rr, rw, a.CreatedAt.UnixNano(), a.UpdatedAt.UnixNano())
		if tx.isUnique(err) {
			return store.ErrExists
		}
		return err
	})
}

func rateCols(r *store.RateLimit) (any, any) {
	if r == nil {
		return nil, nil
	}
	return r.Requests, int64(r.Window)
}

type scanner interface{ Scan(...any) error }

func scanApp(row scanner) (store.App, error) {
	var a store.App
	var scopes string
	var rr, rw sql.NullInt64
	var created, updated int64
	err := row.Scan(&a.Slug, &a.Name, &a.Description, &scopes, &a.KeyPrefix, &rr, &rw, &created, &updated)
	if errors.Is(err, sql.ErrNoRows) {
		return a, store.ErrNotFound
	}
	if err != nil {
		return a, err
	}
	a.Scopes = mustStrings(scopes)
	a.RateLimit = rateLimit(rr, rw)
	a.CreatedAt, a.UpdatedAt = fromNanos(created), fromNanos(updated)
	return a, nil
}

func rateLimit(rr, rw sql.NullInt64) *store.RateLimit {
	if !rr.Valid {
		return nil
	}
	return &store.RateLimit{Requests: int(rr.Int64), Window: time.Duration(rw.Int64)}
}

func (s *Store) GetApp(ctx context.Context, slug string) (store.App, error) {
	return scanApp(s.queryRow(ctx, `SELECT `+appColumns+` FROM apps WHERE slug = ?`, slug))
}

func (s *Store) ListApps(ctx context.Context) ([]store.App, error) {
	rows, err := s.query(ctx, `SELECT `+appColumns+` FROM apps ORDER BY slug`)
	if err != nil {
		return nil, err
	}
	return collect(rows, scanApp)
}

// collect scans every row with scan and closes rows.
func collect[T any](rows *sql.Rows, scan func(scanner) (T, error)) ([]T, error) {
	defer rows.Close()
	out := []T{}
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, rows.Err()
}

// unrevokedKeys are the app's keys that are not revoked: what an app change
// must not strand (which of them still count, at what time, is the service's rule).
func unrevokedKeys(ctx context.Context, tx *wtx, slug string) ([]store.Key, error) {
	rows, err := tx.query(ctx, `SELECT `+keyColumns+` FROM keys k WHERE k.app = ? AND k.revoked_at IS NULL ORDER BY k.id`, slug)
	if err != nil {
		return nil, err
	}
	return collectKeys(rows)
}

func (s *Store) UpdateApp(ctx context.Context, slug string, fn func(*store.App, []store.Key) error, ev *store.Event) (store.App, error) {
	var a store.App
	err := s.tx(ctx, store.Invalidation{App: slug}, func(tx *wtx) error {
		var err error
		if a, err = scanApp(tx.queryRow(ctx, `SELECT `+appColumns+` FROM apps WHERE slug = ?`+s.dialect.ForUpdate, slug)); err != nil {
			return err
		}
		keys, err := unrevokedKeys(ctx, tx, slug)
		if err != nil {
			return err
		}
		if err := fn(&a, keys); err != nil {
			return err
		}
		if err := insertEvent(ctx, tx, ev); err != nil {
			return err
		}
		rr, rw := rateCols(a.RateLimit)
		_, err = tx.exec(ctx, `UPDATE apps SET name = ?, description = ?, scopes = ?, rate_requests = ?, rate_window = ?, updated_at = ? WHERE slug = ?`,
			a.Name, a.Description, mustJSON(a.Scopes), rr, rw, a.UpdatedAt.UnixNano(), slug)
		return err
	})
	if errors.Is(err, store.ErrNoChange) {
		err = nil
	}
	return a, err
}

func (s *Store) DeleteApp(ctx context.Context, slug string, check func([]store.Key) ([]*store.Event, error)) error {
	return s.tx(ctx, store.Invalidation{App: slug}, func(tx *wtx) error {
		if _, err := scanApp(tx.queryRow(ctx, `SELECT `+appColumns+` FROM apps WHERE slug = ?`+s.dialect.ForUpdate, slug)); err != nil {
			return err
		}
		keys, err := unrevokedKeys(ctx, tx, slug)
		if err != nil {
			return err
		}
		evs, err := check(keys)
		if err != nil {
			return err
		}
		for _, ev := range evs {
			if err := insertEvent(ctx, tx, ev); err != nil {
				return err
			}
		}
		// Keys and their secrets go with the app (ON DELETE CASCADE): once
		// the rows are gone no secret of the app can verify.
		_, err = tx.exec(ctx, `DELETE FROM apps WHERE slug = ?`, slug)
		return err
	})
}

// ---- keys

func (s *Store) CreateKey(ctx context.Context, k store.Key, hash []byte, idem *store.Idempotency, ev *store.Event) error {
	return s.tx(ctx, store.Invalidation{Secrets: [][]byte{hash}}, func(tx *wtx) error {
		if err := insertIdempotency(ctx, tx, idem); err != nil {
			return err
		}
		if err := insertEvent(ctx, tx, ev); err != nil {
			return err
		}
		var n int
		if err := tx.queryRow(ctx, `SELECT count(*) FROM apps WHERE slug = ?`, k.App).Scan(&n); err != nil {
			return err
		}
		if n == 0 {
			return store.ErrNotFound
		}
		_, err := tx.exec(ctx, `INSERT INTO keys (id, app, name, scopes, resources, owner, metadata, expires_at, enabled, start, created_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			k.ID, k.App, k.Name, mustJSON(k.Scopes), mustJSON(k.Resources), k.Owner, mustJSON(k.Metadata),
			nanosOrNil(k.ExpiresAt), k.Enabled, k.Start, k.CreatedAt.UnixNano())
		if tx.isUnique(err) {
			return store.ErrExists
		}
		if tx.isForeignKey(err) {
			return store.ErrNotFound // the app was deleted after the check
		}
		if err != nil {
			return err
		}
		return insertSecret(ctx, tx, hash, k.ID)
	})
}

func insertSecret(ctx context.Context, tx *wtx, hash []byte, id string) error {
	_, err := tx.exec(ctx, `INSERT INTO key_secrets (hash, key_id) VALUES (?, ?)`, hash, id)
	if tx.isUnique(err) {
		return store.ErrSecretTaken
	}
	return err
}

func scanKey(row scanner, extra ...any) (store.Key, error) {
	var k store.Key
	var scopes, resources, metadata string
	var expires, lastUsed, revoked, rotated sql.NullInt64
	var created int64
	dest := append([]any{&k.ID, &k.App, &k.Name, &scopes, &resources, &k.Owner, &metadata, &expires,
		&k.Enabled, &k.Start, &created, &lastUsed, &revoked, &rotated}, extra...)
	err := row.Scan(dest...)
	if errors.Is(err, sql.ErrNoRows) {
		return k, store.ErrNotFound
	}
	if err != nil {
		return k, err
	}
	k.Scopes, k.Resources = mustStrings(scopes), mustStrings(resources)
	if err := json.Unmarshal([]byte(metadata), &k.Metadata); err != nil {
		return k, err
	}
	k.CreatedAt = fromNanos(created)
	k.ExpiresAt, k.LastUsedAt = nullTime(expires), nullTime(lastUsed)
	k.RevokedAt, k.RotatedAt = nullTime(revoked), nullTime(rotated)
	return k, nil
}

func collectKeys(rows *sql.Rows) ([]store.Key, error) {
	return collect(rows, func(r scanner) (store.Key, error) { return scanKey(r) })
}

func (s *Store) GetKey(ctx context.Context, id string) (store.Key, error) {
	return scanKey(s.queryRow(ctx, `SELECT `+keyColumns+` FROM keys k WHERE k.id = ?`, id))
}

func (s *Store) ListKeys(ctx context.Context, f store.KeyFilter) ([]store.Key, error) {
	where := []string{"k.app = ?", "k.id > ?"}
	args := []any{f.App, f.After}
	now := f.Now.UnixNano()
	const notExpired = "(k.expires_at IS NULL OR k.expires_at > ?)"
	switch f.Status {
	case "":
	case vocab.StatusRevoked:
		where = append(where, "k.revoked_at IS NOT NULL")
	case vocab.StatusExpired:
		where = append(where, "k.revoked_at IS NULL", "k.expires_at <= ?")
		args = append(args, now)
	case vocab.StatusDisabled:
		where = append(where, "k.revoked_at IS NULL", notExpired, "NOT k.enabled")
		args = append(args, now)
	case vocab.StatusActive:
		where = append(where, "k.revoked_at IS NULL", notExpired, "k.enabled")
		args = append(args, now)
	default:
		return nil, fmt.Errorf("unknown status %q", f.Status)
	}
	args = append(args, f.Limit)
	rows, err := s.query(ctx, `SELECT `+keyColumns+` FROM keys k WHERE `+strings.Join(where, " AND ")+` ORDER BY k.id LIMIT ?`, args...)
	if err != nil {
		return nil, err
	}
	return collectKeys(rows)
}

// writeKey loads key id in a write transaction and hands it to fn, which
// writes what changes, then records ev; the key as fn left it is returned.
// A write that adds a secret names its hash in added.
func (s *Store) writeKey(ctx context.Context, id string, added []byte, ev *store.Event, fn func(*wtx, *store.Key) error) (store.Key, error) {
	var k store.Key
	inv := store.Invalidation{KeyIDs: []string{id}}
	if added != nil {
		inv.Secrets = [][]byte{added}
	}
	err := s.tx(ctx, inv, func(tx *wtx) error {
		var err error
		if k, err = scanKey(tx.queryRow(ctx, `SELECT `+keyColumns+` FROM keys k WHERE k.id = ?`+s.dialect.ForUpdate, id)); err != nil {
			return err
		}
		if err := fn(tx, &k); err != nil {
			return err
		}
		return insertEvent(ctx, tx, ev)
	})
	if errors.Is(err, store.ErrNoChange) {
		err = nil
	}
	return k, err
}

func (s *Store) UpdateKey(ctx context.Context, id string, fn func(*store.Key) error, ev *store.Event) (store.Key, error) {
	return s.writeKey(ctx, id, nil, ev, func(tx *wtx, k *store.Key) error {
		if err := fn(k); err != nil {
			return err
		}
		_, err := tx.exec(ctx, `UPDATE keys SET name = ?, metadata = ?, enabled = ? WHERE id = ?`,
			k.Name, mustJSON(k.Metadata), k.Enabled, id)
		return err
	})
}

func (s *Store) RevokeKey(ctx context.Context, id string, now time.Time, ev *store.Event) (store.Key, error) {
	return s.writeKey(ctx, id, nil, ev, func(tx *wtx, k *store.Key) error {
		if k.RevokedAt != nil {
			return store.ErrNoChange // revoked already: not an error, and no event
		}
		k.RevokedAt = &now
		// The secret hashes stay, so verify can answer REVOKED rather than NOT_FOUND.
		_, err := tx.exec(ctx, `UPDATE keys SET revoked_at = ? WHERE id = ?`, now.UnixNano(), id)
		return err
	})
}

func (s *Store) RotateKey(ctx context.Context, id string, hash []byte, start string, now time.Time, grace time.Duration, idem *store.Idempotency, ev *store.Event) (store.Key, error) {
	return s.writeKey(ctx, id, hash, ev, func(tx *wtx, k *store.Key) error {
		if err := insertIdempotency(ctx, tx, idem); err != nil {
			return err
		}
		if k.RevokedAt != nil {
			return store.ErrRevoked
		}
		// The new secret first: one stored anywhere already, this key's
		// earlier ones included, is refused before anything changes.
		if err := insertSecret(ctx, tx, hash, id); err != nil {
			return err
		}
		// Drop earlier secrets whose grace has run out, and end the others'
		// at now+grace unless they end sooner already.
		if _, err := tx.exec(ctx, `DELETE FROM key_secrets WHERE key_id = ? AND hash != ? AND (expires_at <= ? OR ?)`,
			id, hash, now.UnixNano(), grace == 0); err != nil {
			return err
		}
		until := now.Add(grace).UnixNano()
		if _, err := tx.exec(ctx, `UPDATE key_secrets SET expires_at = ? WHERE key_id = ? AND hash != ? AND (expires_at IS NULL OR expires_at > ?)`,
			until, id, hash, until); err != nil {
			return err
		}
		k.Start, k.RotatedAt = start, &now
		_, err := tx.exec(ctx, `UPDATE keys SET start = ?, rotated_at = ? WHERE id = ?`, start, now.UnixNano(), id)
		return err
	})
}

func (s *Store) ReplaceSecret(ctx context.Context, id string, hash []byte, start string, rotatedAt *time.Time, ev *store.Event) (store.Key, error) {
	return s.writeKey(ctx, id, hash, ev, func(tx *wtx, k *store.Key) error {
		if k.RevokedAt != nil {
			return store.ErrRevoked
		}
		if !sameTime(k.RotatedAt, rotatedAt) {
			return store.ErrRotatedSince
		}
		if _, err := tx.exec(ctx, `DELETE FROM key_secrets WHERE key_id = ? AND expires_at IS NULL`, id); err != nil {
			return err
		}
		if err := insertSecret(ctx, tx, hash, id); err != nil {
			return err
		}
		k.Start = start
		_, err := tx.exec(ctx, `UPDATE keys SET start = ? WHERE id = ?`, start, id)
		return err
	})
}

func sameTime(a, b *time.Time) bool {
	if a == nil || b == nil {
		return a == b
	}
	return a.Equal(*b)
}

func (s *Store) LookupSecret(ctx context.Context, hash []byte) (store.Secret, error) {
	return s.cache.LookupSecret(hash, func() (store.Secret, error) { return s.lookupSecret(ctx, hash) })
}

func (s *Store) lookupSecret(ctx context.Context, hash []byte) (store.Secret, error) {
	var sec store.Secret
	var expires, rr, rw sql.NullInt64
	var row *sql.Row
	if s.lookup != nil {
		row = s.lookup.QueryRowContext(ctx, hash)
	} else {
		row = s.queryRow(ctx, lookupQuery, hash)
	}
	k, err := scanKey(row, &expires, &rr, &rw)
	if err != nil {
		return sec, err
	}
	sec.Key, sec.ExpiresAt, sec.RateLimit = k, nullTime(expires), rateLimit(rr, rw)
	return sec, nil
}

// recordUseChunk is how many keys one UPDATE of RecordUse sets.
const recordUseChunk = 200

func (s *Store) RecordUse(ctx context.Context, used map[string]time.Time) error {
	if len(used) == 0 {
		return nil
	}
	return s.tx(ctx, store.NoVerdictChange, func(tx *wtx) error {
		ids := make([]string, 0, len(used))
		for id := range used {
			ids = append(ids, id)
		}
		slices.Sort(ids) // a stable order keeps concurrent batches from interleaving oddly
		// One statement per recordUseChunk keys, not one per key: under
		// verify load this flush runs every second over every key used.
		for chunk := range slices.Chunk(ids, recordUseChunk) {
			var q strings.Builder
			q.WriteString(`UPDATE keys SET last_used_at = u.t FROM (`)
			args := make([]any, 0, 2*len(chunk))
			for i, id := range chunk {
				if i > 0 {
					q.WriteString(` UNION ALL `)
				}
				q.WriteString(`SELECT CAST(? AS TEXT) AS id, CAST(? AS BIGINT) AS t`)
				args = append(args, id, used[id].UnixNano())
			}
			q.WriteString(`) AS u WHERE keys.id = u.id AND (keys.last_used_at IS NULL OR keys.last_used_at < u.t)`)
			if _, err := tx.exec(ctx, q.String(), args...); err != nil {
				return err
			}
		}
		return nil
	})
}

// ---- idempotency and settings

func (s *Store) GetIdempotency(ctx context.Context, principal, key string) (store.Idempotency, error) {
	i := store.Idempotency{Principal: principal, Key: key}
	var created int64
	err := s.queryRow(ctx, `SELECT request_hash, kind, resource_id, created_at FROM idempotency WHERE principal = ? AND idem_key = ?`,
		principal, key).Scan(&i.RequestHash, &i.Kind, &i.ResourceID, &created)
	if errors.Is(err, sql.ErrNoRows) {
		return i, store.ErrNotFound
	}
	i.CreatedAt = fromNanos(created)
	return i, err
}

func (s *Store) ListEvents(ctx context.Context, f store.EventFilter) ([]store.Event, error) {
	where, args := []string{"1 = 1"}, []any{}
	if f.Apps != nil {
		if len(f.Apps) == 0 {
			return []store.Event{}, nil
		}
		where = append(where, "app IN (?"+strings.Repeat(", ?", len(f.Apps)-1)+")")
		for _, a := range f.Apps {
			args = append(args, a)
		}
	}
	if f.App != "" {
		where, args = append(where, "app = ?"), append(args, f.App)
	}
	if f.KeyID != "" {
		where, args = append(where, "key_id = ?"), append(args, f.KeyID)
	}
	if f.Actor != "" {
		where, args = append(where, "actor = ?"), append(args, f.Actor)
	}
	if f.Action != "" {
		where, args = append(where, "action = ?"), append(args, f.Action)
	}
	if !f.Since.IsZero() {
		where, args = append(where, "at >= ?"), append(args, f.Since.UnixNano())
	}
	if !f.Until.IsZero() {
		where, args = append(where, "at < ?"), append(args, f.Until.UnixNano())
	}
	if f.Before > 0 {
		where, args = append(where, "id < ?"), append(args, f.Before)
	}
	args = append(args, f.Limit)
	rows, err := s.query(ctx, `SELECT id, at, actor, request_id, action, app, key_id, changes FROM events WHERE `+
		strings.Join(where, " AND ")+` ORDER BY id DESC LIMIT ?`, args...)
	if err != nil {
		return nil, err
	}
	return collect(rows, func(r scanner) (store.Event, error) {
		var e store.Event
		var at int64
		var changes string
		if err := r.Scan(&e.ID, &at, &e.Actor, &e.RequestID, &e.Action, &e.App, &e.KeyID, &changes); err != nil {
			return e, err
		}
		e.At = fromNanos(at)
		return e, json.Unmarshal([]byte(changes), &e.Changes)
	})
}

func (s *Store) PurgeEvents(ctx context.Context, before time.Time) (int64, error) {
	res, err := s.exec(ctx, `DELETE FROM events WHERE at < ?`, before.UnixNano())
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}

func (s *Store) PurgeIdempotency(ctx context.Context, before time.Time) (int64, error) {
	res, err := s.exec(ctx, `DELETE FROM idempotency WHERE created_at < ?`, before.UnixNano())
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}

func (s *Store) Compact(ctx context.Context) error {
	if s.dialect.Compact == nil {
		return nil
	}
	return s.dialect.Compact(ctx, s.db)
}

func (s *Store) RootTokenHash(ctx context.Context) ([]byte, error) {
	return s.cache.RootTokenHash(func() ([]byte, error) {
		var v []byte
		err := s.queryRow(ctx, `SELECT value FROM settings WHERE name = 'root_token_sha256'`).Scan(&v)
		if errors.Is(err, sql.ErrNoRows) {
			return nil, store.ErrNotFound
		}
		return v, err
	})
}

// SetRootTokenHash is a write like the others: every replica drops the
// root hash it held, so a reset takes effect everywhere before it returns.
func (s *Store) SetRootTokenHash(ctx context.Context, hash []byte, replace bool) error {
	stmt := `INSERT INTO settings (name, value) VALUES ('root_token_sha256', ?)`
	if replace {
		stmt += ` ON CONFLICT (name) DO UPDATE SET value = excluded.value`
	}
	return s.tx(ctx, store.Invalidation{Root: true}, func(tx *wtx) error {
		_, err := tx.exec(ctx, stmt, hash)
		if tx.isUnique(err) {
			return store.ErrExists
		}
		return err
	})
}

// ---- portal sessions

func (s *Store) CreateSession(ctx context.Context, sess store.Session) error {
	_, err := s.exec(ctx, `INSERT INTO sessions (hash, credential, generation, created_at, expires_at, idle_until) VALUES (?, ?, ?, ?, ?, ?)`,
		sess.Hash, sess.Credential, sess.Generation, sess.CreatedAt.UnixNano(), sess.ExpiresAt.UnixNano(), sess.IdleUntil.UnixNano())
	if s.isUnique(err) {
		return store.ErrExists
	}
	return err
}

func (s *Store) GetSession(ctx context.Context, hash []byte) (store.Session, error) {
	sess := store.Session{Hash: hash}
	var created, expires, idle int64
	err := s.queryRow(ctx, `SELECT credential, generation, created_at, expires_at, idle_until FROM sessions WHERE hash = ?`, hash).
		Scan(&sess.Credential, &sess.Generation, &created, &expires, &idle)
	if errors.Is(err, sql.ErrNoRows) {
		return sess, store.ErrNotFound
	}
	sess.CreatedAt, sess.ExpiresAt, sess.IdleUntil = fromNanos(created), fromNanos(expires), fromNanos(idle)
	return sess, err
}

func (s *Store) TouchSession(ctx context.Context, hash []byte, idleUntil time.Time) error {
	res, err := s.exec(ctx, `UPDATE sessions SET idle_until = ? WHERE hash = ?`, idleUntil.UnixNano(), hash)
	if err != nil {
		return err
	}
	if n, err := res.RowsAffected(); err != nil || n == 0 {
		return cmpErr(err, store.ErrNotFound)
	}
	return nil
}

// cmpErr is err, or else fallback.
func cmpErr(err, fallback error) error {
	if err != nil {
		return err
	}
	return fallback
}

func (s *Store) DeleteSession(ctx context.Context, hash []byte) error {
	_, err := s.exec(ctx, `DELETE FROM sessions WHERE hash = ?`, hash)
	return err
}

func (s *Store) DeleteSessionsOf(ctx context.Context, credential string) (int64, error) {
	res, err := s.exec(ctx, `DELETE FROM sessions WHERE credential = ?`, credential)
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}

func (s *Store) PurgeSessions(ctx context.Context, before time.Time) (int64, error) {
	res, err := s.exec(ctx, `DELETE FROM sessions WHERE idle_until < ?`, before.UnixNano())
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}

// ---- encoding helpers

func mustJSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err) // only string slices and maps reach here
	}
	return string(b)
}

func mustStrings(s string) []string {
	out := []string{}
	if err := json.Unmarshal([]byte(s), &out); err != nil || out == nil {
		return []string{}
	}
	return out
}

func fromNanos(n int64) time.Time { return time.Unix(0, n).UTC() }

func nullTime(n sql.NullInt64) *time.Time {
	if !n.Valid {
		return nil
	}
	t := fromNanos(n.Int64)
	return &t
}

func nanosOrNil(t *time.Time) any {
	if t == nil {
		return nil
	}
	return t.UnixNano()
}

// Ping reads the database the way verify does (a lookup of a hash no secret
// has, past the cache): for readiness, it fails when lookups would.
func (s *Store) Ping(ctx context.Context) error {
	var nobody [32]byte
	_, err := s.lookupSecret(ctx, nobody[:])
	if errors.Is(err, store.ErrNotFound) {
		return nil
	}
	return err
}
