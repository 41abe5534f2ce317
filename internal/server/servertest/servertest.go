// Package servertest runs a real keymint server in process, on SQLite in a
// temporary directory and a free loopback port, for the tests and examples of
// the packages that talk to it.
package servertest

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"path/filepath"
	"sync"
	"testing"

	"github.com/keymint/terraform-provider-keymint/internal/server"
)

// Server is a running keymint server.
type Server struct {
	URL       string // e.g. http://127.0.0.1:41234
	RootToken string

	cancel context.CancelFunc
	done   chan error
	once   sync.Once
	err    error
}

// Start runs a server on a SQLite database in dir until Stop.
func Start(dir string) (*Server, error) {
	token := make([]byte, 32)
	rand.Read(token)
	s := &Server{RootToken: base64.StdEncoding.EncodeToString(token), done: make(chan error, 1)}
	ctx, cancel := context.WithCancel(context.Background())
	srv, err := server.Start(ctx, server.Config{Addr: "127.0.0.1:0", DB: "sqlite:" + filepath.Join(dir, "keymint.db"),
		RootToken: s.RootToken, CacheSize: 1000})
	if err != nil {
		cancel()
		return nil, err
	}
	s.URL, s.cancel = "http://"+srv.Addr(), cancel
	go func() { s.done <- srv.Serve(ctx) }()
	return s, nil
}

// New starts a server that stops when the test ends.
func New(t testing.TB) *Server {
	t.Helper()
	s, err := Start(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.Stop(); err != nil {
			t.Error(err)
		}
	})
	return s
}

// Stop shuts the server down and waits for it; later calls return the same.
func (s *Server) Stop() error {
	s.once.Do(func() {
		s.cancel()
		s.err = <-s.done
	})
	return s.err
}
