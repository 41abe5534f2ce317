package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/keymint/terraform-provider-keymint/internal/provider"
	"github.com/keymint/terraform-provider-keymint/internal/tfmirror"
)

// tfPhase is one Terraform command: its wall time, the CPU time of terraform
// and its providers, and (keymint only) the server's CPU time meanwhile and
// the API calls the provider made, by route.
type tfPhase struct {
	Wall, CPU, Server time.Duration
	Calls             map[string]int
}

// tfTimes is one run: apply, a no-change plan (with refresh) and destroy.
type tfTimes struct{ Apply, Plan, Destroy tfPhase }

// tfProfile is one more keymint run with the provider's CPU profiled
// (KEYMINT_PROVIDER_CPUPROFILE): where its time goes.
type tfProfile struct {
	Run      tfTimes
	Provider tfTimes // CPU only: the provider's own, from its profiles
	Shares   []profileShare
}

const providerVersion = "0.1.0"

var tfConfigs = map[string]string{
	"keymint_api_key": `terraform {
  required_providers {
    keymint = { source = "keymint/keymint", version = "` + providerVersion + `" }
  }
}
provider "keymint" {}
resource "keymint_auth_app" "bench" {
  slug       = "bench"
  name       = "bench"
  scopes     = ["read:data"]
  key_prefix = "bench"
}
resource "keymint_api_key" "k" {
  count  = %d
  app    = keymint_auth_app.bench.slug
  name   = "key ${count.index}"
  scopes = ["read:data"]
}
`,
	"time_static": `terraform {
  required_providers {
    time = { source = "hashicorp/time", version = "` + tfmirror.TimeVersion + `" }
  }
}
resource "time_static" "t" {
  count = %d
}
`,
	"terraform_data": `resource "terraform_data" "d" {
  count = %d
  input = count.index
}
`,
}

// quietTime is time_static with the plugin SDK's trace logs off, as keymint's
// provider runs by default: the like-for-like floor.
const quietTime = "time_static (SDK logs off)"

// tfKinds is the report's column order: keymint, its floors, the no-plugin reference.
var tfKinds = []string{"keymint_api_key", "time_static", quietTime, "terraform_data"}

func benchTerraform(ctx context.Context, work string, r *report) error {
	abs, err := filepath.Abs(*providerBin)
	if err != nil {
		return err
	}
	rc, err := tfmirror.Setup(".tfmirror", os.Stderr, tfmirror.Provider{Source: provider.Address, Version: providerVersion, Binary: abs})
	if err != nil {
		return err
	}
	r.TFResources, r.TFParallelism = *tfResources, *parallelism
	r.TF = map[string][]tfTimes{}
	for run := range *runs {
		for _, kind := range tfKinds {
			logf("terraform: %d × %s, run %d/%d", *tfResources, kind, run+1, *runs)
			t, err := tfRun(work, rc, kind, "", *tfResources)
			if err != nil {
				return fmt.Errorf("%s: %w", kind, err)
			}
			r.TF[kind] = append(r.TF[kind], t)
		}
	}
	logf("terraform: %d × keymint_api_key, profiled", *tfResources)
	profiles, err := os.MkdirTemp(work, "provider-profiles-")
	if err != nil {
		return err
	}
	p := &tfProfile{}
	if p.Run, err = tfRun(work, rc, "keymint_api_key", profiles, *tfResources); err != nil {
		return fmt.Errorf("profiled run: %w", err)
	}
	for _, ph := range []struct {
		name string
		cpu  *time.Duration
	}{{"apply", &p.Provider.Apply.CPU}, {"plan", &p.Provider.Plan.CPU}, {"destroy", &p.Provider.Destroy.CPU}} {
		files, _ := filepath.Glob(filepath.Join(profiles, ph.name, "cpu-*.pprof"))
		if *ph.cpu, err = profileTotal(files); err != nil {
			return fmt.Errorf("provider profiles of %s: %w", ph.name, err)
		}
	}
	all, _ := filepath.Glob(filepath.Join(profiles, "*", "cpu-*.pprof"))
	if p.Shares, err = providerShares(all); err != nil {
		return err
	}
	r.TFProfile = p
	r.TFScale, r.TFScaleFloor = map[int]tfTimes{}, map[int]tfTimes{}
	for _, n := range tfScaleCounts() {
		logf("terraform: %d × keymint_api_key and %d × %s, one run each", n, n, quietTime)
		t, err := tfRun(work, rc, "keymint_api_key", "", n)
		if err != nil {
			return fmt.Errorf("%d keys: %w", n, err)
		}
		r.TFScale[n] = t
		if r.TFScaleFloor[n], err = tfRun(work, rc, quietTime, "", n); err != nil {
			return fmt.Errorf("%d × %s: %w", n, quietTime, err)
		}
	}
	return nil
}

// tfScaleCounts are -tf-scale's key counts.
func tfScaleCounts() []int {
	var out []int
	for _, f := range strings.Split(*tfScale, ",") {
		if n, err := strconv.Atoi(strings.TrimSpace(f)); err == nil && n > 0 {
			out = append(out, n)
		}
	}
	return out
}

// apiCalls reads the server's request counts by route from its metrics.
func apiCalls(metricsURL string) (map[string]int, error) {
	res, err := http.Get(metricsURL)
	if err != nil {
		return nil, err
	}
	defer res.Body.Close()
	calls := map[string]int{}
	sc := bufio.NewScanner(res.Body)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, "keymint_http_request_duration_seconds_count{") {
			continue
		}
		_, rest, _ := strings.Cut(line, `route="`)
		route, _, _ := strings.Cut(rest, `"`)
		f := strings.Fields(line)
		n, _ := strconv.ParseFloat(f[len(f)-1], 64)
		calls[route] += int(n)
	}
	return calls, sc.Err()
}

// callsBetween is after's counts minus before's, without routes that did not move.
func callsBetween(before, after map[string]int) map[string]int {
	out := map[string]int{}
	for route, n := range after {
		if d := n - before[route]; d > 0 {
			out[route] = d
		}
	}
	return out
}

// providerBuckets groups the provider's CPU time by where it is spent. The
// profile is read with the runtime's frames hidden, so allocation counts
// where it is asked for; what is left (background GC, the scheduler) is
// reported apart.
var providerBuckets = []bucket{
	{"plugin framework: schema lookups (it rebuilds the attribute map at each path step)", []string{"resource/schema.schemaAttributes"}},
	{"plugin framework: the rest (defaults, plan modification, validation, value conversion)", []string{"terraform-plugin-framework"}},
	{"plugin protocol (tftypes value walks, msgpack, gRPC)", []string{"terraform-plugin-go", "google.golang.org/", "msgpack"}},
	{"plugin SDK logging (off, but the SDK still sets up its logger on every call)", []string{"terraform-plugin-log"}},
	{"TLS set-up per provider process (go-plugin's certificate)", []string{"crypto/"}},
	{"keymint's own code and its HTTP calls", []string{"keymint/", "net/", "encoding/json", "syscall"}},
}

const runtimeFrames = "^(runtime|internal/runtime|internal/bytealg|gcWriteBarrier|aeshash|memeqbody|memclr|memmove|indexbytebody|sync/atomic)"

func providerShares(files []string) ([]profileShare, error) {
	top, err := pprofTop([]string{"-hide=" + runtimeFrames}, files...)
	if err != nil {
		return nil, err
	}
	shares := bucketProfile(top, providerBuckets, "other")
	shown := 0.0
	for _, s := range shares {
		shown += s.Pct
	}
	shares = append(shares, profileShare{"Go runtime: background GC and the scheduler", 100 - shown})
	sortShares(shares)
	return shares, nil
}

// profileTotal is the CPU time sampled in the profiles.
func profileTotal(files []string) (time.Duration, error) {
	if len(files) == 0 {
		return 0, errors.New("the provider wrote no profile (KEYMINT_PROVIDER_CPUPROFILE)")
	}
	top, err := pprofTop(nil, files...)
	if err != nil {
		return 0, err
	}
	_, after, ok := strings.Cut(string(top), "Total samples = ")
	if !ok {
		return 0, fmt.Errorf("no total in pprof's output: %.200s", top)
	}
	total, _, _ := strings.Cut(after, " ")
	return time.ParseDuration(strings.Replace(total, "mins", "m", 1))
}

// tfRun applies, plans and destroys kind's configuration in a new directory.
// With profiles set, keymint's provider writes its CPU profiles there, one
// directory per phase.
func tfRun(work, rc, kind, profiles string, count int) (tfTimes, error) {
	var t tfTimes
	dir, err := os.MkdirTemp(work, "tf-")
	if err != nil {
		return t, err
	}
	config := tfConfigs[kind]
	env := []string{"TF_CLI_CONFIG_FILE=" + rc, "CHECKPOINT_DISABLE=1", "TF_IN_AUTOMATION=1"}
	if kind == quietTime {
		config = tfConfigs["time_static"]
		env = append(env, "TF_LOG_SDK=off", "TF_LOG_SDK_FRAMEWORK=off", "TF_LOG_SDK_PROTO=off")
	}
	if err := os.WriteFile(filepath.Join(dir, "main.tf"), []byte(fmt.Sprintf(config, count)), 0o644); err != nil {
		return t, err
	}
	var srv *proc
	var metricsURL string
	if kind == "keymint_api_key" {
		// A fresh server for each run, so no run inherits another's keys.
		metricsAddr, err := freeAddr()
		if err != nil {
			return t, err
		}
		metricsURL = "http://" + metricsAddr + "/metrics"
		if srv, err = startServer(dir, *keymintBin, []string{"KEYMINT_ROOT_TOKEN=" + benchRootToken}, "serve", "--db", "sqlite:"+filepath.Join(dir, "keymint.db"),
			"--metrics-addr", metricsAddr); err != nil {
			return t, err
		}
		defer srv.stop()
		env = append(env, "KEYMINT_ENDPOINT="+srv.url(), "KEYMINT_TOKEN="+benchRootToken)
	}
	tf := func(phase string, args ...string) (tfPhase, error) {
		var p tfPhase
		cmd := exec.Command("terraform", args...)
		cmd.Dir, cmd.Env = dir, append(os.Environ(), env...)
		if profiles != "" && phase != "" {
			if err := os.MkdirAll(filepath.Join(profiles, phase), 0o755); err != nil {
				return p, err
			}
			cmd.Env = append(cmd.Env, "KEYMINT_PROVIDER_CPUPROFILE="+filepath.Join(profiles, phase))
		}
		var server0 time.Duration
		var calls0 map[string]int
		if srv != nil {
			if server0, err = srv.cpu(); err != nil {
				return p, err
			}
			if calls0, err = apiCalls(metricsURL); err != nil {
				return p, err
			}
		}
		start := time.Now()
		out, err := cmd.CombinedOutput()
		if err != nil {
			return p, fmt.Errorf("terraform %s: %w\n%s", strings.Join(args, " "), err, out)
		}
		// terraform's CPU time includes its providers': it waits for them.
		p.Wall, p.CPU = time.Since(start), cmd.ProcessState.UserTime()+cmd.ProcessState.SystemTime()
		if srv != nil {
			server1, err := srv.cpu()
			if err != nil {
				return p, err
			}
			p.Server = server1 - server0
			calls1, err := apiCalls(metricsURL)
			if err != nil {
				return p, err
			}
			p.Calls = callsBetween(calls0, calls1)
		}
		return p, nil
	}
	par := fmt.Sprintf("-parallelism=%d", *parallelism)
	if _, err := tf("", "init", "-input=false"); err != nil {
		return t, err
	}
	if t.Apply, err = tf("apply", "apply", "-input=false", "-auto-approve", par); err != nil {
		return t, err
	}
	if t.Plan, err = tf("plan", "plan", "-input=false", "-detailed-exitcode", par); err != nil {
		return t, fmt.Errorf("the no-change plan was not empty or failed: %w", err)
	}
	if t.Destroy, err = tf("destroy", "destroy", "-input=false", "-auto-approve", par); err != nil {
		return t, err
	}
	return t, nil
}
