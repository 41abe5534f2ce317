package main

import (
	"bufio"
	"os"
	"runtime/debug"
	"strconv"
	"strings"
)

// The server's garbage collector. Under verify load a server allocates a few
// KiB per request while its live heap (mostly the verify cache) is small, so
// at Go's default (GOGC=100) collection was a fifth of its CPU; at 400 verify
// throughput rose by about a sixth (BENCHMARKS.md). A memory limit keeps the
// headroom that buys from growing with the cache: past the limit Go collects
// as often as it must, whatever GOGC says.
const (
	serveGCPercent = 400
	minMemoryLimit = 512 << 20
)

// tuneGC applies serveGCPercent and a soft memory limit of a quarter of the
// memory this process may use (its cgroup's limit, else the machine's), at
// least minMemoryLimit, unless GOGC or GOMEMLIMIT says otherwise. It returns
// the limit set (0: none).
func tuneGC(getenv func(string) string) int64 {
	if getenv("GOGC") != "" || getenv("GOMEMLIMIT") != "" {
		return 0
	}
	debug.SetGCPercent(serveGCPercent)
	limit := max(int64(minMemoryLimit), availableMemory()/4)
	debug.SetMemoryLimit(limit)
	return limit
}

// availableMemory is the cgroup v2 memory limit if there is one, else the
// machine's total memory, else 0.
func availableMemory() int64 {
	if b, err := os.ReadFile("/sys/fs/cgroup/memory.max"); err == nil {
		if n, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64); err == nil && n > 0 {
			return n
		}
	}
	f, err := os.Open("/proc/meminfo")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "MemTotal:"); ok {
			if fields := strings.Fields(rest); len(fields) > 0 {
				if kb, err := strconv.ParseInt(fields[0], 10, 64); err == nil {
					return kb << 10
				}
			}
		}
	}
	return 0
}
