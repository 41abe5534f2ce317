package logbuf_test

import (
	"bytes"
	"context"
	"log/slog"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/keymint/terraform-provider-keymint/internal/logbuf"
)

// TestLogRequestWritesWhatSlogWrites holds the fast path to slog's own text
// and JSON handlers, byte for byte, over random requests, times and
// durations.
func TestLogRequestWritesWhatSlogWrites(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	word := func() string {
		const chars = "abcXYZ019/_-.~:"
		b := make([]byte, rng.IntN(12))
		for i := range b {
			b[i] = chars[rng.IntN(len(chars))]
		}
		return string(b)
	}
	zones := []*time.Location{time.UTC, time.FixedZone("X", 5*3600+30*60), time.FixedZone("Y", -7*3600)}
	for _, json := range []bool{false, true} {
		for i := range 2000 {
			r := logbuf.Request{
				Time:   time.Unix(rng.Int64N(4e9), rng.Int64N(1e9)).In(zones[i%len(zones)]),
				Method: word(), Path: word(), Status: 100 + rng.IntN(500),
				Duration: time.Duration(rng.Int64N(int64(10*time.Second))) >> rng.IntN(30),
				Caller:   word(), RequestID: word(),
			}
			if i%7 == 0 {
				r.Time = r.Time.Truncate(time.Second) // no fraction: slog trims RFC3339Nano's zeros
			}
			var fast, want bytes.Buffer
			w := logbuf.New(&fast, time.Hour)
			if !logbuf.NewHandler(w, json).LogRequest(r) {
				t.Fatalf("a plain request was refused: %+v", r)
			}
			w.Close()
			var h slog.Handler = slog.NewTextHandler(&want, nil)
			if json {
				h = slog.NewJSONHandler(&want, nil)
			}
			rec := slog.NewRecord(r.Time, slog.LevelInfo, logbuf.RequestMessage, 0)
			rec.AddAttrs(r.Attrs()...)
			if err := h.Handle(context.Background(), rec); err != nil {
				t.Fatal(err)
			}
			if fast.String() != want.String() {
				t.Fatalf("json=%v:\nfast path %q\nslog      %q", json, fast.String(), want.String())
			}
		}
	}
}

// TestLogRequestLeavesTheRestToSlog: a string slog would quote or escape
// is refused, so the caller logs it through slog (and its redaction).
func TestLogRequestLeavesTheRestToSlog(t *testing.T) {
	var out bytes.Buffer
	w := logbuf.New(&out, time.Hour)
	h := logbuf.NewHandler(w, false)
	for _, r := range []logbuf.Request{
		{Method: "GET", Path: "/v1/keys/acme_1234…"},
		{Method: "GET", Path: "/a b"},
		{Method: "GET", Path: "/v1", RequestID: `x"y`},
		{Method: "G=T", Path: "/v1"},
		{Method: "GET", Path: "/v1", Caller: "é"},
	} {
		r.Time = time.Now()
		if h.LogRequest(r) {
			t.Errorf("LogRequest took %+v", r)
		}
	}
	w.Close()
	if out.Len() != 0 {
		t.Fatalf("a refused request was written: %q", out.String())
	}
}

// TestLogRequestIsBuffered: the fast path writes to the Writer like any
// line, so an info line waits for the flush.
func TestLogRequestIsBuffered(t *testing.T) {
	out := newSink()
	w := logbuf.New(out, time.Hour)
	defer w.Close()
	logbuf.NewHandler(w, true).LogRequest(logbuf.Request{Time: time.Now(), Method: "POST", Path: "/v1/verify", Status: 200})
	if out.String() != "" {
		t.Fatal("a request line was written before any flush")
	}
	w.Flush()
	if !strings.Contains(out.String(), `"path":"/v1/verify"`) {
		t.Fatalf("after Flush: %q", out.String())
	}
}

func BenchmarkLogRequest(b *testing.B) {
	r := logbuf.Request{Time: time.Now(), Method: "POST", Path: "/v1/verify", Status: 200, Duration: 123456 * time.Nanosecond,
		Caller: "key_06xydy9602yte452vmrj9r3a", RequestID: "req_09a22e771165ab7d4dbe80f5"}
	for _, json := range []bool{false, true} {
		name := map[bool]string{false: "text", true: "json"}[json]
		w := logbuf.New(discard{}, time.Hour)
		b.Run(name+"/fast-path", func(b *testing.B) {
			h := logbuf.NewHandler(w, json)
			b.ReportAllocs()
			for b.Loop() {
				h.LogRequest(r)
			}
		})
		b.Run(name+"/slog", func(b *testing.B) {
			log := slog.New(logbuf.NewHandler(w, json))
			b.ReportAllocs()
			for b.Loop() {
				log.LogAttrs(context.Background(), slog.LevelInfo, logbuf.RequestMessage, r.Attrs()...)
			}
		})
		w.Close()
	}
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }
