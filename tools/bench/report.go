package main

import (
	"cmp"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

type throughput struct {
	Count   int
	Workers int
	Elapsed time.Duration
}

func (t throughput) perSec() float64 { return float64(t.Count) / t.Elapsed.Seconds() }

type profileShare struct {
	Name string
	Pct  float64
}

func sortShares(s []profileShare) {
	slices.SortFunc(s, func(a, b profileShare) int {
		return cmp.Or(cmp.Compare(b.Pct, a.Pct), strings.Compare(a.Name, b.Name))
	})
}

type report struct {
	Cores     int
	Runs      int
	Started   time.Time
	Elapsed   time.Duration
	GoVersion string
	Terraform string
	Command   string
	Verify    map[int][]loadResult
	Floor     map[int][]loadResult
	MetricsOn map[int][]loadResult
	// The same verify load by wrk; WrkPG through the two PostgreSQL replicas.
	WrkVerify, WrkFloor, WrkPG map[int][]loadResult
	// Verify from the first request after seeding, and after a replica starts.
	ColdAfterSeed, ColdAfterStart []loadResult
	ColdFloor                     []loadResult // the floor's first seconds, a fresh process each run
	MetricsOff                    map[int][]loadResult
	CreateAPI                     throughput
	RotateAPI                     throughput
	CreateStore                   throughput
	IdleRSS                       int64
	IdleKeys                      int
	PeakRSS                       int64

	WALAfterAPICreates, WALAfterServiceCreates, WALAfterMaintain int64
	LimiterHeap, LimiterHeapSwept                                int64

	TFResources, TFParallelism int
	TF                         map[string][]tfTimes
	TFProfile                  *tfProfile
	TFScale, TFScaleFloor      map[int]tfTimes

	Micro      []string
	Profile    []profileShare
	ProfileTop []string

	// PostgreSQL, two replicas.
	PG                            map[int][]loadResult
	CreatePG                      throughput
	ChurnSQLiteOff, ChurnSQLiteOn []loadResult
	ChurnPGOff, ChurnPGOn         []loadResult
	RevokeHealthy, RevokePaused   []time.Duration
}

// quantile of sorted durations.
func quantile(d []time.Duration, q float64) time.Duration {
	if len(d) == 0 {
		return 0
	}
	return d[min(len(d)-1, int(q*float64(len(d))))]
}

// stat is the median of a measurement's runs, with its min and max.
type stat struct{ med, lo, hi float64 }

func statOf(xs []float64) stat {
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s) == 0 {
		return stat{}
	}
	return stat{med: s[len(s)/2], lo: s[0], hi: s[len(s)-1]}
}

func pick[T any](rs []T, f func(T) float64) stat {
	xs := make([]float64, len(rs))
	for i, r := range rs {
		xs[i] = f(r)
	}
	return statOf(xs)
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func (s stat) format(unit string, prec int) string {
	return fmt.Sprintf("%.*f%s [%.*f–%.*f]", prec, s.med, unit, prec, s.lo, prec, s.hi)
}

func mib(b int64) string { return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20)) }

func verdict(ok bool) string {
	if ok {
		return "met"
	}
	return "**missed**"
}

func (r *report) markdown() string {
	var b strings.Builder
	w := func(format string, args ...any) { fmt.Fprintf(&b, format+"\n", args...) }
	w("# Benchmarks")
	w("")
	w("Produced by `%s` on %s, in %s: %d cores, %s, %s. Each figure is the median of %d runs, with the min–max spread in brackets; each ratio compares medians measured in the same run of `make bench` on the same machine. The load generator (`tools/bench`) shares the machine's cores with the server.",
		strings.TrimSpace(r.Command), r.Started.Format("2006-01-02 15:04 UTC"), r.Elapsed, r.Cores, r.GoVersion, r.Terraform, r.Runs)
	w("")
	w("## Verify: `POST /v1/verify`")
	w("")
	w("A real `keymint serve` (SQLite, %d keys across 10 apps, created through the API) verifying keys chosen at random: 90%% `VALID`, 5%% `INSUFFICIENT_SCOPE`, 5%% `NOT_FOUND` (well-formed keys that reach the store), sent with a verify-scoped management credential (its own lookup on every request). The floor is the same generator against the bench tool's own `floor` process: a bare `net/http` handler, built by the same Go, that decodes the same JSON body and answers a fixed verdict; it runs at Go's default GOGC, while `keymint serve` sets GOGC=400 under a memory limit itself (README, Memory), which counts as part of keymint. %s per run after a 1 s warm-up, at most %d requests.",
		*verifyKeys, *duration, *maxRequests)
	w("")
	w("The last column is the server process's own CPU time (user and system, from /proc) over the run per request it answered: what a verify costs the server, whatever share of the two cores the generator took.")
	w("")
	w("| connections | server | requests/s | p50 | p99 | p99.9 | server CPU per request |")
	w("|---:|---|---:|---:|---:|---:|---:|")
	var targets []string
	cpu := func(l loadResult) float64 { return float64(l.CPUPerRequest) / float64(time.Microsecond) }
	for _, conns := range []int{16, 64} {
		km, fl := r.Verify[conns], r.Floor[conns]
		rps := func(l loadResult) float64 { return l.PerSec }
		p50 := func(l loadResult) float64 { return ms(l.P50) }
		p99 := func(l loadResult) float64 { return ms(l.P99) }
		p999 := func(l loadResult) float64 { return ms(l.P999) }
		for _, row := range []struct {
			name string
			rs   []loadResult
		}{{"keymint", km}, {"floor", fl}} {
			w("| %d | %s | %s | %s | %s | %s | %s |", conns, row.name, pick(row.rs, rps).format("", 0),
				pick(row.rs, p50).format(" ms", 2), pick(row.rs, p99).format(" ms", 2), pick(row.rs, p999).format(" ms", 2),
				pick(row.rs, cpu).format(" µs", 1))
		}
		tput := pick(km, rps).med / pick(fl, rps).med
		lat := pick(km, p99).med / pick(fl, p99).med
		w("| %d | **keymint / floor** | **%.2f** | %.2f | **%.2f** | %.2f | %.2f |", conns, tput,
			pick(km, p50).med/pick(fl, p50).med, lat, pick(km, p999).med/pick(fl, p999).med, pick(km, cpu).med/pick(fl, cpu).med)
		targets = append(targets,
			fmt.Sprintf("- %d connections, Go generator: throughput %.2f of the floor (target ≥ 0.85: %s); p99 %.2f× the floor's (target ≤ 1.3: %s)",
				conns, tput, verdict(tput >= 0.85), lat, verdict(lat <= 1.3)))
	}
	w("")
	if len(r.WrkVerify[16]) > 0 {
		w("The same servers and requests driven by `wrk` (Debian's, C, `-t2`, a Lua script drawing the same prepared bodies at random; a 1 s warm-up run first), keymint and the floor interleaved run by run:")
		w("")
		w("| connections | server | requests/s | p50 | p99 | server CPU per request |")
		w("|---:|---|---:|---:|---:|---:|")
		for _, conns := range []int{16, 64} {
			km, fl := r.WrkVerify[conns], r.WrkFloor[conns]
			rps := func(l loadResult) float64 { return l.PerSec }
			p50 := func(l loadResult) float64 { return ms(l.P50) }
			p99 := func(l loadResult) float64 { return ms(l.P99) }
			w("| %d | keymint | %s | %s | %s | %s |", conns, pick(km, rps).format("", 0), pick(km, p50).format(" ms", 2), pick(km, p99).format(" ms", 2), pick(km, cpu).format(" µs", 1))
			w("| %d | floor | %s | %s | %s | %s |", conns, pick(fl, rps).format("", 0), pick(fl, p50).format(" ms", 2), pick(fl, p99).format(" ms", 2), pick(fl, cpu).format(" µs", 1))
			tput, lat := pick(km, rps).med/pick(fl, rps).med, pick(km, p99).med/pick(fl, p99).med
			w("| %d | **keymint / floor** | **%.2f** | %.2f | **%.2f** | %.2f |", conns, tput, pick(km, p50).med/pick(fl, p50).med, lat, pick(km, cpu).med/pick(fl, cpu).med)
			targets = append(targets,
				fmt.Sprintf("- %d connections, wrk: throughput %.2f of the floor (target ≥ 0.85: %s); p99 %.2f× the floor's (target ≤ 1.3: %s)",
					conns, tput, verdict(tput >= 0.85), lat, verdict(lat <= 1.3)))
		}
		w("")
	}
	writeTargets(w, targets)
	if len(r.MetricsOn) > 0 {
		w("## Verify with metrics on and off")
		w("")
		w("The same load against `keymint serve` with `--metrics-addr` (Prometheus: a counter by app and code per verify, a duration histogram per request, cache and store instrumentation) and without, the two servers alternating on the same database run by run.")
		w("")
		w("Throughput on two shared cores moves by more than the cost being measured from one run to the next; the server's own CPU time per request (the last column) is the steadier measure of what metrics add.")
		w("")
		w("| connections | metrics | requests/s | p99 | server CPU per request |")
		w("|---:|---|---:|---:|---:|")
		rps := func(l loadResult) float64 { return l.PerSec }
		p99 := func(l loadResult) float64 { return ms(l.P99) }
		var targets []string
		for _, conns := range []int{16, 64} {
			off, on := r.MetricsOff[conns], r.MetricsOn[conns]
			w("| %d | off | %s | %s | %s |", conns, pick(off, rps).format("", 0), pick(off, p99).format(" ms", 2), pick(off, cpu).format(" µs", 1))
			w("| %d | on | %s | %s | %s |", conns, pick(on, rps).format("", 0), pick(on, p99).format(" ms", 2), pick(on, cpu).format(" µs", 1))
			cost := 1 - pick(on, rps).med/pick(off, rps).med
			cpuCost := pick(on, cpu).med/pick(off, cpu).med - 1
			w("| %d | **cost of metrics** | **%.1f%%** | %.2f× | **%+.1f%%** |", conns, 100*cost, pick(on, p99).med/pick(off, p99).med, 100*cpuCost)
			targets = append(targets, fmt.Sprintf("- %d connections: metrics cost %.1f%% of throughput (target ≤ 5%%: %s); %+.1f%% server CPU per request", conns, 100*cost, verdict(cost <= 0.05), 100*cpuCost))
		}
		w("")
		writeTargets(w, targets)
	}
	if len(r.PG) > 0 {
		r.postgresMarkdown(w)
	}
	w("## Create and rotate")
	w("")
	w("| operation | keys | concurrency | keys/s |")
	w("|---|---:|---:|---:|")
	w("| create through the API (HTTP, JSON, auth, idempotency key) | %d | %d | %.0f |", r.CreateAPI.Count, r.CreateAPI.Workers, r.CreateAPI.perSec())
	w("| create through the service directly (validation, key generation, hashing, one SQLite transaction) | %d | %d | %.0f |", r.CreateStore.Count, r.CreateStore.Workers, r.CreateStore.perSec())
	w("| rotate through the API | %d | %d | %.0f |", r.RotateAPI.Count, r.RotateAPI.Workers, r.RotateAPI.perSec())
	if r.CreatePG.Count > 0 {
		w("| create through the API, PostgreSQL (fsync on) | %d | %d | %.0f |", r.CreatePG.Count, r.CreatePG.Workers, r.CreatePG.perSec())
	}
	w("")
	if r.CreateStore.perSec() > 0 {
		w("The HTTP layer's share of a create: %.0f%% (1 − API rate / service rate). Creates are bound by SQLite's single writer: each is one committed transaction.",
			100*(1-r.CreateAPI.perSec()/r.CreateStore.perSec()))
		w("")
	}
	if r.TF != nil {
		r.terraformMarkdown(w)
	}
	w("## Memory")
	w("")
	w("| state | resident memory |")
	w("|---|---:|")
	w("| idle, %d keys stored | %s |", r.IdleKeys, mib(r.IdleRSS))
	w("| peak during the verify load (VmHWM) | %s |", mib(r.PeakRSS))
	w("| rate-limit counts of 10000 distinct keys (Go heap) | %s |", mib(r.LimiterHeap))
	w("| the same once swept, idle (Go heap) | %s |", mib(r.LimiterHeapSwept))
	w("")
	w("## Bounded growth")
	w("")
	w("| SQLite write-ahead log | size |")
	w("|---|---:|")
	w("| after %d creates through the API (16 connections) | %s |", r.CreateAPI.Count, mib(r.WALAfterAPICreates))
	w("| after %d creates through the service (16 workers) | %s |", r.CreateStore.Count, mib(r.WALAfterServiceCreates))
	w("| after the minutely maintenance (checkpoint, truncate) | %s |", mib(r.WALAfterMaintain))
	w("")
	w("The WAL is cut back to 8 MiB after every checkpoint (`journal_size_limit`) and truncated by the maintenance that `keymint serve` runs every minute, which also sweeps idempotency records past their retention and idle rate-limit counts.")
	w("")
	scaleMarkdown(w, scaleFile)
	w("## Go micro-benchmarks (hot path)")
	w("")
	w("```")
	for _, m := range r.Micro {
		w("%s", m)
	}
	w("```")
	w("")
	w("## Where verify's time goes")
	w("")
	w("CPU profile of the `keymint serve` process (through `--debug-addr`) during the first verify run at 64 connections, flat time grouped by where it is spent:")
	w("")
	writeShares(w, "share of CPU", r.Profile)
	if len(r.ProfileTop) > 0 {
		w("The profile's top lines (`go tool pprof -top -cum`):")
		w("")
		w("```")
		for _, l := range r.ProfileTop {
			w("%s", l)
		}
		w("```")
		w("")
	}
	w("A verify looks up two secrets by SHA-256 hash (the credential, then the key). `keymint serve` keeps them in its verify cache (`internal/store.VerifyCache`), filled with every secret at start when they all fit, so neither a key's first verify nor one of an unknown key reads the database: every write that can change a verdict drops what it changed before it answers (on PostgreSQL, from every replica), and a create or a rotation names its new secret's hash, so a key is found the moment its create returns. Nothing is written per request: `last_used_at` is batched each second, and the access log line goes to a buffer flushed every 100 ms (`internal/logbuf`), not to a `write(2)` of its own. The verdict is encoded by a hand-written appender (no reflection, no allocation), and the usual request body (`key`, `scopes`, `resource` as plain ASCII strings) is parsed by a hand-written reader, anything else by the strict decoder. A request whose token authenticates never touches the auth-failure throttle. What remains is HTTP (the read and write every server pays, and the floor too; the listener's read, write and idle deadlines re-arm timers the floor does not have, about 0.8 µs a request), authentication, the two cache lookups, the rate-limit window and the allocations they make; `make bench BENCH_FLAGS=\"-profile cpu.pprof\"` keeps the profile for `go tool pprof`.")
	return b.String()
}

func (r *report) postgresMarkdown(w func(string, ...any)) {
	rps := func(l loadResult) float64 { return l.PerSec }
	p50 := func(l loadResult) float64 { return ms(l.P50) }
	p99 := func(l loadResult) float64 { return ms(l.P99) }
	w("## PostgreSQL: two replicas")
	w("")
	w("Two `keymint serve` processes on one throwaway PostgreSQL 15 (`fsync` on, same machine), %d keys across 10 apps with no rate limit, the same request mix and credential, the connections split evenly between the replicas; the floor is the one measured above in this run.", r.CreatePG.Count)
	w("")
	// replicaTable writes one generator's figures against its own floor and returns its targets.
	replicaTable := func(generator string, runs, floor map[int][]loadResult) []string {
		w("| connections | requests/s | p50 | p99 | / floor requests/s | / floor p99 |")
		w("|---:|---:|---:|---:|---:|---:|")
		var targets []string
		for _, conns := range []int{16, 64} {
			pg, fl := runs[conns], floor[conns]
			tput, lat := pick(pg, rps).med/pick(fl, rps).med, pick(pg, p99).med/pick(fl, p99).med
			w("| %d | %s | %s | %s | **%.2f** | **%.2f** |", conns, pick(pg, rps).format("", 0), pick(pg, p50).format(" ms", 2), pick(pg, p99).format(" ms", 2), tput, lat)
			targets = append(targets, fmt.Sprintf("- %d connections, %s: %.2f of the floor's throughput (target ≥ 0.7: %s); p99 %.2f× the floor's (target ≤ 1.5: %s)", conns, generator, tput, verdict(tput >= 0.7), lat, verdict(lat <= 1.5)))
		}
		return targets
	}
	targets := replicaTable("Go generator", r.PG, r.Floor)
	if len(r.WrkPG[16]) > 0 {
		w("")
		w("By `wrk`: two generators of half the connections each, one per replica, at once (requests/s summed, p99 the worse of the two), against the floor as wrk measured it above:")
		w("")
		targets = append(targets, replicaTable("wrk", r.WrkPG, r.WrkFloor)...)
	}
	if len(r.ColdAfterSeed) > 0 || len(r.ColdAfterStart) > 0 {
		w("")
		w("**The first seconds.** Verify at 16 connections over both replicas with no warm-up, every request of the first %s counted: right after seeding the keys through replica 0, and right after replica 1 is replaced by a new process (it gets traffic as soon as its `/readyz` answers 200).", coldWindow)
		w("")
		w("| moment | runs | requests | p99 | slowest request (each run's: when in the window it was sent, and where) |")
		w("|---|---:|---:|---:|---:|")
		// The last two rows are what the same load's slowest request is once
		// nothing is cold, and the floor's: the scheduling noise of two cores
		// shared by the generator, the servers and PostgreSQL.
		for _, row := range []struct {
			name   string
			rs     []loadResult
			target bool
		}{{"right after seeding", r.ColdAfterSeed, true}, {"right after a replica starts", r.ColdAfterStart, true},
			{"for comparison: the same 16 connections warm (the runs above, after their 1 s warm-up)", r.PG[16], false},
			{"for comparison: the floor, warm, 16 connections (one process, no database)", r.Floor[16], false},
			{"for comparison: the floor's first seconds (a fresh process, new connections, no warm-up)", r.ColdFloor, false}} {
			if len(row.rs) == 0 {
				continue
			}
			worst := pick(row.rs, func(l loadResult) float64 { return ms(l.Max) }).hi
			var at []string
			for _, l := range row.rs {
				where := ""
				if row.target {
					where = fmt.Sprintf(", to replica %d", l.MaxServer)
				}
				if l.DB != "" {
					where += "; PostgreSQL meanwhile: " + l.DB
				}
				at = append(at, fmt.Sprintf("%.1f ms at %.2f s%s", ms(l.Max), l.MaxAt.Seconds(), where))
			}
			w("| %s | %d | %s | %s | %.1f ms (%s) |", row.name, len(row.rs), pick(row.rs, func(l loadResult) float64 { return float64(l.Requests) }).format("", 0),
				pick(row.rs, p99).format(" ms", 2), worst, strings.Join(at, "; "))
			if row.target {
				targets = append(targets, fmt.Sprintf("- %s: the slowest request of the first %s took %.1f ms (target ≤ 50 ms: %s)", row.name, coldWindow, worst, verdict(worst <= 50)))
			}
		}
	}
	hp50, hp99 := quantile(r.RevokeHealthy, 0.5), quantile(r.RevokeHealthy, 0.99)
	targets = append(targets, fmt.Sprintf("- a revoke answers in p99 %.1f ms with both replicas healthy (target < 50 ms: %s)", ms(hp99), verdict(hp99 < 50*time.Millisecond)))
	w("")
	w("| a revoke through replica 0, until it answers | revokes | p50 | p99 | max |")
	w("|---|---:|---:|---:|---:|")
	w("| both replicas healthy (each waits for the other's ack) | %d | %.1f ms | %.1f ms | %.1f ms |", len(r.RevokeHealthy), ms(hp50), ms(hp99), ms(quantile(r.RevokeHealthy, 1)))
	w("| replica 1 paused (SIGSTOP) holding its lease: the worst case | %d | %.0f ms | | %.0f ms |", len(r.RevokePaused), ms(quantile(r.RevokePaused, 0.5)), ms(quantile(r.RevokePaused, 1)))
	w("")
	w("A paused replica holds a revoke until its lease (`--replica-lease`, 2 s) runs out; see docs/replicas.md.")
	w("")
	w("**Verify under churn.** Verify at 64 connections with and without %d writes per second (rotations, disables and revokes of other keys), alternating run by run. A write drops only what it changed from each cache.", churnRate)
	w("")
	w("| backend | without churn | with churn | change |")
	w("|---|---:|---:|---:|")
	for _, row := range []struct {
		name    string
		off, on []loadResult
	}{{"SQLite, one server", r.ChurnSQLiteOff, r.ChurnSQLiteOn}, {"PostgreSQL, two replicas", r.ChurnPGOff, r.ChurnPGOn}} {
		if len(row.off) == 0 {
			continue
		}
		change := pick(row.on, rps).med/pick(row.off, rps).med - 1
		w("| %s | %s | %s | %+.1f%% |", row.name, pick(row.off, rps).format("", 0), pick(row.on, rps).format("", 0), 100*change)
		targets = append(targets, fmt.Sprintf("- %s: verify under churn within %.1f%% of without (target within 10%%: %s)", row.name, 100*change, verdict(change >= -0.10)))
	}
	w("")
	writeTargets(w, targets)
}

// writeTargets lists the targets a section was measured against.
// writeShares writes a profile's shares as a table, largest first.
func writeShares(w func(string, ...any), column string, shares []profileShare) {
	w("| where | %s |", column)
	w("|---|---:|")
	for _, s := range shares {
		w("| %s | %.1f%% |", s.Name, s.Pct)
	}
	w("")
}

func writeTargets(w func(string, ...any), targets []string) {
	w("Targets:")
	w("")
	for _, t := range targets {
		w("%s", t)
	}
	w("")
}

// tfPhases are the three commands a Terraform run times, as the report names them.
var tfPhases = []struct {
	name string
	get  func(tfTimes) tfPhase
}{
	{"apply", func(t tfTimes) tfPhase { return t.Apply }},
	{"plan", func(t tfTimes) tfPhase { return t.Plan }},
	{"destroy", func(t tfTimes) tfPhase { return t.Destroy }},
}

func (r *report) terraformMarkdown(w func(string, ...any)) {
	w("## Terraform cost per key")
	w("")
	w("`terraform apply`, a no-change `plan` (refresh included) and `destroy` of %d resources, `-parallelism=%d`, providers from a local filesystem mirror. The floor is `time_static` (hashicorp/time, an external provider doing no I/O) run as keymint's provider runs, with the plugin SDK's trace logs off (`TF_LOG_SDK*=off`): left on, they are a JSON line per attribute per resource that Terraform discards, a third of a provider's CPU. The floor runs at Go's default GOGC; keymint's provider sets GOGC=400 itself, which counts as part of its own cost. `time_static` as it runs by default and `terraform_data` (no plugin at all) are for reference. The keymint configuration also holds its one `keymint_auth_app`.",
		r.TFResources, r.TFParallelism)
	w("")
	w("| phase | keymint_api_key | floor: time_static, SDK logs off | time_static, SDK logs on | terraform_data | keymint / floor | keymint / time_static, logs on |")
	w("|---|---:|---:|---:|---:|---:|---:|")
	var targets []string
	wall := func(kind string, get func(tfTimes) tfPhase) stat {
		return pick(r.TF[kind], func(t tfTimes) float64 { return get(t).Wall.Seconds() })
	}
	for _, ph := range tfPhases {
		k, q, f, d := wall("keymint_api_key", ph.get), wall(quietTime, ph.get), wall("time_static", ph.get), wall("terraform_data", ph.get)
		ratio := k.med / q.med
		w("| %s | %s | %s | %s | %s | **%.2f** | %.2f |", ph.name, k.format(" s", 2), q.format(" s", 2), f.format(" s", 2), d.format(" s", 2), ratio, k.med/f.med)
		targets = append(targets, fmt.Sprintf("- %s: %.2f× the floor (target ≤ 1.3: %s)", ph.name, ratio, verdict(ratio <= 1.3)))
	}
	w("")
	if p := r.TFProfile; p != nil {
		w("### Where the time goes")
		w("")
		w("CPU time, which on %d cores bounds the wall time: terraform and its providers together (terraform waits for its providers, so its CPU time includes theirs), keymint's provider alone (from its own CPU profiles, `KEYMINT_PROVIDER_CPUPROFILE`), and the server. keymint's figures are from one extra, profiled run; the others are medians of the runs above.", r.Cores)
		w("")
		w("| phase | keymint run: terraform + providers | keymint's provider | terraform itself (the rest) | keymint server | floor run: terraform + time | terraform_data run | provider's budget at 1.5× the floor's CPU |")
		w("|---|---:|---:|---:|---:|---:|---:|---:|")
		cpu := func(kind string, get func(tfTimes) tfPhase) float64 {
			return pick(r.TF[kind], func(t tfTimes) float64 { return get(t).CPU.Seconds() }).med
		}
		var own []string
		for _, ph := range tfPhases {
			run, prov := ph.get(p.Run), ph.get(p.Provider).CPU
			floor := cpu(quietTime, ph.get)
			budget := "none"
			if b := 1.5*floor - (run.CPU - prov + run.Server).Seconds(); b > 0 {
				budget = fmt.Sprintf("%.2f s", b)
			}
			w("| %s | %.2f s | %.2f s | %.2f s | %.2f s | %.2f s | %.2f s | %s |", ph.name, run.CPU.Seconds(), prov.Seconds(),
				(run.CPU - prov).Seconds(), run.Server.Seconds(), floor, cpu("terraform_data", ph.get), budget)
			own = append(own, fmt.Sprintf("%.2f× on %s", (run.CPU-prov).Seconds()/floor, ph.name))
		}
		w("")
		w("Terraform's own CPU time in the keymint run, against the whole floor run's (terraform and time_static together): %s. What the provider costs comes on top: the last column is what a provider may spend for the run's CPU to stay within 1.5× the floor's, once terraform and the server have taken theirs (\"none\": the target cannot be met by the provider alone).", strings.Join(own, ", "))
		w("")
		w("keymint's provider, all three phases, by where its CPU time goes (the Go runtime's frames are folded into their callers, so allocation counts where it is asked for):")
		w("")
		writeShares(w, "share of the provider's CPU", p.Shares)
	}
	w("%s", tfExplanation)
	w("")
	targets = append(targets, r.terraformScaleMarkdown(w)...)
	writeTargets(w, targets)
}

// terraformScaleMarkdown writes how Terraform's cost grows with the keys in
// one configuration, and the API calls the provider makes; it returns the
// targets.
func (r *report) terraformScaleMarkdown(w func(string, ...any)) []string {
	counts := make([]int, 0, len(r.TFScale))
	for n := range r.TFScale {
		counts = append(counts, n)
	}
	slices.Sort(counts)
	if len(counts) == 0 {
		return nil
	}
	w("### Growth with the number of keys")
	w("")
	w("One run each of `apply`, a no-change `plan` and `destroy` of N `keymint_api_key` (and the app), and of N `%s` for the floor, `-parallelism=%d`. The API calls are the server's own request counts (`--metrics-addr`), by route; `GET /v1/whoami` is the provider checking its credential once per provider process (Terraform starts several per command), not per resource.", quietTime, r.TFParallelism)
	w("")
	w("| keys | phase | keymint wall | per key | floor wall | per key | API calls | calls per resource |")
	w("|---:|---|---:|---:|---:|---:|---|---:|")
	var targets []string
	perResource := func(calls map[string]int, n int) float64 {
		total := 0
		for route, c := range calls {
			if route != "GET /v1/whoami" {
				total += c
			}
		}
		return float64(total) / float64(n+1) // the keys and their app
	}
	for _, n := range counts {
		for _, ph := range tfPhases {
			p, f := ph.get(r.TFScale[n]), ph.get(r.TFScaleFloor[n])
			routes := make([]string, 0, len(p.Calls))
			for route, c := range p.Calls {
				routes = append(routes, fmt.Sprintf("%s: %d", route, c))
			}
			slices.Sort(routes)
			per := perResource(p.Calls, n)
			w("| %d | %s | %.2f s | %.1f ms | %.2f s | %.1f ms | %s | %.2f |", n, ph.name, p.Wall.Seconds(), ms(p.Wall)/float64(n),
				f.Wall.Seconds(), ms(f.Wall)/float64(n), strings.Join(routes, "; "), per)
			if n == counts[len(counts)-1] {
				limit := 1.0
				if ph.name == "destroy" {
					limit = 2 // terraform destroy refreshes each resource, then deletes it
				}
				targets = append(targets, fmt.Sprintf("- %s of %d keys: %.2f API calls per resource (target ≤ %.0f, one per operation: %s)", ph.name, n, per, limit, verdict(per <= limit+1e-9)))
			}
		}
	}
	w("")
	if lo, hi := counts[0], counts[len(counts)-1]; lo != hi {
		for _, ph := range tfPhases {
			growth := func(m map[int]tfTimes) float64 {
				per := func(n int) float64 { return ph.get(m[n]).Wall.Seconds() / float64(n) }
				return per(hi) / per(lo)
			}
			g, fg := growth(r.TFScale), growth(r.TFScaleFloor)
			targets = append(targets, fmt.Sprintf("- %s: the per-key cost at %d keys is %.2f× that at %d (target ≤ 1.2: %s; the floor's grows %.2f× on the same machine)", ph.name, hi, g, lo, verdict(g <= 1.2), fg))
		}
	}
	w("A no-change `plan` refreshes each key: one `GET /v1/keys/{id}` per key (and one for the app), which is what refresh costs; `apply` creates each key with one `POST`; `destroy` refreshes each key (`GET`) and then revokes it (`DELETE`), as Terraform runs it.")
	w("")
	return targets
}

// tfExplanation says what the figures above show; keep it true to them.
const tfExplanation = `Both providers pay the plugin protocol and the plugin framework's per-attribute work; keymint_api_key has 19 attributes against time_static's 10, and the framework's cost grows faster than the attribute count: at every plan it visits each attribute, reads it from the configuration, plan and state by path, and writes it back into the whole plan, and each path step rebuilds the schema's attribute map. Terraform's own work grows with the size of each resource's state too: it writes the whole state file after every resource it creates or destroys. keymint adds an HTTP call per key on refresh and per change; the server's share is small. What keymint's own code controls is done: the provider reads and writes plans and states without the framework's struct reflection (which compiled a regexp per field on every call), skips re-writing an unchanged state on refresh, and runs its garbage collector at GOGC=400 (a quarter of its CPU at the default).`

// scaleFile is what make bench-scale writes; the report embeds it.
const scaleFile = "docs/bench/scale.md"

// scaleMarkdown embeds make bench-scale's section (its own run, with its
// date), its plot linked from the report's directory; or says how to make it.
func scaleMarkdown(w func(string, ...any), path string) {
	b, err := os.ReadFile(path)
	if err != nil {
		w("## Scale")
		w("")
		w("Not measured yet: run `make bench-scale` (verify, memory, start-up and list-keys at 10k, 100k and 1M keys; it writes %s and %s, which this report then includes).", path, strings.TrimSuffix(path, ".md")+".svg")
		w("")
		return
	}
	text := string(b)
	first, rest, _ := strings.Cut(text, "\n")
	produced := strings.TrimSuffix(strings.TrimPrefix(first, scaleStamp), " -->")
	if !strings.HasPrefix(first, scaleStamp) {
		produced, rest = "at an unknown date", text
	}
	// Links in the section are relative to its own directory.
	dir := filepath.ToSlash(filepath.Dir(path))
	rest = strings.ReplaceAll(rest, "](scale.svg)", "]("+dir+"/scale.svg)")
	head, body, _ := strings.Cut(rest, "\n")
	w("%s", head)
	w("")
	w("_From %s, produced %s by `make bench-scale`, a run of its own (not this one): its figures are not comparable with the rest of this report's. Plot: [%s/scale.svg](%s/scale.svg)._", path, produced, dir, dir)
	w("%s", strings.TrimRight(body, "\n"))
	w("")
}
