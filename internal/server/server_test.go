package server_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/keymint/terraform-provider-keymint/internal/server"
	"github.com/keymint/terraform-provider-keymint/internal/service"
	"github.com/keymint/terraform-provider-keymint/internal/store/postgres/pgtest"
)

func TestMain(m *testing.M) {
	code := m.Run()
	pgtest.StopShared()
	os.Exit(code)
}

// start runs a server on db as `keymint serve` does, until the test ends.
func start(t *testing.T, db string) string {
	t.Helper()
	token := make([]byte, 32)
	rand.Read(token)
	return startWith(t, server.Config{DB: db, RootToken: base64.StdEncoding.EncodeToString(token)})
}

// startWith runs a server with cfg (on a free port, with a verify cache and
// a short lease unless cfg says otherwise) until the test ends.
func startWith(t *testing.T, cfg server.Config) string {
	t.Helper()
	cfg.Addr = "127.0.0.1:0"
	if cfg.CacheSize == 0 {
		cfg.CacheSize = 1000
	}
	if cfg.Lease == 0 {
		cfg.Lease = 500 * time.Millisecond
	}
	ctx, cancel := context.WithCancel(context.Background())
	s, err := server.Start(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	})
	return "http://" + s.Addr()
}

// readyz is GET /readyz: its status and what it says (cache or reason).
func readyz(t *testing.T, url string) (int, string) {
	t.Helper()
	res, err := http.Get(url + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var body struct {
		Cache  string `json:"verify_cache"`
		Detail string `json:"detail"`
	}
	if err := json.NewDecoder(res.Body).Decode(&body); err != nil {
		t.Fatal(err)
	}
	return res.StatusCode, body.Cache + body.Detail
}

func TestReadyzOnSQLiteFailsWhenLookupsFail(t *testing.T) {
	path := filepath.Join(t.TempDir(), "k.db")
	url := start(t, "sqlite:"+path)
	if code, says := readyz(t, url); code != http.StatusOK || says != "on" {
		t.Fatalf("healthy: /readyz %d %q", code, says)
	}
	// The files are overwritten under the server: every lookup fails.
	for _, f := range []string{path, path + "-wal", path + "-shm"} {
		if err := os.WriteFile(f, []byte(strings.Repeat("not a database ", 3000)), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if code, says := readyz(t, url); code != http.StatusServiceUnavailable || !strings.Contains(says, "cannot be read") {
		t.Fatalf("corrupt database: /readyz %d %q, want 503 saying the database cannot be read", code, says)
	}
	res, err := http.Get(url + "/healthz")
	if err != nil {
		t.Fatalf("/healthz: %v", err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusOK {
		t.Fatalf("/healthz is liveness and stays 200: %d", res.StatusCode)
	}
}

func TestReadyzOnPostgresFailsWhenTheDatabaseIsDown(t *testing.T) {
	pg, err := pgtest.Start()
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal(err)
		}
		t.Skip(err)
	}
	defer pg.Stop()
	url := start(t, pg.DSN("postgres"))
	deadline := time.Now().Add(10 * time.Second)
	for {
		code, says := readyz(t, url)
		if code == http.StatusOK && says == "on" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("healthy: /readyz %d %q", code, says)
		}
		time.Sleep(20 * time.Millisecond) // the replica's first lease, over a real connection
	}
	pg.Stop()
	code, says := readyz(t, url)
	if code != http.StatusServiceUnavailable || !strings.Contains(says, "database") {
		t.Fatalf("PostgreSQL stopped: /readyz %d %q, want 503 naming the database", code, says)
	}
}

// reset-root-token on PostgreSQL while replicas serve: every replica
// refuses the old token and accepts the new one as soon as the reset returns.
func TestRootTokenResetReachesRunningReplicas(t *testing.T) {
	dsn := pgtest.Shared(t).NewDatabase(t)
	var first bytes.Buffer
	urls := []string{startWith(t, server.Config{DB: dsn, Stdout: &first}), startWith(t, server.Config{DB: dsn})}
	oldToken := strings.TrimSpace(first.String())
	for _, u := range urls {
		if code := whoami(t, u, oldToken); code != http.StatusOK {
			t.Fatalf("before the reset, the generated root token gets %d from %s", code, u)
		}
	}
	var out bytes.Buffer
	opened, err := server.OpenStore(context.Background(), server.Database{URL: dsn}, server.StoreOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer opened.Store.Close()
	if err := service.ResetRootToken(context.Background(), opened.Store, func(tok string) error { _, err := out.WriteString(tok); return err }); err != nil {
		t.Fatal(err)
	}
	for _, u := range urls {
		if code := whoami(t, u, oldToken); code != http.StatusUnauthorized {
			t.Errorf("after the reset returned, %s answers %d to the old root token", u, code)
		}
		if code := whoami(t, u, out.String()); code != http.StatusOK {
			t.Errorf("after the reset returned, %s answers %d to the new root token", u, code)
		}
	}
}

func whoami(t *testing.T, url, token string) int {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, url+"/v1/whoami", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	return res.StatusCode
}
