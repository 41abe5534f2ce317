package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/keymint/terraform-provider-keymint/internal/store/postgres/pgtest"
	"github.com/keymint/terraform-provider-keymint/internal/store/sqlite"
	"github.com/keymint/terraform-provider-keymint/internal/wire"
	"github.com/keymint/terraform-provider-keymint/keymint"
)

// TestMain lets a test run this binary as `keymint` in a child process
// (KEYMINT_TEST_MAIN=1), so it can be killed like a real server.
func TestMain(m *testing.M) {
	if os.Getenv("KEYMINT_TEST_MAIN") == "1" {
		main()
		return
	}
	code := m.Run()
	pgtest.StopShared()
	os.Exit(code)
}

// startChild runs `keymint serve` as a child process on dir/k.db and waits until it listens.
func startChild(t *testing.T, dir string) (*exec.Cmd, string) {
	return startServer(t, dir, "serve", "sqlite:"+filepath.Join(dir, "k.db"))
}

// startServer runs `keymint serve --db db args...` as a child process
// (logging to dir/name.log) and waits until it listens.
func startServer(t *testing.T, dir, name, db string, args ...string) (*exec.Cmd, string) {
	t.Helper()
	addrFile := filepath.Join(dir, name+".addr")
	os.Remove(addrFile)
	cmd := exec.Command(os.Args[0], append([]string{"serve", "--addr", "127.0.0.1:0", "--addr-file", addrFile, "--db", db}, args...)...)
	cmd.Env = append(os.Environ(), "KEYMINT_TEST_MAIN=1", "KEYMINT_ROOT_TOKEN="+childRootToken)
	log, err := os.Create(filepath.Join(dir, name+".log"))
	if err != nil {
		t.Fatal(err)
	}
	defer log.Close()
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// A test that fails early leaves no server behind.
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Signal(syscall.SIGCONT)
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		}
	})
	for range 500 {
		if b, err := os.ReadFile(addrFile); err == nil && len(b) > 0 {
			return cmd, "http://" + string(b)
		}
		time.Sleep(10 * time.Millisecond) // a child's start-up: no clock to inject
	}
	cmd.Process.Kill()
	t.Fatal("the child server did not start")
	return nil, ""
}

const childRootToken = "crash-root-token-0123456789"

// kill -9 the server during concurrent creates and rotations, restart it on
// the same file: every acknowledged write is there, every secret it returned
// verifies, and the database is whole.
func TestCrashDuringWrites(t *testing.T) {
	dir := t.TempDir()
	cmd, url := startChild(t, dir)
	ctx := context.Background()
	c, err := keymint.New(url, childRootToken)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.CreateApp(ctx, wire.CreateApp{Slug: "acme", Name: "Acme", Scopes: []string{"read"}, KeyPrefix: "acme"}); err != nil {
		t.Fatal(err)
	}
	c.MaxRetries = 0 // a write the dying server did not acknowledge is not retried

	var (
		mu      sync.Mutex
		acked   = map[string][]string{} // key id -> every secret acknowledged for it
		ops     atomic.Int64
		killed  = make(chan struct{})
		workers sync.WaitGroup
	)
	const killAfter = 400 // acknowledged writes before the kill
	for w := range 8 {
		workers.Add(1)
		go func() {
			defer workers.Done()
			var mine []string
			for i := 0; ; i++ {
				select {
				case <-killed:
					return
				default:
				}
				var (
					k   wire.KeyWithSecret
					err error
				)
				if len(mine) > 0 && i%2 == 1 {
					// Rotations keep the old secret an hour, so every acknowledged secret stays good.
					k, err = c.RotateKey(ctx, mine[i%len(mine)], wire.RotateKey{GracePeriod: "1h"})
				} else {
					k, err = c.CreateKey(ctx, "acme", wire.CreateKey{Name: fmt.Sprintf("w%d-%d", w, i), Scopes: []string{"read"}})
					if err == nil {
						mine = append(mine, k.Key.ID)
					}
				}
				if err != nil {
					continue // in flight at the kill, or refused after it
				}
				mu.Lock()
				acked[k.Key.ID] = append(acked[k.Key.ID], k.Secret)
				mu.Unlock()
				if ops.Add(1) == killAfter {
					cmd.Process.Signal(syscall.SIGKILL)
					close(killed)
				}
			}
		}()
	}
	workers.Wait()
	cmd.Wait()

	cmd, url = startChild(t, dir)
	defer func() { cmd.Process.Signal(syscall.SIGTERM); cmd.Wait() }()
	c, _ = keymint.New(url, childRootToken)
	keys, err := c.ListKeys(ctx, "acme", "")
	if err != nil {
		t.Fatal(err)
	}
	stored := map[string]bool{}
	for _, k := range keys {
		stored[k.ID] = true
	}
	secrets := 0
	for id, ss := range acked {
		if !stored[id] {
			t.Errorf("acknowledged key %s is gone after the crash", id)
		}
		for _, s := range ss {
			secrets++
			v, err := c.Verify(ctx, wire.VerifyRequest{Key: s})
			if err != nil || v.Code != wire.CodeValid {
				t.Errorf("an acknowledged secret of %s verifies %s (%v) after the crash", id, v.Code, err)
			}
		}
	}
	t.Logf("%d acknowledged writes before the kill: %d keys, %d secrets; %d keys stored", ops.Load(), len(acked), secrets, len(keys))
	cmd.Process.Signal(syscall.SIGTERM)
	if err := cmd.Wait(); err != nil && !errors.Is(err, os.ErrProcessDone) {
		t.Fatalf("restarted server did not stop cleanly: %v", err)
	}
	st, err := sqlite.Open(ctx, filepath.Join(dir, "k.db"), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if err := st.Check(ctx); err != nil {
		t.Fatalf("after the crash: %v", err)
	}
}

// A second server on the same SQLite file under another name (a hard link)
// is refused, and the refusal names the process that holds the file.
func TestSecondServerByHardLinkNamesTheHolder(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "k.db")
	cmd, _ := startServer(t, dir, "holder", "sqlite:"+path)
	link := filepath.Join(t.TempDir(), "other-name.db")
	if err := os.Link(path, link); err != nil {
		t.Fatal(err)
	}
	var out, errOut bytes.Buffer
	c := cli{getenv: func(string) string { return "" }, stdin: strings.NewReader(""), stdout: &out, stderr: &errOut}
	err := run(context.Background(), []string{"serve", "--addr", "127.0.0.1:0", "--db", "sqlite:" + link}, c)
	if err == nil || !strings.Contains(err.Error(), fmt.Sprintf("another keymint process (pid %d)", cmd.Process.Pid)) {
		t.Fatalf("a second server through a hard link: %v; want a refusal naming pid %d", err, cmd.Process.Pid)
	}
}
