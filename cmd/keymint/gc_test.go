package main

import (
	"runtime/debug"
	"testing"
)

func TestTuneGC(t *testing.T) {
	defer debug.SetGCPercent(debug.SetGCPercent(100))
	defer debug.SetMemoryLimit(debug.SetMemoryLimit(-1))
	env := func(vars map[string]string) func(string) string { return func(k string) string { return vars[k] } }
	if got := tuneGC(env(map[string]string{"GOGC": "100"})); got != 0 {
		t.Fatalf("GOGC set: tuneGC set a limit of %d, want none", got)
	}
	if got := tuneGC(env(map[string]string{"GOMEMLIMIT": "1GiB"})); got != 0 {
		t.Fatalf("GOMEMLIMIT set: tuneGC set a limit of %d, want none", got)
	}
	limit := tuneGC(env(nil))
	if limit < minMemoryLimit {
		t.Fatalf("limit %d, want at least %d", limit, minMemoryLimit)
	}
	if got := debug.SetGCPercent(100); got != serveGCPercent {
		t.Fatalf("GOGC is %d, want %d", got, serveGCPercent)
	}
	if got := debug.SetMemoryLimit(-1); got != limit {
		t.Fatalf("memory limit is %d, want %d", got, limit)
	}
	if mem := availableMemory(); mem > 0 && limit != max(minMemoryLimit, mem/4) {
		t.Fatalf("limit %d, want a quarter of %d", limit, mem)
	}
}
