package sqlstore

import (
	"context"
	"database/sql"
	"fmt"
	"io/fs"
	"log/slog"

	"github.com/pressly/goose/v3"
)

// VersionTable records which schema migrations a database has had.
const VersionTable = "keymint_schema_version"

// Migrate applies the migrations in fsys that db has not had, in order, and
// returns the versions it applied. A database whose schema is newer than
// fsys knows is refused before anything is applied: it belongs to a newer
// keymint, and this one would misread it. opts add a lock (PostgreSQL:
// replicas starting together take turns).
func Migrate(ctx context.Context, db *sql.DB, dialect goose.Dialect, fsys fs.FS, opts ...goose.ProviderOption) ([]int64, error) {
	p, err := goose.NewProvider(dialect, db, fsys, append([]goose.ProviderOption{
		goose.WithTableName(VersionTable), goose.WithDisableGlobalRegistry(true), goose.WithSlog(slog.New(slog.DiscardHandler)),
	}, opts...)...)
	if err != nil {
		return nil, err
	}
	if err := refuseNewer(ctx, p); err != nil {
		return nil, err
	}
	results, err := p.Up(ctx)
	if err != nil {
		return nil, fmt.Errorf("migrating the schema: %w", err)
	}
	applied := make([]int64, 0, len(results))
	for _, r := range results {
		applied = append(applied, r.Source.Version)
	}
	// A newer keymint may have migrated it while this one waited for the lock.
	return applied, refuseNewer(ctx, p)
}

func refuseNewer(ctx context.Context, p *goose.Provider) error {
	current, err := p.GetDBVersion(ctx)
	if err != nil {
		return fmt.Errorf("reading the schema version: %w", err)
	}
	sources := p.ListSources()
	known := sources[len(sources)-1].Version
	if current > known {
		return fmt.Errorf("the database's schema is version %d, newer than this keymint knows (%d): it was migrated by a newer keymint; run that version (or newer)", current, known)
	}
	return nil
}
