package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/keymint/terraform-provider-keymint/internal/metrics"
	"github.com/keymint/terraform-provider-keymint/internal/ratelimit"
	"github.com/keymint/terraform-provider-keymint/internal/store"
	"github.com/keymint/terraform-provider-keymint/internal/store/postgres"
	"github.com/keymint/terraform-provider-keymint/internal/store/sqlite"
	"github.com/keymint/terraform-provider-keymint/internal/store/sqlstore"
)

// Database is a --db value: a SQLite path or a PostgreSQL URL.
type Database struct {
	Path string // SQLite
	URL  string // PostgreSQL
}

func (d Database) String() string {
	if d.URL != "" {
		return postgres.RedactURL(d.URL)
	}
	return "sqlite:" + d.Path
}

// ParseDB reads a --db value. Its errors never echo a value that may hold a password.
func ParseDB(dsn string) (Database, error) {
	if postgres.IsURL(dsn) {
		if err := postgres.CheckURL(dsn); err != nil {
			return Database{}, fmt.Errorf("--db %s: %w", postgres.RedactURL(dsn), err)
		}
		return Database{URL: dsn}, nil
	}
	scheme, rest, _ := strings.Cut(dsn, ":")
	switch {
	case scheme != "sqlite":
		// The value is not echoed: it may hold a password in a form we do not know.
		return Database{}, errors.New("--db: unsupported database; use sqlite:<path> or postgres://user@host/db (a keyword string such as \"host=... password=...\" is not accepted)")
	case rest == "":
		return Database{}, errors.New("--db sqlite: needs a file path, e.g. sqlite:keymint.db")
	case strings.ContainsAny(rest, "?#"):
		// Refused here too (the store refuses it), so that it is a usage error: exit 2 before anything runs.
		return Database{}, fmt.Errorf("--db sqlite:%s has a '?' or '#': keymint takes no SQLite URI parameters (it sets its own); name the file alone, e.g. sqlite:/var/lib/keymint/keymint.db", rest)
	}
	return Database{Path: rest}, nil
}

// exists says whether a SQLite database's file is there.
func (d Database) exists() bool {
	_, err := os.Stat(d.Path) // ParseDB refused '?' and '#': the path is the file's
	return err == nil
}

// MustExist refuses a SQLite path with no database: a command that works on
// a server's data would otherwise make an empty one.
func (d Database) MustExist(cmd, flagName string) error {
	if d.URL != "" {
		return nil
	}
	if _, err := os.Stat(d.Path); err != nil {
		hint := " (or KEYMINT_DB)"
		if flagName != "--db" {
			hint = ""
		}
		return fmt.Errorf("%s: no database at %s; pass the server's database with %s sqlite:<path>%s", cmd, d.Path, flagName, hint)
	}
	return nil
}

// StoreOptions configure OpenStore.
type StoreOptions struct {
	CacheSize int // > 0: the verify cache, and on PostgreSQL a replica to keep it current
	Metrics   *metrics.Metrics
	Lease     time.Duration
	MaxConns  int
	ListenURL string // PostgreSQL: a direct connection for the replica's invalidations
	Log       *slog.Logger
}

// Opened is an open database, wired as the server uses it.
type Opened struct {
	// Store is what the service uses: the backend (with its verify cache
	// and, on PostgreSQL, its replica running), instrumented with metrics.
	Store store.Store
	// SQL is the backend's database/sql store, for migrate, copy and readiness.
	SQL     *sqlstore.Store
	Limits  ratelimit.Counter // nil: counted in this process
	Replica *postgres.Replica // PostgreSQL with a cache
}

// OpenStore opens the database, bringing its schema up to date. Close the
// Store when done (on PostgreSQL that stops the replica first).
func OpenStore(ctx context.Context, d Database, o StoreOptions) (*Opened, error) {
	var hit func(bool)
	if o.Metrics != nil {
		hit = o.Metrics.CacheLookup
	}
	out := &Opened{}
	if d.URL == "" {
		sq, err := sqlite.Open(ctx, d.Path, sqlite.Options{CacheSize: o.CacheSize, OnCacheLookup: hit, Logger: o.Log})
		if err != nil {
			return nil, err
		}
		out.Store, out.SQL = sq, sq.Store
	} else {
		po := postgres.Options{Lease: o.Lease, MaxConns: o.MaxConns, Logger: o.Log, CacheSize: o.CacheSize,
			OnCacheLookup: hit, ListenURL: o.ListenURL}
		if o.Metrics != nil {
			po.OnResync = o.Metrics.ReplicaResync
		}
		pg, err := postgres.Open(ctx, d.URL, po)
		if err != nil {
			return nil, err
		}
		out.Store, out.SQL = pg, pg.Store
		out.Limits = pg.RateLimits()
		if r := pg.Replica(); r != nil {
			out.Replica = r
			o.Metrics.WatchReplica(func() bool { return r.LeaseValid() }, r.Pooled)
		}
	}
	if o.Metrics != nil {
		out.Store = store.NewInstrumented(out.Store, o.Metrics.StoreOp)
	}
	return out, nil
}
