package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keymint/terraform-provider-keymint/internal/client"
	"github.com/keymint/terraform-provider-keymint/internal/keyformat"
	"github.com/keymint/terraform-provider-keymint/internal/store/sqlite"
	"github.com/keymint/terraform-provider-keymint/internal/wire"
)

// syncBuffer is a log sink the server and the test can share.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}
func (s *syncBuffer) String() string { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

// startServe runs `keymint serve` in process until the returned stop is called.
func startServe(t *testing.T, dir string, env map[string]string) (url string, logs *syncBuffer, stop func() error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	logs = &syncBuffer{}
	addrFile := filepath.Join(dir, "addr")
	os.Remove(addrFile) // a previous server's
	done := make(chan error, 1)
	getenv := func(k string) string { return env[k] }
	go func() {
		done <- run(ctx, []string{"serve", "--addr", "127.0.0.1:0", "--addr-file", addrFile, "--db", "sqlite:" + filepath.Join(dir, "k.db")}, getenv, logs)
	}()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if b, err := os.ReadFile(addrFile); err == nil && len(b) > 0 {
			return "http://" + string(b), logs, func() error { cancel(); return <-done }
		}
		select {
		case err := <-done:
			t.Fatalf("serve exited: %v\n%s", err, logs)
		case <-time.After(10 * time.Millisecond): // waiting for a listener: there is no clock to inject
		}
	}
	t.Fatal("serve did not start")
	return
}

func TestServeEndToEnd(t *testing.T) {
	dir := t.TempDir()
	url, logs, stop := startServe(t, dir, map[string]string{"KEYMINT_ROOT_TOKEN": "root-token-for-test"})
	c, err := client.New(url, "root-token-for-test")
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, err := c.CreateApp(ctx, wire.CreateApp{Slug: "acme", Name: "Acme", Scopes: []string{"read"}, KeyPrefix: "acme"}); err != nil {
		t.Fatal(err)
	}
	k, err := c.CreateKey(ctx, "acme", wire.CreateKey{Name: "k", Scopes: []string{"read"}})
	if err != nil {
		t.Fatal(err)
	}
	if v, err := c.Verify(ctx, wire.VerifyRequest{Key: k.Secret, Scopes: []string{"read"}}); err != nil || !v.Valid {
		t.Fatalf("verify: %+v %v", v, err)
	}
	// A second server on the same file is refused.
	if err := run(ctx, []string{"serve", "--addr", "127.0.0.1:0", "--db", "sqlite:" + filepath.Join(dir, "k.db")},
		func(string) string { return "x" }, &syncBuffer{}); err == nil || !strings.Contains(err.Error(), "is open in another keymint server") {
		t.Fatalf("second server on the same file: %v", err)
	}
	if err := stop(); err != nil {
		t.Fatalf("graceful shutdown: %v", err)
	}
	out := logs.String()
	if strings.Count(out, "msg=request") < 3 || !strings.Contains(out, "msg=stopped") {
		t.Fatalf("want a line per request and a clean stop, got:\n%s", out)
	}
	if strings.Contains(out, k.Secret[len(k.Key.Start):]) || strings.Contains(out, "root-token-for-test") {
		t.Fatal("a secret reached the log")
	}
	// Nothing committed is lost, including the last_used_at flushed at shutdown.
	st, err := sqlite.Open(ctx, filepath.Join(dir, "k.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	got, err := st.GetKey(ctx, k.Key.ID)
	if err != nil || got.LastUsedAt == nil {
		t.Fatalf("after shutdown: %+v %v", got, err)
	}
}

func TestRootTokenGeneratedOnce(t *testing.T) {
	dir := t.TempDir()
	_, logs, stop := startServe(t, dir, nil)
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	first := logs.String()
	i := strings.Index(first, "keymint_root_")
	if i < 0 {
		t.Fatalf("no generated root token printed:\n%s", first)
	}
	token := strings.Fields(first[i:])[0]
	url, logs, stop := startServe(t, dir, nil)
	if strings.Contains(logs.String(), "keymint_root_") {
		t.Fatal("the root token was printed again on a later start")
	}
	c, _ := client.New(url, token)
	if _, err := c.Whoami(context.Background()); err != nil {
		t.Fatalf("the printed root token does not work after a restart: %v", err)
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	st, err := sqlite.Open(context.Background(), filepath.Join(dir, "k.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	want := keyformat.Hash(token)
	if h, err := st.RootTokenHash(context.Background()); err != nil || !bytes.Equal(h, want[:]) {
		t.Fatalf("stored root token hash %x (%v), want the SHA-256 of the printed token", h, err)
	}
}
