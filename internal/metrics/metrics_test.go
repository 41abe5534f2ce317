package metrics_test

import (
	"testing"
	"time"

	"github.com/keymint/terraform-provider-keymint/internal/metrics"
)

// BenchmarkPerVerify is what metrics add to one verify on keymint serve
// with --metrics-addr: the request's duration, two secret lookups (the
// credential's and the key's, each a store operation and a cache lookup)
// and the verdict.
func BenchmarkPerVerify(b *testing.B) {
	m := metrics.New()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			start := time.Now()
			for range 2 {
				m.CacheLookup(true)
				m.StoreOp("lookup_secret", start)
			}
			m.Verified("shop", "VALID")
			m.Request("POST /v1/verify", 200, time.Since(start))
		}
	})
}
