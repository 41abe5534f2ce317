//go:build unix

package server_test

import (
	"errors"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/keymint/terraform-provider-keymint/internal/server"
)

// TestIdleConnectionsDoNotStarveHealthz: 1,100 connections that send
// nothing (more than --max-conns, and than the 1024 fds the server
// had) must not keep a new client from GET /healthz: at the cap, the
// connection idle longest is closed.
func TestIdleConnectionsDoNotStarveHealthz(t *testing.T) {
	base := startWith(t, server.Config{DB: "sqlite:" + filepath.Join(t.TempDir(), "k.db"), RootToken: "bX0HcE4fVq2m8RkTz1wYpL6nJ3sDgA9u"})
	addr := strings.TrimPrefix(base, "http://")
	// Start raised this process's soft fd limit to its hard limit. Lower it
	// to what the client's connections, the server's (up to --max-conns)
	// and a margin need: without the cap, the server would run out of fds
	// accepting idle connections, as the did.
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		t.Fatal(err)
	}
	const n, margin = 1100, 150
	if lim.Cur < n+server.DefaultMaxConns+margin {
		t.Fatalf("the fd limit %d is too low for this test (it needs %d)", lim.Cur, n+server.DefaultMaxConns+margin)
	}
	lowered := lim
	lowered.Cur = n + server.DefaultMaxConns + margin
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lowered); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim) })
	conns := make([]net.Conn, 0, n)
	t.Cleanup(func() { // before the server stops: Shutdown waits 5s for a new connection to go idle
		for _, c := range conns {
			c.Close()
		}
	})
	for range n {
		c, err := net.DialTimeout("tcp", addr, 2*time.Second)
		if err != nil {
			t.Fatalf("after %d connections: %v", len(conns), err)
		}
		conns = append(conns, c)
	}
	client := &http.Client{Timeout: time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	start := time.Now()
	res, err := client.Get(base + "/healthz")
	if err != nil {
		t.Fatalf("GET /healthz with %d idle connections open: %v (after %s)", n, err, time.Since(start))
	}
	res.Body.Close()
	if res.StatusCode != 200 {
		t.Fatalf("GET /healthz: %d", res.StatusCode)
	}
	t.Logf("%d idle connections: /healthz answered in %s", n, time.Since(start))
	// The first connections were closed to make room, long before the read timeout.
	conns[0].SetReadDeadline(time.Now().Add(2 * time.Second))
	if _, err := conns[0].Read(make([]byte, 1)); !errors.Is(err, io.EOF) && !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("the oldest idle connection: read %v, want it closed by the server", err)
	}
}
