package main

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/keymint/terraform-provider-keymint/internal/keyformat"
	"github.com/keymint/terraform-provider-keymint/internal/wire"
	"github.com/keymint/terraform-provider-keymint/keymint"
)

const benchRootToken = "bench-root-token-0123456789"

// loadResult is one run of the load generator.
type loadResult struct {
	Requests int
	Errors   int
	PerSec   float64
	P50      time.Duration
	P99      time.Duration
	P999     time.Duration
	Max      time.Duration
	// MaxAt is when the slowest request was sent, from the start of the measured window.
	MaxAt time.Duration
	// MaxServer is the index, in the URLs loaded, of the server the slowest request went to.
	MaxServer int
	// DB is what PostgreSQL's own maintenance did during the run, if asked (watchDB).
	DB string
	// Answered counts every request of the run, its warm-up included.
	Answered int
	// CPUPerRequest is the server process's CPU time (user and system)
	// during the run per request answered: its own cost, whatever share of
	// the cores the load generator took.
	CPUPerRequest time.Duration
}

// withCPU runs fn and sets its result's CPUPerRequest from p's CPU time
// over every request fn's run answered, its warm-up included.
func withCPU(p *proc, fn func() (loadResult, error)) (loadResult, error) {
	before, err := p.cpu()
	if err != nil {
		return loadResult{}, err
	}
	res, err := fn()
	if err != nil {
		return res, err
	}
	after, err := p.cpu()
	if err != nil {
		return res, err
	}
	if res.Answered > 0 {
		res.CPUPerRequest = (after - before) / time.Duration(res.Answered)
	}
	return res, nil
}

// request is one prepared verify call and the verdict it must get.
type request struct {
	body []byte
	want string
}

func benchVerify(ctx context.Context, work string, r *report) error {
	debugAddr, err := freeAddr()
	if err != nil {
		return err
	}
	srv, err := startServer(work, *keymintBin, []string{"KEYMINT_ROOT_TOKEN=" + benchRootToken, "KEYMINT_LOG_FORMAT=json"},
		"serve", "--db", "sqlite:"+filepath.Join(work, "verify.db"), "--debug-addr", debugAddr)
	if err != nil {
		return err
	}
	defer srv.stop()
	c, err := keymint.New(srv.url(), benchRootToken)
	if err != nil {
		return err
	}
	// The apps have a rate limit too high to bite: the limiter's cost is in the figure.
	seed, err := seedKeys(ctx, c, *verifyKeys, &wire.RateLimit{Requests: 1_000_000_000, Window: "1s"})
	if err != nil {
		return err
	}
	cred, secrets, ids := seed.cred, seed.secrets, seed.ids
	r.CreateAPI = seed.created
	r.WALAfterAPICreates = fileSize(filepath.Join(work, "verify.db-wal"))
	rotations := min(2000, *verifyKeys)
	elapsed, err := parallel(rotations, 16, func(i int) error {
		k, err := c.RotateKey(ctx, ids[i], wire.RotateKey{GracePeriod: "0s"})
		secrets[i] = k.Secret
		return err
	})
	if err != nil {
		return err
	}
	r.RotateAPI = throughput{Count: rotations, Workers: 16, Elapsed: elapsed}
	reqs := verifyRequests(secrets) // the rotated secrets
	if err := checkVerdicts(srv.url(), cred.Secret, reqs[:2000]); err != nil {
		return err
	}

	self, err := os.Executable()
	if err != nil {
		return err
	}
	floor, err := startServer(work, self, nil, "floor")
	if err != nil {
		return err
	}
	defer floor.stop()
	for _, conns := range []int{16, 64} {
		for run := range *runs {
			logf("verify load: %d connections, run %d/%d", conns, run+1, *runs)
			var profiled chan error
			if conns == 64 && run == 0 {
				// Profile the real server in the middle of the first run at 64 connections.
				profiled = make(chan error, 1)
				go func() { profiled <- captureProfile(debugAddr, filepath.Join(work, "verify.pprof"), *duration) }()
			}
			km, err := withCPU(srv, func() (loadResult, error) {
				return load(srv.url(), cred.Secret, reqs, conns, *duration, *maxRequests), nil
			})
			if err != nil {
				return err
			}
			if profiled != nil {
				if err := <-profiled; err != nil {
					return err
				}
				if r.Profile, err = profileShares(filepath.Join(work, "verify.pprof")); err != nil {
					return err
				}
				if r.ProfileTop, err = profileTopLines(filepath.Join(work, "verify.pprof"), 20); err != nil {
					return err
				}
			}
			fl, err := withCPU(floor, func() (loadResult, error) {
				return load(floor.url(), cred.Secret, reqs, conns, *duration, *maxRequests), nil
			})
			if err != nil {
				return err
			}
			if km.Errors > 0 || fl.Errors > 0 {
				return fmt.Errorf("%d errors from keymint, %d from the floor", km.Errors, fl.Errors)
			}
			r.Verify[conns] = append(r.Verify[conns], km)
			r.Floor[conns] = append(r.Floor[conns], fl)
		}
	}
	// The floor's own first seconds: a fresh process and new connections,
	// no warm-up, as the replicas' cold windows are measured.
	for run := range *runs {
		logf("floor: the first %s of a fresh process, run %d/%d", coldWindow, run+1, *runs)
		fresh, err := startServer(work, self, nil, "floor")
		if err != nil {
			return err
		}
		r.ColdFloor = append(r.ColdFloor, loadWarm([]string{fresh.url()}, cred.Secret, reqs, 16, 0, coldWindow, *maxRequests))
		fresh.stop()
	}
	if !*skipWrk {
		script, err := wrkScript(work, cred.Secret, reqs)
		if err != nil {
			return err
		}
		for _, conns := range []int{16, 64} {
			for run := range *runs {
				logf("verify load by wrk: %d connections, run %d/%d", conns, run+1, *runs)
				km, err := withCPU(srv, func() (loadResult, error) { return runWrk(srv.url(), script, conns, 2, *duration) })
				if err != nil {
					return err
				}
				fl, err := withCPU(floor, func() (loadResult, error) { return runWrk(floor.url(), script, conns, 2, *duration) })
				if err != nil {
					return err
				}
				if km.Errors > 0 || fl.Errors > 0 {
					return fmt.Errorf("wrk: %d errors from keymint, %d from the floor", km.Errors, fl.Errors)
				}
				r.WrkVerify[conns] = append(r.WrkVerify[conns], km)
				r.WrkFloor[conns] = append(r.WrkFloor[conns], fl)
			}
		}
	}
	churnIDs, err := churnKeys(ctx, c, 100)
	if err != nil {
		return err
	}
	if r.ChurnSQLiteOff, r.ChurnSQLiteOn, err = benchChurn(ctx, []string{srv.url()}, cred.Secret, reqs, c, churnIDs); err != nil {
		return err
	}
	if _, r.PeakRSS, err = srv.memory(); err != nil {
		return err
	}
	srv.stop()
	return benchMetricsCost(work, cred.Secret, reqs, r)
}

// seeded is what seedKeys made: a verify credential, keys with their secrets, and the request mix.
type seeded struct {
	cred    wire.KeyWithSecret
	secrets []string
	ids     []string
	reqs    []request
	created throughput
}

const benchApps = 10

// seedKeys creates a verify-scoped credential, 10 apps (with limit, if any)
// and n keys across them through the API, 16 at a time.
func seedKeys(ctx context.Context, c *keymint.Client, n int, limit *wire.RateLimit) (seeded, error) {
	var s seeded
	var err error
	// Applications verify with a narrow credential, which costs a lookup of its own.
	if s.cred, err = c.CreateKey(ctx, wire.ManagementApp, wire.CreateKey{Name: "bench verifier", Scopes: []string{wire.ScopeVerify}}); err != nil {
		return s, err
	}
	for i := range benchApps {
		if _, err := c.CreateApp(ctx, wire.CreateApp{Slug: fmt.Sprintf("app-%d", i), Name: "bench", Scopes: []string{"read:data", "write:data"},
			KeyPrefix: fmt.Sprintf("bench%d", i), RateLimit: limit}); err != nil {
			return s, err
		}
	}
	s.secrets, s.ids = make([]string, n), make([]string, n)
	elapsed, err := parallel(n, 16, func(i int) error {
		k, err := c.CreateKey(ctx, fmt.Sprintf("app-%d", i%benchApps), wire.CreateKey{Name: fmt.Sprintf("key %d", i),
			Scopes: []string{"read:data"}, Metadata: map[string]string{"customer": fmt.Sprintf("c%d", i)}})
		s.secrets[i], s.ids[i] = k.Secret, k.Key.ID
		return err
	})
	s.created = throughput{Count: n, Workers: 16, Elapsed: elapsed}
	s.reqs = verifyRequests(s.secrets)
	return s, err
}

// verifyRequests is the request mix over secrets: 90% VALID, 5%
// INSUFFICIENT_SCOPE, 5% NOT_FOUND (well-formed, unknown: it reaches the store).
func verifyRequests(secrets []string) []request {
	rng := rand.New(rand.NewPCG(1, 2))
	reqs := make([]request, 20000)
	for i := range reqs {
		k := secrets[rng.IntN(len(secrets))]
		req, want := wire.VerifyRequest{Key: k, Scopes: []string{"read:data"}}, wire.CodeValid
		switch n := rng.IntN(100); {
		case n < 5:
			req.Scopes, want = []string{"write:data"}, wire.CodeInsufficientScope
		case n < 10:
			req.Key, want = keyformat.Generate(fmt.Sprintf("bench%d", rng.IntN(benchApps))), wire.CodeNotFound
		}
		reqs[i].body, _ = json.Marshal(req)
		reqs[i].want = want
	}
	return reqs
}

// benchMetricsCost measures verify with --metrics-addr against without,
// alternating the two servers on the same database run by run, so that both
// see the same machine.
func benchMetricsCost(work, token string, reqs []request, r *report) error {
	for run := range *runs {
		for _, on := range []bool{false, true} {
			args := []string{"serve", "--db", "sqlite:" + filepath.Join(work, "verify.db")}
			if on {
				addr, err := freeAddr()
				if err != nil {
					return err
				}
				args = append(args, "--metrics-addr", addr)
			}
			srv, err := startServer(work, *keymintBin, []string{"KEYMINT_ROOT_TOKEN=" + benchRootToken, "KEYMINT_LOG_FORMAT=json"}, args...)
			if err != nil {
				return err
			}
			for _, conns := range []int{16, 64} {
				logf("verify load, metrics %v: %d connections, run %d/%d", on, conns, run+1, *runs)
				res, err := withCPU(srv, func() (loadResult, error) { return load(srv.url(), token, reqs, conns, *duration, *maxRequests), nil })
				if err != nil {
					srv.stop()
					return err
				}
				if res.Errors > 0 {
					srv.stop()
					return fmt.Errorf("%d errors from keymint (metrics %v)", res.Errors, on)
				}
				if on {
					r.MetricsOn[conns] = append(r.MetricsOn[conns], res)
				} else {
					r.MetricsOff[conns] = append(r.MetricsOff[conns], res)
				}
			}
			srv.stop()
		}
	}
	return nil
}

func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// captureProfile takes a CPU profile of the server through --debug-addr,
// covering the middle of a load run of length d (which starts with a 1 s warm-up).
func captureProfile(debugAddr, path string, d time.Duration) error {
	seconds := max(1, int(d.Seconds())-1)
	time.Sleep(1500 * time.Millisecond)
	res, err := http.Get(fmt.Sprintf("http://%s/debug/pprof/profile?seconds=%d", debugAddr, seconds))
	if err != nil {
		return err
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		return err
	}
	if res.StatusCode != http.StatusOK {
		return fmt.Errorf("profile: %d %s", res.StatusCode, b)
	}
	if *profileOut != "" && *scaleSizes == "" {
		if err := os.WriteFile(*profileOut, b, 0o644); err != nil {
			return err
		}
	}
	return os.WriteFile(path, b, 0o644)
}

// checkVerdicts makes sure the load asks what it claims to: each prepared
// request gets its expected verdict.
func checkVerdicts(url, token string, reqs []request) error {
	for _, q := range reqs {
		req, _ := http.NewRequest("POST", url+"/v1/verify", bytes.NewReader(q.body))
		req.Header.Set("Authorization", "Bearer "+token)
		req.Header.Set("Content-Type", "application/json")
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			return err
		}
		var v wire.VerifyResponse
		err = json.NewDecoder(res.Body).Decode(&v)
		res.Body.Close()
		if err != nil {
			return err
		}
		if v.Code != q.want {
			return fmt.Errorf("prepared request got %s, want %s", v.Code, q.want)
		}
	}
	return nil
}

// load drives POST /v1/verify with conns connections for d (after a one-second
// warm-up), or until maxReq requests, whichever comes first.
func load(url, token string, reqs []request, conns int, d time.Duration, maxReq int) loadResult {
	return loadMany([]string{url}, token, reqs, conns, d, maxReq)
}

// loadMany is load with the connections spread evenly over several servers (replicas).
func loadMany(urls []string, token string, reqs []request, conns int, d time.Duration, maxReq int) loadResult {
	return loadWarm(urls, token, reqs, conns, time.Second, d, maxReq)
}

// loadWarm is loadMany after a warm-up of the given length (0: every request counts).
func loadWarm(urls []string, token string, reqs []request, conns int, warmUp, d time.Duration, maxReq int) loadResult {
	tr := &http.Transport{MaxIdleConns: conns, MaxIdleConnsPerHost: conns, MaxConnsPerHost: (conns + len(urls) - 1) / len(urls), DisableCompression: true}
	defer tr.CloseIdleConnections()
	hc := &http.Client{Transport: tr, Timeout: 10 * time.Second}
	var sent atomic.Int64
	var errs atomic.Int64
	var answered atomic.Int64 // warm-up included
	lat := make([][]time.Duration, conns)
	type slow struct {
		took, at time.Duration
		server   int
	}
	slowest := make([]slow, conns)
	var wg sync.WaitGroup
	warm := time.Now().Add(warmUp)
	deadline := warm.Add(d)
	var measuredStart time.Time
	for w := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(w), 7))
			mine := make([]time.Duration, 0, maxReq/conns+1)
			for {
				now := time.Now()
				if now.After(deadline) {
					break
				}
				measuring := !now.Before(warm)
				if measuring && sent.Add(1) > int64(maxReq) {
					break
				}
				q := reqs[rng.IntN(len(reqs))]
				req, _ := http.NewRequest("POST", urls[w%len(urls)]+"/v1/verify", bytes.NewReader(q.body))
				req.Header.Set("Authorization", "Bearer "+token)
				req.Header.Set("Content-Type", "application/json")
				t0 := time.Now()
				res, err := hc.Do(req)
				if err == nil {
					_, err = io.Copy(io.Discard, res.Body)
					res.Body.Close()
					if res.StatusCode != http.StatusOK {
						err = fmt.Errorf("status %d", res.StatusCode)
					}
				}
				answered.Add(1)
				if measuring {
					if err != nil {
						errs.Add(1)
					}
					took := time.Since(t0)
					mine = append(mine, took)
					if took > slowest[w].took {
						slowest[w] = slow{took, t0.Sub(warm), w % len(urls)}
					}
				}
			}
			lat[w] = mine
		}()
	}
	time.Sleep(time.Until(warm))
	measuredStart = time.Now()
	wg.Wait()
	elapsed := time.Since(measuredStart)
	all := slices.Concat(lat...)
	slices.Sort(all)
	pct := func(p float64) time.Duration {
		if len(all) == 0 {
			return 0
		}
		return all[min(len(all)-1, int(p*float64(len(all))))]
	}
	res := loadResult{Requests: len(all), Errors: int(errs.Load()), PerSec: float64(len(all)) / elapsed.Seconds(),
		P50: pct(0.50), P99: pct(0.99), P999: pct(0.999), Max: pct(1), Answered: int(answered.Load()),
	}
	worst := slices.MaxFunc(slowest, func(a, b slow) int { return cmp.Compare(a.took, b.took) })
	res.MaxAt, res.MaxServer = worst.at, worst.server
	return res
}

// parallel runs fn(0..n-1) on workers goroutines and reports the wall time.
func parallel(n, workers int, fn func(i int) error) (time.Duration, error) {
	start := time.Now()
	next := atomic.Int64{}
	var firstErr error
	var once sync.Once
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= n {
					return
				}
				if err := fn(i); err != nil {
					once.Do(func() { firstErr = err })
					return
				}
			}
		}()
	}
	wg.Wait()
	return time.Since(start), firstErr
}
