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
	out, err := exec.Command("go", "test", "-run", "^$", "-bench", ".", "-benchtime", "1s", "-count", "1",
		"./internal/keyformat/", "./internal/store/sqlite/", "./internal/api/").CombinedOutput()
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
	top, err := exec.Command("go", "tool", "pprof", "-top", "-nodecount=1000000", "-nodefraction=0", "-edgefraction=0", path).Output()
	if err != nil {
		return nil, err
	}
	return bucketProfile(top), nil
}

// profileBuckets groups flat CPU time by where it is spent.
var profileBuckets = []struct{ name, match string }{
	{"system calls (network reads and writes, log lines, SQLite)", "syscall"},
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
		name := "other (scheduler, sync, strings, time...)"
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
