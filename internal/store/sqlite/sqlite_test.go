package sqlite_test

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/keymint/terraform-provider-keymint/internal/store"
	"github.com/keymint/terraform-provider-keymint/internal/store/sqlite"
	"github.com/keymint/terraform-provider-keymint/internal/store/storetest"
)

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store {
		s, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "keymint.db"))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	})
}
