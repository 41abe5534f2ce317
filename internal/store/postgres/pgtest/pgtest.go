// Package pgtest starts a throwaway PostgreSQL server for tests: initdb and
// postgres from the machine's PostgreSQL binaries, into a temporary
// directory, on a free loopback port. Under CI=true a machine without
// PostgreSQL fails the tests; elsewhere they are skipped, saying why.
package pgtest

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // the pgx driver for database/sql
)

// Server is a running throwaway PostgreSQL.
type Server struct {
	Port int
	dir  string
	cmd  *exec.Cmd
	done chan struct{}
	n    atomic.Int64
	log  string
}

// Bin finds a PostgreSQL binary: on PATH, else under /usr/lib/postgresql/*/bin (newest).
func Bin(name string) (string, error) {
	if p, err := exec.LookPath(name); err == nil {
		return p, nil
	}
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Slice(dirs, func(i, j int) bool { return version(dirs[i]) > version(dirs[j]) })
	for _, d := range dirs {
		if p := filepath.Join(d, name); isExec(p) {
			return p, nil
		}
	}
	return "", fmt.Errorf("%s not found on PATH or under /usr/lib/postgresql/*/bin: install PostgreSQL (Debian: apt-get install postgresql)", name)
}

func version(binDir string) int {
	v, _ := strconv.Atoi(filepath.Base(filepath.Dir(binDir)))
	return v
}

func isExec(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.Mode()&0o111 != 0
}

var (
	shared     *Server
	sharedErr  error
	sharedOnce sync.Once
)

// Shared returns the test binary's server, starting it on first use; call
// Stop from TestMain. Without PostgreSQL, the test fails under CI=true and
// is skipped elsewhere.
func Shared(tb testing.TB) *Server {
	tb.Helper()
	sharedOnce.Do(func() { shared, sharedErr = Start() })
	if sharedErr != nil {
		if os.Getenv("CI") == "true" {
			tb.Fatalf("PostgreSQL is needed (CI=true): %v", sharedErr)
		}
		tb.Skipf("no PostgreSQL here (under CI=true this fails): %v", sharedErr)
	}
	return shared
}

// StopShared stops the shared server, if one was started.
func StopShared() {
	if shared != nil {
		shared.Stop()
	}
}

// Start runs initdb into a temporary directory and starts postgres on it,
// with settings (-c name=value ...) after the test defaults.
func Start(settings ...string) (*Server, error) {
	initdb, err := Bin("initdb")
	if err != nil {
		return nil, err
	}
	postgres, err := Bin("postgres")
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "keymint-pg-")
	if err != nil {
		return nil, err
	}
	s := &Server{dir: dir, done: make(chan struct{}), log: filepath.Join(dir, "postgres.log")}
	data := filepath.Join(dir, "data")
	cred, err := runAs(dir)
	if err != nil {
		return nil, s.fail(err)
	}
	init := exec.Command(initdb, "-D", data, "-U", "postgres", "--auth=trust", "--no-sync", "-E", "UTF8", "--locale=C")
	init.SysProcAttr = cred
	if out, err := init.CombinedOutput(); err != nil {
		return nil, s.fail(fmt.Errorf("initdb: %w\n%s", err, out))
	}
	if s.Port, err = freePort(); err != nil {
		return nil, s.fail(err)
	}
	logf, err := os.Create(s.log)
	if err != nil {
		return nil, s.fail(err)
	}
	if uid, gid, ok := runsAs(cred); ok {
		_ = os.Chown(s.log, uid, gid)
	}
	// Durability is not under test: fsync off makes the cluster quick to use.
	s.cmd = exec.Command(postgres, "-D", data, "-p", strconv.Itoa(s.Port), "-c", "listen_addresses=127.0.0.1",
		"-c", "unix_socket_directories="+dir, "-c", "fsync=off", "-c", "max_connections=300", "-c", "shared_buffers=64MB")
	s.cmd.Args = append(s.cmd.Args, settings...)
	s.cmd.Stdout, s.cmd.Stderr = logf, logf
	s.cmd.SysProcAttr = cred
	if s.cmd.SysProcAttr == nil {
		s.cmd.SysProcAttr = newSysProcAttr()
	}
	if err := s.cmd.Start(); err != nil {
		return nil, s.fail(err)
	}
	go func() { _ = s.cmd.Wait(); logf.Close(); close(s.done) }()
	deadline := time.Now().Add(30 * time.Second)
	for {
		db, err := sql.Open("pgx", s.DSN("postgres"))
		if err == nil {
			err = db.Ping()
			db.Close()
		}
		if err == nil {
			return s, nil
		}
		select {
		case <-s.done:
			out, _ := os.ReadFile(s.log)
			return nil, s.fail(fmt.Errorf("postgres exited: %s", out))
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			s.Stop()
			return nil, fmt.Errorf("postgres did not accept connections in 30s: %w", err)
		}
	}
}

func (s *Server) fail(err error) error {
	os.RemoveAll(s.dir)
	return err
}

// runAs hands dir to the postgres user when running as root (initdb and
// postgres refuse root) and returns the attributes to run them as that user.
func runAs(dir string) (*syscallAttr, error) {
	if os.Geteuid() != 0 {
		return nil, nil
	}
	u, err := user.Lookup("postgres")
	if err != nil {
		return nil, fmt.Errorf("running as root, PostgreSQL needs a postgres user to run as: %w", err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	if err := os.Chown(dir, uid, gid); err != nil {
		return nil, err
	}
	return asUser(uint32(uid), uint32(gid)), nil
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// DSN is the URL of database db.
func (s *Server) DSN(db string) string {
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/%s?sslmode=disable", s.Port, db)
}

// NewDatabase creates an empty database, dropped when the test ends, and returns its URL.
func (s *Server) NewDatabase(tb testing.TB) string {
	tb.Helper()
	name := fmt.Sprintf("t%d_%d", os.Getpid(), s.n.Add(1))
	if err := s.Exec(context.Background(), "postgres", "CREATE DATABASE "+name); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		_ = s.Exec(context.Background(), "postgres", "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)")
	})
	return s.DSN(name)
}

// Exec runs statement in database db as the superuser.
func (s *Server) Exec(ctx context.Context, db, statement string, args ...any) error {
	conn, err := sql.Open("pgx", s.DSN(db))
	if err != nil {
		return err
	}
	defer conn.Close()
	_, err = conn.ExecContext(ctx, statement, args...)
	return err
}

// Stop stops the server and removes its files.
func (s *Server) Stop() {
	if s.cmd != nil && s.cmd.Process != nil {
		_ = s.cmd.Process.Signal(os.Interrupt) // fast shutdown
		select {
		case <-s.done:
		case <-time.After(10 * time.Second):
			_ = s.cmd.Process.Kill()
			<-s.done
		}
	}
	if err := os.RemoveAll(s.dir); err != nil && !errors.Is(err, os.ErrNotExist) {
		fmt.Fprintln(os.Stderr, "pgtest:", err)
	}
}
