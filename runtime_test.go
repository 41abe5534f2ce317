package main

import (
	"bytes"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"
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
	dir := filepath.Join(t.TempDir(), "made")
	t.Setenv(profileEnv, dir)
	var stderr bytes.Buffer
	startProfile(&stderr)()
	files, _ := filepath.Glob(filepath.Join(dir, "cpu-*.pprof"))
	if len(files) != 1 || stderr.Len() != 0 {
		t.Fatalf("profiles written: %v; stderr %q", files, stderr.String())
	}
	if st, err := os.Stat(files[0]); err != nil || st.Size() == 0 {
		t.Fatalf("profile %s is empty or missing: %v", files[0], err)
	}

	// A path that cannot be a directory: the provider still runs, and says why it does not profile.
	t.Setenv(profileEnv, filepath.Join(files[0], "sub"))
	stderr.Reset()
	startProfile(&stderr)()
	if !strings.Contains(stderr.String(), profileEnv+": not profiling") {
		t.Errorf("stderr %q does not say the profile was skipped", stderr.String())
	}
}
