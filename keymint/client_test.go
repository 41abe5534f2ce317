package keymint

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keymint/terraform-provider-keymint/internal/wire"
)

// These tests use a scripted server because the failures they need (503s,
// 429s with Retry-After, dropped connections) are what the real server does
// not produce on demand. The client against the real server is exercised by
// the provider's acceptance tests.

type scripted struct {
	mu       sync.Mutex
	statuses []int
	headers  []http.Header
	retryAft string
}

func (s *scripted) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.headers = append(s.headers, r.Header.Clone())
	status := 200
	if len(s.statuses) > 0 {
		status, s.statuses = s.statuses[0], s.statuses[1:]
	}
	if status == -1 { // drop the connection
		hj, _ := w.(http.Hijacker)
		conn, _, _ := hj.Hijack()
		conn.Close()
		return
	}
	if status == 429 && s.retryAft != "" {
		w.Header().Set("Retry-After", s.retryAft)
	}
	if status >= 400 {
		w.Header().Set("Content-Type", "application/problem+json")
		w.WriteHeader(status)
		w.Write([]byte(`{"code":"boom","detail":"it broke"}`))
		return
	}
	w.WriteHeader(201)
	w.Write([]byte(`{"key":{"id":"key_1"},"secret":"s"}`))
}

func newTestClient(t *testing.T, s *scripted) (*Client, *[]time.Duration) {
	hs := httptest.NewServer(s)
	t.Cleanup(hs.Close)
	c, err := New(hs.URL, "tok", WithUserAgent("terraform-provider-keymint/1.2.3 (+terraform 1.11.4)"))
	if err != nil {
		t.Fatal(err)
	}
	var waits []time.Duration
	c.sleep = func(_ context.Context, d time.Duration) error { waits = append(waits, d); return nil }
	return c, &waits
}

func TestRetriesKeepIdempotencyKey(t *testing.T) {
	s := &scripted{statuses: []int{503, -1, 502}}
	c, waits := newTestClient(t, s)
	k, err := c.CreateKey(context.Background(), "acme", wire.CreateKey{Name: "k", Scopes: []string{"r"}})
	if err != nil || k.Key.ID != "key_1" {
		t.Fatalf("CreateKey = %+v, %v", k, err)
	}
	if len(s.headers) != 4 || len(*waits) != 3 {
		t.Fatalf("%d attempts, %d waits; want 4 and 3", len(s.headers), len(*waits))
	}
	first := s.headers[0].Get(wire.IdempotencyHeader)
	if len(first) < 16 {
		t.Fatalf("no Idempotency-Key on create: %q", first)
	}
	for i, h := range s.headers {
		if h.Get(wire.IdempotencyHeader) != first {
			t.Fatalf("attempt %d changed the Idempotency-Key", i)
		}
		if h.Get("User-Agent") != "terraform-provider-keymint/1.2.3 (+terraform 1.11.4)" || h.Get("Authorization") != "Bearer tok" {
			t.Fatalf("attempt %d headers %v", i, h)
		}
	}
	for i := 1; i < len(*waits); i++ {
		if (*waits)[i] <= 0 {
			t.Fatalf("wait %d is %v", i, (*waits)[i])
		}
	}
}

func TestHonoursRetryAfter(t *testing.T) {
	s := &scripted{statuses: []int{429}, retryAft: "7"}
	c, waits := newTestClient(t, s)
	if _, err := c.CreateKey(context.Background(), "acme", wire.CreateKey{}); err != nil {
		t.Fatal(err)
	}
	if len(*waits) != 1 || (*waits)[0] != 7*time.Second {
		t.Fatalf("waits %v, want [7s]", *waits)
	}
}

func TestGivesUpAndReportsProblem(t *testing.T) {
	s := &scripted{statuses: []int{500, 500, 500, 500, 500, 500}}
	c, _ := newTestClient(t, s)
	_, err := c.GetKey(context.Background(), "key_1")
	if StatusCode(err) != 500 || !strings.Contains(err.Error(), "it broke") || strings.Contains(err.Error(), "tok") {
		t.Fatalf("err = %v", err)
	}
	if len(s.headers) != c.MaxRetries+1 {
		t.Fatalf("%d attempts, want %d", len(s.headers), c.MaxRetries+1)
	}
	if s.headers[0].Get(wire.IdempotencyHeader) != "" {
		t.Fatal("a GET sent an Idempotency-Key")
	}
}

func TestNoRetryOnClientErrors(t *testing.T) {
	s := &scripted{statuses: []int{422}}
	c, waits := newTestClient(t, s)
	_, err := c.CreateKey(context.Background(), "acme", wire.CreateKey{})
	if StatusCode(err) != 422 || len(*waits) != 0 || len(s.headers) != 1 {
		t.Fatalf("err %v, %d waits, %d attempts", err, len(*waits), len(s.headers))
	}
}

func TestNewRejectsBadConfig(t *testing.T) {
	for _, ep := range []string{"", "localhost:8080", "ftp://x", "http://"} {
		if _, err := New(ep, "t"); err == nil {
			t.Errorf("New(%q) accepted", ep)
		}
	}
	if _, err := New("http://127.0.0.1:1", ""); err == nil {
		t.Error("New accepted an empty token")
	}
}

// A token never goes in clear text off this machine unless the caller says so.
func TestRefusesPlainHTTPToARemoteHost(t *testing.T) {
	for _, ep := range []string{"http://keymint.example.invalid:8080", "http://keymint.example.invalid"} {
		if _, err := New(ep, "t"); err == nil || !strings.Contains(err.Error(), "clear text") {
			t.Errorf("New(%q): %v, want a refusal", ep, err)
		}
		if _, err := New(ep, "t", WithInsecure()); err != nil {
			t.Errorf("New(%q, WithInsecure()): %v", ep, err)
		}
	}
	for _, ep := range []string{"http://127.0.0.1:8080", "http://localhost:8080", "http://[::1]:8080", "https://keymint.example.invalid"} {
		if _, err := New(ep, "t"); err != nil {
			t.Errorf("New(%q): %v", ep, err)
		}
	}
}

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	if d, ok := parseRetryAfter("3", now); !ok || d != 3*time.Second {
		t.Fatal(d, ok)
	}
	if d, ok := parseRetryAfter(now.Add(5*time.Second).Format(http.TimeFormat), now); !ok || d != 5*time.Second {
		t.Fatal(d, ok)
	}
	if _, ok := parseRetryAfter("soon", now); ok {
		t.Fatal("accepted soon")
	}
}
