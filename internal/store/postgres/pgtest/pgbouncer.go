package pgtest

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// PgBouncer is a throwaway PgBouncer in front of a Server.
type PgBouncer struct {
	Port int
	log  string
}

// StartPgBouncer starts Debian's pgbouncer on a free loopback port in front
// of s, in pool mode mode ("transaction" or "session"), stopped when the
// test ends. Under CI=true a missing pgbouncer fails the test; elsewhere it
// is skipped with the reason.
func (s *Server) StartPgBouncer(tb testing.TB, mode string) *PgBouncer {
	tb.Helper()
	bin, err := exec.LookPath("pgbouncer")
	if err != nil {
		if os.Getenv("CI") == "true" {
			tb.Fatal("pgbouncer is not installed (Debian's pgbouncer package; .ci/run installs it)")
		}
		tb.Skip("pgbouncer is not installed (apt-get install pgbouncer)")
	}
	dir, err := os.MkdirTemp("", "keymint-pgbouncer-")
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { os.RemoveAll(dir) })
	port, err := freePort()
	if err != nil {
		tb.Fatal(err)
	}
	b := &PgBouncer{Port: port, log: filepath.Join(dir, "pgbouncer.log")}
	ini := fmt.Sprintf(`[databases]
* = host=127.0.0.1 port=%d user=postgres
[pgbouncer]
listen_addr = 127.0.0.1
listen_port = %d
unix_socket_dir =
auth_type = trust
auth_file = %s
pool_mode = %s
max_client_conn = 500
default_pool_size = 20
ignore_startup_parameters = extra_float_digits
logfile = %s
`, s.Port, port, filepath.Join(dir, "users.txt"), mode, b.log)
	for name, content := range map[string]string{"pgbouncer.ini": ini, "users.txt": `"postgres" ""` + "\n"} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			tb.Fatal(err)
		}
	}
	cred, err := runAs(dir) // pgbouncer refuses to run as root
	if err != nil {
		tb.Fatal(err)
	}
	cmd := exec.Command(bin, filepath.Join(dir, "pgbouncer.ini"))
	cmd.SysProcAttr = cred
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = newSysProcAttr()
	}
	if err := cmd.Start(); err != nil {
		tb.Fatal(err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	tb.Cleanup(func() { _ = cmd.Process.Kill(); <-done })
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.Dial("tcp", "127.0.0.1:"+strconv.Itoa(port))
		if err == nil {
			_ = c.Close()
			return b
		}
		select {
		case <-done:
			out, _ := os.ReadFile(b.log)
			tb.Fatalf("pgbouncer exited: %s", out)
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			tb.Fatalf("pgbouncer did not listen in 10s")
		}
	}
}

// DSN is the URL of database db through the pooler, with pgx in the
// simple protocol (no prepared statements: what a transaction pooler allows).
func (b *PgBouncer) DSN(db string) string {
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/%s?sslmode=disable&default_query_exec_mode=simple_protocol", b.Port, db)
}

// Log is what pgbouncer logged so far.
func (b *PgBouncer) Log() string {
	out, _ := os.ReadFile(b.log)
	return strings.TrimSpace(string(out))
}
