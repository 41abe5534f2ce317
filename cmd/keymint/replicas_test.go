package main

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/keymint/terraform-provider-keymint/internal/store/postgres/pgtest"
	"github.com/keymint/terraform-provider-keymint/internal/wire"
	"github.com/keymint/terraform-provider-keymint/keymint"
)

// replicaLease is the lease the test replicas run with: what a change waits
// at most for a replica that stopped answering.
const replicaLease = time.Second

// replicaSet is several `keymint serve` processes on one PostgreSQL database.
type replicaSet struct {
	t       *testing.T
	dir     string
	dsn     string
	db      *sql.DB
	cmds    []*exec.Cmd
	urls    []string
	clients []*keymint.Client
	// tolerateErrors: verifies may fail (a replica's connections are being
	// killed); only a stale VALID fails the test.
	tolerateErrors bool
}

func startReplicas(t *testing.T, n int) *replicaSet {
	t.Helper()
	dsn := pgtest.Shared(t).NewDatabase(t)
	specs := make([][]string, n)
	for i := range specs {
		specs[i] = []string{dsn}
	}
	r := startReplicaSet(t, dsn, specs)
	r.waitLeases(n)
	return r
}

// startReplicaSet starts a replica per spec: its --db, then other flags.
func startReplicaSet(t *testing.T, dsn string, specs [][]string) *replicaSet {
	t.Helper()
	r := &replicaSet{t: t, dir: t.TempDir(), dsn: dsn}
	var err error
	if r.db, err = sql.Open("pgx", r.dsn); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.db.Close() })
	for i, spec := range specs {
		cmd, url := startServer(t, r.dir, fmt.Sprintf("replica%d", i), spec[0], append([]string{"--replica-lease", replicaLease.String()}, spec[1:]...)...)
		t.Cleanup(func() {
			_ = cmd.Process.Signal(syscall.SIGCONT)
			_ = cmd.Process.Signal(syscall.SIGTERM)
			_ = cmd.Wait()
		})
		c, err := keymint.New(url, childRootToken, keymint.WithTimeout(10*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		c.MaxRetries = 0 // every answer counts as it comes
		r.cmds, r.urls, r.clients = append(r.cmds, cmd), append(r.urls, url), append(r.clients, c)
	}
	return r
}

// waitLeases waits until n replicas hold a lease: until then a replica
// answers verify from the database, and the cache is not under test.
func (r *replicaSet) waitLeases(n int) {
	r.t.Helper()
	var got int
	for range 200 {
		if err := r.db.QueryRow(`SELECT count(*) FROM replicas WHERE lease_until > clock_timestamp()`).Scan(&got); err != nil {
			r.t.Fatal(err)
		}
		if got == n {
			return
		}
		time.Sleep(25 * time.Millisecond) // other processes' progress: no clock to inject
	}
	r.t.Fatalf("%d replicas hold a lease, want %d", got, n)
}

// replicaID is the id of replica i in the replicas table.
func (r *replicaSet) replicaID(i int) string {
	var id string
	if err := r.db.QueryRow(`SELECT id FROM replicas WHERE pid = $1`, r.cmds[i].Process.Pid).Scan(&id); err != nil {
		r.t.Fatalf("replica %d (pid %d) is not in the replicas table: %v", i, r.cmds[i].Process.Pid, err)
	}
	return id
}

type liveKey struct {
	id, secret string
}

func (r *replicaSet) createKeys(app string, n int) []liveKey {
	r.t.Helper()
	ctx := context.Background()
	if _, err := r.clients[0].CreateApp(ctx, wire.CreateApp{Slug: app, Name: app, Scopes: []string{"read"}, KeyPrefix: app}); err != nil {
		r.t.Fatal(err)
	}
	keys := make([]liveKey, n)
	for i := range keys {
		k, err := r.clients[0].CreateKey(ctx, app, wire.CreateKey{Name: fmt.Sprintf("k%d", i), Scopes: []string{"read"}})
		if err != nil {
			r.t.Fatal(err)
		}
		keys[i] = liveKey{k.Key.ID, k.Secret}
	}
	// Every replica has every key in its cache: a stale cache is what could answer VALID.
	for _, c := range r.clients {
		for _, k := range keys {
			if v, err := c.Verify(ctx, wire.VerifyRequest{Key: k.secret}); err != nil || !v.Valid {
				r.t.Fatalf("before any change, %s verifies %s (%v)", k.id, v.Code, err)
			}
		}
	}
	return keys
}

// change revokes, disables or rotates (0s grace) key i by its index, through client c.
func change(ctx context.Context, c *keymint.Client, i int, k liveKey) (string, error) {
	switch i % 3 {
	case 0:
		return "revoke", c.RevokeKey(ctx, k.id)
	case 1:
		f := false
		_, err := c.UpdateKey(ctx, k.id, wire.UpdateKey{Enabled: &f})
		return "disable", err
	default:
		_, err := c.RotateKey(ctx, k.id, wire.RotateKey{GracePeriod: "0s"})
		return "rotate", err
	}
}

// verdict is one verify of the load: when it started, and whether it was VALID.
type verdict struct {
	key     int
	replica int
	start   time.Time
	valid   bool
	err     error
}

// churn changes every key through replica 0 while load verifies the keys
// on the replicas in loadOn, then verifies each changed key on every
// replica. It fails for every VALID from a verify that started after the
// change had answered, and returns how long the changes took to answer.
func (r *replicaSet) churn(keys []liveKey, loadOn []int, during func() (after func() []verdict)) []time.Duration {
	r.t.Helper()
	ctx := context.Background()
	answered := make([]time.Time, len(keys)) // zero: not yet
	var mu sync.Mutex
	var results []verdict
	stop := make(chan struct{})
	var load sync.WaitGroup
	for w := range 4 {
		load.Add(1)
		go func() {
			defer load.Done()
			rng := rand.New(rand.NewPCG(uint64(w), 7))
			for {
				select {
				case <-stop:
					return
				default:
				}
				k, rep := rng.IntN(len(keys)), loadOn[rng.IntN(len(loadOn))]
				start := time.Now()
				v, err := r.clients[rep].Verify(ctx, wire.VerifyRequest{Key: keys[k].secret})
				mu.Lock()
				results = append(results, verdict{k, rep, start, err == nil && v.Valid, err})
				mu.Unlock()
			}
		}()
	}
	after := func() []verdict { return nil }
	if during != nil {
		after = during()
	}
	took := make([]time.Duration, len(keys))
	for i, k := range keys {
		start := time.Now()
		what, err := change(ctx, r.clients[0], i, k)
		if err != nil {
			r.t.Fatalf("%s %s: %v", what, k.id, err)
		}
		mu.Lock()
		answered[i] = time.Now()
		mu.Unlock()
		took[i] = answered[i].Sub(start)
	}
	extra := after()
	mu.Lock()
	results = append(results, extra...)
	mu.Unlock()
	// Each changed key, on every replica (the disturbed ones first), after
	// every change has answered.
	for i, k := range keys {
		for rep := len(r.clients) - 1; rep >= 0; rep-- {
			c := r.clients[rep]
			start := time.Now()
			v, err := c.Verify(ctx, wire.VerifyRequest{Key: k.secret})
			mu.Lock()
			results = append(results, verdict{i, rep, start, err == nil && v.Valid, err})
			mu.Unlock()
		}
	}
	close(stop)
	load.Wait()
	var after0, bad, errs int
	for _, v := range results {
		if v.err != nil {
			errs++
		}
		if v.start.After(answered[v.key]) {
			after0++
			if v.valid {
				bad++
				r.t.Errorf("replica %d answered VALID for %s, %v after its change had answered", v.replica, keys[v.key].id, v.start.Sub(answered[v.key]))
			}
		}
	}
	if errs > 0 && !r.tolerateErrors {
		r.t.Errorf("%d verifies failed (5xx or transport errors); first: %v", errs, firstErr(results))
	}
	if after0 < len(keys)*len(r.clients) {
		r.t.Fatalf("only %d verifies started after a change: the test did not test", after0)
	}
	r.t.Logf("%d verifies, %d after their key's change (%d VALID), %d errors; changes took %v", len(results), after0, bad, errs, summarize(took))
	return took
}

func firstErr(vs []verdict) error {
	for _, v := range vs {
		if v.err != nil {
			return v.err
		}
	}
	return nil
}

// readyz is replica i's readiness: the status code and what it says of its verify cache.
func (r *replicaSet) readyz(i int) (int, string) {
	r.t.Helper()
	res, err := http.Get(r.urls[i] + "/readyz")
	if err != nil {
		r.t.Fatal(err)
	}
	defer res.Body.Close()
	var body struct {
		Cache  string `json:"verify_cache"`
		Detail string `json:"detail"`
	}
	_ = json.NewDecoder(res.Body).Decode(&body)
	return res.StatusCode, body.Cache + body.Detail
}

// writeLoad creates keys through replica 0 until the returned stop is
// called: unrelated writes beside the changes under test.
func (r *replicaSet) writeLoad(app string) (stop func()) {
	r.t.Helper()
	ctx := context.Background()
	if _, err := r.clients[0].CreateApp(ctx, wire.CreateApp{Slug: app, Name: app, Scopes: []string{"read"}, KeyPrefix: app}); err != nil {
		r.t.Fatal(err)
	}
	done, finished := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(finished)
		for i := 0; ; i++ {
			select {
			case <-done:
				return
			default:
			}
			k, err := r.clients[0].CreateKey(ctx, app, wire.CreateKey{Name: fmt.Sprintf("load %d", i), Scopes: []string{"read"}})
			if err == nil && i%2 == 0 {
				renamed := fmt.Sprintf("renamed %d", i)
				_, err = r.clients[0].UpdateKey(ctx, k.Key.ID, wire.UpdateKey{Name: &renamed})
			}
			if err != nil && !errors.Is(ctx.Err(), context.Canceled) {
				r.t.Errorf("unrelated write: %v", err)
				return
			}
		}
	}()
	return func() { close(done); <-finished }
}

// Behind PgBouncer in transaction mode: a replica given a direct
// connection for its invalidations (--listen-db) serves from its cache, one
// without it holds no lease and reads the database; neither answers a
// stale VALID or a 5xx while another replica revokes, disables and rotates
// under unrelated writes, and /readyz says which is which.
func TestReplicasBehindPgBouncer(t *testing.T) {
	if testing.Short() {
		t.Skip("starts PostgreSQL, PgBouncer and three servers")
	}
	pg := pgtest.Shared(t)
	dsn := pg.NewDatabase(t)
	bouncer := pg.StartPgBouncer(t, "transaction")
	name := dsn[strings.LastIndex(dsn, "/")+1 : strings.Index(dsn, "?")]
	pooled := bouncer.DSN(name)
	r := startReplicaSet(t, dsn, [][]string{{dsn}, {pooled, "--listen-db", dsn}, {pooled}})
	r.waitLeases(2) // the direct replica and the one with --listen-db
	for i, want := range []string{"on", "on", "off: no verify cache"} {
		if code, cache := r.readyz(i); code != http.StatusOK || !strings.HasPrefix(cache, want) {
			t.Errorf("replica %d: /readyz %d %q, want 200 with verify_cache %q...", i, code, cache, want)
		}
	}
	keys := r.createKeys("pooled", 30)
	r.churn(keys, []int{1, 2}, func() func() []verdict {
		stop := r.writeLoad("unrelated")
		return func() []verdict { stop(); return nil }
	})
	// Let a usage flush (every second) go through the pooler too.
	time.Sleep(1100 * time.Millisecond)
	for i := 1; i <= 2; i++ {
		log, _ := os.ReadFile(filepath.Join(r.dir, fmt.Sprintf("replica%d.log", i)))
		for _, line := range strings.Split(string(log), "\n") {
			if strings.Contains(line, "level=ERROR") && !strings.Contains(line, "--listen-db") {
				t.Errorf("replica %d behind the pooler logged an error: %s", i, line)
			}
		}
		if i == 2 && !strings.Contains(string(log), "--listen-db") {
			t.Errorf("the replica behind the pooler without --listen-db did not say so in its log:\n%s", log)
		}
	}
}

func summarize(d []time.Duration) string {
	s := slices.Clone(d)
	slices.Sort(s)
	return fmt.Sprintf("p50 %v, max %v", s[len(s)/2].Round(time.Millisecond), s[len(s)-1].Round(time.Millisecond))
}

// Several replicas on one database: no verify that starts after a revoke,
// disable or 0s-grace rotation has answered returns VALID on any replica,
// with all of them healthy, with one paused (SIGSTOP) through the change,
// and with one's database connections killed.
func TestReplicas(t *testing.T) {
	if testing.Short() {
		t.Skip("starts PostgreSQL and three servers")
	}
	r := startReplicas(t, 3)
	ctx := context.Background()

	t.Run("healthy", func(t *testing.T) {
		r.t = t
		took := r.churn(r.createKeys("healthy", 30), []int{0, 1, 2}, nil)
		if slices.Max(took) >= replicaLease {
			t.Errorf("with every replica healthy, a change waited %v: as long as a lease, so an ack was missed", slices.Max(took))
		}
	})

	t.Run("paused", func(t *testing.T) {
		r.t = t
		keys := r.createKeys("paused", 3)
		took := r.churn(keys, []int{0, 1}, func() func() []verdict {
			if err := r.cmds[2].Process.Signal(syscall.SIGSTOP); err != nil {
				t.Fatal(err)
			}
			// Once the changes have answered, verifies sent to the paused
			// replica wait in its socket; it answers them when resumed.
			return func() []verdict {
				out := make(chan verdict, 5*len(keys))
				for i, k := range keys {
					for range 5 {
						go func() {
							start := time.Now()
							v, err := r.clients[2].Verify(ctx, wire.VerifyRequest{Key: k.secret})
							out <- verdict{i, 2, start, err == nil && v.Valid, err}
						}()
					}
				}
				time.Sleep(50 * time.Millisecond) // the requests reach the paused process's socket
				_ = r.cmds[2].Process.Signal(syscall.SIGCONT)
				vs := make([]verdict, 0, cap(out))
				for range cap(out) {
					vs = append(vs, <-out)
				}
				return vs
			}
		})
		// The paused replica held a lease: the first change waits for it to run out.
		if took[0] < replicaLease/2 || slices.Max(took) > replicaLease+time.Second {
			t.Errorf("changes with a replica paused took %v; want the first to wait out its lease (%v), none much longer", took, replicaLease)
		}
		r.waitLeases(3)
	})

	t.Run("connections killed", func(t *testing.T) {
		r.t = t
		r.tolerateErrors = true
		defer func() { r.tolerateErrors = false }()
		keys := r.createKeys("cut", 9)
		id := r.replicaID(1)
		r.churn(keys, []int{0, 1, 2}, func() func() []verdict {
			var n int
			if err := r.db.QueryRow(`SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name LIKE $1`, "keymint-"+id+"%").Scan(&n); err != nil || n < 2 {
				t.Fatalf("terminated %d connections of replica 1 (want its listener and its pool): %v", n, err)
			}
			return func() []verdict { return nil }
		})
		r.waitLeases(3) // it reconnected
	})

	t.Run("rate limit across replicas", func(t *testing.T) {
		r.t = t
		c := r.clients[0]
		if _, err := c.CreateApp(ctx, wire.CreateApp{Slug: "metered", Name: "m", Scopes: []string{"read"}, KeyPrefix: "metered",
			RateLimit: &wire.RateLimit{Requests: 10, Window: "1h"}}); err != nil {
			t.Fatal(err)
		}
		k, err := c.CreateKey(ctx, "metered", wire.CreateKey{Name: "k", Scopes: []string{"read"}})
		if err != nil {
			t.Fatal(err)
		}
		var mu sync.Mutex
		codes := map[string]int{}
		var wg sync.WaitGroup
		for i := range 60 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				v, err := r.clients[i%3].Verify(ctx, wire.VerifyRequest{Key: k.Secret})
				mu.Lock()
				defer mu.Unlock()
				if err != nil {
					codes[err.Error()]++
				} else {
					codes[v.Code]++
				}
			}()
		}
		wg.Wait()
		if codes[wire.CodeValid] != 10 || codes[wire.CodeRateLimited] != 50 {
			t.Errorf("60 verifies over 3 replicas of a key limited to 10 per hour: %v; want 10 VALID, 50 RATE_LIMITED", codes)
		}
	})

	t.Run("idempotent create on another replica", func(t *testing.T) {
		r.t = t
		if _, err := r.clients[0].CreateApp(ctx, wire.CreateApp{Slug: "idem", Name: "i", Scopes: []string{"read"}, KeyPrefix: "idem"}); err != nil {
			t.Fatal(err)
		}
		body := []byte(`{"name":"once","scopes":["read"]}`)
		var ids []string
		var replayed []string
		for _, url := range r.urls[:2] {
			req, _ := http.NewRequest(http.MethodPost, url+"/v1/apps/idem/keys", bytes.NewReader(body))
			req.Header.Set("Authorization", "Bearer "+childRootToken)
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set(wire.IdempotencyHeader, "create-once-7")
			res, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(res.Body)
			res.Body.Close()
			if res.StatusCode != http.StatusCreated && res.StatusCode != http.StatusOK {
				t.Fatalf("create on %s: %d %s", url, res.StatusCode, b)
			}
			var k wire.KeyWithSecret
			if err := json.Unmarshal(b, &k); err != nil {
				t.Fatal(err)
			}
			ids, replayed = append(ids, k.Key.ID), append(replayed, res.Header.Get(wire.ReplayedHeader))
		}
		keys, err := r.clients[2].ListKeys(ctx, "idem", "")
		if err != nil {
			t.Fatal(err)
		}
		if ids[0] != ids[1] || len(keys) != 1 || replayed[1] != "true" {
			t.Errorf("the same Idempotency-Key on two replicas: ids %v, %d keys, replayed %q; want one key, the second a replay", ids, len(keys), replayed)
		}
	})

	t.Run("kill -9 during writes", func(t *testing.T) {
		r.t = t
		if _, err := r.clients[0].CreateApp(ctx, wire.CreateApp{Slug: "killed", Name: "k", Scopes: []string{"read"}, KeyPrefix: "killed"}); err != nil {
			t.Fatal(err)
		}
		stop := make(chan struct{})
		var wg sync.WaitGroup
		var mu sync.Mutex
		var errs []error
		var writes, verifies int
		var slowest time.Duration
		for rep := range 2 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				c := r.clients[rep]
				for i := 0; ; i++ {
					select {
					case <-stop:
						return
					default:
					}
					start := time.Now()
					k, err := c.CreateKey(ctx, "killed", wire.CreateKey{Name: fmt.Sprintf("r%d-%d", rep, i), Scopes: []string{"read"}})
					if err == nil {
						_, err = change(ctx, c, i, liveKey{k.Key.ID, k.Secret})
					}
					var v wire.VerifyResponse
					if err == nil {
						v, err = r.clients[1-rep].Verify(ctx, wire.VerifyRequest{Key: k.Secret})
						if err == nil && v.Valid {
							err = fmt.Errorf("%s VALID after its change", k.Key.ID)
						}
					}
					mu.Lock()
					writes, verifies = writes+2, verifies+1
					slowest = max(slowest, time.Since(start))
					if err != nil {
						errs = append(errs, err)
					}
					mu.Unlock()
				}
			}()
		}
		time.Sleep(300 * time.Millisecond) // writes under way on both survivors
		if err := r.cmds[2].Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		time.Sleep(2 * replicaLease) // writes go on past the dead replica's lease
		close(stop)
		wg.Wait()
		if len(errs) > 0 {
			t.Errorf("%d of %d operations on the surviving replicas failed after a kill -9 of another; first: %v", len(errs), writes+verifies, errs[0])
		}
		if slowest > replicaLease+time.Second {
			t.Errorf("an operation took %v: longer than the dead replica's lease (%v) allows", slowest, replicaLease)
		}
		t.Logf("%d writes and %d verifies on the survivors; slowest create+change+verify %v", writes, verifies, slowest.Round(time.Millisecond))
	})
}

// keymint copy moves a SQLite database to PostgreSQL: every key issued
// before verifies after, on a server on PostgreSQL, and the audit trail goes
// along.
func TestCopySQLiteToPostgres(t *testing.T) {
	dsn := pgtest.Shared(t).NewDatabase(t)
	dir := t.TempDir()
	ctx := context.Background()
	cmd, url := startChild(t, dir)
	c, _ := keymint.New(url, childRootToken)
	if _, err := c.CreateApp(ctx, wire.CreateApp{Slug: "acme", Name: "Acme", Scopes: []string{"read"}, KeyPrefix: "acme",
		RateLimit: &wire.RateLimit{Requests: 100, Window: "1m"}}); err != nil {
		t.Fatal(err)
	}
	var secrets []string
	for i := range 5 {
		k, err := c.CreateKey(ctx, "acme", wire.CreateKey{Name: fmt.Sprintf("k%d", i), Scopes: []string{"read"}, Metadata: map[string]string{"i": fmt.Sprint(i)}})
		if err != nil {
			t.Fatal(err)
		}
		secrets = append(secrets, k.Secret)
	}
	// A rotated key with its grace period: both of its secrets move.
	rotated, err := c.RotateKey(ctx, mustFindID(t, c, secrets[0]), wire.RotateKey{GracePeriod: "1h"})
	if err != nil {
		t.Fatal(err)
	}
	secrets = append(secrets, rotated.Secret)
	revoked := secrets[1]
	if err := c.RevokeKey(ctx, mustFindID(t, c, revoked)); err != nil {
		t.Fatal(err)
	}
	events, err := c.ListEvents(ctx, "", "", 100)
	if err != nil {
		t.Fatal(err)
	}
	_ = cmd.Process.Signal(syscall.SIGTERM)
	_ = cmd.Wait()

	cl, out, errOut := testCLI(nil, "")
	if err := run(ctx, []string{"copy", "--from", "sqlite:" + filepath.Join(dir, "k.db"), "--to", dsn}, cl); err != nil {
		t.Fatalf("copy: %v\n%s", err, errOut)
	}
	t.Log(out.String())
	// A second copy into the same database is refused: it holds data now.
	if err := run(ctx, []string{"copy", "--from", "sqlite:" + filepath.Join(dir, "k.db"), "--to", dsn}, cl); err == nil {
		t.Error("a copy into a database that holds data was not refused")
	}

	_, pgURL := startServer(t, dir, "pg", dsn)
	pc, _ := keymint.New(pgURL, childRootToken)
	for _, s := range secrets {
		want := wire.CodeValid
		if s == revoked {
			want = wire.CodeRevoked
		}
		if v, err := pc.Verify(ctx, wire.VerifyRequest{Key: s}); err != nil || v.Code != want {
			t.Errorf("after the copy a key verifies %s (%v), want %s", v.Code, err, want)
		}
	}
	copied, err := pc.ListEvents(ctx, "", "", 100)
	if err != nil {
		t.Fatal(err)
	}
	if len(copied) < len(events) {
		t.Errorf("%d events after the copy, %d before", len(copied), len(events))
	}
	// New events follow the copied ones.
	if _, err := pc.CreateKey(ctx, "acme", wire.CreateKey{Name: "after", Scopes: []string{"read"}}); err != nil {
		t.Fatal(err)
	}
	newest, err := pc.ListEvents(ctx, "", "", 1)
	if err != nil || newest[0].Action != "key.create" || newest[0].ID == events[0].ID {
		t.Errorf("the first event after the copy: %+v (%v); want a new key.create, not %s", newest, err, events[0].ID)
	}
}

func mustFindID(t *testing.T, c *keymint.Client, secret string) string {
	t.Helper()
	k, err := c.FindKey(context.Background(), secret)
	if err != nil {
		t.Fatal(err)
	}
	return k.ID
}
