package main

import (
	"context"
	"flag"
	"fmt"

	"github.com/keymint/terraform-provider-keymint/internal/server"
	"github.com/keymint/terraform-provider-keymint/internal/store/sqlstore"
)

const dbHelp = "database: sqlite:<path>, or postgres://user@host/db (postgresql:// too) for several replicas (env KEYMINT_DB)"

func dbFlag(fs *flag.FlagSet, c cli) *string {
	return fs.String("db", envOr(c.getenv, "KEYMINT_DB", "sqlite:keymint.db"), dbHelp)
}

// parseDB reads a --db value; a mistake is a usage error.
func parseDB(dsn string) (server.Database, error) {
	d, err := server.ParseDB(dsn)
	if err != nil {
		return d, usageError{err}
	}
	return d, nil
}

// mustExist refuses a SQLite path with no database (a usage error).
func mustExist(d server.Database, cmd, flagName string) error {
	if err := d.MustExist(cmd, flagName); err != nil {
		return usageError{err}
	}
	return nil
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
	if err := mustExist(target, "migrate", "--db"); err != nil {
		return err // a mistyped path would otherwise become a new, empty database
	}
	opened, err := server.OpenStore(ctx, target, server.StoreOptions{})
	if err != nil {
		return err
	}
	defer opened.Store.Close()
	version, err := opened.SQL.SchemaVersion(ctx)
	if err != nil {
		return err
	}
	if len(opened.SQL.Applied) == 0 {
		fmt.Fprintf(c.stdout, "%s: schema is up to date (version %d)\n", target, version)
		return nil
	}
	fmt.Fprintf(c.stdout, "%s: applied migrations %v; schema is at version %d\n", target, opened.SQL.Applied, version)
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
	if err := mustExist(src, "copy", "--from"); err != nil {
		return err
	}
	if src == dst {
		return usageErrorf("copy: --from and --to are the same database")
	}
	a, err := server.OpenStore(ctx, src, server.StoreOptions{})
	if err != nil {
		return fmt.Errorf("--from: %w", err)
	}
	defer a.Store.Close()
	b, err := server.OpenStore(ctx, dst, server.StoreOptions{})
	if err != nil {
		return fmt.Errorf("--to: %w", err)
	}
	defer b.Store.Close()
	counts, err := sqlstore.Copy(ctx, a.SQL, b.SQL)
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
