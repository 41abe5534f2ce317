package postgres_test

import (
	"context"
	"os"
	"testing"

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

func openFresh(t *testing.T) *postgres.Store {
	t.Helper()
	dsn := pgtest.Shared(t).NewDatabase(t)
	s, err := postgres.Open(context.Background(), dsn, postgres.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store { return openFresh(t) })
}
