package api_test

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keymint/terraform-provider-keymint/internal/api"
	"github.com/keymint/terraform-provider-keymint/internal/keyformat"
	"github.com/keymint/terraform-provider-keymint/internal/logbuf"
	"github.com/keymint/terraform-provider-keymint/internal/service"
	"github.com/keymint/terraform-provider-keymint/internal/store"
	"github.com/keymint/terraform-provider-keymint/internal/store/postgres"
	"github.com/keymint/terraform-provider-keymint/internal/store/postgres/pgtest"
	"github.com/keymint/terraform-provider-keymint/internal/wire"
)

// logGrep holds every log line a test's server writes and, when the test
// ends, fails it if any line holds a secret the test was issued or a token
// it sent (a key's start, which is safe to log, is allowed).
// The server logs as keymint serve does, through a logbuf.Handler (its
// fast path for request lines included).
type logGrep struct {
	mu      sync.Mutex
	buf     strings.Builder
	out     *logbuf.Writer
	secrets map[string]bool
}

func newLogGrep(t *testing.T) *logGrep {
	g := &logGrep{secrets: map[string]bool{}}
	g.out = logbuf.New(g, time.Hour)
	t.Cleanup(g.out.Close)
	t.Cleanup(func() {
		logs := g.logs()
		g.mu.Lock()
		defer g.mu.Unlock()
		for s := range g.secrets {
			// The part past the start is what must never be logged; a short
			// one (a made-up token) could turn up by chance in a request id
			// or a duration, so the whole token is looked for instead.
			hidden := s[len(keyformat.Start(s)):]
			if len(hidden) < 16 {
				hidden = s
			}
			if strings.Contains(logs, hidden) {
				t.Errorf("a secret (%s…) is in the log:\n%s", keyformat.Start(s), logs)
			}
		}
	})
	return g
}

func (g *logGrep) Write(b []byte) (int, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.buf.Write(b)
}

func (g *logGrep) logger() *slog.Logger { return slog.New(logbuf.NewHandler(g.out, false)) }

// logs flushes what the server logged and returns every line so far.
func (g *logGrep) logs() string {
	g.out.Flush()
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.buf.String()
}

var secretField = regexp.MustCompile(`"secret":"([^"]+)"`)

// issued notes the secrets in an answer and the token sent.
func (g *logGrep) issued(token string, body []byte) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if token != "" && token != rootToken {
		g.secrets[token] = true
	}
	for _, m := range secretField.FindAllSubmatch(body, -1) {
		var s string
		if json.Unmarshal(append(append([]byte{'"'}, m[1]...), '"'), &s) == nil && s != "" {
			g.secrets[s] = true
		}
	}
}

// outage runs, on a server over st, requests that carry secrets in their
// paths while the database is down (down stops it) and checks that the
// answers are 500s and no log line holds a secret.
func outage(t *testing.T, st store.Store, down func()) {
	g := newLogGrep(t)
	svc := service.New(service.Config{Store: st, RootTokenHash: keyformat.Hash(rootToken), Logger: g.logger()})
	if err := svc.Bootstrap(context.Background()); err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(api.New(svc, g.logger(), nil))
	t.Cleanup(hs.Close)
	e := &env{t: t, http: hs, grep: g}
	e.createApp("acme", "read")
	k := e.createKey("acme", wire.CreateKey{Scopes: []string{"read"}})
	down()
	for _, c := range [][2]string{{"PATCH", "/v1/keys/" + k.Secret}, {"GET", "/v1/keys/" + k.Secret}, {"DELETE", "/v1/keys/" + k.Secret},
		{"POST", "/v1/keys/" + k.Secret + "/rotate"}} {
		body := `{}`
		if c[0] == "PATCH" {
			body = `{"name":"x"}`
		}
		r := e.do(rootToken, c[0], c[1], body)
		if r.status != 500 || strings.Contains(string(r.body), k.Secret[len(k.Key.Start):]) {
			t.Errorf("%s during the outage: %d %s", c[0], r.status, r.body)
		}
	}
	e.do(k.Secret, "GET", "/v1/whoami", nil) // a token on the failing authentication path
	logs := g.logs()
	if !strings.Contains(logs, "internal error") || !strings.Contains(logs, k.Key.Start+"…") {
		t.Fatalf("the outage is not logged with the redacted path:\n%s", logs)
	}
}

func TestOutageLogsNoSecretSQLite(t *testing.T) {
	e := newEnv(t)
	outage(t, e.store, func() { e.store.Close() })
}

func TestOutageLogsNoSecretPostgres(t *testing.T) {
	pg := pgtest.Shared(t)
	dsn := pg.NewDatabase(t)
	ctx := context.Background()
	st, err := postgres.Open(ctx, dsn, postgres.Options{Lease: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	name := dsn[strings.LastIndex(dsn, "/")+1 : strings.Index(dsn, "?")]
	outage(t, st, func() {
		// Refuse new connections to the database and end the open ones.
		for _, q := range []string{"ALTER DATABASE " + name + " WITH ALLOW_CONNECTIONS false",
			"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '" + name + "'"} {
			if err := pg.Exec(ctx, "postgres", q); err != nil {
				t.Fatal(err)
			}
		}
	})
}

// TestRequestLines: each request has its line, in slog's text format,
// whether logbuf's fast path wrote it (a plain path) or slog did (a path
// with a key in it, cut to its start by the redacting handler).
func TestRequestLines(t *testing.T) {
	e := newEnv(t)
	app := e.createApp("acme", "read")
	k := e.createKey(app.Slug, wire.CreateKey{Scopes: []string{"read"}})
	verifier := e.credential([]string{"verify"})
	if r := e.do(verifier.Secret, "POST", "/v1/verify", wire.VerifyRequest{Key: k.Secret}); r.status != 200 {
		t.Fatalf("verify: %d %s", r.status, r.body)
	}
	e.do(rootToken, "GET", "/v1/keys/"+k.Secret, nil)
	logs := e.grep.logs()
	fast := regexp.MustCompile(`(?m)^time=\S+ level=INFO msg=request method=POST path=/v1/verify status=200 duration=\S+ caller=` +
		verifier.Key.ID + ` request_id=req_[0-9a-f]{24}$`)
	slow := regexp.MustCompile(`(?m)^time=\S+ level=INFO msg=request method=GET path=/v1/keys/` + regexp.QuoteMeta(k.Key.Start) +
		`… status=404 duration=\S+ caller=root request_id=req_[0-9a-f]{24}$`)
	if !fast.MatchString(logs) || !slow.MatchString(logs) {
		t.Fatalf("want a verify line and a redacted GET line:\n%s", logs)
	}
}

// A client that goes away while its request reads the database broke
// nothing: the request line says 499 and no ERROR line cries wolf.
func TestClientGoneIsNotAnError(t *testing.T) {
	e := newEnv(t)
	app := e.createApp("acme", "read")
	k := e.createKey(app.Slug, wire.CreateKey{Scopes: []string{"read"}})
	verifier := e.credential([]string{"verify"})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	body := `{"key":"` + k.Secret + `x"}` // not a key: its lookup reads the database
	req := httptest.NewRequestWithContext(ctx, "POST", "/v1/verify", strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+verifier.Secret)
	req.Header.Set("Content-Type", "application/json")
	rec := httptest.NewRecorder()
	e.srv.ServeHTTP(rec, req)
	logs := e.grep.logs()
	if rec.Code != api.StatusClientClosedRequest || strings.Contains(logs, "level=ERROR") ||
		!regexp.MustCompile(`(?m)msg=request method=POST path=/v1/verify status=499 `).MatchString(logs) {
		t.Fatalf("status %d, logs:\n%s", rec.Code, logs)
	}
}
