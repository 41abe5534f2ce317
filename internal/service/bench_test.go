package service_test

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"

	"github.com/keymint/terraform-provider-keymint/internal/keyformat"
	"github.com/keymint/terraform-provider-keymint/internal/service"
	"github.com/keymint/terraform-provider-keymint/internal/store/sqlite"
	"github.com/keymint/terraform-provider-keymint/internal/wire"
)

// BenchmarkVerify measures the service's verify on SQLite with its verify
// cache, as `keymint serve` runs it, over 1,000 keys: 90% VALID, 5%
// INSUFFICIENT_SCOPE, 5% NOT_FOUND. make test runs it once so it cannot rot;
// make bench reports its time and allocations per verify.
func BenchmarkVerify(b *testing.B) {
	ctx := context.Background()
	st, err := sqlite.Open(ctx, filepath.Join(b.TempDir(), "k.db"), sqlite.Options{CacheSize: 10000})
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	svc := service.New(service.Config{Store: st, RootTokenHash: keyformat.Hash("bench-root-token-0123456789")})
	if err := svc.Bootstrap(ctx); err != nil {
		b.Fatal(err)
	}
	root := service.Root()
	if _, _, err := svc.CreateApp(ctx, root, wire.CreateApp{Slug: "shop", Name: "Shop", Scopes: []string{"read", "write"}, KeyPrefix: "shop",
		RateLimit: &wire.RateLimit{Requests: 1_000_000_000, Window: "1s"}}, ""); err != nil {
		b.Fatal(err)
	}
	cred, _, err := svc.CreateKey(ctx, root, wire.ManagementApp, wire.CreateKey{Name: "verifier", Scopes: []string{wire.ScopeVerify}}, "")
	if err != nil {
		b.Fatal(err)
	}
	reqs := make([]wire.VerifyRequest, 1000)
	for i := range reqs {
		k, _, err := svc.CreateKey(ctx, root, "shop", wire.CreateKey{Name: fmt.Sprint("k", i), Scopes: []string{"read"},
			Metadata: map[string]string{"customer": fmt.Sprint("c", i)}}, "")
		if err != nil {
			b.Fatal(err)
		}
		reqs[i] = wire.VerifyRequest{Key: k.Secret, Scopes: []string{"read"}}
		switch i % 20 {
		case 1:
			reqs[i].Scopes = []string{"write"}
		case 2:
			reqs[i].Key = keyformat.Generate("shop") // well-formed, unknown: it reaches the store
		}
	}
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			p, err := svc.Authenticate(ctx, cred.Secret)
			if err != nil {
				panic(err)
			}
			if _, err := svc.Verify(ctx, p, &reqs[i%len(reqs)]); err != nil {
				panic(err)
			}
			i += 7
		}
	})
}
