// Command keymint is the key-lifecycle server.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/keymint/terraform-provider-keymint/internal/keyformat"
	"github.com/keymint/terraform-provider-keymint/internal/logbuf"
	"github.com/keymint/terraform-provider-keymint/internal/portal"
	"github.com/keymint/terraform-provider-keymint/internal/server"
	"github.com/keymint/terraform-provider-keymint/internal/service"
	"github.com/keymint/terraform-provider-keymint/internal/store/postgres"
)

var version = "dev"

// usage is the root command's help: the commands are listed by cobra.
const usage = `keymint: API-key lifecycle service.

The operator's commands (apps, keys, events, whoami, verify) talk to a server:
--endpoint (env KEYMINT_ENDPOINT), --token or --token-file (env KEYMINT_TOKEN or
KEYMINT_TOKEN_FILE), --profile (env KEYMINT_PROFILE; profiles live in
` + "`keymint profile`" + `'s config file), -o table|wide|json. Data goes to standard output,
messages to standard error; keys create and keys rotate print the secret alone.

Exit codes: 0 success; 1 failure (the server's problem is printed); 2 usage error
(nothing was sent); 3 keymint verify: the key is not the expected verdict (VALID).`

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
		fmt.Fprintf(stderr, "keymint: cannot reach the server at %s: %v\nIs it running there? Set KEYMINT_ENDPOINT (or --endpoint, or a profile's endpoint) to its URL; the default is http://127.0.0.1:8080.\n",
			strings.TrimSuffix(unreachable.URL, "/"), unreachable.Err)
		return exitFailure
	}
	fmt.Fprintln(stderr, "keymint:", err)
	return exitFailure
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
		printFlags(c.stdout, fs)
		fs.SetOutput(io.Discard)
	}
	return fs
}

// printFlags lists fs's flags as the other commands (pflag) name them,
// --name; Go's flag package prints -name, though it takes both.
func printFlags(w io.Writer, fs *flag.FlagSet) {
	fs.VisitAll(func(f *flag.Flag) {
		typ, usage := flag.UnquoteUsage(f)
		fmt.Fprintf(w, "  --%s", f.Name)
		if typ != "" {
			fmt.Fprintf(w, " %s", typ)
		}
		fmt.Fprintf(w, "\n    \t%s", strings.ReplaceAll(usage, "\n", "\n    \t"))
		def := f.DefValue
		if u, err := url.Parse(def); err == nil && u.User != nil {
			def = u.Redacted() // a default from KEYMINT_DB may hold a password
		}
		switch {
		case def == "" || def == "false" || typ != "string" && (def == "0" || def == "0s"):
		case typ == "string":
			fmt.Fprintf(w, " (default %q)", def)
		default:
			fmt.Fprintf(w, " (default %v)", def)
		}
		fmt.Fprintln(w)
	})
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
	listenDB := fs.String("listen-db", envOr(c.getenv, "KEYMINT_LISTEN_DB", ""), "PostgreSQL behind a transaction pooler (PgBouncer): a direct postgres:// URL to the same database for the replica's invalidation session; queries still use --db (env KEYMINT_LISTEN_DB)")
	lease := fs.String("replica-lease", envOr(c.getenv, "KEYMINT_REPLICA_LEASE", postgres.DefaultLease.String()), "PostgreSQL: how long a replica answers verify from memory after it last proved it had heard of every change; a revoke waits at most the longest lease any replica registered for a replica that stopped answering (env KEYMINT_REPLICA_LEASE)")
	maxConns := fs.String("db-max-conns", envOr(c.getenv, "KEYMINT_DB_MAX_CONNS", "0"), "PostgreSQL: connections in the pool; 0 means 8 per CPU, at least 16 (env KEYMINT_DB_MAX_CONNS)")
	listenerConns := fs.String("max-conns", envOr(c.getenv, "KEYMINT_MAX_CONNS", strconv.Itoa(server.DefaultMaxConns)), "client connections each listener (API, metrics, debug) holds at once; at the cap a new one closes the connection idle longest (env KEYMINT_MAX_CONNS)")
	tlsCert := fs.String("tls-cert", envOr(c.getenv, "KEYMINT_TLS_CERT", ""), "serve HTTPS (TLS 1.2+, HTTP/2) with this PEM certificate (chain); re-read when it changes, no restart needed (env KEYMINT_TLS_CERT)")
	tlsKey := fs.String("tls-key", envOr(c.getenv, "KEYMINT_TLS_KEY", ""), "the PEM private key of --tls-cert (env KEYMINT_TLS_KEY)")
	logFormat := fs.String("log-format", envOr(c.getenv, "KEYMINT_LOG_FORMAT", "text"), "log format: text or json (env KEYMINT_LOG_FORMAT)")
	addrFile := fs.String("addr-file", "", "write the bound address here once listening (useful with --addr 127.0.0.1:0)")
	tokenFile := fs.String("root-token-file", envOr(c.getenv, "KEYMINT_ROOT_TOKEN_FILE", ""), "on the first start, write the generated root token to this new file (mode 0600) rather than to standard output; later starts leave it alone (env KEYMINT_ROOT_TOKEN_FILE)")
	retentionFlag := fs.String("idempotency-retention", envOr(c.getenv, "KEYMINT_IDEMPOTENCY_RETENTION", service.DefaultIdempotencyRetention.String()), "how long an Idempotency-Key is remembered; a retry after it is a new request (env KEYMINT_IDEMPOTENCY_RETENTION)")
	eventRetentionFlag := fs.String("event-retention", envOr(c.getenv, "KEYMINT_EVENT_RETENTION", service.DefaultEventRetention.String()), "how long audit events are kept (env KEYMINT_EVENT_RETENTION)")
	cacheSize := fs.Int("verify-cache-size", 200000, "secrets the verify path keeps in memory (0 disables); a write drops what it changed before it answers, on every replica, so it never serves a stale verdict")
	metricsAddr := fs.String("metrics-addr", envOr(c.getenv, "KEYMINT_METRICS_ADDR", ""), "serve Prometheus metrics at http://<addr>/metrics, e.g. 127.0.0.1:9090; off by default (env KEYMINT_METRICS_ADDR)")
	sessionIdle := fs.String("session-idle-timeout", envOr(c.getenv, "KEYMINT_SESSION_IDLE_TIMEOUT", portal.DefaultIdleTimeout.String()), "portal: a session not used for this long ends (env KEYMINT_SESSION_IDLE_TIMEOUT)")
	sessionMaxAge := fs.String("session-max-age", envOr(c.getenv, "KEYMINT_SESSION_MAX_AGE", portal.DefaultAbsoluteTimeout.String()), "portal: every session ends this long after sign-in (env KEYMINT_SESSION_MAX_AGE)")
	debugAddr := fs.String("debug-addr", envOr(c.getenv, "KEYMINT_DEBUG_ADDR", ""), "serve net/http/pprof here, e.g. 127.0.0.1:6060; off by default (env KEYMINT_DEBUG_ADDR)")
	if err := parse(fs, args); err != nil {
		return err
	}
	if *logFormat != "text" && *logFormat != "json" {
		return usageErrorf("serve: --log-format (or KEYMINT_LOG_FORMAT) must be text or json, got %q", *logFormat)
	}
	// A line per request would be a write(2) per verify: lines are buffered
	// and flushed every 100 ms, at once for a warning, and at shutdown.
	logOut := logbuf.New(c.stderr, logbuf.DefaultInterval)
	defer logOut.Close()
	handler := logbuf.NewHandler(logOut, *logFormat == "json")
	durations := map[string]*time.Duration{}
	for name, v := range map[string]string{"--idempotency-retention (or KEYMINT_IDEMPOTENCY_RETENTION)": *retentionFlag,
		"--event-retention (or KEYMINT_EVENT_RETENTION)": *eventRetentionFlag, "--replica-lease (or KEYMINT_REPLICA_LEASE)": *lease,
		"--session-idle-timeout (or KEYMINT_SESSION_IDLE_TIMEOUT)": *sessionIdle, "--session-max-age (or KEYMINT_SESSION_MAX_AGE)": *sessionMaxAge} {
		d, err := time.ParseDuration(v)
		if err != nil {
			return usageErrorf("serve: %s must be a duration such as 2s, 1h or 24h, got %q", name, v)
		}
		durations[name] = &d
	}
	conns, err := strconv.Atoi(*maxConns)
	if err != nil {
		return usageErrorf("serve: --db-max-conns (or KEYMINT_DB_MAX_CONNS) must be a whole number, got %q", *maxConns)
	}
	lconns, err := strconv.Atoi(*listenerConns)
	if err != nil {
		return usageErrorf("serve: --max-conns (or KEYMINT_MAX_CONNS) must be a whole number, got %q", *listenerConns)
	}
	cfg := server.Config{
		Addr: *addr, DB: *db, ListenDB: *listenDB, MaxConns: conns, ListenerMaxConns: lconns, CacheSize: *cacheSize,
		TLSCert: *tlsCert, TLSKey: *tlsKey,
		Lease:                *durations["--replica-lease (or KEYMINT_REPLICA_LEASE)"],
		IdempotencyRetention: *durations["--idempotency-retention (or KEYMINT_IDEMPOTENCY_RETENTION)"],
		EventRetention:       *durations["--event-retention (or KEYMINT_EVENT_RETENTION)"],
		SessionIdleTimeout:   *durations["--session-idle-timeout (or KEYMINT_SESSION_IDLE_TIMEOUT)"],
		SessionMaxAge:        *durations["--session-max-age (or KEYMINT_SESSION_MAX_AGE)"],
		RootToken:            c.getenv("KEYMINT_ROOT_TOKEN"), RootTokenFile: *tokenFile, AddrFile: *addrFile,
		MetricsAddr: *metricsAddr, DebugAddr: *debugAddr, Version: version,
		Log: slog.New(handler), LogDropped: logOut.Dropped, Stdout: c.stdout,
	}
	// Every setting is checked before anything is opened, generated or stored.
	if err := cfg.Validate(); err != nil {
		return usageError{err}
	}
	if limit := tuneGC(c.getenv); limit > 0 {
		cfg.Log.Debug("garbage collector", "gogc", serveGCPercent, "memory_limit_mib", limit>>20)
	}
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	err = server.Run(ctx, cfg)
	if ce := (server.ConfigError{}); errors.As(err, &ce) {
		return usageError{err} // found only once the database is open, e.g. a root token file that exists
	}
	return err
}

// resetRootToken replaces the stored root token, for an operator who has
// the database and lost the token. On SQLite the server must be stopped
// (the database's lock refuses a second user); on PostgreSQL the running
// replicas hear of it like any write and take the new token at once.
func resetRootToken(ctx context.Context, args []string, c cli) error {
	fs := newFlagSet("reset-root-token", "reset-root-token [flags]\n\nReplaces the stored root token with a new one, written to --root-token-file or to standard output.\nSQLite: stop the server first. PostgreSQL: running replicas switch to the new token before this returns.\nThe old root token stops working.", c)
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
	if err := mustExist(target, "reset-root-token", "--db"); err != nil {
		return err
	}
	if err := server.CheckNewFile(server.RootTokenFileFlag, *tokenFile, true); err != nil {
		return usageError{err}
	}
	opened, err := server.OpenStore(ctx, target, server.StoreOptions{})
	if err != nil {
		return err
	}
	st := opened.Store
	defer st.Close()
	return service.ResetRootToken(ctx, st, func(token string) error {
		where, err := server.DeliverRootToken(token, *tokenFile, c.stdout)
		if err == nil {
			fmt.Fprintf(c.stderr, "keymint: the root token is replaced; the new one is on %s and is shown only this once\n", where)
		}
		return err
	})
}
