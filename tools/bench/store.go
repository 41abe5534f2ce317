package main

import (
	"context"
	"fmt"
	"path/filepath"
	"time"

	"github.com/keymint/terraform-provider-keymint/internal/keyformat"
	"github.com/keymint/terraform-provider-keymint/internal/store"
	"github.com/keymint/terraform-provider-keymint/internal/store/sqlite"
)

// benchStoreAndMemory creates keys straight through the store (the same work
// as the API's create, less HTTP), then measures keymint idle with them.
func benchStoreAndMemory(ctx context.Context, work string, r *report) error {
	path := filepath.Join(work, "memory.db")
	st, err := sqlite.Open(ctx, path)
	if err != nil {
		return err
	}
	now := time.Now().UTC()
	const apps = 10
	for i := range apps {
		if err := st.CreateApp(ctx, store.App{Slug: fmt.Sprintf("app-%d", i), Name: "bench", Scopes: []string{"read:data", "write:data"},
			KeyPrefix: fmt.Sprintf("bench%d", i), CreatedAt: now, UpdatedAt: now}, nil); err != nil {
			return err
		}
	}
	create := func(i int) error {
		prefix := fmt.Sprintf("bench%d", i%apps)
		secret := keyformat.Generate(prefix)
		hash := keyformat.Hash(secret)
		return st.CreateKey(ctx, store.Key{ID: fmt.Sprintf("key_%08d", i), App: fmt.Sprintf("app-%d", i%apps), Name: fmt.Sprintf("key %d", i),
			Scopes: []string{"read:data"}, Metadata: map[string]string{"customer": fmt.Sprintf("c%d", i)}, Enabled: true,
			Start: keyformat.Start(secret), CreatedAt: now}, hash[:], nil)
	}
	timed := min(*verifyKeys, *memoryKeys)
	elapsed, err := parallel(timed, 16, create)
	if err != nil {
		return err
	}
	r.CreateStore = throughput{Count: timed, Workers: 16, Elapsed: elapsed}
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
