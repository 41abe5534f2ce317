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

// blockedOutput holds every write until released, as a slow disk or a full
// pipe would.
type blockedOutput struct {
	started, release chan struct{}
	mu               sync.Mutex
	buf              bytes.Buffer
}

func (b *blockedOutput) Write(p []byte) (int, error) {
	b.started <- struct{}{}
	<-b.release
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// TestLinesDoNotWaitForAFlush: while a full buffer is being written out,
// other lines are buffered at once (a request's line never waits for
// another's write(2)), and every line still goes out, in order.
func TestLinesDoNotWaitForAFlush(t *testing.T) {
	out := &blockedOutput{started: make(chan struct{}, 10), release: make(chan struct{})}
	w := logbuf.New(out, time.Hour)
	line := []byte(strings.Repeat("x", 1023) + "\n")
	filled := make(chan struct{})
	go func() {
		for range 64 { // the 64th line fills the buffer: this Write flushes, and blocks in the output
			w.Write(line)
		}
		close(filled)
	}()
	<-out.started
	wrote := make(chan struct{})
	go func() {
		w.Write([]byte("during the flush\n"))
		close(wrote)
	}()
	select {
	case <-wrote:
	case <-time.After(10 * time.Second):
		t.Fatal("a line waited for another's flush to finish")
	}
	close(out.release)
	<-filled
	w.Close()
	want := strings.Repeat(string(line), 64) + "during the flush\n"
	if got := out.buf.String(); got != want {
		t.Fatalf("out of order or lost: %d bytes, ends %q", len(got), got[max(0, len(got)-40):])
	}
}
