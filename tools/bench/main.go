// Command bench runs keymint's benchmarks and writes BENCHMARKS.md: verify
// throughput and latency against a bare net/http floor, create and rotate
// throughput, Terraform cost per key against hashicorp/time, memory, and the
// Go micro-benchmarks. Every load it sends goes to loopback, bounded in
// requests and time. Run it with `make bench`.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strings"
	"time"
)

var (
	keymintBin  = flag.String("keymint", "bin/keymint", "keymint binary")
	providerBin = flag.String("provider", "bin/terraform-provider-keymint", "provider binary")
	out         = flag.String("out", "BENCHMARKS.md", "report file")
	runs        = flag.Int("runs", 3, "runs of each measurement (the report gives the median and the spread)")
	duration    = flag.Duration("duration", 5*time.Second, "length of one verify load run")
	maxRequests = flag.Int("max-requests", 500000, "cap on requests in one verify load run")
	verifyKeys  = flag.Int("verify-keys", 10000, "keys stored for the verify load (across 10 apps)")
	memoryKeys  = flag.Int("memory-keys", 100000, "keys stored for the idle-memory figure")
	tfResources = flag.Int("tf-resources", 200, "resources per Terraform configuration")
	parallelism = flag.Int("parallelism", 10, "terraform -parallelism")
	tfScale     = flag.String("tf-scale", "100,1000", "key counts of the one-run Terraform growth measurement (per-key cost and API calls)")
	skipTF      = flag.Bool("skip-terraform", false, "skip the Terraform measurements")
	skipWrk     = flag.Bool("skip-wrk", false, "skip the measurements by wrk (Debian's wrk package)")
	profileOut  = flag.String("profile", "", "also keep the server's CPU profile at this path (for go tool pprof)")
	keepWork    = flag.Bool("keep-work", false, "keep the work directory (databases, every server's log) and say where it is")
	only        = flag.String("only", "", "run only these sections, comma-separated (verify, postgres, store, terraform, micro); the report then holds only them")
)

// section reports whether the named section runs (-only).
func section(name string) bool {
	return *only == "" || slices.Contains(strings.Split(*only, ","), name)
}

func main() {
	if len(os.Args) > 1 && os.Args[1] == "floor" {
		if err := floorCmd(context.Background(), os.Args[2:], os.Stderr); err != nil {
			fmt.Fprintln(os.Stderr, "bench floor:", err)
			os.Exit(1)
		}
		return
	}
	flag.Parse()
	if *scaleSizes != "" {
		if err := runScale(context.Background()); err != nil {
			fmt.Fprintln(os.Stderr, "bench -scale:", err)
			os.Exit(1)
		}
		return
	}
	if err := run(context.Background()); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

func logf(format string, args ...any) { fmt.Fprintf(os.Stderr, "bench: "+format+"\n", args...) }

func run(ctx context.Context) error {
	start := time.Now()
	r := &report{Cores: runtime.NumCPU(), Runs: *runs, Started: start.UTC(), GoVersion: runtime.Version(),
		Command: strings.TrimSpace("make bench " + strings.Join(os.Args[1:], " ")),
		Verify:  map[int][]loadResult{}, Floor: map[int][]loadResult{},
		MetricsOn: map[int][]loadResult{}, MetricsOff: map[int][]loadResult{},
		WrkVerify: map[int][]loadResult{}, WrkFloor: map[int][]loadResult{}, WrkPG: map[int][]loadResult{}}
	if !*skipWrk {
		if _, err := exec.LookPath(wrkBin); err != nil {
			return fmt.Errorf("wrk is not on PATH: install it (apt-get install wrk) or pass -skip-wrk")
		}
	}
	if out, err := exec.Command("terraform", "version").Output(); err == nil {
		r.Terraform = strings.SplitN(string(out), "\n", 2)[0]
	}
	work, err := os.MkdirTemp("", "keymint-bench")
	if err != nil {
		return err
	}
	if *keepWork {
		logf("keeping the work directory, with every server's log: %s", work)
	} else {
		defer os.RemoveAll(work)
	}

	if section("verify") {
		logf("verify: seeding %d keys through the API", *verifyKeys)
		if err := benchVerify(ctx, work, r); err != nil {
			return fmt.Errorf("verify: %w", err)
		}
	}
	if section("postgres") {
		logf("postgres: two replicas")
		if err := benchPostgres(ctx, work, r); err != nil {
			return fmt.Errorf("postgres: %w", err)
		}
	}
	if section("store") {
		logf("store: creating %d keys directly, then idle memory", *memoryKeys)
		if err := benchStoreAndMemory(ctx, work, r); err != nil {
			return fmt.Errorf("store/memory: %w", err)
		}
	}
	if !*skipTF && section("terraform") {
		if err := benchTerraform(ctx, work, r); err != nil {
			return fmt.Errorf("terraform: %w", err)
		}
	}
	if section("micro") {
		benchLimiterMemory(r)
		logf("go micro-benchmarks and the verify profile")
		if err := benchMicro(r); err != nil {
			return fmt.Errorf("micro-benchmarks: %w", err)
		}
	}
	r.Elapsed = time.Since(start).Round(time.Second)
	text := r.markdown()
	fmt.Print(text)
	return os.WriteFile(*out, []byte(text), 0o644)
}
