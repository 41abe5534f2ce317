package sqlite_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/keymint/terraform-provider-keymint/internal/keyformat"
	"github.com/keymint/terraform-provider-keymint/internal/store"
	"github.com/keymint/terraform-provider-keymint/internal/store/sqlite"
	"github.com/keymint/terraform-provider-keymint/internal/store/storetest"
)

func openTemp(t *testing.T) store.Store { return openWith(t, sqlite.Options{}) }

func openWith(t *testing.T, o sqlite.Options) store.Store {
	s, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "keymint.db"), o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestConformance(t *testing.T) { storetest.Run(t, openTemp) }

// The verify cache is how keymint serve runs SQLite: it must behave as the store does.
func TestConformanceWithVerifyCache(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store { return openWith(t, sqlite.Options{CacheSize: 1000}) })
}

// benchStore is a store on a temp file with one app, acme.
func benchStore(b *testing.B) *sqlite.Store {
	s, err := sqlite.Open(context.Background(), filepath.Join(b.TempDir(), "keymint.db"), sqlite.Options{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Close() })
	now := time.Now().UTC()
	if err := s.CreateApp(context.Background(), store.App{Slug: "acme", Name: "a", Scopes: []string{"read"}, KeyPrefix: "acme", CreatedAt: now, UpdatedAt: now}, nil, nil); err != nil {
		b.Fatal(err)
	}
	return s
}

func BenchmarkLookupSecret(b *testing.B) {
	ctx, s, now := context.Background(), benchStore(b), time.Now().UTC()
	const n = 10000
	hashes := make([][]byte, n)
	for i := range n {
		h := keyformat.Hash(keyformat.Generate("acme"))
		hashes[i] = h[:]
		k := store.Key{ID: fmt.Sprintf("key_%05d", i), App: "acme", Name: "k", Scopes: []string{"read"}, Metadata: map[string]string{"team": "x"},
			Enabled: true, Start: "acme_x", CreatedAt: now}
		if err := s.CreateKey(ctx, k, hashes[i], nil, nil); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			if _, err := s.LookupSecret(ctx, hashes[i%n]); err != nil {
				b.Fatal(err)
			}
			i += 7
		}
	})
}

func BenchmarkCreateKey(b *testing.B) {
	ctx, s, now := context.Background(), benchStore(b), time.Now().UTC()
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		secret := keyformat.Generate("acme")
		h := keyformat.Hash(secret)
		k := store.Key{ID: fmt.Sprintf("key_%08d", i), App: "acme", Name: "k", Scopes: []string{"read"}, Enabled: true, Start: keyformat.Start(secret), CreatedAt: now}
		if err := s.CreateKey(ctx, k, h[:], nil, nil); err != nil {
			b.Fatal(err)
		}
		i++
	}
}

// One Store per database file, however the file is named: a second Open
// through a symlink (or the same path) is refused until the first closes.
func TestOneStorePerFile(t *testing.T) {
	dir := t.TempDir()
	real := filepath.Join(dir, "keymint.db")
	first, err := sqlite.Open(context.Background(), real, sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(t.TempDir(), "link.db")
	if err := os.Symlink(real, link); err != nil {
		t.Fatal(err)
	}
	hard := filepath.Join(t.TempDir(), "hard.db")
	if err := os.Link(real, hard); err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{real, link, hard, filepath.Join(dir, ".", "keymint.db")} {
		if s, err := sqlite.Open(context.Background(), path, sqlite.Options{}); !errors.Is(err, sqlite.ErrInUse) {
			if s != nil {
				s.Close()
			}
			t.Fatalf("second Open of %s: %v, want ErrInUse", path, err)
		}
	}
	if err := first.Close(); err != nil {
		t.Fatal(err)
	}
	again, err := sqlite.Open(context.Background(), link, sqlite.Options{})
	if err != nil {
		t.Fatalf("Open after Close: %v", err)
	}
	again.Close()
}

// The database holds key hashes and metadata: its files are the owner's alone.
func TestFilesPrivate(t *testing.T) {
	path := filepath.Join(t.TempDir(), "keymint.db")
	s, err := sqlite.Open(context.Background(), path, sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	now := time.Now()
	if err := s.CreateApp(context.Background(), store.App{Slug: "a", Name: "a", Scopes: []string{"r"}, KeyPrefix: "a", CreatedAt: now, UpdatedAt: now}, nil, nil); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{path, path + "-wal", path + "-shm"} {
		fi, err := os.Stat(f)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm()&0o077 != 0 {
			t.Errorf("%s has mode %v, want no access for group or others", filepath.Base(f), fi.Mode().Perm())
		}
	}
}

// The WAL does not keep its high-water mark: Compact truncates it.
func TestCompactTruncatesWAL(t *testing.T) {
	path := filepath.Join(t.TempDir(), "keymint.db")
	s, err := sqlite.Open(context.Background(), path, sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	now := time.Now()
	if err := s.CreateApp(ctx, store.App{Slug: "a", Name: "a", Scopes: []string{"r"}, KeyPrefix: "a", CreatedAt: now, UpdatedAt: now}, nil, nil); err != nil {
		t.Fatal(err)
	}
	// A long read transaction keeps checkpoints from resetting the WAL, as
	// concurrent verifies do: it grows past the limit while writes go on.
	hold, err := sql.Open("sqlite", "file:"+path+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer hold.Close()
	tx, err := hold.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	var n int
	if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM apps`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	for i := range 3000 {
		k := keyformat.Generate("a")
		h := keyformat.Hash(k)
		if err := s.CreateKey(ctx, store.Key{ID: fmt.Sprintf("k%05d", i), App: "a", Name: strings.Repeat("n", 200), Scopes: []string{"r"},
			Resources: []string{}, Metadata: map[string]string{}, Enabled: true, Start: keyformat.Start(k), CreatedAt: now}, h[:], nil, nil); err != nil {
			t.Fatal(err)
		}
	}
	grown := fileSize(t, path+"-wal")
	tx.Rollback()
	if err := s.Compact(ctx); err != nil {
		t.Fatal(err)
	}
	if after := fileSize(t, path+"-wal"); after != 0 || grown < 8<<20 {
		t.Fatalf("WAL %d bytes under a long reader, %d after Compact; want it to have grown past 8 MiB, then 0", grown, after)
	}
}

func fileSize(t *testing.T, path string) int64 {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Size()
}

// URI parameters are refused, and a path with URI characters is a path.
func TestOpenRefusesURIParameters(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "k.db")
	s, err := sqlite.Open(context.Background(), db, sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := sqlite.Open(context.Background(), db+"?x=1", sqlite.Options{}); err == nil || !strings.Contains(err.Error(), "no SQLite URI parameters") {
		t.Fatalf("Open(%s?x=1) = %v", db, err)
	}
	odd := filepath.Join(dir, "a%20b c.db")
	s2, err := sqlite.Open(context.Background(), odd, sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	if _, err := os.Stat(odd); err != nil {
		t.Fatalf("the database is not at its literal path: %v", err)
	}
	var sync int
	if err := s.DB().QueryRow(`PRAGMA synchronous`).Scan(&sync); err != nil || sync != 2 {
		t.Fatalf("synchronous = %d (%v), want 2 (FULL)", sync, err)
	}
}

// Opening fills the verify cache with every secret when they all fit, so
// that the first verify of any key, and every verify of a key that does not
// exist, is answered from memory; when they do not fit, it says so and
// fills as keys are verified.
func TestOpenFillsTheVerifyCache(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "keymint.db")
	s, err := sqlite.Open(ctx, path, sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC()
	if err := s.CreateApp(ctx, store.App{Slug: "acme", Name: "a", Scopes: []string{"read"}, KeyPrefix: "acme", CreatedAt: now, UpdatedAt: now}, nil, nil); err != nil {
		t.Fatal(err)
	}
	var hashes [][]byte
	for i := range 3 {
		h := keyformat.Hash(keyformat.Generate("acme"))
		hashes = append(hashes, h[:])
		k := store.Key{ID: fmt.Sprintf("key_%d", i), App: "acme", Name: "k", Scopes: []string{"read"}, Enabled: true, Start: "acme_x", CreatedAt: now}
		if err := s.CreateKey(ctx, k, h[:], nil, nil); err != nil {
			t.Fatal(err)
		}
	}
	s.Close()
	for _, tc := range []struct {
		size     int
		complete bool
		log      string
	}{
		{size: 10, complete: true, log: "verify cache filled"},
		{size: 2, complete: false, log: "holds fewer secrets than the database has"},
	} {
		var log strings.Builder
		var hits, lookups int
		s, err := sqlite.Open(ctx, path, sqlite.Options{CacheSize: tc.size, Logger: slog.New(slog.NewTextHandler(&log, nil)),
			OnCacheLookup: func(hit bool) {
				lookups++
				if hit {
					hits++
				}
			}})
		if err != nil {
			t.Fatal(err)
		}
		if got := s.Cache().Complete(); got != tc.complete || !strings.Contains(log.String(), tc.log) || !strings.Contains(log.String(), "secrets=3") {
			t.Fatalf("cache size %d: complete %v, log:\n%s", tc.size, got, log.String())
		}
		for _, h := range hashes {
			if _, err := s.LookupSecret(ctx, h); err != nil {
				t.Fatal(err)
			}
		}
		unknown := keyformat.Hash(keyformat.Generate("acme"))
		if _, err := s.LookupSecret(ctx, unknown[:]); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("an unknown key: %v", err)
		}
		if tc.complete && hits != lookups {
			t.Fatalf("a filled cache answered %d of %d first lookups from memory, want all", hits, lookups)
		}
		if !tc.complete && hits != 0 {
			t.Fatalf("a cache too small to fill answered %d first lookups from memory", hits)
		}
		s.Close()
	}
}
