package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/keymint/terraform-provider-keymint/internal/wire"
	"github.com/keymint/terraform-provider-keymint/keymint"
)

// podman runs podman with its own storage under dir, with what these
// machines allow (vfs, runc): the test leaves nothing behind.
func podman(t *testing.T, dir string, args ...string) string {
	t.Helper()
	base := []string{"--root", filepath.Join(dir, "storage"), "--runroot", filepath.Join(dir, "run"),
		"--storage-driver=vfs", "--runtime", "runc"}
	out, err := exec.Command("podman", append(base, args...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("podman %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return strings.TrimSpace(string(out))
}

// The container image as a user runs it: built from the Containerfile by
// scripts/image.sh, SQLite on a volume, a key minted and verified through
// it, stopped with SIGTERM, started again on the same volume: the same key
// verifies. Its probe (keymint healthcheck) answers inside the container.
func TestContainerImage(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the container image")
	}
	if _, err := exec.LookPath("podman"); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("podman is not installed (Debian's podman and runc packages; .ci/run installs them)")
		}
		t.Skip("podman is not installed")
	}
	dir := t.TempDir()
	t.Cleanup(func() {
		_ = exec.Command("podman", "--root", filepath.Join(dir, "storage"), "--runroot", filepath.Join(dir, "run"), "--storage-driver=vfs", "--runtime", "runc", "rm", "-af").Run()
	})
	build := exec.Command("bash", "../../scripts/image.sh", "keymint:test")
	build.Env = append(os.Environ(), "PODMAN_FLAGS=--root "+filepath.Join(dir, "storage")+" --runroot "+filepath.Join(dir, "run")+" --storage-driver=vfs --runtime runc")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("scripts/image.sh: %v\n%s", err, out)
	}
	volume := filepath.Join(dir, "data")
	if err := os.Mkdir(volume, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(volume, 65532, 65532); err != nil { // the image's user
		t.Fatal(err)
	}
	raw := make([]byte, 32)
	rand.Read(raw)
	token := base64.StdEncoding.EncodeToString(raw)
	port, err := freeLoopbackPort()
	if err != nil {
		t.Fatal(err)
	}
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	run := func(name string) *keymint.Client {
		podman(t, dir, "run", "-d", "--name", name, "--network", "host", "--ulimit", "nofile=1024:1024", "--ulimit", "nproc=1024:1024",
			"-v", volume+":/data", "-e", "KEYMINT_ADDR="+addr, "-e", "KEYMINT_ROOT_TOKEN="+token, "keymint:test")
		deadline := time.Now().Add(30 * time.Second)
		for {
			res, err := http.Get("http://" + addr + "/readyz")
			if err == nil {
				res.Body.Close()
				if res.StatusCode == http.StatusOK {
					break
				}
			}
			if time.Now().After(deadline) {
				t.Fatalf("the container did not become ready: %v\n%s", err, podman(t, dir, "logs", name))
			}
			time.Sleep(50 * time.Millisecond) // another process's start-up: no clock to inject
		}
		c, err := keymint.New("http://"+addr, token)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	stop := func(name string) {
		podman(t, dir, "stop", "-t", "20", name)
		if code := podman(t, dir, "inspect", "-f", "{{.State.ExitCode}}", name); code != "0" {
			t.Fatalf("the container exited %s on SIGTERM, want 0\n%s", code, podman(t, dir, "logs", name))
		}
	}
	ctx := context.Background()
	c := run("first")
	if out := podman(t, dir, "exec", "first", "/keymint", "healthcheck"); out != "ready" {
		t.Fatalf("keymint healthcheck in the container: %q", out)
	}
	if _, err := c.CreateApp(ctx, wire.CreateApp{Slug: "shop", Name: "Shop", Scopes: []string{"read"}, KeyPrefix: "shop"}); err != nil {
		t.Fatal(err)
	}
	k, err := c.CreateKey(ctx, "shop", wire.CreateKey{Name: "k", Scopes: []string{"read"}})
	if err != nil {
		t.Fatal(err)
	}
	if v, err := c.Verify(ctx, wire.VerifyRequest{Key: k.Secret}); err != nil || v.Code != wire.CodeValid {
		t.Fatalf("a new key verifies %v (%v)", v.Code, err)
	}
	stop("first")
	c = run("second")
	if v, err := c.Verify(ctx, wire.VerifyRequest{Key: k.Secret}); err != nil || v.Code != wire.CodeValid {
		t.Fatalf("after a restart on the same volume the key verifies %v (%v)", v.Code, err)
	}
	stop("second")
	if user := podman(t, dir, "image", "inspect", "-f", "{{.Config.User}}", "keymint:test"); user != "65532:65532" {
		t.Errorf("the image runs as %q, want the non-root 65532:65532", user)
	}
}

func freeLoopbackPort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
