package postgres_test

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/keymint/terraform-provider-keymint/internal/ratelimit"
	"github.com/keymint/terraform-provider-keymint/internal/store"
	"github.com/keymint/terraform-provider-keymint/internal/store/postgres"
	"github.com/keymint/terraform-provider-keymint/internal/store/postgres/pgtest"
)

var t0 = time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)

func hash(s string) []byte { h := make([]byte, 32); copy(h, s); return h }

// replicas opens one store per lease on one fresh database, each with its
// verify cache and replica, and waits until every replica holds its lease.
func replicas(t *testing.T, leases ...time.Duration) []*postgres.Store {
	t.Helper()
	dsn := pgtest.Shared(t).NewDatabase(t)
	var out []*postgres.Store
	for _, lease := range leases {
		s, err := postgres.Open(context.Background(), dsn, postgres.Options{CacheSize: 1000, Lease: lease})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		out = append(out, s)
	}
	for _, s := range out {
		waitLease(t, s)
	}
	return out
}

// waitFilled waits until s's verify cache holds every secret.
func waitFilled(t *testing.T, s *postgres.Store) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !s.Cache().Complete() {
		if time.Now().After(deadline) {
			t.Fatalf("replica %s did not fill its verify cache", s.Replica().ID())
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func waitLease(t *testing.T, s *postgres.Store) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !s.Replica().LeaseValid() {
		if time.Now().After(deadline) {
			_, why := s.Replica().Status()
			t.Fatalf("replica %s took no lease: %s", s.Replica().ID(), why)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// seed creates app a with key k1 (secret "k1") through w and caches k1's
// secret on r.
func seed(t *testing.T, w, r *postgres.Store) {
	t.Helper()
	ctx := context.Background()
	if err := w.CreateApp(ctx, store.App{Slug: "a", Name: "A", Scopes: []string{"read"}, KeyPrefix: "pa", CreatedAt: t0, UpdatedAt: t0}, nil, nil); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"k1", "k2"} {
		k := store.Key{ID: id, App: "a", Name: id, Scopes: []string{"read"}, Resources: []string{}, Metadata: map[string]string{}, Enabled: true, Start: "pa_" + id, CreatedAt: t0}
		if err := w.CreateKey(ctx, k, hash(id), nil, nil); err != nil {
			t.Fatal(err)
		}
	}
	for range 2 {
		if _, err := r.LookupSecret(ctx, hash("k1")); err != nil {
			t.Fatal(err)
		}
	}
}

// revokedOn reports whether replica r, answering as verify does, sees k1 revoked.
func revokedOn(t *testing.T, r *postgres.Store) bool {
	t.Helper()
	sec, err := r.LookupSecret(context.Background(), hash("k1"))
	if err != nil {
		t.Fatal(err)
	}
	return sec.Key.RevokedAt != nil
}

// A dropped notification must never be skipped over: when the next one
// arrives the replica sees the gap, empties its cache and resyncs. (With
// applied = max(applied, seq) it renewed its lease and served the revoked
// key from its cache.)
func TestReplicaGapEmptiesCache(t *testing.T) {
	s := replicas(t, 400*time.Millisecond, 400*time.Millisecond)
	w, r := s[0], s[1]
	seed(t, w, r)
	var dropped atomic.Int64
	r.Replica().DropInvalidations(func(seq int64) bool { return dropped.CompareAndSwap(0, seq) })
	ctx := context.Background()
	if _, err := w.RevokeKey(ctx, "k1", t0, nil); err != nil { // its notification is lost
		t.Fatal(err)
	}
	if dropped.Load() == 0 {
		t.Fatal("the test dropped no notification")
	}
	if !revokedOn(t, r) {
		t.Fatal("the revoke returned while the replica that missed it still answered from its cache")
	}
	// A later, unrelated write's notification arrives: the gap shows.
	if _, err := w.UpdateKey(ctx, "k2", func(k *store.Key) error { k.Name = "renamed"; return nil }, nil); err != nil {
		t.Fatal(err)
	}
	waitLease(t, r)
	if !revokedOn(t, r) {
		t.Fatal("after the gap the replica took its lease back and answered a revoked key from its cache")
	}
}

// A writer waits for the longest lease any replica registered, not its own.
func TestWriterWaitsForTheLongestLease(t *testing.T) {
	s := replicas(t, 200*time.Millisecond, 3*time.Second)
	w, r := s[0], s[1]
	seed(t, w, r)
	r.Replica().DropInvalidations(func(int64) bool { return true }) // r stops hearing (as if paused)
	start := time.Now()
	if _, err := w.RevokeKey(context.Background(), "k1", t0, nil); err != nil {
		t.Fatal(err)
	}
	if !revokedOn(t, r) {
		t.Fatalf("the revoke returned after %s while a replica with a 3s lease still answered from its cache", time.Since(start))
	}
}

// lockedBuffer is a log destination the store's goroutines may share.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// A revoke that waits for a silent replica's lease to run out says so in the
// log (docs/replicas.md): a warning naming the invalidation, the replica and
// how long the write waited.
func TestWriterWarnsWhenItWaitedForALease(t *testing.T) {
	dsn := pgtest.Shared(t).NewDatabase(t)
	var log lockedBuffer
	open := func(o postgres.Options) *postgres.Store {
		s, err := postgres.Open(context.Background(), dsn, o)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		waitLease(t, s)
		return s
	}
	w := open(postgres.Options{CacheSize: 1000, Lease: 200 * time.Millisecond, Logger: slog.New(slog.NewTextHandler(&log, nil))})
	r := open(postgres.Options{CacheSize: 1000, Lease: 500 * time.Millisecond})
	seed(t, w, r)
	if _, err := w.RevokeKey(context.Background(), "k2", t0, nil); err != nil { // r hears this one
		t.Fatal(err)
	}
	if strings.Contains(log.String(), "lease to run out") {
		t.Fatalf("a write every replica acked logged a lease warning:\n%s", log.String())
	}
	r.Replica().DropInvalidations(func(int64) bool { return true }) // r stops hearing (as if paused)
	if _, err := w.RevokeKey(context.Background(), "k1", t0, nil); err != nil {
		t.Fatal(err)
	}
	checkWarning(t, log.String(), "a change waited for a replica's lease to run out",
		"level=WARN", "invalidation=", "replicas=["+r.Replica().ID()+"]", "waited=")
}

// The writer's wait is timed on its own monotonic clock: a database clock
// that steps forward (here: the lease it recorded looks over) changes nothing.
func TestWriterIgnoresTheDatabaseClock(t *testing.T) {
	s := replicas(t, time.Second, time.Second)
	w, r := s[0], s[1]
	seed(t, w, r)
	r.Replica().DropInvalidations(func(int64) bool { return true })
	ctx := context.Background()
	if _, err := w.DB().ExecContext(ctx, `UPDATE replicas SET lease_until = clock_timestamp() - interval '1 hour'`); err != nil {
		t.Fatal(err)
	}
	if _, err := w.RevokeKey(ctx, "k1", t0, nil); err != nil {
		t.Fatal(err)
	}
	if !revokedOn(t, r) {
		t.Fatal("the revoke trusted the database's clock and returned while a replica still answered from its cache")
	}
}

// A root token reset on one replica holds on every replica before it returns.
func TestRootTokenResetReachesEveryReplica(t *testing.T) {
	s := replicas(t, time.Second, time.Second)
	w, r := s[0], s[1]
	ctx := context.Background()
	if err := w.SetRootTokenHash(ctx, hash("root-1"), false); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if _, err := r.RootTokenHash(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.SetRootTokenHash(ctx, hash("root-2"), true); err != nil {
		t.Fatal(err)
	}
	got, err := r.RootTokenHash(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, hash("root-2")) {
		t.Fatal("a replica still accepts the old root token after the reset returned")
	}
}

// A key's rate window never reopens because the database's clock stepped
// back: slots counted "in the future" keep counting.
func TestRateLimitSurvivesAClockStepBack(t *testing.T) {
	s := replicas(t, time.Second)
	ctx := context.Background()
	lim := s[0].RateLimits()
	limit := ratelimit.Limit{Requests: 3, Window: time.Minute}
	for i := range 3 {
		if v, err := lim.Allow(ctx, "k", "a", limit, time.Time{}); err != nil || !v.Allowed {
			t.Fatalf("verify %d: allowed %v, %v", i+1, v.Allowed, err)
		}
	}
	// The clock steps back an hour: move the counted slots an hour ahead.
	if _, err := s[0].DB().ExecContext(ctx, `UPDATE rate_slots SET slot = slot + (3600 * 1000000000::BIGINT) / ((60 * 1000000000::BIGINT + 15) / 16)`); err != nil {
		t.Fatal(err)
	}
	if v, err := lim.Allow(ctx, "k", "a", limit, time.Time{}); err != nil || v.Allowed {
		t.Fatalf("after the clock stepped back a 4th verify in the window was allowed (%v)", err)
	}
}

// A replica answers an unknown key's NOT_FOUND from memory, and a key
// created on another replica is found on it as soon as the create returns:
// the create names the new secret's hash, and waits for the replica to
// drop its "not found" like any invalidation.
func TestCreatedKeyIsFoundOnEveryReplicaAtOnce(t *testing.T) {
	t.Run("CachedAsLookupsGo", func(t *testing.T) { testCreatedKeyIsFoundAtOnce(t, false) })
	// Filled with every secret, the reader proves unknown secrets unknown
	// from memory, and a create elsewhere makes its secret pending there.
	t.Run("Filled", func(t *testing.T) { testCreatedKeyIsFoundAtOnce(t, true) })
}

func testCreatedKeyIsFoundAtOnce(t *testing.T, filled bool) {
	dsn := pgtest.Shared(t).NewDatabase(t)
	var hits, lookups, resyncs atomic.Int64
	open := func(onLookup func(bool)) *postgres.Store {
		s, err := postgres.Open(context.Background(), dsn, postgres.Options{CacheSize: 1000, Lease: 2 * time.Second, OnCacheLookup: onLookup,
			OnResync: func() { resyncs.Add(1) }})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		waitLease(t, s)
		return s
	}
	w := open(nil)
	r := open(func(hit bool) {
		lookups.Add(1)
		if hit {
			hits.Add(1)
		}
	})
	ctx := context.Background()
	if err := w.CreateApp(ctx, store.App{Slug: "a", Name: "A", Scopes: []string{"read"}, KeyPrefix: "pa", CreatedAt: t0, UpdatedAt: t0}, nil, nil); err != nil {
		t.Fatal(err)
	}
	if filled {
		r.Cache().Clear()
		waitFilled(t, r)
	}
	startResyncs := resyncs.Load()
	bystander := hash("never-created")
	if _, err := r.LookupSecret(ctx, bystander); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("an unknown secret: got %v, want ErrNotFound", err)
	}
	for i := range 50 {
		secret := hash(fmt.Sprint("new-", i))
		for range 2 {
			if _, err := r.LookupSecret(ctx, secret); !errors.Is(err, store.ErrNotFound) {
				t.Fatalf("an unknown secret: got %v, want ErrNotFound", err)
			}
		}
		k := store.Key{ID: fmt.Sprint("k", i), App: "a", Name: "k", Scopes: []string{"read"}, Resources: []string{}, Metadata: map[string]string{}, Enabled: true, Start: "pa_new", CreatedAt: t0}
		if err := w.CreateKey(ctx, k, secret, nil, nil); err != nil {
			t.Fatal(err)
		}
		if _, err := r.LookupSecret(ctx, secret); err != nil {
			t.Fatalf("key %d, created on another replica, is not found on this one right after the create returned: %v", i, err)
		}
	}
	if filled && hits.Load() < 101 {
		t.Fatalf("%d of %d lookups answered from memory: every unknown secret's should have been", hits.Load(), lookups.Load())
	}
	if hits.Load() < 50 {
		t.Fatalf("%d of %d lookups answered from memory: the second NOT_FOUND of each secret should have been", hits.Load(), lookups.Load())
	}
	before := hits.Load()
	if _, err := r.LookupSecret(ctx, bystander); !errors.Is(err, store.ErrNotFound) || hits.Load() != before+1 {
		t.Fatalf("after 50 creates elsewhere, an unrelated unknown secret is no longer answered from memory (%v): a create should drop only its own hash", err)
	}
	if n := resyncs.Load() - startResyncs; n > 0 {
		t.Fatalf("the replicas resynced %d times: a create's invalidation should apply in order, not empty the cache", n)
	}
}

// TestOpenWarmsEveryConnection: Open leaves each of the pool's connections
// with the verify lookup already run in its session, so the first verifies
// after a start wait neither for connecting nor for a first parse and plan.
func TestOpenWarmsEveryConnection(t *testing.T) {
	dsn := pgtest.Shared(t).NewDatabase(t)
	var log bytes.Buffer
	s, err := postgres.Open(context.Background(), dsn, postgres.Options{MaxConns: 5, Logger: slog.New(slog.NewTextHandler(&log, nil))})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var warmed int
	// Seen from the store's own pool (one connection in use for this query):
	// the sessions whose last statement was the lookup.
	if err := s.DB().QueryRowContext(context.Background(), `SELECT count(*) FROM pg_stat_activity
		WHERE datname = current_database() AND pid <> pg_backend_pid() AND query LIKE '%FROM key_secrets s JOIN keys k%'`).Scan(&warmed); err != nil {
		t.Fatal(err)
	}
	if warmed != 4 || strings.Contains(log.String(), "level=WARN") {
		t.Fatalf("%d of the other 4 connections ran the lookup; log: %s", warmed, log.String())
	}
}

// A renewal held up past the lease (here: its row locked by another
// transaction, as a slow database would) is logged when it lands, with how
// long the replica answered without its cache.
func TestReplicaLogsALapsedLease(t *testing.T) {
	dsn := pgtest.Shared(t).NewDatabase(t)
	var log lockedBuffer
	s, err := postgres.Open(context.Background(), dsn, postgres.Options{CacheSize: 1000, Lease: 400 * time.Millisecond,
		Logger: slog.New(slog.NewTextHandler(&log, nil))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	waitLease(t, s)
	if strings.Contains(log.String(), "lease ran out") {
		t.Fatalf("a lease renewed in time was logged as lapsed:\n%s", log.String())
	}
	ctx := context.Background()
	tx, err := s.DB().BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.ExecContext(ctx, `SELECT 1 FROM replicas WHERE id = $1 FOR UPDATE`, s.Replica().ID()); err != nil {
		t.Fatal(err)
	}
	for s.Replica().LeaseValid() { // the renewal waits on the row lock; the lease runs out
		time.Sleep(5 * time.Millisecond)
	}
	if err := tx.Rollback(); err != nil {
		t.Fatal(err)
	}
	waitLease(t, s)
	checkWarning(t, log.String(), "the lease ran out before its renewal", "level=WARN", "replica="+s.Replica().ID(), "lapsed=", "renewal_took=")
}

// checkWarning fails t unless the log has a line with msg, and that line
// has every field in want.
func checkWarning(t *testing.T, log, msg string, want ...string) {
	t.Helper()
	var line string
	for l := range strings.SplitSeq(log, "\n") {
		if strings.Contains(l, msg) {
			line = l
		}
	}
	if line == "" {
		t.Fatalf("no %q in the log:\n%s", msg, log)
	}
	for _, w := range want {
		if !strings.Contains(line, w) {
			t.Errorf("the warning lacks %q: %s", w, line)
		}
	}
}

// The lease's renewal needs nothing but its own connection: with every
// pooled connection taken (verifies that missed the cache, a usage flush),
// the replica keeps its lease, so verify keeps answering from memory.
func TestLeaseOutlivesABusyPool(t *testing.T) {
	dsn := pgtest.Shared(t).NewDatabase(t)
	const lease = 400 * time.Millisecond
	s, err := postgres.Open(context.Background(), dsn, postgres.Options{CacheSize: 1000, Lease: lease, MaxConns: 2})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	waitLease(t, s)
	ctx := context.Background()
	var held []*sql.Conn
	for range 2 {
		c, err := s.DB().Conn(ctx)
		if err != nil {
			t.Fatal(err)
		}
		held = append(held, c)
	}
	for start := time.Now(); time.Since(start) < 4*lease; time.Sleep(5 * time.Millisecond) {
		if !s.Replica().LeaseValid() {
			t.Fatalf("the lease ran out %v after the pool was taken", time.Since(start).Round(time.Millisecond))
		}
	}
	for _, c := range held {
		c.Close()
	}
}
