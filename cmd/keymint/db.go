package main

import (
	"context"
	"flag"
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

const dbHelp = "database: sqlite:<path>, or postgres://user@host/db (postgresql:// too) for several replicas (env KEYMINT_DB)"

func dbFlag(fs *flag.FlagSet, c cli) *string {
	return fs.String("db", envOr(c.getenv, "KEYMINT_DB", "sqlite:keymint.db"), dbHelp)
}

// database is a --db value: a SQLite path or a PostgreSQL URL.
type database struct {
	path string // SQLite
	url  string // PostgreSQL
}

func (d database) String() string {
	if d.url != "" {
		return postgres.RedactURL(d.url)
	}
	return "sqlite:" + d.path
}

func parseDB(dsn string) (database, error) {
	if postgres.IsURL(dsn) {
		if err := postgres.CheckURL(dsn); err != nil {
			return database{}, usageErrorf("--db %s: %v", postgres.RedactURL(dsn), err)
		}
		return database{url: dsn}, nil
	}
	scheme, rest, _ := strings.Cut(dsn, ":")
	switch {
	case scheme != "sqlite":
		// The value is not echoed: it may hold a password in a form we do not know.
		return database{}, usageErrorf("--db: unsupported database; use sqlite:<path> or postgres://user@host/db (a keyword string such as \"host=... password=...\" is not accepted)")
	case rest == "":
		return database{}, usageErrorf("--db sqlite: needs a file path, e.g. sqlite:keymint.db")
	}
	return database{path: rest}, nil
}

// mustExist refuses a SQLite path with no database: a command that works on
// a server's data would otherwise make an empty one.
func (d database) mustExist(cmd, flagName string) error {
	if d.url != "" {
		return nil
	}
	if _, err := os.Stat(d.path); err != nil {
		hint := " (or KEYMINT_DB)"
		if flagName != "--db" {
			hint = ""
		}
		return usageErrorf("%s: no database at %s; pass the server's database with %s sqlite:<path>%s", cmd, d.path, flagName, hint)
	}
	return nil
}

type storeOptions struct {
	cacheSize int // > 0: the verify cache, and on PostgreSQL a replica to keep it current
	metrics   *metrics.Metrics
	lease     time.Duration
	maxConns  int
	log       *slog.Logger
}

type openedStore struct {
	store   store.Store
	raw     *sqlstore.Store   // the backend, for migrate and copy
	limits  ratelimit.Counter // nil: counted in this process
	replica *postgres.Replica // PostgreSQL with a cache: run it beside the server
}

// openStore opens the database (bringing its schema up to date), behind the
// verify cache and, with metrics, instrumented.
func openStore(ctx context.Context, d database, o storeOptions) (openedStore, error) {
	var out openedStore
	var cache *store.VerifyCache
	if d.url == "" {
		sq, err := sqlite.Open(ctx, d.path)
		if err != nil {
			return out, err
		}
		out.store, out.raw = sq, sq.Store
		if o.cacheSize > 0 {
			// Sound because sqlite.Open admits one server per file: every write passes here.
			cache = store.NewVerifyCache(sq, o.cacheSize)
		}
	} else {
		pg, err := postgres.Open(ctx, d.url, postgres.Options{Lease: o.lease, MaxConns: o.maxConns, Logger: o.log})
		if err != nil {
			return out, err
		}
		out.store, out.raw = pg, pg.Store
		out.limits = pg.RateLimits()
		if o.cacheSize > 0 {
			// Other replicas' writes reach it through the replica, and it
			// answers only while the replica holds its lease.
			cache = store.NewVerifyCache(pg, o.cacheSize)
			out.replica = pg.NewReplica(cache)
			cache.Usable = out.replica.LeaseValid
		}
	}
	if cache != nil {
		if o.metrics != nil {
			cache.OnLookup = o.metrics.CacheLookup
		}
		out.store = cache
	}
	if o.metrics != nil {
		out.store = store.NewInstrumented(out.store, o.metrics.StoreOp)
	}
	return out, nil
}

func migrateCmd(ctx context.Context, args []string, c cli) error {
	fs := newFlagSet("migrate", "migrate [--db DB]\n\nApplies the schema migrations the database has not had (keymint serve does too, at start),\nunder a lock, and refuses a database migrated by a newer keymint.", c)
	db := dbFlag(fs, c)
	if err := parse(fs, args); err != nil {
		return err
	}
	target, err := parseDB(*db)
	if err != nil {
		return err
	}
	if err := target.mustExist("migrate", "--db"); err != nil {
		return err // a mistyped path would otherwise become a new, empty database
	}
	opened, err := openStore(ctx, target, storeOptions{})
	if err != nil {
		return err
	}
	defer opened.store.Close()
	version, err := opened.raw.SchemaVersion(ctx)
	if err != nil {
		return err
	}
	if len(opened.raw.Applied) == 0 {
		fmt.Fprintf(c.stdout, "%s: schema is up to date (version %d)\n", target, version)
		return nil
	}
	fmt.Fprintf(c.stdout, "%s: applied migrations %v; schema is at version %d\n", target, opened.raw.Applied, version)
	return nil
}

func copyCmd(ctx context.Context, args []string, c cli) error {
	fs := newFlagSet("copy", "copy --from DB --to DB\n\nCopies apps, keys with their secrets' hashes, events, idempotency records and the root token\nfrom one database to another that holds no data yet (e.g. --from sqlite:keymint.db --to postgres://...),\nin one transaction. Every key issued before verifies after. Stop the server on --from first.", c)
	from := fs.String("from", "", "the database to copy from, e.g. sqlite:keymint.db")
	to := fs.String("to", "", "the database to copy to, e.g. postgres://keymint@db.internal/keymint; it must hold no data")
	if err := parse(fs, args); err != nil {
		return err
	}
	if *from == "" || *to == "" {
		return usageErrorf("copy: both --from and --to are needed (see keymint copy -h)")
	}
	src, err := parseDB(*from)
	if err != nil {
		return err
	}
	dst, err := parseDB(*to)
	if err != nil {
		return err
	}
	if err := src.mustExist("copy", "--from"); err != nil {
		return err
	}
	if src == dst {
		return usageErrorf("copy: --from and --to are the same database")
	}
	a, err := openStore(ctx, src, storeOptions{})
	if err != nil {
		return fmt.Errorf("--from: %w", err)
	}
	defer a.store.Close()
	b, err := openStore(ctx, dst, storeOptions{})
	if err != nil {
		return fmt.Errorf("--to: %w", err)
	}
	defer b.store.Close()
	counts, err := sqlstore.Copy(ctx, a.raw, b.raw)
	if err != nil {
		return err
	}
	fmt.Fprintf(c.stdout, "copied %s to %s:", src, dst)
	for _, t := range sqlstore.Tables {
		fmt.Fprintf(c.stdout, " %d %s", counts[t], t)
	}
	fmt.Fprintln(c.stdout)
	return nil
}
