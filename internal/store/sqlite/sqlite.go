// Package sqlite is keymint's embedded store: one file, no other process.
package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/gofrs/flock"
	"github.com/keymint/terraform-provider-keymint/internal/store"
	"github.com/keymint/terraform-provider-keymint/internal/vocab"
	sqlite3 "modernc.org/sqlite"
	sqlite3lib "modernc.org/sqlite/lib"
)

const schema = `
CREATE TABLE IF NOT EXISTS apps (
	slug          TEXT PRIMARY KEY,
	name          TEXT NOT NULL,
	description   TEXT NOT NULL,
	scopes        TEXT NOT NULL,
	key_prefix    TEXT NOT NULL UNIQUE,
	rate_requests INTEGER,
	rate_window   INTEGER,
	created_at    INTEGER NOT NULL,
	updated_at    INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS keys (
	id           TEXT PRIMARY KEY,
	app          TEXT NOT NULL REFERENCES apps(slug) ON DELETE CASCADE,
	name         TEXT NOT NULL,
	scopes       TEXT NOT NULL,
	resources    TEXT NOT NULL,
	owner        TEXT NOT NULL,
	metadata     TEXT NOT NULL,
	expires_at   INTEGER,
	enabled      INTEGER NOT NULL,
	start        TEXT NOT NULL,
	created_at   INTEGER NOT NULL,
	last_used_at INTEGER,
	revoked_at   INTEGER,
	rotated_at   INTEGER
);
CREATE INDEX IF NOT EXISTS keys_by_app ON keys(app, id);
CREATE TABLE IF NOT EXISTS key_secrets (
	hash       BLOB PRIMARY KEY,
	key_id     TEXT NOT NULL REFERENCES keys(id) ON DELETE CASCADE,
	expires_at INTEGER
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS key_secrets_by_key ON key_secrets(key_id);
CREATE TABLE IF NOT EXISTS idempotency (
	principal    TEXT NOT NULL,
	idem_key     TEXT NOT NULL,
	request_hash BLOB NOT NULL,
	kind         TEXT NOT NULL,
	resource_id  TEXT NOT NULL,
	created_at   INTEGER NOT NULL,
	PRIMARY KEY (principal, idem_key)
);
CREATE TABLE IF NOT EXISTS events (
	id         INTEGER PRIMARY KEY AUTOINCREMENT,
	at         INTEGER NOT NULL,
	actor      TEXT NOT NULL,
	request_id TEXT NOT NULL,
	action     TEXT NOT NULL,
	app        TEXT NOT NULL,
	key_id     TEXT NOT NULL,
	changes    TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS events_by_app ON events(app, id);
CREATE INDEX IF NOT EXISTS events_by_key ON events(key_id, id);
CREATE INDEX IF NOT EXISTS events_by_time ON events(at);
CREATE TABLE IF NOT EXISTS settings (
	name  TEXT PRIMARY KEY,
	value BLOB NOT NULL
);
`

const keyColumns = `k.id, k.app, k.name, k.scopes, k.resources, k.owner, k.metadata, k.expires_at,
	k.enabled, k.start, k.created_at, k.last_used_at, k.revoked_at, k.rotated_at`

const appColumns = `slug, name, description, scopes, key_prefix, rate_requests, rate_window, created_at, updated_at`

// Store is a store.Store on a SQLite file.
type Store struct {
	db     *sql.DB
	lookup *sql.Stmt
	lock   *flock.Flock
}

var _ store.Store = (*Store)(nil)

// walSizeLimit is what the WAL is cut back to after each checkpoint.
const walSizeLimit = 8 << 20

// ErrInUse is returned by Open when another Store, in this process or
// another, has the database open.
var ErrInUse = errors.New("database in use")

// Open opens (creating if needed) the database at path. A database has one
// Store at a time: the verify cache in front of it is sound only if every
// write goes through it. Open takes a lock beside the real file (symlinks
// resolved), held until Close, and fails with ErrInUse if another has it.
func Open(ctx context.Context, path string) (*Store, error) {
	lock, err := lockFile(path)
	if err != nil {
		return nil, err
	}
	s, err := open(ctx, path)
	if err != nil {
		_ = lock.Unlock()
		return nil, err
	}
	s.lock = lock
	return s, nil
}

// lockFile locks <real path of the database>.lock, creating the database
// file first so that its real path exists to be resolved.
func lockFile(path string) (*flock.Flock, error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, err
	}
	f.Close()
	real, err := filepath.EvalSymlinks(path)
	if err != nil {
		return nil, err
	}
	if real, err = filepath.Abs(real); err != nil {
		return nil, err
	}
	lock := flock.New(real + ".lock")
	ok, err := lock.TryLock()
	if err != nil {
		return nil, fmt.Errorf("locking %s: %w", real, err)
	}
	if !ok {
		return nil, fmt.Errorf("%w: %s is open in another keymint process (lock %s.lock): stop it first; one server runs per SQLite file", ErrInUse, real, real)
	}
	return lock, nil
}

func open(ctx context.Context, path string) (*Store, error) {
	q := url.Values{}
	// journal_size_limit: after a checkpoint, the WAL is cut back to this size
	// rather than kept at its high-water mark (Compact truncates it to zero).
	for _, p := range []string{"journal_mode(WAL)", "busy_timeout(10000)", "foreign_keys(1)", "synchronous(NORMAL)",
		fmt.Sprintf("journal_size_limit(%d)", walSizeLimit)} {
		q.Add("_pragma", p)
	}
	// Write transactions take the write lock up front, so two of them never
	// deadlock upgrading a read lock.
	q.Set("_txlock", "immediate")
	db, err := sql.Open("sqlite", "file:"+path+"?"+q.Encode())
	if err != nil {
		return nil, err
	}
	// Readers run in parallel under WAL; writers queue on the file lock.
	db.SetMaxOpenConns(2 * runtime.GOMAXPROCS(0))
	db.SetMaxIdleConns(2 * runtime.GOMAXPROCS(0))
	db.SetConnMaxIdleTime(0)
	if _, err := db.ExecContext(ctx, schema); err != nil {
		db.Close()
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	lookup, err := db.PrepareContext(ctx, `SELECT `+keyColumns+`, s.expires_at, a.rate_requests, a.rate_window
		FROM key_secrets s JOIN keys k ON k.id = s.key_id JOIN apps a ON a.slug = k.app WHERE s.hash = ?`)
	if err != nil {
		db.Close()
		return nil, err
	}
	return &Store{db: db, lookup: lookup}, nil
}

func (s *Store) Close() error {
	s.lookup.Close()
	err := s.db.Close()
	if s.lock != nil {
		err = errors.Join(err, s.lock.Unlock())
	}
	return err
}

func (s *Store) tx(ctx context.Context, fn func(*sql.Tx) error) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	if err := fn(tx); err != nil {
		tx.Rollback()
		return err
	}
	return tx.Commit()
}

func isUnique(err error) bool {
	var e *sqlite3.Error
	return errors.As(err, &e) && (e.Code() == sqlite3lib.SQLITE_CONSTRAINT_PRIMARYKEY || e.Code() == sqlite3lib.SQLITE_CONSTRAINT_UNIQUE)
}

func insertIdempotency(ctx context.Context, tx *sql.Tx, idem *store.Idempotency) error {
	if idem == nil {
		return nil
	}
	_, err := tx.ExecContext(ctx, `INSERT INTO idempotency VALUES (?, ?, ?, ?, ?, ?)`,
		idem.Principal, idem.Key, idem.RequestHash, idem.Kind, idem.ResourceID, idem.CreatedAt.UnixNano())
	if isUnique(err) {
		return store.ErrIdempotencyRace
	}
	return err
}

// insertEvent records ev (if any) in the write's transaction.
func insertEvent(ctx context.Context, tx *sql.Tx, ev *store.Event) error {
	if ev == nil {
		return nil
	}
	changes := ev.Changes
	if changes == nil {
		changes = map[string]any{}
	}
	res, err := tx.ExecContext(ctx, `INSERT INTO events (at, actor, request_id, action, app, key_id, changes) VALUES (?, ?, ?, ?, ?, ?, ?)`,
		ev.At.UnixNano(), ev.Actor, ev.RequestID, ev.Action, ev.App, ev.KeyID, mustJSON(changes))
	if err != nil {
		return err
	}
	ev.ID, err = res.LastInsertId()
	return err
}

// ---- apps

func (s *Store) CreateApp(ctx context.Context, a store.App, idem *store.Idempotency, ev *store.Event) error {
	return s.tx(ctx, func(tx *sql.Tx) error {
		if err := insertIdempotency(ctx, tx, idem); err != nil {
			return err
		}
		if err := insertEvent(ctx, tx, ev); err != nil {
			return err
		}
		rr, rw := rateCols(a.RateLimit)
		_, err := tx.ExecContext(ctx, `INSERT INTO apps (`+appColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			a.Slug, a.Name, a.Description, mustJSON(a.Scopes), a.KeyPrefix, rr, rw, a.CreatedAt.UnixNano(), a.UpdatedAt.UnixNano())
		if isUnique(err) {
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
	return scanApp(s.db.QueryRowContext(ctx, `SELECT `+appColumns+` FROM apps WHERE slug = ?`, slug))
}

func (s *Store) ListApps(ctx context.Context) ([]store.App, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT `+appColumns+` FROM apps ORDER BY slug`)
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
func unrevokedKeys(ctx context.Context, tx *sql.Tx, slug string) ([]store.Key, error) {
	rows, err := tx.QueryContext(ctx, `SELECT `+keyColumns+` FROM keys k WHERE k.app = ? AND k.revoked_at IS NULL ORDER BY k.id`, slug)
	if err != nil {
		return nil, err
	}
	return collectKeys(rows)
}

func (s *Store) UpdateApp(ctx context.Context, slug string, fn func(*store.App, []store.Key) error, ev *store.Event) (store.App, error) {
	var a store.App
	err := s.tx(ctx, func(tx *sql.Tx) error {
		var err error
		if a, err = scanApp(tx.QueryRowContext(ctx, `SELECT `+appColumns+` FROM apps WHERE slug = ?`, slug)); err != nil {
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
		_, err = tx.ExecContext(ctx, `UPDATE apps SET name = ?, description = ?, scopes = ?, rate_requests = ?, rate_window = ?, updated_at = ? WHERE slug = ?`,
			a.Name, a.Description, mustJSON(a.Scopes), rr, rw, a.UpdatedAt.UnixNano(), slug)
		return err
	})
	if errors.Is(err, store.ErrNoChange) {
		err = nil
	}
	return a, err
}

func (s *Store) DeleteApp(ctx context.Context, slug string, check func([]store.Key) ([]*store.Event, error)) error {
	return s.tx(ctx, func(tx *sql.Tx) error {
		if _, err := scanApp(tx.QueryRowContext(ctx, `SELECT `+appColumns+` FROM apps WHERE slug = ?`, slug)); err != nil {
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
		_, err = tx.ExecContext(ctx, `DELETE FROM apps WHERE slug = ?`, slug)
		return err
	})
}

// ---- keys

func (s *Store) CreateKey(ctx context.Context, k store.Key, hash []byte, idem *store.Idempotency, ev *store.Event) error {
	return s.tx(ctx, func(tx *sql.Tx) error {
		if err := insertIdempotency(ctx, tx, idem); err != nil {
			return err
		}
		if err := insertEvent(ctx, tx, ev); err != nil {
			return err
		}
		var n int
		if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM apps WHERE slug = ?`, k.App).Scan(&n); err != nil {
			return err
		}
		if n == 0 {
			return store.ErrNotFound
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO keys (id, app, name, scopes, resources, owner, metadata, expires_at, enabled, start, created_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			k.ID, k.App, k.Name, mustJSON(k.Scopes), mustJSON(k.Resources), k.Owner, mustJSON(k.Metadata),
			nanosOrNil(k.ExpiresAt), k.Enabled, k.Start, k.CreatedAt.UnixNano())
		if isUnique(err) {
			return store.ErrExists
		}
		if err != nil {
			return err
		}
		return insertSecret(ctx, tx, hash, k.ID)
	})
}

func insertSecret(ctx context.Context, tx *sql.Tx, hash []byte, id string) error {
	_, err := tx.ExecContext(ctx, `INSERT INTO key_secrets (hash, key_id) VALUES (?, ?)`, hash, id)
	if isUnique(err) {
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

func getKey(ctx context.Context, q interface {
	QueryRowContext(context.Context, string, ...any) *sql.Row
}, id string) (store.Key, error) {
	return scanKey(q.QueryRowContext(ctx, `SELECT `+keyColumns+` FROM keys k WHERE k.id = ?`, id))
}

func (s *Store) GetKey(ctx context.Context, id string) (store.Key, error) {
	return getKey(ctx, s.db, id)
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
		where = append(where, "k.revoked_at IS NULL", notExpired, "k.enabled = 0")
		args = append(args, now)
	case vocab.StatusActive:
		where = append(where, "k.revoked_at IS NULL", notExpired, "k.enabled = 1")
		args = append(args, now)
	default:
		return nil, fmt.Errorf("unknown status %q", f.Status)
	}
	args = append(args, f.Limit)
	rows, err := s.db.QueryContext(ctx, `SELECT `+keyColumns+` FROM keys k WHERE `+strings.Join(where, " AND ")+` ORDER BY k.id LIMIT ?`, args...)
	if err != nil {
		return nil, err
	}
	return collectKeys(rows)
}

// writeKey loads key id in a write transaction and hands it to fn, which
// writes what changes, then records ev; the key as fn left it is returned.
func (s *Store) writeKey(ctx context.Context, id string, ev *store.Event, fn func(*sql.Tx, *store.Key) error) (store.Key, error) {
	var k store.Key
	err := s.tx(ctx, func(tx *sql.Tx) error {
		var err error
		if k, err = getKey(ctx, tx, id); err != nil {
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
	return s.writeKey(ctx, id, ev, func(tx *sql.Tx, k *store.Key) error {
		if err := fn(k); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, `UPDATE keys SET name = ?, metadata = ?, enabled = ? WHERE id = ?`,
			k.Name, mustJSON(k.Metadata), k.Enabled, id)
		return err
	})
}

func (s *Store) RevokeKey(ctx context.Context, id string, now time.Time, ev *store.Event) (store.Key, error) {
	return s.writeKey(ctx, id, ev, func(tx *sql.Tx, k *store.Key) error {
		if k.RevokedAt != nil {
			return store.ErrNoChange // revoked already: not an error, and no event
		}
		k.RevokedAt = &now
		// The secret hashes stay, so verify can answer REVOKED rather than NOT_FOUND.
		_, err := tx.ExecContext(ctx, `UPDATE keys SET revoked_at = ? WHERE id = ?`, now.UnixNano(), id)
		return err
	})
}

func (s *Store) RotateKey(ctx context.Context, id string, hash []byte, start string, now time.Time, grace time.Duration, idem *store.Idempotency, ev *store.Event) (store.Key, error) {
	return s.writeKey(ctx, id, ev, func(tx *sql.Tx, k *store.Key) error {
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
		if _, err := tx.ExecContext(ctx, `DELETE FROM key_secrets WHERE key_id = ? AND hash != ? AND (expires_at <= ? OR ? = 0)`,
			id, hash, now.UnixNano(), int64(grace)); err != nil {
			return err
		}
		until := now.Add(grace).UnixNano()
		if _, err := tx.ExecContext(ctx, `UPDATE key_secrets SET expires_at = ? WHERE key_id = ? AND hash != ? AND (expires_at IS NULL OR expires_at > ?)`,
			until, id, hash, until); err != nil {
			return err
		}
		k.Start, k.RotatedAt = start, &now
		_, err := tx.ExecContext(ctx, `UPDATE keys SET start = ?, rotated_at = ? WHERE id = ?`, start, now.UnixNano(), id)
		return err
	})
}

func (s *Store) ReplaceSecret(ctx context.Context, id string, hash []byte, start string, rotatedAt *time.Time, ev *store.Event) (store.Key, error) {
	return s.writeKey(ctx, id, ev, func(tx *sql.Tx, k *store.Key) error {
		if k.RevokedAt != nil {
			return store.ErrRevoked
		}
		if !sameTime(k.RotatedAt, rotatedAt) {
			return store.ErrRotatedSince
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM key_secrets WHERE key_id = ? AND expires_at IS NULL`, id); err != nil {
			return err
		}
		if err := insertSecret(ctx, tx, hash, id); err != nil {
			return err
		}
		k.Start = start
		_, err := tx.ExecContext(ctx, `UPDATE keys SET start = ? WHERE id = ?`, start, id)
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
	var sec store.Secret
	var expires, rr, rw sql.NullInt64
	k, err := scanKey(s.lookup.QueryRowContext(ctx, hash), &expires, &rr, &rw)
	if err != nil {
		return sec, err
	}
	sec.Key, sec.ExpiresAt, sec.RateLimit = k, nullTime(expires), rateLimit(rr, rw)
	return sec, nil
}

func (s *Store) RecordUse(ctx context.Context, used map[string]time.Time) error {
	if len(used) == 0 {
		return nil
	}
	return s.tx(ctx, func(tx *sql.Tx) error {
		stmt, err := tx.PrepareContext(ctx, `UPDATE keys SET last_used_at = ? WHERE id = ? AND (last_used_at IS NULL OR last_used_at < ?)`)
		if err != nil {
			return err
		}
		defer stmt.Close()
		ids := make([]string, 0, len(used))
		for id := range used {
			ids = append(ids, id)
		}
		slices.Sort(ids) // a stable order keeps concurrent batches from interleaving oddly
		for _, id := range ids {
			t := used[id].UnixNano()
			if _, err := stmt.ExecContext(ctx, t, id, t); err != nil {
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
	err := s.db.QueryRowContext(ctx, `SELECT request_hash, kind, resource_id, created_at FROM idempotency WHERE principal = ? AND idem_key = ?`,
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
	if f.Before > 0 {
		where, args = append(where, "id < ?"), append(args, f.Before)
	}
	args = append(args, f.Limit)
	rows, err := s.db.QueryContext(ctx, `SELECT id, at, actor, request_id, action, app, key_id, changes FROM events WHERE `+
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
	res, err := s.db.ExecContext(ctx, `DELETE FROM events WHERE at < ?`, before.UnixNano())
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}

func (s *Store) PurgeIdempotency(ctx context.Context, before time.Time) (int64, error) {
	res, err := s.db.ExecContext(ctx, `DELETE FROM idempotency WHERE created_at < ?`, before.UnixNano())
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}

// Compact checkpoints the WAL into the database and truncates it. A reader
// in the middle of a transaction can keep it from finishing; the next run
// does it then.
func (s *Store) Compact(ctx context.Context) error {
	_, err := s.db.ExecContext(ctx, `PRAGMA wal_checkpoint(TRUNCATE)`)
	return err
}

// Check runs SQLite's integrity check and looks for rows that lost their
// parent (secrets without a key, keys without an app) or keys left without
// any secret: after a crash, none of these may exist.
func (s *Store) Check(ctx context.Context) error {
	var result string
	if err := s.db.QueryRowContext(ctx, `PRAGMA integrity_check`).Scan(&result); err != nil {
		return err
	}
	if result != "ok" {
		return fmt.Errorf("integrity_check: %s", result)
	}
	for what, query := range map[string]string{
		"secrets without a key": `SELECT count(*) FROM key_secrets s LEFT JOIN keys k ON k.id = s.key_id WHERE k.id IS NULL`,
		"keys without an app":   `SELECT count(*) FROM keys k LEFT JOIN apps a ON a.slug = k.app WHERE a.slug IS NULL`,
		"keys without a secret": `SELECT count(*) FROM keys k WHERE NOT EXISTS (SELECT 1 FROM key_secrets s WHERE s.key_id = k.id)`,
	} {
		var n int
		if err := s.db.QueryRowContext(ctx, query).Scan(&n); err != nil {
			return err
		}
		if n > 0 {
			return fmt.Errorf("%d %s", n, what)
		}
	}
	return nil
}

func (s *Store) RootTokenHash(ctx context.Context) ([]byte, error) {
	var v []byte
	err := s.db.QueryRowContext(ctx, `SELECT value FROM settings WHERE name = 'root_token_sha256'`).Scan(&v)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, store.ErrNotFound
	}
	return v, err
}

func (s *Store) SetRootTokenHash(ctx context.Context, hash []byte, replace bool) error {
	stmt := `INSERT INTO settings (name, value) VALUES ('root_token_sha256', ?)`
	if replace {
		stmt += ` ON CONFLICT (name) DO UPDATE SET value = excluded.value`
	}
	_, err := s.db.ExecContext(ctx, stmt, hash)
	if isUnique(err) {
		return store.ErrExists
	}
	return err
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
