package postgres_test

import (
	"context"
	"fmt"
	"os"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/keymint/terraform-provider-keymint/internal/store"
	"github.com/keymint/terraform-provider-keymint/internal/store/postgres"
	"github.com/keymint/terraform-provider-keymint/internal/store/postgres/pgtest"
)

var roles atomic.Int64

// newRole creates a login role, not a superuser, dropped when the test ends
// (after the databases the test made, which its cleanups drop first).
func newRole(t *testing.T, pg *pgtest.Server) string {
	t.Helper()
	name := fmt.Sprintf("r%d_%d", os.Getpid(), roles.Add(1))
	if err := pg.Exec(context.Background(), "postgres", "CREATE ROLE "+name+" LOGIN PASSWORD 'not-checked-here'"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = pg.Exec(context.Background(), "postgres", "DROP ROLE IF EXISTS "+name) })
	return name
}

// asRole is dsn (the superuser's) with role instead.
func asRole(dsn, role string) string {
	return strings.Replace(dsn, "postgres://postgres@", "postgres://"+role+"@", 1)
}

func newDatabase(t *testing.T, pg *pgtest.Server, statement string) string {
	t.Helper()
	name := fmt.Sprintf("d%d_%d", os.Getpid(), roles.Add(1))
	if err := pg.Exec(context.Background(), "postgres", strings.ReplaceAll(statement, "$DB", name)); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = pg.Exec(context.Background(), "postgres", "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)")
	})
	return name
}

// usable opens the store as the role (which migrates) and writes to it.
func usable(t *testing.T, dsn string) error {
	t.Helper()
	ctx := context.Background()
	s, err := postgres.Open(ctx, dsn, postgres.Options{})
	if err != nil {
		return err
	}
	defer s.Close()
	return s.CreateApp(ctx, store.App{Slug: "setup", Name: "Setup", Scopes: []string{"read"}, KeyPrefix: "setup"}, nil, nil)
}

// The README's two ways to give keymint a database (its "The database"
// paragraph), on the PostgreSQL the tests run (15 or later, where the public
// schema no longer lets every role create tables).
func TestREADMEDatabaseSetup(t *testing.T) {
	pg := pgtest.Shared(t)

	t.Run("a database the role owns", func(t *testing.T) {
		role := newRole(t, pg)
		db := newDatabase(t, pg, "CREATE DATABASE $DB OWNER "+role)
		if err := usable(t, asRole(pg.DSN(db), role)); err != nil {
			t.Fatalf("as the database's owner: %v", err)
		}
	})

	t.Run("a database the role is granted", func(t *testing.T) {
		role := newRole(t, pg)
		db := newDatabase(t, pg, "CREATE DATABASE $DB")
		dsn := asRole(pg.DSN(db), role)
		err := usable(t, dsn)
		if err == nil || !strings.Contains(err.Error(), "permission denied for schema public") {
			t.Fatalf("without a grant: %v, want permission denied for schema public (as the README says)", err)
		}
		for _, grant := range []string{"GRANT CONNECT ON DATABASE " + db + " TO " + role, "GRANT CREATE, USAGE ON SCHEMA public TO " + role} {
			if err := pg.Exec(context.Background(), db, grant); err != nil {
				t.Fatal(err)
			}
		}
		if err := usable(t, dsn); err != nil {
			t.Fatalf("after the README's grants: %v", err)
		}
		// The grants sit on objects the role now owns (its tables): drop them
		// so the role can be dropped when the database is.
		t.Cleanup(func() { _ = pg.Exec(context.Background(), db, "DROP OWNED BY "+role) })
	})
}
