// Package server is `keymint serve`: it opens the database, wires the
// service, the API, metrics and profiling, and serves until its context
// ends. The binary's serve command only reads flags into a Config; tests
// start the server through this package exactly as the binary does.
package server

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"path/filepath"
	"time"

	"github.com/keymint/terraform-provider-keymint/internal/api"
	"github.com/keymint/terraform-provider-keymint/internal/metrics"
	"github.com/keymint/terraform-provider-keymint/internal/portal"
	"github.com/keymint/terraform-provider-keymint/internal/service"
	"github.com/keymint/terraform-provider-keymint/internal/store/postgres"
	"github.com/keymint/terraform-provider-keymint/internal/vocab"
)

// Config is everything `keymint serve` takes.
type Config struct {
	Addr     string // listen address, e.g. 127.0.0.1:8080 (port 0: any free port)
	DB       string // sqlite:<path> or postgres://...
	ListenDB string // PostgreSQL: a direct connection for invalidations (behind a transaction pooler)
	Lease    time.Duration
	MaxConns int // PostgreSQL: --db-max-conns
	// ListenerMaxConns is --max-conns: the client connections each
	// listener (API, metrics, debug) holds at once (0: DefaultMaxConns).
	ListenerMaxConns int
	CacheSize        int
	// TLSCert and TLSKey are PEM files: if set, the API serves HTTPS (TLS
	// 1.2+, HTTP/2), re-reading them when they change.
	TLSCert, TLSKey string
	// RootToken is KEYMINT_ROOT_TOKEN: if set, the root token, fixed for
	// this process; else the stored one (generated at first start).
	RootToken            string
	RootTokenFile        string // write a generated root token here (a new file) rather than to Stdout
	AddrFile             string // write the bound address here once ready
	IdempotencyRetention time.Duration
	EventRetention       time.Duration
	MetricsAddr          string
	DebugAddr            string
	Version              string
	// SessionIdleTimeout and SessionMaxAge end portal sessions (defaults:
	// portal.DefaultIdleTimeout and portal.DefaultAbsoluteTimeout).
	SessionIdleTimeout, SessionMaxAge time.Duration

	Log *slog.Logger
	// LogDropped, if set, counts the log lines the output refused
	// (exported as keymint_log_lines_dropped_total).
	LogDropped func() uint64
	Stdout     io.Writer        // a generated root token goes here (nil: os.Stdout)
	Now        func() time.Time // the service's clock (nil: time.Now); tests inject one
}

// ConfigError is a Config that cannot run: the command line is wrong.
type ConfigError struct{ error }

func configErrorf(format string, args ...any) error {
	return ConfigError{fmt.Errorf(format, args...)}
}

// MinRootTokenLen is the shortest KEYMINT_ROOT_TOKEN accepted.
const MinRootTokenLen = 24

// maxHeaderBytes bounds a request's headers: a token and a few others fit
// many times over. Past it Go's HTTP server answers 431 in plain text.
const maxHeaderBytes = 32 << 10

// Defaults fills what was left zero.
func (c *Config) defaults() {
	if c.Lease == 0 {
		c.Lease = postgres.DefaultLease
	}
	if c.IdempotencyRetention == 0 {
		c.IdempotencyRetention = service.DefaultIdempotencyRetention
	}
	if c.EventRetention == 0 {
		c.EventRetention = service.DefaultEventRetention
	}
	if c.Log == nil {
		c.Log = slog.New(slog.DiscardHandler)
	}
	if c.Stdout == nil {
		c.Stdout = os.Stdout
	}
	if c.Version == "" {
		c.Version = "dev"
	}
	if c.SessionIdleTimeout == 0 {
		c.SessionIdleTimeout = portal.DefaultIdleTimeout
	}
	if c.SessionMaxAge == 0 {
		c.SessionMaxAge = portal.DefaultAbsoluteTimeout
	}
	if c.ListenerMaxConns == 0 {
		c.ListenerMaxConns = DefaultMaxConns
	}
}

// Validate checks every setting before anything is opened, generated or stored.
func (c *Config) Validate() error {
	c.defaults()
	if c.IdempotencyRetention < time.Minute {
		return configErrorf("serve: --idempotency-retention (or KEYMINT_IDEMPOTENCY_RETENTION) must be at least 1m (clients retry for minutes), got %s", c.IdempotencyRetention)
	}
	if c.EventRetention < time.Hour {
		return configErrorf("serve: --event-retention (or KEYMINT_EVENT_RETENTION) must be at least 1h, got %s", c.EventRetention)
	}
	if c.SessionIdleTimeout < time.Minute || c.SessionMaxAge < c.SessionIdleTimeout {
		return configErrorf("serve: --session-idle-timeout (or KEYMINT_SESSION_IDLE_TIMEOUT) must be at least 1m and --session-max-age (or KEYMINT_SESSION_MAX_AGE) at least as long, got %s and %s", c.SessionIdleTimeout, c.SessionMaxAge)
	}
	if err := checkTLSFlags(c.TLSCert, c.TLSKey); err != nil {
		return err
	}
	if c.TLSCert != "" {
		if _, err := newCertReloader(c.TLSCert, c.TLSKey, c.Log); err != nil {
			return err
		}
	}
	if c.ListenerMaxConns < 1 {
		return configErrorf("serve: --max-conns (or KEYMINT_MAX_CONNS) must be at least 1, got %d", c.ListenerMaxConns)
	}
	if c.CacheSize < 0 {
		return configErrorf("serve: --verify-cache-size must be 0 or more, got %d", c.CacheSize)
	}
	db, err := ParseDB(c.DB)
	if err != nil {
		return ConfigError{err}
	}
	if c.ListenDB != "" {
		if db.URL == "" || !postgres.IsURL(c.ListenDB) {
			return configErrorf("serve: --listen-db (or KEYMINT_LISTEN_DB) takes a postgres:// URL, and only with a PostgreSQL --db")
		}
		if err := postgres.CheckURL(c.ListenDB); err != nil {
			return configErrorf("serve: --listen-db %s: %v", postgres.RedactURL(c.ListenDB), err)
		}
	}
	if c.Lease < 100*time.Millisecond || c.Lease > time.Minute {
		return configErrorf("serve: --replica-lease (or KEYMINT_REPLICA_LEASE) must be between 100ms and 1m, got %s", c.Lease)
	}
	if c.MaxConns < 0 {
		return configErrorf("serve: --db-max-conns (or KEYMINT_DB_MAX_CONNS) must be 0 (the default pool size) or more, got %d", c.MaxConns)
	}
	if _, _, err := net.SplitHostPort(c.Addr); err != nil {
		return configErrorf("serve: --addr (or KEYMINT_ADDR) %q is not host:port, e.g. 127.0.0.1:8080", c.Addr)
	}
	if err := checkDebugAddr(c.DebugAddr); err != nil {
		return err
	}
	if _, _, err := net.SplitHostPort(c.MetricsAddr); c.MetricsAddr != "" && err != nil {
		return configErrorf("serve: --metrics-addr (or KEYMINT_METRICS_ADDR) %q is not host:port, e.g. 127.0.0.1:9090", c.MetricsAddr)
	}
	if c.RootToken != "" && len(c.RootToken) < MinRootTokenLen {
		return configErrorf("serve: KEYMINT_ROOT_TOKEN must be at least %d characters (it opens everything); generate one with: openssl rand -base64 32", MinRootTokenLen)
	}
	if c.RootToken != "" && vocab.EntropyBits(c.RootToken) < vocab.MinTokenBits {
		return configErrorf("serve: KEYMINT_ROOT_TOKEN is too easy to guess (repeated, sequential or low-variety characters; it needs at least %d bits of randomness by keymint's estimate, and it opens everything); generate one with: openssl rand -base64 32", vocab.MinTokenBits)
	}
	// The root token file must be new only when a token is generated: on a
	// first start. A later start (the database holds the token's hash)
	// leaves it alone, so the same command restarts a server. A new SQLite
	// database is a first start, checked here before anything is created;
	// elsewhere the write itself refuses an existing file before anything
	// is stored (DeliverRootToken).
	if err := CheckNewFile(RootTokenFileFlag, c.RootTokenFile, db.URL == "" && !db.exists()); err != nil {
		return err
	}
	return CheckNewFile("--addr-file", c.AddrFile, false)
}

// RootTokenFileFlag names the root token file's flag and variable in messages.
const RootTokenFileFlag = "--root-token-file (or KEYMINT_ROOT_TOKEN_FILE)"

// Server is a started keymint server: listening, its database open and
// migrated, the root token in place. Serve runs it.
type Server struct {
	cfg      Config
	ln       net.Listener
	db       *Opened
	svc      *service.Service
	http     *http.Server
	capped   net.Listener // ln (in TLS if configured), at most --max-conns connections
	scheme   string       // http or https
	closers  []func()     // in the order to run them
	addrText string
}

// Addr is the address the API listens on.
func (s *Server) Addr() string { return s.addrText }

// Service is the server's service (for tests that check state behind the API).
func (s *Server) Service() *service.Service { return s.svc }

// Start validates cfg, listens, opens the database and prepares to serve.
// On error nothing is left open. Serve runs what Start prepared.
func Start(ctx context.Context, cfg Config) (srv *Server, err error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	s := &Server{cfg: cfg}
	defer func() {
		if err != nil {
			s.close()
		}
	}()
	log := cfg.Log
	// Each listener holds up to ListenerMaxConns connections, each an fd.
	listeners := 1
	for _, addr := range []string{cfg.MetricsAddr, cfg.DebugAddr} {
		if addr != "" {
			listeners++
		}
	}
	if fds, err := raiseFDLimit(); err != nil {
		log.Warn("could not raise the open-files limit to its hard limit", "soft_limit", fds, "err", err)
	} else if need := uint64(listeners*cfg.ListenerMaxConns + 64); fds != 0 && fds < need {
		fits := uint64(0) // connections per listener the limit allows, 64 fds kept for the rest
		if fds > 64 {
			fits = (fds - 64) / uint64(listeners)
		}
		log.Warn(fmt.Sprintf("the open-files limit is low for --max-conns on %d listener(s); lower --max-conns (KEYMINT_MAX_CONNS) to %d or less, or raise the limit (ulimit -n)",
			listeners, fits), "soft_limit", fds, "max_conns", cfg.ListenerMaxConns)
	}
	// Listen first: a server that cannot serve leaves no database behind,
	// and generates no root token that nobody would see.
	if s.ln, err = net.Listen("tcp", cfg.Addr); err != nil {
		return nil, err
	}
	s.closers = append(s.closers, func() { s.ln.Close() })
	s.addrText = s.ln.Addr().String()
	var dbg, metricsLn net.Listener
	if cfg.DebugAddr != "" {
		if dbg, err = net.Listen("tcp", cfg.DebugAddr); err != nil {
			return nil, fmt.Errorf("--debug-addr: %w", err)
		}
		s.closers = append(s.closers, func() { dbg.Close() })
	}
	var m *metrics.Metrics
	if cfg.MetricsAddr != "" {
		if metricsLn, err = net.Listen("tcp", cfg.MetricsAddr); err != nil {
			return nil, fmt.Errorf("--metrics-addr: %w", err)
		}
		s.closers = append(s.closers, func() { metricsLn.Close() })
		m = metrics.New()
		m.WatchLogDrops(cfg.LogDropped)
	}
	target, _ := ParseDB(cfg.DB) // checked by Validate
	s.db, err = OpenStore(ctx, target, StoreOptions{CacheSize: cfg.CacheSize, Metrics: m, Lease: cfg.Lease,
		MaxConns: cfg.MaxConns, ListenURL: cfg.ListenDB, Log: log})
	if err != nil {
		return nil, err
	}
	// Closed last: while requests finish, writes still reach the other replicas.
	s.closers = append(s.closers, func() { s.db.Store.Close() })
	if s.db.Replica != nil {
		log.Info("replica", "id", s.db.Replica.ID(), "lease", cfg.Lease.String(), "listen_db", cfg.ListenDB != "")
	}
	var rootHash [32]byte
	if cfg.RootToken != "" {
		log.Info("using the root token from KEYMINT_ROOT_TOKEN")
	}
	hash, err := service.EnsureRootToken(ctx, s.db.Store, cfg.RootToken, func(token string) error {
		where, err := DeliverRootToken(token, cfg.RootTokenFile, cfg.Stdout)
		if err == nil {
			log.Warn("generated a root token; keymint keeps only its hash, so it is shown only this once", "written_to", where)
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	if cfg.RootToken != "" {
		rootHash = hash // else read through the store, so a reset on any replica holds everywhere
	}
	s.svc = service.New(service.Config{Store: s.db.Store, RootTokenHash: rootHash, Logger: log, IdempotencyRetention: cfg.IdempotencyRetention,
		EventRetention: cfg.EventRetention, Metrics: m, RateLimits: s.db.Limits, Now: cfg.Now})
	if err := s.svc.Bootstrap(ctx); err != nil {
		return nil, err
	}
	apiSrv := api.New(s.svc, log, m)
	apiSrv.Ready = s.ready
	if metricsLn != nil {
		mux := http.NewServeMux()
		mux.Handle("GET /metrics", m.Handler())
		ms, capped := newHTTPServer(mux, metricsLn, cfg.ListenerMaxConns, writeTimeout, log)
		go func() { _ = ms.Serve(capped) }()
		s.closers = append(s.closers, func() { ms.Close() })
		log.Info("metrics listener", "url", "http://"+metricsLn.Addr().String()+"/metrics")
	}
	if dbg != nil {
		// Profiling only, on loopback. It carries no keymint data.
		mux := http.NewServeMux()
		mux.HandleFunc("/debug/pprof/", pprof.Index)
		mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
		mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
		// A CPU profile or trace takes ?seconds (30 by default) to write.
		ds, capped := newHTTPServer(mux, dbg, cfg.ListenerMaxConns, 5*time.Minute, log)
		go func() { _ = ds.Serve(capped) }()
		s.closers = append(s.closers, func() { ds.Close() })
		log.Info("debug listener (pprof)", "addr", dbg.Addr().String())
	}
	ui := portal.New(portal.Config{Service: s.svc, Sessions: s.db.Store, Logger: log, Clock: cfg.Now,
		IdleTimeout: cfg.SessionIdleTimeout, AbsoluteTimeout: cfg.SessionMaxAge, Throttle: apiSrv})
	ln, scheme := s.ln, "http"
	var tlsCfg *tls.Config
	if cfg.TLSCert != "" {
		certs, err := newCertReloader(cfg.TLSCert, cfg.TLSKey, log)
		if err != nil {
			return nil, err
		}
		tlsCfg = tlsConfig(certs)
		// TLS under the connection cap, so the cap tracks the connections
		// the HTTP server sees (and a stalled handshake is an idle one).
		ln, scheme = tls.NewListener(s.ln, tlsCfg), "https"
	}
	s.http, s.capped = newHTTPServer(portal.Mount(apiSrv, ui), ln, cfg.ListenerMaxConns, writeTimeout, log)
	s.http.TLSConfig = tlsCfg // its "h2" makes Serve speak HTTP/2 over TLS
	s.scheme = scheme
	if cfg.AddrFile != "" {
		if err := os.WriteFile(cfg.AddrFile, []byte(s.addrText), 0o600); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// close releases what Start took, last taken first.
func (s *Server) close() {
	for i := len(s.closers) - 1; i >= 0; i-- {
		s.closers[i]()
	}
	s.closers = nil
}

// Serve answers requests until ctx ends, then finishes in-flight requests,
// flushes key usage and closes everything.
func (s *Server) Serve(ctx context.Context) error {
	defer s.close()
	log := s.cfg.Log
	usageCtx, stopUsage := context.WithCancel(context.WithoutCancel(ctx))
	usageDone := make(chan struct{})
	go func() { s.svc.Run(usageCtx, time.Second, time.Minute); close(usageDone) }()

	serveErr := make(chan error, 1)
	go func() { serveErr <- s.http.Serve(s.capped) }()
	target, _ := ParseDB(s.cfg.DB)
	log.Info("keymint listening", "addr", s.addrText, "portal", s.scheme+"://"+s.addrText+portal.Prefix, "tls", s.scheme == "https", "db", target.String(), "version", s.cfg.Version)

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
	err := s.http.Shutdown(shutdownCtx)
	stopUsage() // flushes last_used_at once more after the last request
	<-usageDone
	log.Info("stopped")
	return err
}

// Run starts the server and serves until ctx ends.
func Run(ctx context.Context, cfg Config) error {
	s, err := Start(ctx, cfg)
	if err != nil {
		return err
	}
	return s.Serve(ctx)
}

// readyTimeout bounds the database check of GET /readyz.
const readyTimeout = 2 * time.Second

// ready says whether this process can answer correctly and promptly now:
// the database answers a real lookup within readyTimeout, the verify cache
// has been filled once, and on PostgreSQL this replica holds its lease (it
// has heard of every committed change) — except when it runs without one
// by design, behind a transaction pooler with no --listen-db, where every
// verify reads the database.
func (s *Server) ready(ctx context.Context) (cache string, err error) {
	ctx, cancel := context.WithTimeout(ctx, readyTimeout)
	defer cancel()
	if err := s.db.SQL.Ping(ctx); err != nil {
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			return "", fmt.Errorf("the database did not answer within %s", readyTimeout)
		}
		return "", errors.New("the database cannot be read: " + err.Error())
	}
	switch r := s.db.Replica; {
	case s.cfg.CacheSize == 0:
		return "off: --verify-cache-size is 0", nil
	case r != nil && r.Pooled():
		_, why := r.Status()
		return "off: " + why, nil
	case r != nil:
		if leased, why := r.Status(); !leased {
			return "", errors.New("this replica cannot prove its verify cache is current: " + why)
		}
	}
	// The first verifies after a start (a rolling deploy sends them as soon
	// as this answers) would each read the database until the cache holds
	// every secret; filling it takes a moment, once.
	select {
	case <-s.db.SQL.Cache().FirstFillTried():
	default:
		return "", errors.New("filling the verify cache with every secret (once, at start)")
	}
	return "on", nil
}

// checkDebugAddr refuses a pprof address that is not on loopback: profiles
// and goroutine dumps are for the operator on the machine.
func checkDebugAddr(addr string) error {
	if addr == "" {
		return nil
	}
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return configErrorf("serve: --debug-addr %q is not host:port, e.g. 127.0.0.1:6060", addr)
	}
	if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
		return configErrorf("serve: --debug-addr %q is not a loopback address; pprof is served on loopback only (e.g. 127.0.0.1:6060)", addr)
	}
	return nil
}

// CheckNewFile checks that a file a flag names can be created: its directory
// exists, and (if mustBeNew) the file does not.
func CheckNewFile(flagName, path string, mustBeNew bool) error {
	if path == "" {
		return nil
	}
	if fi, err := os.Stat(filepath.Dir(path)); err != nil || !fi.IsDir() {
		return configErrorf("%s %s: the directory %s does not exist", flagName, path, filepath.Dir(path))
	}
	if _, err := os.Lstat(path); mustBeNew && err == nil {
		return configErrorf("%s %s: the file exists; name a new file (a root token is written only once)", flagName, path)
	}
	return nil
}

// DeliverRootToken writes a generated root token to file (a new file, mode
// 0600), or to stdout as its only line, and says where it went.
func DeliverRootToken(token, file string, stdout io.Writer) (string, error) {
	if file == "" {
		_, err := fmt.Fprintln(stdout, token)
		return "standard output", err
	}
	f, err := os.OpenFile(file, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, fs.ErrExist) {
		return "", configErrorf("%s %s: the file exists, and a new root token is to be written; name a new file (keymint never overwrites one)", RootTokenFileFlag, file)
	}
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
