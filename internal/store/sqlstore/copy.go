package sqlstore

import (
	"context"
	"database/sql"
	"fmt"
	"strings"

	"github.com/keymint/terraform-provider-keymint/internal/store"
)

// Tables are keymint's tables, parents first, with the columns Copy moves.
var Tables = []string{"apps", "keys", "key_secrets", "idempotency", "events", "settings"}

var columns = map[string][]string{
	"apps":        {"slug", "name", "description", "scopes", "key_prefix", "rate_requests", "rate_window", "created_at", "updated_at"},
	"keys":        {"id", "app", "name", "scopes", "resources", "owner", "metadata", "expires_at", "enabled", "start", "created_at", "last_used_at", "revoked_at", "rotated_at"},
	"key_secrets": {"hash", "key_id", "expires_at"},
	"idempotency": {"principal", "idem_key", "request_hash", "kind", "resource_id", "created_at"},
	"events":      {"id", "at", "actor", "request_id", "action", "app", "key_id", "changes"},
	"settings":    {"name", "value"},
}

// Copy copies every row of every table from src to dst, which must hold
// none, in one transaction on dst: secrets' hashes as they are, so every
// key verifies after as before. It returns the rows copied per table, having
// checked that dst now holds as many as src.
func Copy(ctx context.Context, src, dst *Store) (map[string]int64, error) {
	for _, t := range Tables {
		var n int64
		if err := dst.queryRow(ctx, `SELECT count(*) FROM `+t).Scan(&n); err != nil {
			return nil, err
		}
		if n > 0 {
			return nil, fmt.Errorf("the database to copy to is not empty (%d rows in %s): copy into a new database, before any keymint server has started on it", n, t)
		}
	}
	// One read transaction on src: a consistent snapshot of it.
	rtx, err := src.db.BeginTx(ctx, nil)
	if err != nil {
		return nil, err
	}
	defer rtx.Rollback()
	counts := map[string]int64{}
	err = dst.tx(ctx, store.Invalidation{All: true}, func(w *wtx) error {
		for _, t := range Tables {
			n, err := copyTable(ctx, rtx, w, t)
			if err != nil {
				return err
			}
			counts[t] = n
		}
		if dst.dialect.AfterCopy != "" {
			if _, err := w.exec(ctx, dst.dialect.AfterCopy); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	for _, t := range Tables {
		var n int64
		if err := dst.queryRow(ctx, `SELECT count(*) FROM `+t).Scan(&n); err != nil {
			return counts, err
		}
		if n != counts[t] {
			return counts, fmt.Errorf("after the copy %s holds %d rows, not the %d copied", t, n, counts[t])
		}
	}
	return counts, nil
}

// copyTable copies table t's rows from the read transaction into w.
func copyTable(ctx context.Context, rtx *sql.Tx, w *wtx, t string) (int64, error) {
	cols := columns[t]
	rows, err := rtx.QueryContext(ctx, `SELECT `+strings.Join(cols, ", ")+` FROM `+t)
	if err != nil {
		return 0, fmt.Errorf("reading %s: %w", t, err)
	}
	defer rows.Close()
	insert := `INSERT INTO ` + t + ` (` + strings.Join(cols, ", ") + `) VALUES (?` + strings.Repeat(", ?", len(cols)-1) + `)`
	vals := make([]any, len(cols))
	ptrs := make([]any, len(cols))
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	var n int64
	for rows.Next() {
		if err := rows.Scan(ptrs...); err != nil {
			return n, err
		}
		for i, c := range cols {
			if c == "enabled" {
				vals[i] = asBool(vals[i]) // SQLite keeps booleans as integers
			}
		}
		if _, err := w.exec(ctx, insert, vals...); err != nil {
			return n, fmt.Errorf("writing %s: %w", t, err)
		}
		n++
	}
	return n, rows.Err()
}

func asBool(v any) any {
	switch b := v.(type) {
	case int64:
		return b != 0
	case bool:
		return b
	}
	return v
}

// SchemaVersion is the newest schema migration the database has had.
func (s *Store) SchemaVersion(ctx context.Context) (int64, error) {
	var v int64
	err := s.queryRow(ctx, `SELECT coalesce(max(version_id), 0) FROM `+VersionTable+` WHERE is_applied`).Scan(&v)
	return v, err
}
