// Package logbuf buffers a process's log output so that a request's log
// line costs no write(2) of its own: lines collect in memory and go out
// together at least every flush interval, at once for a warning or an
// error, when the buffer fills, and on Close. A line is never dropped
// silently: if the output fails, the lines it held are counted (Dropped).
package logbuf

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"
)

// DefaultInterval is how long a line may wait in the buffer.
const DefaultInterval = 100 * time.Millisecond

// flushAt is the buffered size past which a Write flushes at once.
const flushAt = 64 << 10

// Writer is a buffered, periodically flushed io.Writer, safe for concurrent use.
//
// A flush takes the filled buffer and writes it with the lock released,
// while lines go on collecting in a spare one: a request's line does not
// wait for another's write(2) (at 40,000 requests a second the 64 KiB
// buffer fills about 120 times a second). Only if the spare fills too
// before that write ends (an output slower than 64 KiB per flush) do
// writers wait their turn to flush.
type Writer struct {
	out     io.Writer
	mu      sync.Mutex // guards buf
	buf     []byte
	flushMu sync.Mutex // one flush at a time, so lines go out in order; guards spare and out
	spare   []byte
	dropped atomic.Uint64
	stop    chan struct{}
	done    chan struct{}
	once    sync.Once
}

// New returns a Writer over out that flushes every interval until Close.
func New(out io.Writer, interval time.Duration) *Writer {
	w := &Writer{out: out, buf: make([]byte, 0, flushAt+4<<10), spare: make([]byte, 0, flushAt+4<<10),
		stop: make(chan struct{}), done: make(chan struct{})}
	go w.flushEvery(interval)
	return w
}

func (w *Writer) flushEvery(interval time.Duration) {
	defer close(w.done)
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			w.Flush()
		case <-w.stop:
			return
		}
	}
}

// Write buffers p (slog handlers write one whole line per call).
func (w *Writer) Write(p []byte) (int, error) {
	w.mu.Lock()
	w.buf = append(w.buf, p...)
	full := len(w.buf) >= flushAt
	w.mu.Unlock()
	if full {
		w.Flush()
	}
	return len(p), nil
}

// Flush writes out what is buffered.
func (w *Writer) Flush() {
	w.flushMu.Lock()
	defer w.flushMu.Unlock()
	w.mu.Lock()
	b := w.buf
	w.buf = w.spare[:0]
	w.mu.Unlock()
	if len(b) > 0 {
		if n, err := w.out.Write(b); err != nil {
			// What was not written is lost: say how many lines, through Dropped.
			w.dropped.Add(uint64(bytes.Count(b[n:], []byte{'\n'})))
		}
	}
	w.spare = b[:0]
}

// Dropped is the number of lines the output refused so far.
func (w *Writer) Dropped() uint64 { return w.dropped.Load() }

// Close stops the periodic flush and writes out what is buffered. Writes
// after Close go out at the next Flush or Close.
func (w *Writer) Close() {
	w.once.Do(func() {
		close(w.stop)
		<-w.done
	})
	w.Flush()
}

// urgent wraps h so that a record at level or above is flushed as soon as
// it is written: a warning or an error is never left waiting in w.
type urgent struct {
	slog.Handler
	w     *Writer
	level slog.Level
}

func (u urgent) Handle(ctx context.Context, r slog.Record) error {
	err := u.Handler.Handle(ctx, r)
	if r.Level >= u.level {
		u.w.Flush()
	}
	return err
}

func (u urgent) WithAttrs(attrs []slog.Attr) slog.Handler {
	return urgent{Handler: u.Handler.WithAttrs(attrs), w: u.w, level: u.level}
}

func (u urgent) WithGroup(name string) slog.Handler {
	return urgent{Handler: u.Handler.WithGroup(name), w: u.w, level: u.level}
}
