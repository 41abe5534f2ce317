package logbuf_test

import (
	"bytes"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keymint/terraform-provider-keymint/internal/logbuf"
)

// sink records what reaches the output and signals each write.
type sink struct {
	mu     sync.Mutex
	buf    bytes.Buffer
	writes chan struct{}
	fail   bool
}

func newSink() *sink { return &sink{writes: make(chan struct{}, 100)} }

func (s *sink) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.fail {
		return 0, errors.New("disk full")
	}
	s.buf.Write(p)
	s.writes <- struct{}{}
	return len(p), nil
}

func (s *sink) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.buf.String()
}

func TestLinesWaitForTheFlush(t *testing.T) {
	out := newSink()
	w := logbuf.New(out, time.Hour)
	defer w.Close()
	log := slog.New(logbuf.NewHandler(w, false))
	log.Info("request", "status", 200)
	log.Info("request", "status", 201)
	if got := out.String(); got != "" {
		t.Fatalf("an info line was written before any flush: %q", got)
	}
	w.Flush()
	if got := strings.Count(out.String(), "msg=request"); got != 2 {
		t.Fatalf("after Flush, %d lines are out, want 2: %q", got, out.String())
	}
}

func TestWarningsGoOutAtOnce(t *testing.T) {
	out := newSink()
	w := logbuf.New(out, time.Hour)
	defer w.Close()
	log := slog.New(logbuf.NewHandler(w, false)).With("replica", "a")
	log.Info("request")
	log.Warn("lease lost")
	got := out.String()
	if !strings.Contains(got, "msg=request") || !strings.Contains(got, `msg="lease lost" replica=a`) {
		t.Fatalf("a warning did not flush itself and what came before: %q", got)
	}
}

func TestFlushesEveryInterval(t *testing.T) {
	out := newSink()
	w := logbuf.New(out, 10*time.Millisecond)
	defer w.Close()
	w.Write([]byte("line\n"))
	select {
	case <-out.writes:
	case <-time.After(10 * time.Second):
		t.Fatal("a buffered line was not flushed by the periodic flush")
	}
	if out.String() != "line\n" {
		t.Fatalf("got %q", out.String())
	}
}

func TestCloseFlushes(t *testing.T) {
	out := newSink()
	w := logbuf.New(out, time.Hour)
	w.Write([]byte("last words\n"))
	w.Close()
	if out.String() != "last words\n" {
		t.Fatalf("Close left %q unwritten", "last words")
	}
}

func TestAFullBufferFlushesItself(t *testing.T) {
	out := newSink()
	w := logbuf.New(out, time.Hour)
	defer w.Close()
	line := []byte(strings.Repeat("x", 1023) + "\n")
	for range 64 {
		w.Write(line)
	}
	if got := len(out.String()); got != 64*1024 {
		t.Fatalf("64 KiB buffered without a flush: %d bytes out", got)
	}
}

func TestFailedOutputCountsDroppedLines(t *testing.T) {
	out := newSink()
	out.fail = true
	w := logbuf.New(out, time.Hour)
	defer w.Close()
	w.Write([]byte("one\ntwo\n"))
	w.Write([]byte("three\n"))
	w.Flush()
	if got := w.Dropped(); got != 3 {
		t.Fatalf("Dropped() = %d, want 3", got)
	}
	out.fail = false
	w.Write([]byte("four\n"))
	w.Flush()
	if out.String() != "four\n" {
		t.Fatalf("after the output recovered: %q", out.String())
	}
}
