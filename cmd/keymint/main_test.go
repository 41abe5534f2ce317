package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keymint/terraform-provider-keymint/internal/keyformat"
	"github.com/keymint/terraform-provider-keymint/internal/store/sqlite"
	"github.com/keymint/terraform-provider-keymint/internal/wire"
	"github.com/keymint/terraform-provider-keymint/keymint"
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

// testCLI runs commands with env as the environment and buffers for output.
func testCLI(env map[string]string, stdin string) (cli, *syncBuffer, *syncBuffer) {
	stdout, stderr := &syncBuffer{}, &syncBuffer{}
	return cli{getenv: func(k string) string { return env[k] }, stdin: strings.NewReader(stdin), stdout: stdout, stderr: stderr}, stdout, stderr
}

// startServe runs `keymint serve` in process until the returned stop is
// called; logs is its standard error, out its standard output.
func startServe(t *testing.T, dir string, env map[string]string, extra ...string) (url string, logs, out *syncBuffer, stop func() error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	c, out, logs := testCLI(env, "")
	addrFile := filepath.Join(dir, "addr")
	os.Remove(addrFile) // a previous server's
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, append([]string{"serve", "--addr", "127.0.0.1:0", "--addr-file", addrFile, "--db", "sqlite:" + filepath.Join(dir, "k.db")}, extra...), c)
	}()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if b, err := os.ReadFile(addrFile); err == nil && len(b) > 0 {
			var once sync.Once
			var stopErr error
			return "http://" + string(b), logs, out, func() error { // idempotent: a deferred stop may follow an explicit one
				once.Do(func() { cancel(); stopErr = <-done })
				return stopErr
			}
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

// seedKey creates the app acme and a read key in it.
func seedKey(t *testing.T, c *keymint.Client) wire.KeyWithSecret {
	t.Helper()
	ctx := context.Background()
	if _, err := c.CreateApp(ctx, wire.CreateApp{Slug: "acme", Name: "Acme", Scopes: []string{"read"}, KeyPrefix: "acme"}); err != nil {
		t.Fatal(err)
	}
	k, err := c.CreateKey(ctx, "acme", wire.CreateKey{Name: "k", Scopes: []string{"read"}})
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func TestServeEndToEnd(t *testing.T) {
	dir := t.TempDir()
	url, logs, _, stop := startServe(t, dir, map[string]string{"KEYMINT_ROOT_TOKEN": "root-token-for-test-0123456789"})
	c, err := keymint.New(url, "root-token-for-test-0123456789")
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	k := seedKey(t, c)
	if v, err := c.Verify(ctx, wire.VerifyRequest{Key: k.Secret, Scopes: []string{"read"}}); err != nil || !v.Valid {
		t.Fatalf("verify: %+v %v", v, err)
	}
	// Headers are bounded well below Go's 1 MiB default.
	req, _ := http.NewRequest("GET", url+"/v1/whoami", nil)
	req.Header.Set("Authorization", "Bearer root-token-for-test-0123456789")
	req.Header.Set("X-Padding", strings.Repeat("x", 64<<10))
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
		t.Fatalf("64 KiB of headers: %d, want 431", res.StatusCode)
	}
	// A second server on the same file is refused.
	second, _, _ := testCLI(map[string]string{"KEYMINT_ROOT_TOKEN": "another-root-token-0123456789"}, "")
	if err := run(ctx, []string{"serve", "--addr", "127.0.0.1:0", "--db", "sqlite:" + filepath.Join(dir, "k.db")}, second); err == nil || !strings.Contains(err.Error(), "one server runs per SQLite file") {
		t.Fatalf("second server on the same file: %v", err)
	}
	if err := stop(); err != nil {
		t.Fatalf("graceful shutdown: %v", err)
	}
	out := logs.String()
	if strings.Count(out, "msg=request") < 3 || !strings.Contains(out, "msg=stopped") {
		t.Fatalf("want a line per request and a clean stop, got:\n%s", out)
	}
	if strings.Contains(out, k.Secret[len(k.Key.Start):]) || strings.Contains(out, "root-token-for-test-0123456789") {
		t.Fatal("a secret reached the log")
	}
	// Nothing committed is lost, including the last_used_at flushed at shutdown.
	st, err := sqlite.Open(ctx, filepath.Join(dir, "k.db"), sqlite.Options{})
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
	_, logs, out, stop := startServe(t, dir, nil, "--log-format", "json")
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	// The token is standard output's only line, and never in the log stream.
	token := strings.TrimSuffix(out.String(), "\n")
	if !strings.HasPrefix(token, "keymint_root_") || strings.Contains(token, "\n") {
		t.Fatalf("standard output is %q, want the root token alone", out.String())
	}
	if strings.Contains(logs.String(), token[len("keymint_root_"):]) {
		t.Fatal("the root token reached the log stream")
	}
	for _, line := range strings.Split(strings.TrimSpace(logs.String()), "\n") {
		if !json.Valid([]byte(line)) {
			t.Fatalf("with --log-format json, a log line is not JSON: %q", line)
		}
	}
	if !strings.Contains(logs.String(), "generated a root token") {
		t.Fatalf("the log does not say a root token was generated:\n%s", logs)
	}
	url, logs, out, stop := startServe(t, dir, nil)
	if out.String() != "" || strings.Contains(logs.String(), "keymint_root_") {
		t.Fatal("the root token was shown again on a later start")
	}
	c, _ := keymint.New(url, token)
	if _, err := c.Whoami(context.Background()); err != nil {
		t.Fatalf("the printed root token does not work after a restart: %v", err)
	}
	// While the server runs, the token cannot be reset under it.
	reset, _, _ := testCLI(nil, "")
	if err := run(context.Background(), []string{"reset-root-token", "--db", "sqlite:" + filepath.Join(dir, "k.db")}, reset); err == nil || !strings.Contains(err.Error(), "one server runs per SQLite file") {
		t.Fatalf("reset under a running server: %v", err)
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	st, err := sqlite.Open(context.Background(), filepath.Join(dir, "k.db"), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	want := keyformat.Hash(token)
	if h, err := st.RootTokenHash(context.Background()); err != nil || !bytes.Equal(h, want[:]) {
		t.Fatalf("stored root token hash %x (%v), want the SHA-256 of the printed token", h, err)
	}
	st.Close()

	// An operator who lost it resets it: the old one stops working, the new one works.
	tokenFile := filepath.Join(t.TempDir(), "root-token")
	if err := run(context.Background(), []string{"reset-root-token", "--db", "sqlite:" + filepath.Join(dir, "k.db"), "--root-token-file", tokenFile}, reset); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(tokenFile)
	if err != nil {
		t.Fatal(err)
	}
	if fi, _ := os.Stat(tokenFile); fi.Mode().Perm() != 0o600 {
		t.Fatalf("token file mode %v, want 0600", fi.Mode().Perm())
	}
	newToken := strings.TrimSpace(string(b))
	url, _, _, stop = startServe(t, dir, nil)
	defer stop()
	if c, _ := keymint.New(url, token); keymint.StatusCode(errOf(c.Whoami(context.Background()))) != 401 {
		t.Fatal("the old root token still works after a reset")
	}
	if c, _ := keymint.New(url, newToken); errOf(c.Whoami(context.Background())) != nil {
		t.Fatal("the new root token does not work")
	}
}

func errOf[T any](_ T, err error) error { return err }

// A server that cannot listen generates no root token: the next start does,
// and shows it.
func TestRootTokenOnlyOnceListening(t *testing.T) {
	dir := t.TempDir()
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	c, out, _ := testCLI(nil, "")
	err = run(context.Background(), []string{"serve", "--addr", busy.Addr().String(), "--db", "sqlite:" + filepath.Join(dir, "k.db")}, c)
	if err == nil || out.String() != "" {
		t.Fatalf("serve on a busy address: %v, stdout %q", err, out)
	}
	if _, err := os.Stat(filepath.Join(dir, "k.db")); !os.IsNotExist(err) {
		t.Fatalf("serve on a busy address created the database: %v", err)
	}
	_, _, out2, stop := startServe(t, dir, nil, "--root-token-file", filepath.Join(dir, "token"))
	defer stop()
	if out2.String() != "" {
		t.Fatalf("with --root-token-file, standard output has %q", out2)
	}
	b, err := os.ReadFile(filepath.Join(dir, "token"))
	if err != nil || !strings.HasPrefix(string(b), "keymint_root_") {
		t.Fatalf("the first successful start did not write a root token: %q %v", b, err)
	}
	// The same command restarts the server (flag or environment): the
	// database holds the token's hash, so no token is written and the
	// existing file is left as it is.
	stop()
	for _, start := range []func() (string, func() error){
		func() (string, func() error) {
			url, _, _, stop := startServe(t, dir, nil, "--root-token-file", filepath.Join(dir, "token"))
			return url, stop
		},
		func() (string, func() error) {
			url, _, _, stop := startServe(t, dir, map[string]string{"KEYMINT_ROOT_TOKEN_FILE": filepath.Join(dir, "token")})
			return url, stop
		},
	} {
		url, stop := start()
		c, err := keymint.New(url, strings.TrimSpace(string(b)))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.ListApps(context.Background()); err != nil {
			t.Fatalf("after a restart, the root token from the file: %v", err)
		}
		stop()
		if again, _ := os.ReadFile(filepath.Join(dir, "token")); string(again) != string(b) {
			t.Fatalf("a restart rewrote the root token file")
		}
	}
}

func TestCommandLine(t *testing.T) {
	dir := t.TempDir()
	db := "sqlite:" + filepath.Join(dir, "never.db")
	existing := filepath.Join(dir, "existing")
	if err := os.WriteFile(existing, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		args   []string
		stdin  string
		code   int
		stdout string // a substring of standard output
	}{
		{[]string{"--help"}, "", 0, "Usage:"},
		{[]string{"serve", "--help"}, "", 0, "\n  --log-format string\n"}, // --name, as the pflag commands print theirs
		{[]string{"serve", "-h"}, "", 0, "-root-token-file"},
		{[]string{"verify", "--help"}, "", 0, "exits 0 if it is VALID"},
		{[]string{"reset-root-token", "--help"}, "", 0, "SQLite: stop the server first"},
		{[]string{"version"}, "", 0, "dev"},
		{[]string{}, "", 2, ""},
		{[]string{"nonsense"}, "", 2, ""},
		{[]string{"serve", "--no-such-flag"}, "", 2, ""},
		{[]string{"serve", "--db", db, "--log-format", "yaml"}, "", 2, ""},
		{[]string{"serve", "--db", db, "--verify-cache-size", "-1"}, "", 2, ""},
		{[]string{"serve", "--db", "mysql://u:secret@x/db"}, "", 2, ""},
		{[]string{"serve", "--db", db, "extra"}, "", 2, ""},
		{[]string{"verify"}, "", 2, ""}, // no key on stdin
		{[]string{"verify", "--expect", "valid"}, "k", 2, ""},
		{[]string{"serve", "--db", db, "--addr", "nonsense"}, "", 2, ""},
		{[]string{"serve", "--db", db, "--debug-addr", "0.0.0.0:6060"}, "", 2, ""},
		{[]string{"serve", "--db", db, "--root-token-file", existing}, "", 2, ""},
		{[]string{"serve", "--db", db, "--root-token-file", filepath.Join(dir, "no-such-dir", "t")}, "", 2, ""},
		{[]string{"serve", "--db", db, "--addr-file", filepath.Join(dir, "no-such-dir", "a")}, "", 2, ""},
		{[]string{"reset-root-token", "--db", db}, "", 2, ""}, // no database there: nothing to reset
		{[]string{"migrate", "--help"}, "", 0, "newer keymint"},
		{[]string{"copy", "--help"}, "", 0, "holds no data yet"},
		{[]string{"copy", "--to", "postgres://h/db"}, "", 2, ""},
		{[]string{"copy", "--from", db, "--to", "postgres://h/db"}, "", 2, ""}, // no database to copy from
		{[]string{"serve", "--db", db, "--replica-lease", "1ms"}, "", 2, ""},
		{[]string{"serve", "--db", db + "?mode=rwc"}, "", 2, ""},
		// A token never goes in clear text off this machine without --insecure.
		{[]string{"apps", "list", "--endpoint", "http://keymint.example.invalid"}, "", 2, ""},
		{[]string{"verify", "--endpoint", "http://keymint.example.invalid"}, "k", 2, ""},
	} {
		cl, out, errOut := testCLI(map[string]string{"KEYMINT_TOKEN": "t"}, c.stdin)
		code := exitCode(run(context.Background(), c.args, cl), errOut)
		if code != c.code || !strings.Contains(out.String(), c.stdout) {
			t.Errorf("keymint %v: exit %d, stdout %q, stderr %q; want exit %d with %q", c.args, code, out, errOut, c.code, c.stdout)
		}
	}
	// With --insecure the same command gets as far as the network (.invalid never resolves).
	cl, _, errOut := testCLI(map[string]string{"KEYMINT_TOKEN": "t"}, "")
	if code := exitCode(run(context.Background(), []string{"apps", "list", "--insecure", "--endpoint", "http://keymint.example.invalid"}, cl), errOut); code != 1 || !strings.Contains(errOut.String(), "cannot reach") {
		t.Errorf("apps list --insecure to a remote http:// endpoint: exit %d, %s", code, errOut)
	}
	// A database password is never echoed, wherever it is written; a --db
	// that is not usable is a usage error.
	for _, c := range []struct {
		args []string
		code int
	}{
		{[]string{"serve", "--db", "mysql://u:hunter2@x/db"}, 2},
		{[]string{"migrate", "--db", "host=127.0.0.1 password=hunter2"}, 2},
		{[]string{"migrate", "--db", "postgres://u:hunter2@127.0.0.1:1/x?sslmode=bogus"}, 2},
		{[]string{"migrate", "--db", "postgres://127.0.0.1:1/x?sslmode=disable&password=hunter2&connect_timeout=2"}, 1},
		{[]string{"migrate", "--db", "postgres://u:hunter2@127.0.0.1:1/x?sslmode=disable&connect_timeout=2"}, 1},
	} {
		cl, _, errOut := testCLI(nil, "")
		if code := exitCode(run(context.Background(), c.args, cl), errOut); code != c.code || strings.Contains(errOut.String(), "hunter2") {
			t.Errorf("keymint %v: exit %d, %s; want exit %d, no password", c.args, code, errOut, c.code)
		}
	}
	// Nor in a command's help, where KEYMINT_DB is the --db default.
	for _, cmd := range []string{"serve", "migrate", "reset-root-token"} {
		cl, out, errOut := testCLI(map[string]string{"KEYMINT_DB": "postgres://u:hunter2@db.example.invalid/k"}, "")
		if code := exitCode(run(context.Background(), []string{cmd, "--help"}, cl), errOut); code != 0 ||
			strings.Contains(out.String(), "hunter2") || !strings.Contains(out.String(), "postgres://u:xxxxx@db.example.invalid/k") {
			t.Errorf("keymint %s --help with a password in KEYMINT_DB: exit %d, %s", cmd, code, out)
		}
	}
	// A root token set in the environment must be long enough to be one.
	cl, _, errOut = testCLI(map[string]string{"KEYMINT_ROOT_TOKEN": "abc"}, "")
	if code := exitCode(run(context.Background(), []string{"serve", "--db", db}, cl), errOut); code != 2 || !strings.Contains(errOut.String(), "at least 24 characters") {
		t.Errorf("a short KEYMINT_ROOT_TOKEN: exit %d, %s", code, errOut)
	}
	// Long enough, but guessable: refused with the command that makes a good one.
	cl, _, errOut = testCLI(map[string]string{"KEYMINT_ROOT_TOKEN": "rootrootrootrootrootroot1234"}, "")
	if code := exitCode(run(context.Background(), []string{"serve", "--db", db}, cl), errOut); code != 2 ||
		!strings.Contains(errOut.String(), "too easy to guess") || !strings.Contains(errOut.String(), "openssl rand -base64 32") {
		t.Errorf("a guessable KEYMINT_ROOT_TOKEN: exit %d, %s", code, errOut)
	}
	// A key typed as an argument is not echoed whole.
	key := keyformat.Generate("acme_live")
	cl, _, errOut = testCLI(nil, "")
	if code := exitCode(run(context.Background(), []string{"verify", key}, cl), errOut); code != 2 || strings.Contains(errOut.String(), key[16:]) {
		t.Errorf("verify with the key as an argument: exit %d, %s", code, errOut)
	}
	// Refused flags left nothing behind: no database, no token.
	if _, err := os.Stat(filepath.Join(dir, "never.db")); !os.IsNotExist(err) {
		t.Fatalf("a refused serve created the database: %v", err)
	}
}

// keymint verify exits 0 only for the expected verdict (VALID by default).
func TestVerifyExitCodes(t *testing.T) {
	dir := t.TempDir()
	url, _, _, stop := startServe(t, dir, map[string]string{"KEYMINT_ROOT_TOKEN": "root-token-for-test-0123456789"})
	defer stop()
	c, _ := keymint.New(url, "root-token-for-test-0123456789")
	ctx := context.Background()
	k := seedKey(t, c)
	env := map[string]string{"KEYMINT_TOKEN": "root-token-for-test-0123456789", "KEYMINT_ENDPOINT": url}
	for _, v := range []struct {
		stdin string
		args  []string
		code  int
		out   string
	}{
		{k.Secret + "\n", nil, 0, "VALID"},
		{k.Secret, []string{"--scopes", "read"}, 0, "VALID"},
		{k.Secret, []string{"--scopes", "write"}, 3, "INSUFFICIENT_SCOPE"},
		{"garbage\n", nil, 3, "NOT_FOUND"},
		{"garbage", []string{"--expect", "NOT_FOUND"}, 0, "NOT_FOUND"},
	} {
		cl, out, errOut := testCLI(env, v.stdin)
		code := exitCode(run(ctx, append([]string{"verify"}, v.args...), cl), errOut)
		if code != v.code || !strings.Contains(out.String(), v.out) || strings.Contains(out.String(), k.Secret[len(k.Key.Start):]) {
			t.Errorf("verify %v: exit %d, stdout %q; want %d with %s", v.args, code, out, v.code, v.out)
		}
	}
}

// A first start on a database that exists but holds no root token yet
// (made by another tool, or a PostgreSQL one) refuses an existing root
// token file when it would write the token: exit 2, the file untouched, and
// no token stored, so the next start with a new file works.
func TestRootTokenFileExistsOnFirstStart(t *testing.T) {
	dir := t.TempDir()
	st, err := sqlite.Open(context.Background(), filepath.Join(dir, "k.db"), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	st.Close()
	existing := filepath.Join(dir, "token")
	if err := os.WriteFile(existing, []byte("keep me\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c, out, stderr := testCLI(nil, "")
	err = run(context.Background(), []string{"serve", "--addr", "127.0.0.1:0", "--db", "sqlite:" + filepath.Join(dir, "k.db"), "--root-token-file", existing}, c)
	if code := exitCode(err, stderr); code != exitUsage || !strings.Contains(stderr.String(), "the file exists") || out.String() != "" {
		t.Fatalf("exit %d, stdout %q, stderr %q", code, out, stderr)
	}
	if b, _ := os.ReadFile(existing); string(b) != "keep me\n" {
		t.Fatalf("the existing file was changed: %q", b)
	}
	_, _, _, stop := startServe(t, dir, nil, "--root-token-file", filepath.Join(dir, "new-token"))
	defer stop()
	if b, err := os.ReadFile(filepath.Join(dir, "new-token")); err != nil || !strings.HasPrefix(string(b), "keymint_root_") {
		t.Fatalf("the next start did not write a root token: %q %v", b, err)
	}
}
