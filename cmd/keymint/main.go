// Command keymint is the key-lifecycle server.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	_ "net/http/pprof" // served only on --debug-addr
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/keymint/terraform-provider-keymint/internal/api"
	"github.com/keymint/terraform-provider-keymint/internal/service"
	"github.com/keymint/terraform-provider-keymint/internal/store"
	"github.com/keymint/terraform-provider-keymint/internal/store/sqlite"
)

var version = "dev"

const usage = `keymint: API-key lifecycle service

Usage:
  keymint serve [flags]    run the server (keymint serve -h for flags)
  keymint verify [flags]   verify a key read from stdin (keymint verify -h)
  keymint version          print the version
`

func main() {
	if err := run(context.Background(), os.Args[1:], os.Getenv, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "keymint:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, getenv func(string) string, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return errors.New("no command given")
	}
	switch args[0] {
	case "serve":
		return serve(ctx, args[1:], getenv, stderr)
	case "verify":
		return verifyCmd(ctx, args[1:], getenv, os.Stdin, os.Stdout, stderr)
	case "version", "--version":
		fmt.Println(version)
		return nil
	case "help", "-h", "--help":
		fmt.Fprint(stderr, usage)
		return nil
	}
	fmt.Fprint(stderr, usage)
	return fmt.Errorf("unknown command %q", args[0])
}

func envOr(getenv func(string) string, name, def string) string {
	if v := getenv(name); v != "" {
		return v
	}
	return def
}

func serve(ctx context.Context, args []string, getenv func(string) string, stderr io.Writer) error {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	addr := fs.String("addr", envOr(getenv, "KEYMINT_ADDR", "127.0.0.1:8080"), "listen address (env KEYMINT_ADDR)")
	db := fs.String("db", envOr(getenv, "KEYMINT_DB", "sqlite:keymint.db"), "database: sqlite:<path> (env KEYMINT_DB)")
	logFormat := fs.String("log-format", envOr(getenv, "KEYMINT_LOG_FORMAT", "text"), "log format: text or json (env KEYMINT_LOG_FORMAT)")
	addrFile := fs.String("addr-file", "", "write the bound address here once listening (useful with --addr 127.0.0.1:0)")
	cacheSize := fs.Int("verify-cache-size", 200000, "secrets the verify path keeps in memory (SQLite only; 0 disables); writes empty it, so it never serves a stale verdict")
	debugAddr := fs.String("debug-addr", envOr(getenv, "KEYMINT_DEBUG_ADDR", ""), "serve net/http/pprof here, e.g. 127.0.0.1:6060; off by default (env KEYMINT_DEBUG_ADDR)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	var handler slog.Handler = slog.NewTextHandler(stderr, nil)
	if *logFormat == "json" {
		handler = slog.NewJSONHandler(stderr, nil)
	}
	log := slog.New(handler)

	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()

	st, err := openStore(ctx, *db, *cacheSize)
	if err != nil {
		return err
	}
	defer st.Close()

	rootHash, generated, err := service.EnsureRootToken(ctx, st, getenv("KEYMINT_ROOT_TOKEN"))
	if err != nil {
		return err
	}
	if generated != "" {
		fmt.Fprintf(stderr, "\nGenerated a root token. It is shown only this once; keymint keeps only its hash:\n\n    %s\n\nExport it as KEYMINT_TOKEN for the provider, or set KEYMINT_ROOT_TOKEN to choose your own.\n\n", generated)
	}
	svc := service.New(service.Config{Store: st, RootTokenHash: rootHash, Logger: log})
	if err := svc.Bootstrap(ctx); err != nil {
		return err
	}
	srv := api.New(svc, log)
	ln, err := listen(*addr, *addrFile)
	if err != nil {
		return err
	}
	if *debugAddr != "" {
		// Profiling only: keep it on loopback. It carries no keymint data.
		dbg := &http.Server{Addr: *debugAddr, Handler: http.DefaultServeMux, ReadHeaderTimeout: 10 * time.Second}
		go func() { log.Info("debug listener", "addr", *debugAddr, "err", dbg.ListenAndServe()) }()
		defer dbg.Close()
	}
	hs := &http.Server{Handler: srv, ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 30 * time.Second,
		WriteTimeout: 30 * time.Second, IdleTimeout: 120 * time.Second}
	usageCtx, stopUsage := context.WithCancel(context.WithoutCancel(ctx))
	usageDone := make(chan struct{})
	go func() { svc.Run(usageCtx, time.Second); close(usageDone) }()

	serveErr := make(chan error, 1)
	go func() { serveErr <- hs.Serve(ln) }()
	log.Info("keymint listening", "addr", ln.Addr().String(), "db", *db, "version", version)

	select {
	case err := <-serveErr:
		stopUsage()
		<-usageDone
		return err
	case <-ctx.Done():
	}
	log.Info("shutting down: finishing in-flight requests")
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err = hs.Shutdown(shutdownCtx)
	stopUsage() // flushes last_used_at once more after the last request
	<-usageDone
	log.Info("stopped")
	return err
}

// listen listens on addr and, if addrFile is set, writes the bound address
// there, so a caller that asked for port 0 can find the server.
func listen(addr, addrFile string) (net.Listener, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	if addrFile != "" {
		if err := os.WriteFile(addrFile, []byte(ln.Addr().String()), 0o600); err != nil {
			ln.Close()
			return nil, err
		}
	}
	return ln, nil
}

func openStore(ctx context.Context, dsn string, cacheSize int) (store.Store, error) {
	scheme, rest, _ := strings.Cut(dsn, ":")
	switch scheme {
	case "sqlite":
		if rest == "" {
			return nil, errors.New("--db sqlite: needs a file path, e.g. sqlite:keymint.db")
		}
		st, err := sqlite.Open(ctx, rest)
		if err != nil {
			return nil, err
		}
		if cacheSize > 0 {
			// Sound because sqlite.Open admits one server per file: every write passes here.
			return store.NewVerifyCache(st, cacheSize), nil
		}
		return st, nil
	}
	return nil, fmt.Errorf("--db %q: unsupported database; use sqlite:<path>", dsn)
}
