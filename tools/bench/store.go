package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"time"

	"github.com/keymint/terraform-provider-keymint/internal/ratelimit"
	"github.com/keymint/terraform-provider-keymint/internal/service"
	"github.com/keymint/terraform-provider-keymint/internal/store/sqlite"
	"github.com/keymint/terraform-provider-keymint/internal/wire"
)

// benchStoreAndMemory creates keys through the service, as the API's create
// does less HTTP and authentication, then measures keymint idle with them.
func benchStoreAndMemory(ctx context.Context, work string, r *report) error {
	path := filepath.Join(work, "memory.db")
	st, err := sqlite.Open(ctx, path, sqlite.Options{})
	if err != nil {
		return err
	}
	svc := service.New(service.Config{Store: st})
	if err := svc.Bootstrap(ctx); err != nil {
		return err
	}
	root := service.Root()
	const apps = 10
	for i := range apps {
		if _, _, err := svc.CreateApp(ctx, root, wire.CreateApp{Slug: fmt.Sprintf("app-%d", i), Name: "bench",
			Scopes: []string{"read:data", "write:data"}, KeyPrefix: fmt.Sprintf("bench%d", i)}, ""); err != nil {
			return err
		}
	}
	create := func(i int) error {
		_, _, err := svc.CreateKey(ctx, root, fmt.Sprintf("app-%d", i%apps), wire.CreateKey{Name: fmt.Sprintf("key %d", i),
			Scopes: []string{"read:data"}, Metadata: map[string]string{"customer": fmt.Sprintf("c%d", i)}}, "")
		return err
	}
	timed := min(*verifyKeys, *memoryKeys)
	elapsed, err := parallel(timed, 16, create)
	if err != nil {
		return err
	}
	r.CreateStore = throughput{Count: timed, Workers: 16, Elapsed: elapsed}
	r.WALAfterServiceCreates = fileSize(path + "-wal")
	svc.Maintain(ctx) // what keymint serve does every minute
	r.WALAfterMaintain = fileSize(path + "-wal")
	if _, err := parallel(*memoryKeys-timed, 4, func(i int) error { return create(timed + i) }); err != nil {
		return err
	}
	if err := st.Close(); err != nil {
		return err
	}
	srv, err := startServer(work, *keymintBin, []string{"KEYMINT_ROOT_TOKEN=" + benchRootToken}, "serve", "--db", "sqlite:"+path)
	if err != nil {
		return err
	}
	defer srv.stop()
	time.Sleep(2 * time.Second) // let start-up garbage be collected: this is the idle figure
	r.IdleRSS, _, err = srv.memory()
	r.IdleKeys = *memoryKeys
	return err
}

// fileSize is a file's size, or -1 if it cannot be read.
func fileSize(path string) int64 {
	fi, err := os.Stat(path)
	if err != nil {
		return -1
	}
	return fi.Size()
}

// benchLimiterMemory measures the heap that rate-limit counts take per
// 10,000 distinct keys, and what is left once the sweep has dropped them.
func benchLimiterMemory(r *report) {
	const keys = 10000
	heap := func() int64 {
		runtime.GC()
		runtime.GC() // and what the first one's finalizers let go
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		return int64(m.HeapAlloc)
	}
	var l ratelimit.Limiters
	ids := make([]string, keys)
	for i := range ids {
		ids[i] = fmt.Sprintf("key_%026d", i)
	}
	lim := ratelimit.Limit{Requests: 100, Window: time.Minute}
	now := time.Now()
	before := heap()
	for _, id := range ids {
		_, _ = l.Allow(context.Background(), id, "app", lim, now)
	}
	r.LimiterHeap = heap() - before
	_, _ = l.Sweep(context.Background(), now.Add(2*lim.Window))
	// Other garbage collected meanwhile can put the heap below its baseline:
	// what the swept counts hold is then nothing.
	r.LimiterHeapSwept = max(0, heap()-before)
	runtime.KeepAlive(&l)
}
