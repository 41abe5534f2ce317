package main

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime/debug"
	"runtime/pprof"
)

// gcPercent is the provider's GOGC unless the environment sets one. A
// provider lives for one Terraform command and its heap stays small, while
// the plugin framework allocates per attribute per resource: at Go's default
// (100) the collector took a quarter of the provider's CPU in an apply of 200
// keys; at 400 it takes under a tenth, for a heap about twice as large.
const gcPercent = 400

func tuneGC() {
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(gcPercent)
	}
}

// profileEnv names a directory to write a CPU profile in, one file per
// provider process (Terraform starts several per command), for go tool pprof.
const profileEnv = "KEYMINT_PROVIDER_CPUPROFILE"

// startProfile starts that profile if asked, and returns what ends it.
func startProfile() (stop func(), err error) {
	dir := os.Getenv(profileEnv)
	if dir == "" {
		return func() {}, nil
	}
	f, err := os.Create(filepath.Join(dir, fmt.Sprintf("cpu-%d.pprof", os.Getpid())))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", profileEnv, err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("%s: %w", profileEnv, err)
	}
	return func() { pprof.StopCPUProfile(); f.Close() }, nil
}
