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
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/keymint/terraform-provider-keymint/internal/api"
	"github.com/keymint/terraform-provider-keymint/internal/keyformat"
	"github.com/keymint/terraform-provider-keymint/internal/metrics"
	"github.com/keymint/terraform-provider-keymint/internal/service"
	"github.com/keymint/terraform-provider-keymint/internal/store/postgres"
)

var version = "dev"

const usage = `keymint: API-key lifecycle service

Usage:
  keymint serve [flags]              run the server (keymint serve -h for flags)
  keymint verify [flags] < keyfile   verify a key read from stdin (keymint verify -h)
  keymint reset-root-token [flags]   replace a lost root token (keymint reset-root-token -h)
  keymint migrate [flags]            bring a database's schema up to date (keymint migrate -h)
  keymint copy --from DB --to DB     copy everything from one database to an empty one (keymint copy -h)
  keymint apps <command>             list, get, create, delete apps (keymint apps -h)
  keymint keys <command>             list, get, find, create, rotate, revoke, disable, enable keys (keymint keys -h)
  keymint events [flags]             the audit trail, newest first (keymint events -h)
  keymint version                    print the version

apps, keys and events talk to a server: --endpoint (env KEYMINT_ENDPOINT), --token (env KEYMINT_TOKEN),
-o table|json. Only keys create and keys rotate print a secret: alone, on standard output.

Exit codes: 0 success; 1 failure (the server's problem is printed); 2 usage error;
3 keymint verify: the key is not VALID.
`

// Exit codes, as the usage text documents them.
const (
	exitFailure  = 1
	exitUsage    = 2
	exitNotValid = 3
)

// cli is what a command reads and writes: the process's, or a test's.
type cli struct {
	getenv func(string) string
	stdin  io.Reader
	stdout io.Writer
	stderr io.Writer
}

// usageError is a mistake in the command line: exit 2, nothing done.
type usageError struct{ error }

func usageErrorf(format string, args ...any) error { return usageError{fmt.Errorf(format, args...)} }

func main() {
	c := cli{getenv: os.Getenv, stdin: os.Stdin, stdout: os.Stdout, stderr: os.Stderr}
	os.Exit(exitCode(run(context.Background(), os.Args[1:], c), c.stderr))
}

// exitCode reports err on stderr and returns the exit code for it.
func exitCode(err error, stderr io.Writer) int {
	var usage usageError
	var invalid notValidError
	var unreachable *url.Error
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp):
		return 0
	case errors.As(err, &invalid):
		return exitNotValid // the verdict on stdout says why
	case errors.As(err, &usage):
		fmt.Fprintln(stderr, "keymint:", err)
		return exitUsage
	case errors.As(err, &unreachable):
		fmt.Fprintf(stderr, "keymint: cannot reach the server at %s: %v\nIs it running there? Set KEYMINT_ENDPOINT (or --endpoint) to its URL; the default is http://127.0.0.1:8080.\n",
			strings.TrimSuffix(unreachable.URL, "/"), unreachable.Err)
		return exitFailure
	}
	fmt.Fprintln(stderr, "keymint:", err)
	return exitFailure
}

func run(ctx context.Context, args []string, c cli) error {
	if len(args) == 0 {
		fmt.Fprint(c.stderr, usage)
		return usageErrorf("no command given")
	}
	switch args[0] {
	case "serve":
		return serve(ctx, args[1:], c)
	case "verify":
		return verifyCmd(ctx, args[1:], c)
	case "reset-root-token":
		return resetRootToken(ctx, args[1:], c)
	case "migrate":
		return migrateCmd(ctx, args[1:], c)
	case "copy":
		return copyCmd(ctx, args[1:], c)
	case "apps":
		return group(ctx, "apps", appCommands, args[1:], c)
	case "keys":
		return group(ctx, "keys", keyCommands, args[1:], c)
	case "events":
		return eventsCmd(ctx, newFlagSet("events", "events [--app SLUG] [--key ID] [--limit N]\n\nThe audit trail, newest first: who changed what, when, in which request.", c), c, args[1:])
	case "version", "--version":
		fmt.Fprintln(c.stdout, version)
		return nil
	case "help", "-h", "--help":
		fmt.Fprint(c.stdout, usage)
		return nil
	}
	fmt.Fprint(c.stderr, usage)
	return usageErrorf("unknown command %q", args[0])
}

func envOr(getenv func(string) string, name, def string) string {
	if v := getenv(name); v != "" {
		return v
	}
	return def
}

// newFlagSet is a command's flag set: -h prints usage to stdout and exits 0;
// a bad flag prints usage to stderr and exits 2.
func newFlagSet(name, synopsis string, c cli) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard) // parse errors are reported once, by exitCode
	fs.Usage = func() {
		fs.SetOutput(c.stdout)
		fmt.Fprintf(c.stdout, "Usage: keymint %s\n\n", synopsis)
		fs.PrintDefaults()
		fs.SetOutput(io.Discard)
	}
	return fs
}

// parse parses args; a mistake is a usage error naming the command's help.
func parse(fs *flag.FlagSet, args []string) error {
	err := fs.Parse(args)
	if err == nil && fs.NArg() > 0 {
		// Never echo an argument whole: it may be a key typed where stdin was meant.
		err = fmt.Errorf("unexpected argument %q", keyformat.Redact(fs.Arg(0)))
	}
	if err != nil && !errors.Is(err, flag.ErrHelp) {
		return usageErrorf("%s: %v (see keymint %s -h)", fs.Name(), err, fs.Name())
	}
	return err
}

func serve(ctx context.Context, args []string, c cli) error {
	fs := newFlagSet("serve", "serve [flags]\n\nRuns the server. On the first start with no KEYMINT_ROOT_TOKEN it generates a root token and\nwrites it to --root-token-file, or else to standard output as its only line; logs go to standard error.", c)
	addr := fs.String("addr", envOr(c.getenv, "KEYMINT_ADDR", "127.0.0.1:8080"), "listen address (env KEYMINT_ADDR)")
	db := dbFlag(fs, c)
	lease := fs.Duration("replica-lease", postgres.DefaultLease, "PostgreSQL: how long a replica answers verify from memory after it last proved it had heard of every change; a revoke waits at most this long for a replica that stopped answering")
	maxConns := fs.Int("db-max-conns", 0, "PostgreSQL: connections in the pool (default: 8 per CPU, at least 16)")
	logFormat := fs.String("log-format", envOr(c.getenv, "KEYMINT_LOG_FORMAT", "text"), "log format: text or json (env KEYMINT_LOG_FORMAT)")
	addrFile := fs.String("addr-file", "", "write the bound address here once listening (useful with --addr 127.0.0.1:0)")
	tokenFile := fs.String("root-token-file", envOr(c.getenv, "KEYMINT_ROOT_TOKEN_FILE", ""), "write a generated root token to this new file (mode 0600) rather than to standard output (env KEYMINT_ROOT_TOKEN_FILE)")
	retentionFlag := fs.String("idempotency-retention", envOr(c.getenv, "KEYMINT_IDEMPOTENCY_RETENTION", service.DefaultIdempotencyRetention.String()), "how long an Idempotency-Key is remembered; a retry after it is a new request (env KEYMINT_IDEMPOTENCY_RETENTION)")
	eventRetentionFlag := fs.String("event-retention", envOr(c.getenv, "KEYMINT_EVENT_RETENTION", service.DefaultEventRetention.String()), "how long audit events are kept (env KEYMINT_EVENT_RETENTION)")
	cacheSize := fs.Int("verify-cache-size", 200000, "secrets the verify path keeps in memory (0 disables); a write drops what it changed before it answers, on every replica, so it never serves a stale verdict")
	metricsAddr := fs.String("metrics-addr", envOr(c.getenv, "KEYMINT_METRICS_ADDR", ""), "serve Prometheus metrics at http://<addr>/metrics, e.g. 127.0.0.1:9090; off by default (env KEYMINT_METRICS_ADDR)")
	debugAddr := fs.String("debug-addr", envOr(c.getenv, "KEYMINT_DEBUG_ADDR", ""), "serve net/http/pprof here, e.g. 127.0.0.1:6060; off by default (env KEYMINT_DEBUG_ADDR)")
	if err := parse(fs, args); err != nil {
		return err
	}
	// Every flag is checked before anything is opened, generated or stored.
	var handler slog.Handler
	switch *logFormat {
	case "text":
		handler = slog.NewTextHandler(c.stderr, nil)
	case "json":
		handler = slog.NewJSONHandler(c.stderr, nil)
	default:
		return usageErrorf("serve: --log-format (or KEYMINT_LOG_FORMAT) must be text or json, got %q", *logFormat)
	}
	retention, err := time.ParseDuration(*retentionFlag)
	if err != nil || retention < time.Minute {
		return usageErrorf("serve: --idempotency-retention (or KEYMINT_IDEMPOTENCY_RETENTION) must be a duration of at least 1m (clients retry for minutes), got %q", *retentionFlag)
	}
	eventRetention, err := time.ParseDuration(*eventRetentionFlag)
	if err != nil || eventRetention < time.Hour {
		return usageErrorf("serve: --event-retention (or KEYMINT_EVENT_RETENTION) must be a duration of at least 1h, got %q", *eventRetentionFlag)
	}
	if *cacheSize < 0 {
		return usageErrorf("serve: --verify-cache-size must be 0 or more, got %d", *cacheSize)
	}
	target, err := parseDB(*db)
	if err != nil {
		return err
	}
	if *lease < 100*time.Millisecond || *maxConns < 0 {
		return usageErrorf("serve: --replica-lease must be at least 100ms and --db-max-conns 0 or more")
	}
	if _, _, err := net.SplitHostPort(*addr); err != nil {
		return usageErrorf("serve: --addr (or KEYMINT_ADDR) %q is not host:port, e.g. 127.0.0.1:8080", *addr)
	}
	if err := checkDebugAddr(*debugAddr); err != nil {
		return err
	}
	if _, _, err := net.SplitHostPort(*metricsAddr); *metricsAddr != "" && err != nil {
		return usageErrorf("serve: --metrics-addr (or KEYMINT_METRICS_ADDR) %q is not host:port, e.g. 127.0.0.1:9090", *metricsAddr)
	}
	rootFromEnv := c.getenv("KEYMINT_ROOT_TOKEN")
	if rootFromEnv != "" && len(rootFromEnv) < minRootTokenLen {
		return usageErrorf("serve: KEYMINT_ROOT_TOKEN must be at least %d characters (it opens everything); generate one with: openssl rand -base64 32", minRootTokenLen)
	}
	for flagName, file := range map[string]string{"--root-token-file": *tokenFile, "--addr-file": *addrFile} {
		if err := checkNewFile(flagName, file, flagName == "--root-token-file"); err != nil {
			return err
		}
	}
	log := slog.New(handler)

	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()

	// Listen first: a server that cannot serve leaves no database behind,
	// and generates no root token that nobody would see. The address file is
	// written once everything is ready, for whoever waits on it.
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return err
	}
	defer ln.Close()
	var dbg, metricsLn net.Listener
	if *debugAddr != "" {
		if dbg, err = net.Listen("tcp", *debugAddr); err != nil {
			return fmt.Errorf("--debug-addr: %w", err)
		}
		defer dbg.Close()
	}
	var m *metrics.Metrics
	if *metricsAddr != "" {
		if metricsLn, err = net.Listen("tcp", *metricsAddr); err != nil {
			return fmt.Errorf("--metrics-addr: %w", err)
		}
		defer metricsLn.Close()
		m = metrics.New()
	}
	opened, err := openStore(ctx, target, storeOptions{cacheSize: *cacheSize, metrics: m, lease: *lease, maxConns: *maxConns, log: log})
	if err != nil {
		return err
	}
	st := opened.store
	defer st.Close()
	replicaCtx, stopReplica := context.WithCancel(context.WithoutCancel(ctx))
	replicaDone := make(chan struct{})
	if opened.replica != nil {
		go func() { opened.replica.Run(replicaCtx); close(replicaDone) }()
		log.Info("replica", "id", opened.replica.ID(), "lease", lease.String())
	} else {
		close(replicaDone)
	}
	// Last out: while requests finish, writes still reach the other replicas.
	defer func() { stopReplica(); <-replicaDone }()
	if rootFromEnv != "" {
		log.Info("using the root token from KEYMINT_ROOT_TOKEN")
	}
	rootHash, err := service.EnsureRootToken(ctx, st, rootFromEnv, func(token string) error {
		where, err := deliverRootToken(token, *tokenFile, c.stdout)
		if err == nil {
			log.Warn("generated a root token; keymint keeps only its hash, so it is shown only this once", "written_to", where)
		}
		return err
	})
	if err != nil {
		return err
	}
	svc := service.New(service.Config{Store: st, RootTokenHash: rootHash, Logger: log, IdempotencyRetention: retention, EventRetention: eventRetention, Metrics: m, RateLimits: opened.limits})
	if err := svc.Bootstrap(ctx); err != nil {
		return err
	}
	srv := api.New(svc, log, m)
	if metricsLn != nil {
		mux := http.NewServeMux()
		mux.Handle("GET /metrics", m.Handler())
		ms := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
		go func() { _ = ms.Serve(metricsLn) }()
		defer ms.Close()
		log.Info("metrics listener", "url", "http://"+metricsLn.Addr().String()+"/metrics")
	}
	if dbg != nil {
		// Profiling only, on loopback. It carries no keymint data.
		ds := &http.Server{Handler: http.DefaultServeMux, ReadHeaderTimeout: 10 * time.Second}
		go func() { _ = ds.Serve(dbg) }()
		defer ds.Close()
		log.Info("debug listener (pprof)", "addr", dbg.Addr().String())
	}
	hs := &http.Server{Handler: srv, ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 30 * time.Second,
		WriteTimeout: 30 * time.Second, IdleTimeout: 120 * time.Second, MaxHeaderBytes: maxHeaderBytes}
	if *addrFile != "" {
		if err := os.WriteFile(*addrFile, []byte(ln.Addr().String()), 0o600); err != nil {
			return err
		}
	}
	usageCtx, stopUsage := context.WithCancel(context.WithoutCancel(ctx))
	usageDone := make(chan struct{})
	go func() { svc.Run(usageCtx, time.Second, time.Minute); close(usageDone) }()

	serveErr := make(chan error, 1)
	go func() { serveErr <- hs.Serve(ln) }()
	log.Info("keymint listening", "addr", ln.Addr().String(), "db", target.String(), "version", version)

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

// minRootTokenLen is the shortest KEYMINT_ROOT_TOKEN accepted.
const minRootTokenLen = 24

// checkDebugAddr refuses a pprof address that is not on loopback: profiles
// and goroutine dumps are for the operator on the machine.
func checkDebugAddr(addr string) error {
	if addr == "" {
		return nil
	}
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return usageErrorf("serve: --debug-addr %q is not host:port, e.g. 127.0.0.1:6060", addr)
	}
	if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
		return usageErrorf("serve: --debug-addr %q is not a loopback address; pprof is served on loopback only (e.g. 127.0.0.1:6060)", addr)
	}
	return nil
}

// checkNewFile checks that a file a flag names can be created: its directory
// exists, and (if mustBeNew) the file does not.
func checkNewFile(flagName, path string, mustBeNew bool) error {
	if path == "" {
		return nil
	}
	if fi, err := os.Stat(filepath.Dir(path)); err != nil || !fi.IsDir() {
		return usageErrorf("%s %s: the directory %s does not exist", flagName, path, filepath.Dir(path))
	}
	if _, err := os.Lstat(path); mustBeNew && err == nil {
		return usageErrorf("%s %s: the file exists; name a new file (a root token is written only once)", flagName, path)
	}
	return nil
}

// maxHeaderBytes bounds a request's headers: a token and a few others fit
// many times over. Past it Go's HTTP server answers 431 in plain text.
const maxHeaderBytes = 32 << 10

// deliverRootToken writes a generated root token to file (a new file, mode
// 0600), or to stdout as its only line, and says where it went.
func deliverRootToken(token, file string, stdout io.Writer) (string, error) {
	if file == "" {
		_, err := fmt.Fprintln(stdout, token)
		return "standard output", err
	}
	f, err := os.OpenFile(file, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return "", fmt.Errorf("writing the root token: %w", err)
	}
	if _, err := fmt.Fprintln(f, token); err != nil {
		f.Close()
		_ = os.Remove(file)
		return "", err
	}
	if err := f.Close(); err != nil {
		_ = os.Remove(file)
		return "", err
	}
	return file, nil
}

// resetRootToken replaces the stored root token, for an operator who has
// the database and lost the token. The server must be stopped: the
// database's lock refuses a second user.
func resetRootToken(ctx context.Context, args []string, c cli) error {
	fs := newFlagSet("reset-root-token", "reset-root-token [flags]\n\nReplaces the stored root token with a new one, written to --root-token-file or to standard output.\nStop the server first; the old root token stops working.", c)
	db := dbFlag(fs, c)
	tokenFile := fs.String("root-token-file", envOr(c.getenv, "KEYMINT_ROOT_TOKEN_FILE", ""), "write the new root token to this new file (mode 0600) rather than to standard output (env KEYMINT_ROOT_TOKEN_FILE)")
	if err := parse(fs, args); err != nil {
		return err
	}
	if c.getenv("KEYMINT_ROOT_TOKEN") != "" {
		return errors.New("KEYMINT_ROOT_TOKEN is set, and a server started with it uses it instead of the stored token: change or unset the variable instead")
	}
	target, err := parseDB(*db)
	if err != nil {
		return err
	}
	if err := target.mustExist("reset-root-token", "--db"); err != nil {
		return err
	}
	if err := checkNewFile("--root-token-file", *tokenFile, true); err != nil {
		return err
	}
	opened, err := openStore(ctx, target, storeOptions{})
	if err != nil {
		return err
	}
	st := opened.store
	defer st.Close()
	return service.ResetRootToken(ctx, st, func(token string) error {
		where, err := deliverRootToken(token, *tokenFile, c.stdout)
		if err == nil {
			fmt.Fprintf(c.stderr, "keymint: the root token is replaced; the new one is on %s and is shown only this once\n", where)
		}
		return err
	})
}
