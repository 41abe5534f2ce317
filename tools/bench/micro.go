package main

import (
	"bufio"
	"bytes"
	"fmt"
	"os/exec"
	"strconv"
	"strings"
)

// benchMicro runs the Go micro-benchmarks of the hot path.
func benchMicro(r *report) error {
	out, err := exec.Command("go", "test", "-run", "^$", "-bench", ".", "-benchtime", "1s", "-benchmem", "-count", "1",
		"./internal/keyformat/", "./internal/wire/", "./internal/store/sqlite/", "./internal/service/", "./internal/api/",
		"./internal/logbuf/", "./internal/metrics/").CombinedOutput()
	if err != nil {
		return fmt.Errorf("%w\n%s", err, out)
	}
	for _, line := range strings.Split(string(out), "\n") {
		if strings.HasPrefix(line, "Benchmark") {
			r.Micro = append(r.Micro, strings.Join(strings.Fields(line), " "))
		}
	}
	return nil
}

// profileShares reads a CPU profile and groups its flat time by where it is spent.
func profileShares(path string) ([]profileShare, error) {
	top, err := pprofTop(nil, path)
	if err != nil {
		return nil, err
	}
	return bucketProfile(top, serverBuckets, "other (scheduler, sync, strings, time...)"), nil
}

// profileTopLines is pprof's cumulative listing of the n functions with the
// most time below them, header included.
func profileTopLines(path string, n int) ([]string, error) {
	out, err := exec.Command("go", "tool", "pprof", "-top", "-cum", fmt.Sprintf("-nodecount=%d", n), path).Output()
	if err != nil {
		return nil, err
	}
	var lines []string
	for _, l := range strings.Split(strings.TrimRight(string(out), "\n"), "\n") {
		if strings.HasPrefix(l, "File:") || strings.HasPrefix(l, "Build ID:") || strings.HasPrefix(l, "Time:") {
			continue
		}
		lines = append(lines, l)
	}
	return lines, nil
}

// pprofTop is go tool pprof's flat listing of every function in the profiles,
// with any extra options first.
func pprofTop(options []string, paths ...string) ([]byte, error) {
	args := append([]string{"tool", "pprof", "-top", "-nodecount=1000000", "-nodefraction=0", "-edgefraction=0"}, options...)
	return exec.Command("go", append(args, paths...)...).Output()
}

// A bucket is where CPU time is spent, named for the report, with what its
// functions' names contain.
type bucket struct {
	name    string
	matches []string
}

// serverBuckets groups the server's flat CPU time by where it is spent.
var serverBuckets = []bucket{
	{"system calls (network reads and writes, log lines, SQLite)", []string{"syscall"}},
	{"SQLite (modernc, pure Go)", []string{"modernc.org/"}},
	{"database/sql", []string{"database/sql."}},
	{"JSON encoding and decoding", []string{"encoding/json.", "go-json-experiment", "AppendJSON"}},
	{"logging (slog, the redacting handler)", []string{"log/slog.", "keyformat.redact", "keyformat.Redact", "logbuf."}},
	{"net/http and I/O", []string{"net/"}},
	{"keymint code", []string{"keymint/"}},
	{"hashing and checksums (sha256, crc32)", []string{"crypto/"}},
	{"memory allocation and GC", []string{"runtime."}},
}

// bucketProfile sums the flat percentages of pprof -top's lines by bucket
// (the first that matches, else other).
func bucketProfile(top []byte, buckets []bucket, other string) []profileShare {
	shares := map[string]float64{}
	sc := bufio.NewScanner(bytes.NewReader(top))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 6 || !strings.HasSuffix(f[1], "%") {
			continue
		}
		pct, err := strconv.ParseFloat(strings.TrimSuffix(f[1], "%"), 64)
		if err != nil {
			continue
		}
		fn := strings.Join(f[5:], " ")
		name := other
	match:
		for _, b := range buckets {
			for _, m := range b.matches {
				if strings.Contains(fn, m) {
					name = b.name
					break match
				}
			}
		}
		shares[name] += pct
	}
	var out []profileShare
	for name, pct := range shares {
		out = append(out, profileShare{name, pct})
	}
	sortShares(out)
	return out
}
