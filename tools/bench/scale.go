package main

import (
	"bufio"
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/keymint/terraform-provider-keymint/internal/service"
	"github.com/keymint/terraform-provider-keymint/internal/store"
	"github.com/keymint/terraform-provider-keymint/internal/store/postgres"
	"github.com/keymint/terraform-provider-keymint/internal/store/postgres/pgtest"
	"github.com/keymint/terraform-provider-keymint/internal/store/sqlite"
	"github.com/keymint/terraform-provider-keymint/internal/wire"
	"github.com/keymint/terraform-provider-keymint/keymint"
)

var (
	scaleSizes    = flag.String("scale", "", "scale mode (make bench-scale): the key counts to measure, comma-separated, e.g. 10000,100000,1000000; writes -scale-out/scale.md and scale.svg instead of the report")
	scaleBackends = flag.String("scale-backends", "sqlite,postgres", "scale mode: the backends, comma-separated (sqlite, postgres)")
	scalePGMax    = flag.Int("scale-pg-max", 0, "scale mode: the largest key count run on PostgreSQL (0: every size); bigger sizes run on SQLite only")
	scaleOut      = flag.String("scale-out", "docs/bench", "scale mode: the directory scale.md and scale.svg are written to")
	scaleConns    = flag.Int("scale-conns", 64, "scale mode: verify connections")
	scaleDir      = flag.String("scale-dir", "", "scale mode: the directory the databases (SQLite's file, PostgreSQL's cluster) live in; default: $TMPDIR")
	seedWorkers   = flag.Int("scale-seed-workers", 16, "scale mode: goroutines creating keys through the service")
)

// scaleBigApp holds the first scaleBigKeys keys: the app list-keys pages through.
const (
	scaleBigApp  = "big"
	scaleBigKeys = 100000
	scaleApps    = 10 // the other keys' apps, round robin
)

// scaleResult is one backend at one key count.
type scaleResult struct {
	Backend   string
	Keys      int
	Seed      throughput // the keys added to reach Keys, through the service
	CacheSize int
	Startup   []time.Duration // per server, from exec to GET /readyz 200
	Sweep     throughput      // every key verified once on every server: the cache's cold fill
	Runs      []loadResult
	Hits      int64 // verify cache lookups during the runs, all servers
	Misses    int64
	RSS, HWM  []int64 // per server, after the runs
	Listed    int
	ListTime  time.Duration
	DBSize    int64
	Profile   []profileShare
}

func (s scaleResult) hitRatio() float64 {
	if s.Hits+s.Misses == 0 {
		return 0
	}
	return float64(s.Hits) / float64(s.Hits+s.Misses)
}

func (s scaleResult) rps() stat { return pick(s.Runs, func(l loadResult) float64 { return l.PerSec }) }
func (s scaleResult) p99() stat { return pick(s.Runs, func(l loadResult) float64 { return ms(l.P99) }) }

func (s scaleResult) meanRSS() int64 {
	var t int64
	for _, r := range s.RSS {
		t += r
	}
	return t / int64(max(1, len(s.RSS)))
}

func (s scaleResult) maxStartup() time.Duration { return slices.Max(s.Startup) }

// scaleReport is what scale mode writes.
type scaleReport struct {
	Started  time.Time
	Elapsed  time.Duration
	Command  string
	Cores    int
	Go       string
	Sizes    []int
	PGMax    int
	Results  []scaleResult
	Duration time.Duration
	Conns    int
	Workers  int
	Dir      string // where the databases lived, and its file system
}

func parseSizes(s string) ([]int, error) {
	var sizes []int
	for f := range strings.SplitSeq(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(strings.ReplaceAll(f, "_", "")))
		if err != nil || n < 1 {
			return nil, fmt.Errorf("-scale: %q is not a key count (a whole number ≥ 1, e.g. -scale 10000,100000)", f)
		}
		sizes = append(sizes, n)
	}
	slices.Sort(sizes)
	return slices.Compact(sizes), nil
}

// runScale is make bench-scale: each backend grows one database through the
// sizes, measuring a fresh server at each.
func runScale(ctx context.Context) error {
	start := time.Now()
	sizes, err := parseSizes(*scaleSizes)
	if err != nil {
		return err
	}
	rep := &scaleReport{Started: start.UTC(), Command: strings.TrimSpace("make bench-scale " + strings.Join(os.Args[1:], " ")),
		Cores: runtime.NumCPU(), Go: runtime.Version(), Sizes: sizes, PGMax: *scalePGMax, Duration: *duration, Conns: *scaleConns}
	if *scaleDir != "" {
		// pgtest makes its cluster in $TMPDIR.
		if err := os.Setenv("TMPDIR", *scaleDir); err != nil {
			return err
		}
	}
	rep.Workers, rep.Dir = *seedWorkers, os.TempDir()
	if fs := fsType(rep.Dir); fs != "" {
		rep.Dir += " (" + fs + ")"
	}
	work, err := os.MkdirTemp("", "keymint-bench-scale")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)
	for _, backend := range strings.Split(*scaleBackends, ",") {
		var res []scaleResult
		switch backend {
		case "sqlite":
			res, err = scaleSQLite(ctx, work, sizes)
		case "postgres":
			pgSizes := sizes
			if *scalePGMax > 0 {
				pgSizes = slices.DeleteFunc(slices.Clone(sizes), func(n int) bool { return n > *scalePGMax })
			}
			res, err = scalePostgres(ctx, work, pgSizes)
		default:
			return fmt.Errorf("-scale-backends: unknown backend %q (sqlite, postgres)", backend)
		}
		rep.Results = append(rep.Results, res...)
		if err != nil {
			return fmt.Errorf("scale, %s: %w", backend, err)
		}
	}
	rep.Elapsed = time.Since(start).Round(time.Second)
	if err := os.MkdirAll(*scaleOut, 0o755); err != nil {
		return err
	}
	text := rep.markdown()
	fmt.Print(text)
	if err := os.WriteFile(filepath.Join(*scaleOut, "scale.md"), []byte(text), 0o644); err != nil {
		return err
	}
	return rep.plot(filepath.Join(*scaleOut, "scale.svg"))
}

// fsType is the type of the file system dir is on, from /proc/self/mounts, or "" if unknown.
func fsType(dir string) string {
	b, err := os.ReadFile("/proc/self/mounts")
	if err != nil {
		return ""
	}
	dir, _ = filepath.EvalSymlinks(dir)
	best, typ := "", ""
	for line := range strings.SplitSeq(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) < 3 {
			continue
		}
		mp := f[1]
		if (dir == mp || strings.HasPrefix(dir, strings.TrimSuffix(mp, "/")+"/")) && len(mp) > len(best) {
			best, typ = mp, f[2]
		}
	}
	return typ
}

// scaleSeeder creates keys through the service, on the store the server will open.
type scaleSeeder struct {
	svc  *service.Service
	st   store.Store
	done int       // keys created so far
	reqs []request // one verify request per key, in creation order
	cred string    // the verify credential's secret
}

// newSeeder opens the service on st, creates the apps and the verify credential.
func newSeeder(ctx context.Context, st store.Store) (*scaleSeeder, error) {
	s := &scaleSeeder{svc: service.New(service.Config{Store: st}), st: st}
	if err := s.svc.Bootstrap(ctx); err != nil {
		return nil, err
	}
	root := service.Root()
	apps := []string{scaleBigApp}
	for i := range scaleApps {
		apps = append(apps, fmt.Sprintf("app-%d", i))
	}
	for i, slug := range apps {
		if _, _, err := s.svc.CreateApp(ctx, root, wire.CreateApp{Slug: slug, Name: "bench scale", Scopes: []string{"read:data", "write:data"},
			KeyPrefix: fmt.Sprintf("scale%d", i)}, ""); err != nil {
			return nil, err
		}
	}
	cred, _, err := s.svc.CreateKey(ctx, root, wire.ManagementApp, wire.CreateKey{Name: "bench verifier", Scopes: []string{wire.ScopeVerify}}, "")
	if err != nil {
		return nil, err
	}
	s.cred = cred.Secret
	return s, nil
}

// reopen points the seeder at st, the same database opened again.
func (s *scaleSeeder) reopen(st store.Store) {
	s.st, s.svc = st, service.New(service.Config{Store: st})
}

// grow creates keys until there are n, -scale-seed-workers at a time, each as the API's
// create makes it (validation, a new secret and its hash, one transaction).
// The first scaleBigKeys go to the big app, the rest round robin to the others.
func (s *scaleSeeder) grow(ctx context.Context, n int) (throughput, error) {
	from := s.done
	if n <= from {
		return throughput{}, nil
	}
	root := service.Root()
	reqs := make([]request, n-from)
	elapsed, err := parallel(n-from, *seedWorkers, func(j int) error {
		i := from + j
		app := scaleBigApp
		if i >= scaleBigKeys {
			app = fmt.Sprintf("app-%d", i%scaleApps)
		}
		k, _, err := s.svc.CreateKey(ctx, root, app, wire.CreateKey{Name: fmt.Sprintf("key %d", i),
			Scopes: []string{"read:data"}, Metadata: map[string]string{"customer": fmt.Sprintf("c%d", i)}}, "")
		if err != nil {
			return err
		}
		reqs[j].body, _ = json.Marshal(wire.VerifyRequest{Key: k.Secret, Scopes: []string{"read:data"}})
		reqs[j].want = wire.CodeValid
		return nil
	})
	if err != nil {
		return throughput{}, err
	}
	s.reqs, s.done = append(s.reqs, reqs...), n
	return throughput{Count: n - from, Workers: *seedWorkers, Elapsed: elapsed}, nil
}

func scaleSQLite(ctx context.Context, work string, sizes []int) ([]scaleResult, error) {
	path := filepath.Join(work, "scale.db")
	var seeder *scaleSeeder
	var out []scaleResult
	for _, n := range sizes {
		st, err := sqlite.Open(ctx, path, sqlite.Options{})
		if err != nil {
			return out, err
		}
		if seeder == nil {
			if seeder, err = newSeeder(ctx, st); err != nil {
				return out, err
			}
		} else {
			seeder.reopen(st)
		}
		logf("scale sqlite: seeding to %d keys through the service", n)
		seed, err := seeder.grow(ctx, n)
		if cerr := st.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return out, err
		}
		logf("scale sqlite: %d keys seeded at %.0f keys/s", n, seed.perSec())
		res := scaleResult{Backend: "SQLite", Keys: n, Seed: seed}
		// The database as the server leaves it: file and write-ahead log.
		err = scaleMeasure(ctx, work, "sqlite:"+path, 1, seeder, &res)
		res.DBSize = fileSize(path) + max(0, fileSize(path+"-wal"))
		out = append(out, res)
		if err != nil {
			return out, err
		}
	}
	return out, nil
}

func scalePostgres(ctx context.Context, work string, sizes []int) ([]scaleResult, error) {
	if len(sizes) == 0 {
		return nil, nil
	}
	pg, err := pgtest.Start("-c", "fsync=on")
	if err != nil {
		return nil, err
	}
	defer pg.Stop()
	dsn := pg.DSN("postgres")
	db, err := sql.Open("pgx", dsn)
	if err != nil {
		return nil, err
	}
	defer db.Close()
	// The seeder holds no lease (no cache): with no replica running, its
	// writes wait for no acknowledgement.
	st, err := postgres.Open(ctx, dsn, postgres.Options{})
	if err != nil {
		return nil, err
	}
	defer func() { _ = st.Close() }()
	seeder, err := newSeeder(ctx, st)
	if err != nil {
		return nil, err
	}
	var out []scaleResult
	for _, n := range sizes {
		logf("scale postgres: seeding to %d keys through the service", n)
		seed, err := seeder.grow(ctx, n)
		if err != nil {
			return out, err
		}
		logf("scale postgres: %d keys seeded at %.0f keys/s", n, seed.perSec())
		res := scaleResult{Backend: "PostgreSQL, 2 replicas", Keys: n, Seed: seed}
		err = scaleMeasure(ctx, work, dsn, 2, seeder, &res)
		if qerr := db.QueryRowContext(ctx, `SELECT pg_database_size(current_database())`).Scan(&res.DBSize); err == nil {
			err = qerr
		}
		out = append(out, res)
		if err != nil {
			return out, err
		}
	}
	return out, nil
}

// scaleServer is one keymint serve of a scale measurement.
type scaleServer struct {
	p                  *proc
	metrics, debugAddr string
}

// scaleMeasure starts replicas servers on db with a cache that holds every
// key, and measures start-up, a cold sweep, verify load, the cache's hit
// ratio, memory and list-keys paging.
func scaleMeasure(ctx context.Context, work, db string, replicas int, seeder *scaleSeeder, res *scaleResult) error {
	res.CacheSize = res.Keys + res.Keys/10 + 1000 // every key, the credential, and room to spare
	servers := make([]scaleServer, replicas)
	starts := make([]time.Duration, replicas)
	var wg sync.WaitGroup
	errs := make([]error, replicas)
	for i := range servers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s := &servers[i]
			var err error
			if s.metrics, err = freeAddr(); err != nil {
				errs[i] = err
				return
			}
			if s.debugAddr, err = freeAddr(); err != nil {
				errs[i] = err
				return
			}
			t0 := time.Now()
			s.p, err = startServer(work, *keymintBin, []string{"KEYMINT_ROOT_TOKEN=" + benchRootToken, "KEYMINT_LOG_FORMAT=json"},
				"serve", "--db", db, "--verify-cache-size", strconv.Itoa(res.CacheSize), "--metrics-addr", s.metrics, "--debug-addr", s.debugAddr)
			if err == nil {
				err = waitReady(s.p.url())
			}
			starts[i], errs[i] = time.Since(t0), err
		}()
	}
	wg.Wait()
	defer func() {
		for _, s := range servers {
			if s.p != nil {
				s.p.stop()
			}
		}
	}()
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	res.Startup = starts
	urls := make([]string, replicas)
	for i, s := range servers {
		urls[i] = s.p.url()
	}
	logf("scale %s %d keys: ready in %v; verifying every key once on each server", res.Backend, res.Keys, starts)
	var err error
	if res.Sweep, err = sweep(urls, seeder.cred, seeder.reqs, *scaleConns); err != nil {
		return err
	}
	hits0, misses0, err := cacheLookups(servers)
	if err != nil {
		return err
	}
	for run := range *runs {
		logf("scale %s %d keys: verify load, %d connections, run %d/%d", res.Backend, res.Keys, *scaleConns, run+1, *runs)
		var profiled chan error
		prof := filepath.Join(work, fmt.Sprintf("scale-%s-%d.pprof", shortBackend(res.Backend), res.Keys))
		if *profileOut != "" {
			// -profile dir keeps every size's profile there, for go tool pprof.
			if err := os.MkdirAll(*profileOut, 0o755); err != nil {
				return err
			}
			prof = filepath.Join(*profileOut, filepath.Base(prof))
		}
		if run == 0 {
			profiled = make(chan error, 1)
			go func() { profiled <- captureProfile(servers[0].debugAddr, prof, *duration) }()
		}
		l := loadMany(urls, seeder.cred, seeder.reqs, *scaleConns, *duration, *maxRequests)
		if profiled != nil {
			if err := <-profiled; err != nil {
				return err
			}
			if res.Profile, err = profileShares(prof); err != nil {
				return err
			}
		}
		if l.Errors > 0 {
			return fmt.Errorf("%d errors in the verify load", l.Errors)
		}
		res.Runs = append(res.Runs, l)
	}
	hits1, misses1, err := cacheLookups(servers)
	if err != nil {
		return err
	}
	res.Hits, res.Misses = hits1-hits0, misses1-misses0
	for _, s := range servers {
		rss, hwm, err := s.p.memory()
		if err != nil {
			return err
		}
		res.RSS, res.HWM = append(res.RSS, rss), append(res.HWM, hwm)
	}
	c, err := keymint.New(urls[0], benchRootToken)
	if err != nil {
		return err
	}
	t0 := time.Now()
	keys, err := c.ListKeys(ctx, scaleBigApp, "")
	res.ListTime, res.Listed = time.Since(t0), len(keys)
	if err != nil {
		return err
	}
	if want := min(res.Keys, scaleBigKeys); res.Listed != want {
		return fmt.Errorf("list-keys of %s gave %d keys, want %d", scaleBigApp, res.Listed, want)
	}
	logf("scale %s %d keys: %.0f verifies/s, hit ratio %.3f, listed %d keys in %v", res.Backend, res.Keys, res.rps().med, res.hitRatio(), res.Listed, res.ListTime)
	return nil
}

// waitReady polls GET /readyz until it answers 200.
func waitReady(url string) error {
	deadline := time.Now().Add(2 * time.Minute)
	for time.Now().Before(deadline) {
		res, err := http.Get(url + "/readyz")
		if err == nil {
			res.Body.Close()
			if res.StatusCode == http.StatusOK {
				return nil
			}
		}
		time.Sleep(2 * time.Millisecond) // polling another process: no clock to inject
	}
	return fmt.Errorf("%s/readyz did not answer 200 within 2 minutes", url)
}

// sweep verifies every request once on every server (each server's share of
// the connections going through all of them), checking each verdict.
func sweep(urls []string, token string, reqs []request, conns int) (throughput, error) {
	tr := &http.Transport{MaxIdleConns: conns, MaxIdleConnsPerHost: conns, DisableCompression: true}
	defer tr.CloseIdleConnections()
	hc := &http.Client{Transport: tr, Timeout: 30 * time.Second}
	start := time.Now()
	var wg sync.WaitGroup
	errs := make([]error, len(urls))
	for i, url := range urls {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, errs[i] = parallel(len(reqs), max(1, conns/len(urls)), func(j int) error {
				req, _ := http.NewRequest("POST", url+"/v1/verify", bytes.NewReader(reqs[j].body))
				req.Header.Set("Authorization", "Bearer "+token)
				req.Header.Set("Content-Type", "application/json")
				res, err := hc.Do(req)
				if err != nil {
					return err
				}
				b, err := io.ReadAll(res.Body)
				res.Body.Close()
				if err != nil {
					return err
				}
				if res.StatusCode != http.StatusOK || !bytes.Contains(b, []byte(`"`+reqs[j].want+`"`)) {
					return fmt.Errorf("verify of seeded key %d: %d %.200s, want %s", j, res.StatusCode, b, reqs[j].want)
				}
				return nil
			})
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return throughput{}, err
		}
	}
	return throughput{Count: len(reqs) * len(urls), Workers: conns, Elapsed: time.Since(start)}, nil
}

// cacheLookups sums keymint_verify_cache_lookups_total over the servers.
func cacheLookups(servers []scaleServer) (hits, misses int64, err error) {
	for _, s := range servers {
		res, err := http.Get("http://" + s.metrics + "/metrics")
		if err != nil {
			return 0, 0, err
		}
		sc := bufio.NewScanner(res.Body)
		for sc.Scan() {
			line := sc.Text()
			name, value, ok := strings.Cut(line, " ")
			if !ok {
				continue
			}
			v, _ := strconv.ParseFloat(value, 64)
			switch name {
			case `keymint_verify_cache_lookups_total{result="hit"}`:
				hits += int64(v)
			case `keymint_verify_cache_lookups_total{result="miss"}`:
				misses += int64(v)
			}
		}
		res.Body.Close()
		if err := sc.Err(); err != nil {
			return 0, 0, err
		}
	}
	return hits, misses, nil
}
