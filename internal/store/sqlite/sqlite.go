// Package sqlite is keymint's embedded store: one file, no other process.
package sqlite

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"strings"

	"github.com/keymint/terraform-provider-keymint/internal/store"
	"github.com/keymint/terraform-provider-keymint/internal/store/sqlstore"
	"github.com/pressly/goose/v3"
	sqlite3 "modernc.org/sqlite"
	sqlite3lib "modernc.org/sqlite/lib"
)

//go:embed migrations/*.sql
var migrations embed.FS

// Migrations are the schema's versions, embedded in the binary.
var Migrations, _ = fs.Sub(migrations, "migrations")

// Store is a store.Store on a SQLite file.
type Store struct {
	*sqlstore.Store
	unlock   func() error
	stopFill func()
}

var _ store.Store = (*Store)(nil)

// walSizeLimit is what the WAL is cut back to after each checkpoint.
const walSizeLimit = 8 << 20

// ErrInUse is returned by Open when another Store, in this process or
// another, has the database open.
var ErrInUse = errors.New("database in use")

var dialect = sqlstore.Dialect{
	Prepare: true,
	IsUnique: func(err error) bool {
		var e *sqlite3.Error
		return errors.As(err, &e) && (e.Code() == sqlite3lib.SQLITE_CONSTRAINT_PRIMARYKEY || e.Code() == sqlite3lib.SQLITE_CONSTRAINT_UNIQUE)
	},
	IsForeignKey: func(err error) bool {
		var e *sqlite3.Error
		return errors.As(err, &e) && e.Code() == sqlite3lib.SQLITE_CONSTRAINT_FOREIGNKEY
	},
	// Compact checkpoints the WAL into the database and truncates it. A
	// reader in the middle of a transaction can keep it from finishing; the
	// next run does it then.
	Compact: func(ctx context.Context, db *sql.DB) error {
		_, err := db.ExecContext(ctx, `PRAGMA wal_checkpoint(TRUNCATE)`)
		return err
	},
}

// Options configure Open.
type Options struct {
	// CacheSize > 0 keeps up to that many secrets of the verify path in
	// memory (store.VerifyCache); every write of this store drops what it
	// changed before it returns.
	CacheSize int
	// OnCacheLookup, if set, hears whether each cached lookup was a hit.
	OnCacheLookup func(hit bool)
	// Logger hears how filling the verify cache went (nil: not logged).
	Logger *slog.Logger
}

// Open opens (creating if needed) the database at path and brings its
// schema up to date. A database has one Store at a time: the verify cache
// is sound only if every write goes through it. Open locks the file itself
// (by its identity, so symlinks and hard links are the same file), held
// until Close, and fails with ErrInUse if another has it.
func Open(ctx context.Context, path string, o Options) (*Store, error) {
	lock, err := lockFile(path)
	if err != nil {
		return nil, err
	}
	s, err := open(ctx, path, o)
	if err != nil {
		_ = lock()
		return nil, err
	}
	s.unlock = lock
	return s, nil
}

// lockFile refuses URI syntax in the path, creates the database file if
// needed and locks it (lockInode: one server per file, whatever its name).
func lockFile(path string) (unlock func() error, err error) {
	if strings.ContainsAny(path, "?#") {
		return nil, fmt.Errorf("sqlite path %q has a '?' or '#': keymint takes no SQLite URI parameters (it sets its own); name the file alone, e.g. sqlite:/var/lib/keymint/keymint.db", path)
	}
	// Created only if missing: closing a descriptor of a file this process's
	// SQLite has open would drop its locks (see lockInode).
	if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
		f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o600)
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("cannot create the database %s: the directory %s does not exist; create it first (owned by the server's user)", path, filepath.Dir(path))
		}
		if err != nil {
			return nil, err
		}
		f.Close()
	}
	return lockInode(path)
}

func open(ctx context.Context, path string, o Options) (*Store, error) {
	q := url.Values{}
	// journal_size_limit: after a checkpoint, the WAL is cut back to this size
	// rather than kept at its high-water mark (Compact truncates it to zero).
	for _, p := range []string{"journal_mode(WAL)", "busy_timeout(10000)", "foreign_keys(1)", "synchronous(FULL)",
		fmt.Sprintf("journal_size_limit(%d)", walSizeLimit)} {
		q.Add("_pragma", p)
	}
	// Write transactions take the write lock up front, so two of them never
	// deadlock upgrading a read lock.
	q.Set("_txlock", "immediate")
	// The path goes into a file: URI escaped, so none of it is read as a
	// URI parameter. FULL: an acknowledged write survives power loss, not
	// only a crash of the process (NORMAL in WAL mode may lose the last
	// transactions until a checkpoint).
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, err
	}
	u := url.URL{Scheme: "file", Path: "/" + strings.TrimPrefix(filepath.ToSlash(abs), "/")}
	db, err := sql.Open("sqlite", "file://"+u.EscapedPath()+"?"+q.Encode())
	if err != nil {
		return nil, err
	}
	// Readers run in parallel under WAL; writers queue on the file lock.
	db.SetMaxOpenConns(2 * runtime.GOMAXPROCS(0))
	db.SetMaxIdleConns(2 * runtime.GOMAXPROCS(0))
	db.SetConnMaxIdleTime(0)
	applied, err := sqlstore.Migrate(ctx, db, goose.DialectSQLite3, Migrations)
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	var cache *store.VerifyCache
	if o.CacheSize > 0 {
		cache = store.NewVerifyCache(o.CacheSize)
		cache.OnLookup = o.OnCacheLookup
	}
	s, err := sqlstore.New(ctx, db, dialect, cache)
	if err != nil {
		db.Close()
		return nil, err
	}
	s.Applied = applied
	out := &Store{Store: s, stopFill: func() {}}
	if cache != nil {
		log := o.Logger
		if log == nil {
			log = slog.New(slog.DiscardHandler)
		}
		// The first fill is part of opening: a server on SQLite is ready
		// with every secret in memory.
		s.FillCacheNow(ctx, log)
		fctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
		done := make(chan struct{})
		go func() { s.KeepCacheFilled(fctx, log); close(done) }()
		out.stopFill = func() { cancel(); <-done }
	}
	return out, nil
}

func (s *Store) Close() error {
	s.stopFill()
	err := s.Store.Close()
	if s.unlock != nil {
		err = errors.Join(err, s.unlock())
	}
	return err
}

// Check runs SQLite's integrity check and looks for rows that lost their
// parent (secrets without a key, keys without an app) or keys left without
// any secret: after a crash, none of these may exist.
func (s *Store) Check(ctx context.Context) error {
	var result string
	if err := s.DB().QueryRowContext(ctx, `PRAGMA integrity_check`).Scan(&result); err != nil {
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
		if err := s.DB().QueryRowContext(ctx, query).Scan(&n); err != nil {
			return err
		}
		if n > 0 {
			return fmt.Errorf("%d %s", n, what)
		}
	}
	return nil
}
