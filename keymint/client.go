package keymint

import (
	"bytes"
	"context"
	crand "crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/keymint/terraform-provider-keymint/internal/wire"
)

// Client talks to one keymint server with one token.
type Client struct {
	base      *url.URL
	token     string
	http      *http.Client
	userAgent string
	// MaxRetries is how many times a failed request is retried (default 4).
	MaxRetries int
	// MinBackoff and MaxBackoff bound the wait between retries.
	MinBackoff, MaxBackoff time.Duration
	// sleep waits between retries; tests replace it to record the waits.
	sleep    func(context.Context, time.Duration) error
	insecure bool // see WithInsecure
}

// Option configures a Client.
type Option func(*Client)

// WithTimeout bounds each HTTP attempt (default 60s); retries come on top.
func WithTimeout(d time.Duration) Option { return func(c *Client) { c.http.Timeout = d } }

// WithUserAgent sets the User-Agent header.
func WithUserAgent(ua string) Option { return func(c *Client) { c.userAgent = ua } }

// New returns a client for the server at endpoint (e.g. http://127.0.0.1:8080).
func New(endpoint, token string, opts ...Option) (*Client, error) {
	u, err := url.Parse(strings.TrimRight(endpoint, "/"))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("endpoint %q is not an http(s) URL such as http://127.0.0.1:8080", endpoint)
	}
	if token == "" {
		return nil, errors.New("no token given")
	}
	c := &Client{base: u, token: token, http: &http.Client{Timeout: 60 * time.Second, Transport: newTransport()}, userAgent: "keymint-go-client",
		MaxRetries: 4, MinBackoff: 200 * time.Millisecond, MaxBackoff: 5 * time.Second, sleep: sleepCtx}
	for _, o := range opts {
		o(c)
	}
	if err := checkTransport(u, c.insecure); err != nil {
		return nil, err
	}
	return c, nil
}

// newTransport keeps enough idle connections for Terraform's parallelism (the
// default keeps 2 per host, so most parallel calls would dial anew).
func newTransport() *http.Transport {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConnsPerHost = 64
	return t
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// Error is an error answer from the API: its RFC 9457 problem document.
type Error struct {
	StatusCode int
	Problem    wire.Problem
}

// Error describes the problem: status, code, detail and any field errors.
func (e *Error) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "keymint API: %d %s", e.StatusCode, e.Problem.Code)
	if e.Problem.Detail != "" {
		b.WriteString(": " + e.Problem.Detail)
	}
	for _, f := range e.Problem.Errors {
		fmt.Fprintf(&b, "\n  %s: %s", f.Field, f.Message)
	}
	if len(e.Problem.KeyIDs) > 0 {
		fmt.Fprintf(&b, "\n  keys: %s", strings.Join(e.Problem.KeyIDs, ", "))
	}
	return b.String()
}

// IsNotFound reports whether err is the API's 404.
func IsNotFound(err error) bool { return StatusCode(err) == http.StatusNotFound }

// ProblemCode returns the problem code of an API error (e.g. "slug_taken"), or "".
func ProblemCode(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Problem.Code
	}
	return ""
}

// StatusCode returns the HTTP status of an API error, or 0.
func StatusCode(err error) int {
	var e *Error
	if errors.As(err, &e) {
		return e.StatusCode
	}
	return 0
}

// do sends one logical request, retrying as described on the package.
// With idempotent true it sends an Idempotency-Key that stays the same across retries.
func (c *Client) do(ctx context.Context, method, path string, in, out any, idempotent bool) error {
	var body []byte
	if in != nil {
		var err error
		if body, err = json.Marshal(in); err != nil {
			return err
		}
	}
	idemKey := ""
	if idempotent {
		idemKey = newIdempotencyKey()
	}
	for attempt := 0; ; attempt++ {
		res, err := c.once(ctx, method, path, body, idemKey)
		wait, retry := c.retryAfter(res, err, attempt)
		if !retry {
			if err != nil {
				return err
			}
			return decodeResponse(res, out)
		}
		if res != nil {
			res.Body.Close()
		}
		if err := c.sleep(ctx, wait); err != nil {
			return err
		}
	}
}

func (c *Client) once(ctx context.Context, method, path string, body []byte, idemKey string) (*http.Response, error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base.String()+path, rd)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	req.Header.Set("User-Agent", c.userAgent)
	req.Header.Set("Accept", "application/json")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if idemKey != "" {
		req.Header.Set(wire.IdempotencyHeader, idemKey)
	}
	res, err := c.http.Do(req)
	if err != nil {
		return nil, err // a *url.Error: names the URL, never the token
	}
	return res, nil
}

// retryAfter decides whether to retry and how long to wait first.
func (c *Client) retryAfter(res *http.Response, err error, attempt int) (time.Duration, bool) {
	if attempt >= c.MaxRetries {
		return 0, false
	}
	if err != nil {
		if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
			return 0, false
		}
	} else if res.StatusCode != http.StatusTooManyRequests && res.StatusCode < 500 {
		return 0, false
	}
	backoff := c.MinBackoff << attempt
	if backoff > c.MaxBackoff || backoff <= 0 {
		backoff = c.MaxBackoff
	}
	backoff = backoff/2 + rand.N(backoff/2+1) // jitter keeps retrying clients apart
	if res != nil {
		if d, ok := parseRetryAfter(res.Header.Get("Retry-After"), time.Now()); ok {
			backoff = min(d, 60*time.Second)
		}
	}
	return backoff, true
}

func parseRetryAfter(v string, now time.Time) (time.Duration, bool) {
	if v == "" {
		return 0, false
	}
	if s, err := strconv.Atoi(v); err == nil && s >= 0 {
		return time.Duration(s) * time.Second, true
	}
	if t, err := http.ParseTime(v); err == nil {
		return max(0, t.Sub(now)), true
	}
	return 0, false
}

func decodeResponse(res *http.Response, out any) error {
	defer res.Body.Close()
	b, err := io.ReadAll(io.LimitReader(res.Body, 16<<20))
	if err != nil {
		return err
	}
	if res.StatusCode >= 400 {
		e := &Error{StatusCode: res.StatusCode}
		if json.Unmarshal(b, &e.Problem) != nil || e.Problem.Code == "" {
			e.Problem = wire.Problem{Code: http.StatusText(res.StatusCode), Detail: strings.TrimSpace(string(b))}
		}
		return e
	}
	if out == nil || len(b) == 0 {
		return nil
	}
	if err := json.Unmarshal(b, out); err != nil {
		return fmt.Errorf("decoding the API's answer (%d): %w", res.StatusCode, err)
	}
	return nil
}

func newIdempotencyKey() string {
	var b [16]byte
	if _, err := cryptoRead(b[:]); err != nil {
		panic(err)
	}
	return hex.EncodeToString(b[:])
}

var cryptoRead = crand.Read

func esc(s string) string { return url.PathEscape(s) }

// ---- apps

// CreateApp creates an app (sent with an Idempotency-Key, so a retry cannot make two).
func (c *Client) CreateApp(ctx context.Context, req wire.CreateApp) (wire.App, error) {
	var a wire.App
	err := c.do(ctx, "POST", "/v1/apps", req, &a, true)
	return a, err
}

// GetApp returns the app with the given slug.
func (c *Client) GetApp(ctx context.Context, slug string) (wire.App, error) {
	var a wire.App
	err := c.do(ctx, "GET", "/v1/apps/"+esc(slug), nil, &a, false)
	return a, err
}

// ListApps returns every app the token may read.
func (c *Client) ListApps(ctx context.Context) ([]wire.App, error) {
	var l wire.AppList
	err := c.do(ctx, "GET", "/v1/apps", nil, &l, false)
	return l.Apps, err
}

// UpdateApp changes the fields req sets and leaves the others alone.
func (c *Client) UpdateApp(ctx context.Context, slug string, req wire.UpdateApp) (wire.App, error) {
	var a wire.App
	err := c.do(ctx, "PATCH", "/v1/apps/"+esc(slug), req, &a, false)
	return a, err
}

// DeleteApp deletes an app; with force it first revokes the app's live keys.
func (c *Client) DeleteApp(ctx context.Context, slug string, force bool) error {
	err := c.do(ctx, "DELETE", "/v1/apps/"+esc(slug)+"?force="+strconv.FormatBool(force), nil, nil, false)
	return err
}

// ---- keys

// CreateKey mints a key in app; the answer holds its secret, shown only this once.
// It is sent with an Idempotency-Key, so a retry leaves one key.
func (c *Client) CreateKey(ctx context.Context, app string, req wire.CreateKey) (wire.KeyWithSecret, error) {
	var k wire.KeyWithSecret
	err := c.do(ctx, "POST", "/v1/apps/"+esc(app)+"/keys", req, &k, true)
	return k, err
}

// GetKey returns the key with the given id (never its secret).
func (c *Client) GetKey(ctx context.Context, id string) (wire.Key, error) {
	var k wire.Key
	err := c.do(ctx, "GET", "/v1/keys/"+esc(id), nil, &k, false)
	return k, err
}

// ListKeys returns all of an app's keys with the given status ("" for all), following pages.
func (c *Client) ListKeys(ctx context.Context, app, status string) ([]wire.Key, error) {
	keys := []wire.Key{}
	cursor := ""
	for {
		q := url.Values{"limit": {"1000"}}
		if status != "" {
			q.Set("status", status)
		}
		if cursor != "" {
			q.Set("cursor", cursor)
		}
		var page wire.KeyList
		if err := c.do(ctx, "GET", "/v1/apps/"+esc(app)+"/keys?"+q.Encode(), nil, &page, false); err != nil {
			return nil, err
		}
		keys = append(keys, page.Keys...)
		if page.NextCursor == "" {
			return keys, nil
		}
		cursor = page.NextCursor
	}
}

// UpdateKey changes a key's name, metadata or enabled flag.
func (c *Client) UpdateKey(ctx context.Context, id string, req wire.UpdateKey) (wire.Key, error) {
	var k wire.Key
	err := c.do(ctx, "PATCH", "/v1/keys/"+esc(id), req, &k, false)
	return k, err
}

// Whoami returns the credential the client's token is: any valid token may ask.
func (c *Client) Whoami(ctx context.Context) (wire.Whoami, error) {
	var w wire.Whoami
	err := c.do(ctx, "GET", "/v1/whoami", nil, &w, false)
	return w, err
}

// RevokeKey revokes a key; revoking a revoked key is not an error.
func (c *Client) RevokeKey(ctx context.Context, id string) error {
	err := c.do(ctx, "DELETE", "/v1/keys/"+esc(id), nil, nil, false)
	return err
}

// RotateKey gives the key a new secret (req.Secret, or one the server
// makes); the old one works for req.GracePeriod (a Go duration). It is sent with an Idempotency-Key, so a retry after a lost
// answer leaves one new secret, the one returned.
func (c *Client) RotateKey(ctx context.Context, id string, req wire.RotateKey) (wire.KeyWithSecret, error) {
	var k wire.KeyWithSecret
	err := c.do(ctx, "POST", "/v1/keys/"+esc(id)+"/rotate", req, &k, true)
	return k, err
}

// ListEvents returns up to limit events, newest first, following pages.
func (c *Client) ListEvents(ctx context.Context, app, key string, limit int) ([]wire.Event, error) {
	if limit < 1 {
		return []wire.Event{}, nil
	}
	return c.ListEventsMatching(ctx, EventFilter{App: app, Key: key, Limit: limit})
}

// EventFilter selects events for [Client.ListEventsMatching]: a zero field
// matches every event.
type EventFilter struct {
	App    string    // the app's slug
	Key    string    // the key's id
	Actor  string    // the acting credential: "root" or a management key's id
	Action string    // e.g. key.rotate
	Since  time.Time // events at or after this
	Until  time.Time // events before this
	Limit  int       // at most this many; 0 or less: every matching event
}

// ListEventsMatching returns the events f selects, newest first, following pages.
func (c *Client) ListEventsMatching(ctx context.Context, f EventFilter) ([]wire.Event, error) {
	events := []wire.Event{}
	cursor := ""
	for f.Limit < 1 || len(events) < f.Limit {
		page := 1000
		if f.Limit > 0 {
			page = min(f.Limit-len(events), 1000)
		}
		q := url.Values{"limit": {strconv.Itoa(page)}}
		for name, v := range map[string]string{"app": f.App, "key": f.Key, "actor": f.Actor, "action": f.Action} {
			if v != "" {
				q.Set(name, v)
			}
		}
		if !f.Since.IsZero() {
			q.Set("since", f.Since.UTC().Format(time.RFC3339Nano))
		}
		if !f.Until.IsZero() {
			q.Set("until", f.Until.UTC().Format(time.RFC3339Nano))
		}
		if cursor != "" {
			q.Set("cursor", cursor)
		}
		var list wire.EventList
		if err := c.do(ctx, "GET", "/v1/events?"+q.Encode(), nil, &list, false); err != nil {
			return nil, err
		}
		events = append(events, list.Events...)
		if list.NextCursor == "" {
			break
		}
		cursor = list.NextCursor
	}
	return events, nil
}

// FindKey names the key a secret belongs to; the secret goes in the body.
func (c *Client) FindKey(ctx context.Context, secret string) (wire.Key, error) {
	var k wire.Key
	err := c.do(ctx, "POST", "/v1/keys/find", wire.FindKey{Key: secret}, &k, false)
	return k, err
}

// Verify asks whether req.Key is valid for req.Scopes and req.Resource.
// A refused key is not an error: the verdict's Code says why (NOT_FOUND,
// REVOKED, RATE_LIMITED, ...); an error means keymint could not answer.
func (c *Client) Verify(ctx context.Context, req wire.VerifyRequest) (wire.VerifyResponse, error) {
	var v wire.VerifyResponse
	err := c.do(ctx, "POST", "/v1/verify", req, &v, false)
	return v, err
}
