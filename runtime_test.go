package main

import (
	"os"
	"path/filepath"
	"runtime/debug"
	"testing"
)

func TestTuneGCLeavesAnExplicitGOGC(t *testing.T) {
	defer debug.SetGCPercent(debug.SetGCPercent(100))
	t.Setenv("GOGC", "")
	os.Unsetenv("GOGC")
	tuneGC()
	if got := debug.SetGCPercent(100); got != gcPercent {
		t.Errorf("GOGC unset: GC percent %d, want %d", got, gcPercent)
	}
	t.Setenv("GOGC", "50")
	debug.SetGCPercent(50) // as the runtime read it at start
	tuneGC()
	if got := debug.SetGCPercent(100); got != 50 {
		t.Errorf("GOGC=50: GC percent %d, want 50", got)
	}
}

func TestStartProfileWritesOneProfilePerProcess(t *testing.T) {
	dir := t.TempDir()
	t.Setenv(profileEnv, dir)
	stop, err := startProfile()
	if err != nil {
		t.Fatal(err)
	}
	stop()
	files, _ := filepath.Glob(filepath.Join(dir, "cpu-*.pprof"))
	if len(files) != 1 {
		t.Fatalf("profiles written: %v", files)
	}
	if st, err := os.Stat(files[0]); err != nil || st.Size() == 0 {
		t.Fatalf("profile %s is empty or missing: %v", files[0], err)
	}

	t.Setenv(profileEnv, filepath.Join(dir, "missing"))
	if _, err := startProfile(); err == nil {
		t.Error("a directory that does not exist was accepted")
	}
}
