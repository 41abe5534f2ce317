// Package postgres is keymint's store on PostgreSQL, for several replicas
// sharing one database. Queries are sqlstore's; this package adds the
// schema, the connection pool, the replica protocol that keeps every
// replica's verify cache from answering for a changed key (replica.go,
// docs/replicas.md) and rate limits counted in the database (ratelimit.go).
package postgres

import (
	"context"
	"crypto/rand"
	"database/sql"
	"embed"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"maps"
	"net/url"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/keymint/terraform-provider-keymint/internal/store"
	"github.com/keymint/terraform-provider-keymint/internal/store/sqlstore"
	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/lock"
)

//go:embed migrations/*.sql
var migrations embed.FS

// Migrations are the schema's versions, embedded in the binary.
var Migrations, _ = fs.Sub(migrations, "migrations")

// DefaultLease is how long a replica may serve verify from memory after it
// last proved it had heard of every change; it bounds how long a change
// waits for a replica that stopped answering (see docs/replicas.md).
const DefaultLease = 2 * time.Second

// Options configure Open.
type Options struct {
	// MaxConns caps the connection pool (default: 8 per CPU, at least 16);
	// the verify path takes one per lookup that misses the cache.
	MaxConns int
	// Lease is the replica lease (DefaultLease if zero).
	Lease  time.Duration
	Logger *slog.Logger
	// CacheSize > 0 keeps up to that many secrets of the verify path in
	// memory, kept current by a Replica that Open starts and Close stops.
	CacheSize int
	// OnCacheLookup, if set, hears whether each cached lookup was a hit.
	OnCacheLookup func(hit bool)
	// OnResync, if set, hears of each time the replica found its
	// invalidation stream incomplete and emptied its cache.
	OnResync func()
	// ListenURL, if set, is a direct connection to the same database for
	// the replica's invalidation session (LISTEN needs one server session:
	// a transaction pooler such as PgBouncer cannot carry it). Queries still
	// go through the main URL.
	ListenURL string
}

// Store is a store.Store on PostgreSQL.
type Store struct {
	*sqlstore.Store
	id        string
	listenCfg *pgx.ConnConfig
	// listenExplicit: the operator named the listen connection (--listen-db)
	// as a direct one.
	listenExplicit bool
	lease          time.Duration
	log            *slog.Logger
	onResync       func()
	replica        *Replica
	stop           func() // stops the replica and waits for it

	mu   sync.Mutex
	acks chan struct{} // closed (and replaced) when a replica's ack moves

	wmu      sync.Mutex
	watch    map[string]renewal // replica id -> when its renewals last moved, on this process's clock
	maxLease time.Duration      // the longest lease any replica registered (at least ours)
}

var _ store.Store = (*Store)(nil)

// IsURL reports whether dsn names a PostgreSQL database.
func IsURL(dsn string) bool {
	return strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://")
}

// Open connects to the database at dsn (postgres:// or postgresql://) and
// brings its schema up to date, under a lock that replicas starting
// together take in turn.
func Open(ctx context.Context, dsn string, o Options) (*Store, error) {
	cfg, err := parseURL(dsn)
	if err != nil {
		return nil, err
	}
	listenCfg := cfg.Copy()
	if o.ListenURL != "" {
		if listenCfg, err = parseURL(o.ListenURL); err != nil {
			return nil, fmt.Errorf("the listen URL: %w", err)
		}
	}
	// The process's id names its connections (keymint-<id>) and its row in
	// the replicas table: an operator can tell whose connections are whose.
	id := newID()
	if cfg.RuntimeParams["application_name"] == "" {
		cfg.RuntimeParams["application_name"] = "keymint-" + id
	}
	db := stdlib.OpenDB(*cfg)
	n := o.MaxConns
	if n <= 0 {
		n = max(16, 8*runtime.GOMAXPROCS(0))
	}
	db.SetMaxOpenConns(n)
	db.SetMaxIdleConns(n)
	db.SetConnMaxIdleTime(5 * time.Minute)
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("connecting to PostgreSQL at %s: %w", RedactURL(dsn), err)
	}
	applied, err := Migrate(ctx, db)
	if err != nil {
		db.Close()
		return nil, err
	}
	s := &Store{id: id, listenCfg: listenCfg, listenExplicit: o.ListenURL != "", lease: o.Lease, log: o.Logger, onResync: o.OnResync,
		acks: make(chan struct{}), watch: map[string]renewal{}}
	if s.lease <= 0 {
		s.lease = DefaultLease
	}
	s.maxLease = s.lease
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	var cache *store.VerifyCache
	if o.CacheSize > 0 {
		cache = store.NewVerifyCache(o.CacheSize)
		cache.OnLookup = o.OnCacheLookup
	}
	s.Store, err = sqlstore.New(ctx, db, sqlstore.Dialect{
		Numbered:     true,
		IsUnique:     func(err error) bool { return sqlState(err) == "23505" },
		IsForeignKey: func(err error) bool { return sqlState(err) == "23503" },
		ForUpdate:    " FOR UPDATE",
		Changed:      s.changed,
		// After a copy, events get ids after the copied ones.
		AfterCopy: `SELECT setval(pg_get_serial_sequence('events', 'id'), (SELECT coalesce(max(id), 0) + 1 FROM events), false)`,
	}, cache)
	if err != nil {
		db.Close()
		return nil, err
	}
	s.Applied = applied
	if err := warmPool(ctx, db, n, s.WarmUp); err != nil {
		s.log.Warn("could not open the connection pool ahead of traffic; connections open on demand", "err", err)
	}
	s.stop = func() {}
	if cache != nil {
		// Other replicas' writes reach the cache through the replica, and
		// it answers only while the replica holds its lease.
		s.replica = newReplica(s, cache)
		rctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
		var wg sync.WaitGroup
		wg.Go(func() { s.replica.Run(rctx) })
		wg.Go(func() { s.watchLoop(rctx, s.replica.renewEvery) })
		wg.Go(func() { s.KeepCacheFilled(rctx, s.log) })
		s.stop = func() { cancel(); wg.Wait() }
	}
	return s, nil
}

// warmPool opens the pool's n connections before the store is used: the
// first burst of verifies (a rolling deploy sends it as soon as /readyz
// answers) would otherwise wait for n connection set-ups and
// authentications at once, and for each session's first parse and plan of
// the lookup (warm).
func warmPool(ctx context.Context, db *sql.DB, n int, warm func(context.Context, *sql.Conn) error) error {
	conns := make([]*sql.Conn, 0, n)
	defer func() {
		for _, c := range conns {
			_ = c.Close() // back to the pool, idle
		}
	}()
	for range n {
		c, err := db.Conn(ctx)
		if err != nil {
			return err
		}
		conns = append(conns, c)
		if err := warm(ctx, c); err != nil {
			return err
		}
	}
	return nil
}

// Replica is this process's replica (nil without a verify cache).
func (s *Store) Replica() *Replica { return s.replica }

// Close stops the replica (it leaves the replicas table, so that writes
// stop waiting for it) and closes the database.
func (s *Store) Close() error {
	s.stop()
	return s.Store.Close()
}

func newID() string {
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// Migrate applies the schema migrations db has not had, holding a
// PostgreSQL advisory lock while it does.
func Migrate(ctx context.Context, db *sql.DB) ([]int64, error) {
	// A lock row rather than a session advisory lock: it holds through a
	// transaction pooler, where a session lock would be taken on one server
	// connection and released on another.
	locker, err := lock.NewPostgresTableLocker(lock.WithTableName("keymint_migration_lock"),
		lock.WithTableLockTimeout(100*time.Millisecond, 3000))
	if err != nil {
		return nil, err
	}
	return sqlstore.Migrate(ctx, db, goose.DialectPostgres, Migrations, goose.WithLocker(locker))
}

func sqlState(err error) string {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return pe.Code
	}
	return ""
}

// RedactURL hides the password in a database URL, in its user part or its
// query (password=): it never reaches a log or an error.
func RedactURL(dsn string) string {
	u, err := url.Parse(dsn)
	if err != nil {
		return "(a database URL that does not parse)"
	}
	if u.User != nil {
		if _, ok := u.User.Password(); ok {
			u.User = url.UserPassword(u.User.Username(), "xxxxx")
		}
	}
	if q := u.Query(); q.Has("password") {
		q.Set("password", "xxxxx")
		u.RawQuery = q.Encode()
	}
	return u.String()
}

// CheckURL says what is wrong with a PostgreSQL URL, without echoing it.
func CheckURL(dsn string) error {
	_, err := parseURL(dsn)
	return err
}

// parseURL parses dsn; its error says what is wrong without echoing it
// (pgx's would, password included).
func parseURL(dsn string) (*pgx.ConnConfig, error) {
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		var pe *pgconn.ParseConfigError
		if errors.As(err, &pe) && pe.Unwrap() != nil {
			return nil, fmt.Errorf("not a usable PostgreSQL URL: %w", pe.Unwrap())
		}
		return nil, errors.New("not a usable PostgreSQL URL (postgres://user@host:port/database?sslmode=...)")
	}
	return cfg, nil
}

// changed runs in every write transaction: one that can change a verdict
// takes the next invalidation number (the row lock orders numbers as the
// commits) and notifies the replicas, who hear it once the write commits.
// After commit, the write waits until every replica that may hold a lease
// has applied it (see waitApplied). A new app changes no verdict and
// neither numbers nor waits; a new key does (a replica may have cached that
// its hash matched nothing).
func (s *Store) changed(ctx context.Context, tx *sql.Tx, inv store.Invalidation) (func(context.Context), error) {
	if inv.Nothing {
		return nil, nil
	}
	var seq int64
	if err := tx.QueryRowContext(ctx, `UPDATE invalidation_seq SET seq = seq + 1 RETURNING seq`).Scan(&seq); err != nil {
		return nil, err
	}
	if _, err := tx.ExecContext(ctx, `SELECT pg_notify('keymint_invalidate', $1)`, encodeInvalidation(seq, inv)); err != nil {
		return nil, err
	}
	return func(ctx context.Context) {
		s.waitApplied(context.WithoutCancel(ctx), seq, time.Now())
	}, nil
}

func encodeInvalidation(seq int64, inv store.Invalidation) string {
	var b strings.Builder
	b.WriteString(strconv.FormatInt(seq, 10))
	if inv.Everything() {
		b.WriteString(" * *")
		return b.String()
	}
	if inv.Root {
		b.WriteString(" r *")
	}
	if inv.App != "" {
		b.WriteString(" a ")
		b.WriteString(inv.App)
	}
	for _, id := range inv.KeyIDs {
		b.WriteString(" k ")
		b.WriteString(id)
	}
	for _, h := range inv.Secrets {
		b.WriteString(" s ")
		b.WriteString(hex.EncodeToString(h))
	}
	return b.String()
}

func decodeInvalidation(payload string) (int64, store.Invalidation, error) {
	f := strings.Fields(payload)
	var inv store.Invalidation
	if len(f) < 3 || len(f)%2 != 1 {
		return 0, inv, fmt.Errorf("malformed invalidation %q", payload)
	}
	seq, err := strconv.ParseInt(f[0], 10, 64)
	if err != nil {
		return 0, inv, fmt.Errorf("malformed invalidation %q", payload)
	}
	for i := 1; i < len(f); i += 2 {
		switch f[i] {
		case "*":
			inv.All = true
		case "r":
			inv.Root = true
		case "a":
			inv.App = f[i+1]
		case "k":
			inv.KeyIDs = append(inv.KeyIDs, f[i+1])
		case "s":
			h, err := hex.DecodeString(f[i+1])
			if err != nil {
				return 0, inv, fmt.Errorf("malformed invalidation %q", payload)
			}
			inv.Secrets = append(inv.Secrets, h)
		default:
			return 0, inv, fmt.Errorf("malformed invalidation %q", payload)
		}
	}
	return seq, inv, nil
}

// ackPoll is how often a waiting write looks at the replicas' acks when no
// ack notification wakes it first (this process may not be a replica).
const ackPoll = 2 * time.Millisecond

// renewal is when this process saw a replica's renewals counter move.
type renewal struct {
	count int64
	seen  time.Time // monotonic
}

type replicaRow struct {
	id       string
	acked    int64
	renewals int64
	lease    time.Duration
}

// watchLoop keeps this process's view of the other replicas' renewals
// fresh (watchReplicas), so that a write need not wait on a replica that
// died. It runs beside the replica's own loop, never in it: it reads
// through the shared pool, and a pool slow to hand out a connection (all
// of them busy, each idle one pinged first) once held the lease's renewal
// back past the lease, sending every verify to the database meanwhile.
// A stale view is safe, only slower: a write reads the table afresh.
func (s *Store) watchLoop(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	failing := false
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		err := s.watchReplicas(ctx)
		switch {
		case err != nil && !failing && ctx.Err() == nil:
			s.log.Warn("could not read the replicas table; a write may wait up to a lease for a replica that stopped", "err", err)
		case err == nil && failing:
			s.log.Info("the replicas table reads again")
		}
		failing = err != nil
	}
}

// watchReplicas reads the replicas table and notes, on this process's
// monotonic clock, when each replica's renewals counter last moved: a
// replica whose counter has not moved for its lease length holds no lease,
// whatever any wall clock says.
func (s *Store) watchReplicas(ctx context.Context) error {
	_, err := s.replicaRows(ctx)
	return err
}

func (s *Store) replicaRows(ctx context.Context) ([]replicaRow, error) {
	rows, err := s.DB().QueryContext(ctx, `SELECT id, acked_seq, renewals, lease_us FROM replicas`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []replicaRow
	for rows.Next() {
		var r replicaRow
		var us int64
		if err := rows.Scan(&r.id, &r.acked, &r.renewals, &us); err != nil {
			return nil, err
		}
		r.lease = time.Duration(us) * time.Microsecond
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	now := time.Now()
	s.wmu.Lock()
	defer s.wmu.Unlock()
	for _, r := range out {
		if w, ok := s.watch[r.id]; !ok || w.count != r.renewals {
			s.watch[r.id] = renewal{count: r.renewals, seen: now}
		}
		s.maxLease = max(s.maxLease, r.lease)
	}
	return out, nil
}

// mayHoldLease reports whether replica r may still hold a lease that does
// not cover invalidations after r.acked: its counter moved less than its
// lease ago, on this process's clock.
func (s *Store) mayHoldLease(r replicaRow) bool {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	return time.Since(s.watch[r.id].seen) < r.lease
}

func (s *Store) longestLease() time.Duration {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	return s.maxLease
}

// waitApplied returns once no replica may hold a lease without having
// applied invalidation seq: each has acked it, or its lease has run out as
// this process's monotonic clock sees it. A lease granted after the commit
// was granted to a replica that had applied it (see replica_ack), and one
// granted before ends within that replica's lease of the commit: so even
// when the database cannot be asked, waiting the longest lease any replica
// registered from the commit is enough, and no write waits longer. The
// database's clock plays no part.
func (s *Store) waitApplied(ctx context.Context, seq int64, committed time.Time) {
	waitedFor := map[string]bool{} // replicas that held it up: a lease that runs out on them is worth a warning
	for {
		wake := s.ackSignal()
		deadline := committed.Add(s.longestLease() + 10*time.Millisecond)
		qctx, cancel := context.WithDeadline(ctx, deadline)
		rows, err := s.replicaRows(qctx)
		cancel()
		var pending, expired []string
		if err == nil {
			for _, r := range rows {
				switch {
				case r.acked >= seq:
				case s.mayHoldLease(r):
					pending = append(pending, r.id)
				case waitedFor[r.id]:
					expired = append(expired, r.id)
				}
			}
			if len(pending) == 0 {
				if len(expired) > 0 {
					s.log.Warn("a change waited for a replica's lease to run out", "invalidation", seq, "replicas", expired, "waited", time.Since(committed).Round(time.Millisecond))
				}
				return
			}
			for _, id := range pending {
				waitedFor[id] = true
			}
		}
		left := time.Until(committed.Add(s.longestLease() + 10*time.Millisecond))
		if left <= 0 {
			if err != nil { // the replicas could not be read at the end: name those that held the write up
				pending = slices.Sorted(maps.Keys(waitedFor))
			}
			s.log.Warn("a change waited for a replica's lease to run out", "invalidation", seq, "replicas", pending,
				"waited", time.Since(committed).Round(time.Millisecond), "lease", s.longestLease(), "err", err)
			return
		}
		t := time.NewTimer(min(left, ackPoll))
		select {
		case <-wake:
		case <-t.C:
		}
		t.Stop()
	}
}

func (s *Store) ackSignal() <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.acks
}

func (s *Store) signalAck() {
	s.mu.Lock()
	close(s.acks)
	s.acks = make(chan struct{})
	s.mu.Unlock()
}
