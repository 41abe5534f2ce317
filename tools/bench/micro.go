package main

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
)

// benchMicro runs the Go micro-benchmarks of the hot path, and profiles the
// in-process verify benchmark to say where its time goes.
func benchMicro(r *report) error {
	out, err := exec.Command("go", "test", "-run", "^$", "-bench", ".", "-benchtime", "1s", "-count", "1",
		"./internal/keyformat/", "./internal/store/sqlite/").CombinedOutput()
	if err != nil {
		return fmt.Errorf("%w\n%s", err, out)
	}
	for _, line := range strings.Split(string(out), "\n") {
		if strings.HasPrefix(line, "Benchmark") {
			r.Micro = append(r.Micro, strings.Join(strings.Fields(line), " "))
		}
	}
	dir, err := os.MkdirTemp("", "keymint-profile")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	prof, bin := filepath.Join(dir, "cpu.out"), filepath.Join(dir, "api.test")
	out, err = exec.Command("go", "test", "-run", "^$", "-bench", "BenchmarkVerify$", "-benchtime", "3s", "-count", "1",
		"-cpuprofile", prof, "-o", bin, "./internal/api/").CombinedOutput()
	if err != nil {
		return fmt.Errorf("%w\n%s", err, out)
	}
	for _, line := range strings.Split(string(out), "\n") {
		if strings.HasPrefix(line, "Benchmark") {
			r.Micro = append(r.Micro, strings.Join(strings.Fields(line), " "))
		}
	}
	top, err := exec.Command("go", "tool", "pprof", "-top", "-nodecount=100000", bin, prof).Output()
	if err != nil {
		return err
	}
	r.Profile = bucketProfile(top)
	return nil
}

// profileBuckets groups flat CPU time by where it is spent.
var profileBuckets = []struct{ name, match string }{
	{"system calls (SQLite file locks, network)", "syscall"},
	{"SQLite (modernc, pure Go)", "modernc.org/"},
	{"database/sql", "database/sql."},
	{"JSON encoding and decoding", "encoding/json."},
	{"net/http and I/O", "net/"},
	{"keymint code", "keymint/"},
	{"hashing and checksums (sha256, crc32)", "crypto/"},
	{"memory allocation and GC", "runtime."},
}

func bucketProfile(top []byte) []profileShare {
	shares := map[string]float64{}
	total := 0.0
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
		name := "other (testing harness, sync, strings...)"
		for _, b := range profileBuckets {
			if strings.Contains(fn, b.match) {
				name = b.name
				break
			}
		}
		shares[name] += pct
		total += pct
	}
	var out []profileShare
	for name, pct := range shares {
		out = append(out, profileShare{name, pct})
	}
	sortShares(out)
	return out
}
