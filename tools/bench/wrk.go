package main

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"
)

// wrk is the independent load generator: Debian's wrk (C, event loop), driven
// by a Lua script that posts the same prepared verify requests as the Go
// generator, drawn at random.
var wrkBin = "wrk"

// wrkScript writes the Lua script for token and reqs into dir.
func wrkScript(dir, token string, reqs []request) (string, error) {
	var b strings.Builder
	b.WriteString("local bodies = {\n")
	for _, q := range reqs {
		if bytes.Contains(q.body, []byte("]]")) {
			return "", fmt.Errorf("a request body holds ]]: it cannot be a Lua long string")
		}
		fmt.Fprintf(&b, "[[%s]],\n", q.body)
	}
	fmt.Fprintf(&b, `}
local headers = {["Authorization"] = "Bearer %s", ["Content-Type"] = "application/json"}
local n = #bodies
init = function(args)
  -- each thread its own sequence: a table's address differs per thread
  math.randomseed(os.time() + tonumber(string.match(tostring({}), "0x(%%x+)") or "0", 16) %% 1000003)
end
request = function()
  return wrk.format("POST", "/v1/verify", headers, bodies[math.random(n)])
end
`, token)
	path := filepath.Join(dir, "verify.lua")
	return path, os.WriteFile(path, []byte(b.String()), 0o600)
}

var (
	wrkRate    = regexp.MustCompile(`Requests/sec:\s+([0-9.]+)`)
	wrkTotal   = regexp.MustCompile(`(\d+) requests in`)
	wrkPct     = regexp.MustCompile(`(?m)^\s+(50|99)(?:\.000)?%\s+([0-9.]+)(us|ms|s)\s*$`)
	wrkNon2xx  = regexp.MustCompile(`Non-2xx or 3xx responses: (\d+)`)
	wrkSockets = regexp.MustCompile(`Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)`)
)

// runWrk runs wrk against url for d with conns connections on threads
// threads, after a one-second warm-up run whose figures are dropped.
func runWrk(url, script string, conns, threads int, d time.Duration) (loadResult, error) {
	args := func(d time.Duration) []string {
		return []string{"-t", strconv.Itoa(threads), "-c", strconv.Itoa(conns), "-d", fmt.Sprintf("%ds", int(d.Seconds())),
			"--latency", "--timeout", "2s", "-s", script, url}
	}
	out, err := exec.Command(wrkBin, args(time.Second)...).CombinedOutput()
	if err != nil {
		return loadResult{}, fmt.Errorf("wrk: %w: %s", err, out)
	}
	warm, err := parseWrk(string(out))
	if err != nil {
		return loadResult{}, err
	}
	if out, err = exec.Command(wrkBin, args(d)...).CombinedOutput(); err != nil {
		return loadResult{}, fmt.Errorf("wrk: %w: %s", err, out)
	}
	r, err := parseWrk(string(out))
	r.Answered = warm.Requests + r.Requests
	if err == nil && (r.Errors > 0 || r.P99 > time.Second) {
		// An outlier run: wrk's own report (its distribution, its socket
		// errors) goes to the bench's log, to tell a stall from a failure.
		logf("wrk against %s: %d errors, p99 %s:\n%s", url, r.Errors, r.P99, out)
	}
	return r, err
}

func parseWrk(out string) (loadResult, error) {
	var r loadResult
	m := wrkRate.FindStringSubmatch(out)
	t := wrkTotal.FindStringSubmatch(out)
	if m == nil || t == nil {
		return r, fmt.Errorf("wrk printed no rate: %s", out)
	}
	r.PerSec, _ = strconv.ParseFloat(m[1], 64)
	r.Requests, _ = strconv.Atoi(t[1])
	for _, p := range wrkPct.FindAllStringSubmatch(out, -1) {
		v, _ := strconv.ParseFloat(p[2], 64)
		unit := map[string]time.Duration{"us": time.Microsecond, "ms": time.Millisecond, "s": time.Second}[p[3]]
		d := time.Duration(v * float64(unit))
		if p[1] == "50" {
			r.P50 = d
		} else {
			r.P99 = d
		}
	}
	if r.P50 == 0 || r.P99 == 0 {
		return r, fmt.Errorf("wrk printed no latency distribution: %s", out)
	}
	if m := wrkNon2xx.FindStringSubmatch(out); m != nil {
		n, _ := strconv.Atoi(m[1])
		r.Errors += n
	}
	if m := wrkSockets.FindStringSubmatch(out); m != nil {
		for _, s := range m[1:] {
			n, _ := strconv.Atoi(s)
			r.Errors += n
		}
	}
	return r, nil
}

// runWrkSplit runs one wrk per url at once, conns/len(urls) connections
// each on one thread, and adds them up: the throughput is the sum, the
// latencies the worst of the generators'.
func runWrkSplit(urls []string, script string, conns int, d time.Duration) (loadResult, error) {
	results := make([]loadResult, len(urls))
	errs := make([]error, len(urls))
	var wg sync.WaitGroup
	for i, u := range urls {
		wg.Go(func() { results[i], errs[i] = runWrk(u, script, conns/len(urls), 1, d) })
	}
	wg.Wait()
	var sum loadResult
	for i, r := range results {
		if errs[i] != nil {
			return sum, errs[i]
		}
		sum.PerSec += r.PerSec
		sum.Requests += r.Requests
		sum.Errors += r.Errors
		sum.P50, sum.P99 = max(sum.P50, r.P50), max(sum.P99, r.P99)
	}
	return sum, nil
}
