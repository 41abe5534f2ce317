package postgres_test

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/keymint/terraform-provider-keymint/internal/store"
	"github.com/keymint/terraform-provider-keymint/internal/store/postgres"
	"github.com/keymint/terraform-provider-keymint/internal/store/postgres/pgtest"
	"github.com/keymint/terraform-provider-keymint/internal/store/storetest"
)

func TestMain(m *testing.M) {
	code := m.Run()
	pgtest.StopShared()
	os.Exit(code)
}

func openFresh(t *testing.T) *postgres.Store { return openWith(t, postgres.Options{}) }

func openWith(t *testing.T, o postgres.Options) *postgres.Store {
	t.Helper()
	dsn := pgtest.Shared(t).NewDatabase(t)
	s, err := postgres.Open(context.Background(), dsn, o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store { return openFresh(t) })
}

// How keymint serve runs PostgreSQL: the verify cache in front, kept by a
// replica. It must behave as the store does.
func TestConformanceWithReplica(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store {
		s := openWith(t, postgres.Options{CacheSize: 1000})
		for !s.Replica().LeaseValid() {
			time.Sleep(5 * time.Millisecond) // the replica's first ack, over a real connection
		}
		return s
	})
}
