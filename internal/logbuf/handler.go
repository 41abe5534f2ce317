package logbuf

import (
	"context"
	"log/slog"
	"strconv"
	"sync"
	"time"
)

// Handler is slog's text or JSON handler over a Writer, with warnings and
// errors flushed at once, and a fast path for the line a server writes per
// request (LogRequest): the same bytes slog would write, without slog's
// per-record work (a Record, its attributes copied, a generic encoder),
// which was a tenth of the server's CPU under verify load.
type Handler struct {
	h    slog.Handler // slog's handler, flushing from slog.LevelWarn up
	w    *Writer
	json bool
}

// NewHandler returns the handler of a process logging to w, in slog's JSON
// format if json, its text format otherwise, from slog.LevelInfo up.
func NewHandler(w *Writer, json bool) *Handler {
	var h slog.Handler = slog.NewTextHandler(w, nil)
	if json {
		h = slog.NewJSONHandler(w, nil)
	}
	return &Handler{h: urgent{Handler: h, w: w, level: slog.LevelWarn}, w: w, json: json}
}

func (h *Handler) Enabled(ctx context.Context, l slog.Level) bool { return h.h.Enabled(ctx, l) }

func (h *Handler) Handle(ctx context.Context, r slog.Record) error { return h.h.Handle(ctx, r) }

// WithAttrs and WithGroup return plain slog handlers: the fast path writes
// no attributes but a request's.
func (h *Handler) WithAttrs(attrs []slog.Attr) slog.Handler { return h.h.WithAttrs(attrs) }

func (h *Handler) WithGroup(name string) slog.Handler { return h.h.WithGroup(name) }

// Request is what a server's line for one request says. Its strings go to
// the log as they are: the caller cuts any key out of them first.
type Request struct {
	Time      time.Time
	Method    string
	Path      string
	Status    int
	Duration  time.Duration
	Caller    string
	RequestID string
}

// Attrs are r's attributes in the order LogRequest writes them, for a
// logger that has no fast path.
func (r Request) Attrs() []slog.Attr {
	return []slog.Attr{slog.String("method", r.Method), slog.String("path", r.Path),
		slog.Int("status", r.Status), slog.Duration("duration", r.Duration),
		slog.String("caller", r.Caller), slog.String("request_id", r.RequestID)}
}

// RequestMessage is the message of a request's line.
const RequestMessage = "request"

var lines = sync.Pool{New: func() any { b := make([]byte, 0, 256); return &b }}

// LogRequest writes r's line at slog.LevelInfo, byte for byte as slog's
// handler writes msg "request" with r.Attrs(), and says whether it did: it
// does not (and the caller logs r through slog) when a string holds
// anything but letters, digits and "/_-.~:", which slog may quote or escape
// and a redacting handler may cut.
func (h *Handler) LogRequest(r Request) bool {
	if !plain(r.Method) || !plain(r.Path) || !plain(r.Caller) || !plain(r.RequestID) || r.Time.Year() >= 10000 {
		return false
	}
	if !h.h.Enabled(context.Background(), slog.LevelInfo) {
		return true
	}
	bp := lines.Get().(*[]byte)
	b := (*bp)[:0]
	if h.json {
		b = append(b, `{"time":"`...)
		b = r.Time.AppendFormat(b, time.RFC3339Nano)
		b = append(b, `","level":"INFO","msg":"request","method":`...)
		b = appendJSONString(b, r.Method)
		b = append(b, `,"path":`...)
		b = appendJSONString(b, r.Path)
		b = append(b, `,"status":`...)
		b = strconv.AppendInt(b, int64(r.Status), 10)
		b = append(b, `,"duration":`...)
		b = strconv.AppendInt(b, int64(r.Duration), 10)
		b = append(b, `,"caller":`...)
		b = appendJSONString(b, r.Caller)
		b = append(b, `,"request_id":`...)
		b = appendJSONString(b, r.RequestID)
		b = append(b, "}\n"...)
	} else {
		b = append(b, "time="...)
		b = appendRFC3339Millis(b, r.Time)
		b = append(b, " level=INFO msg=request method="...)
		b = appendTextString(b, r.Method)
		b = append(b, " path="...)
		b = appendTextString(b, r.Path)
		b = append(b, " status="...)
		b = strconv.AppendInt(b, int64(r.Status), 10)
		b = append(b, " duration="...)
		b = append(b, r.Duration.String()...)
		b = append(b, " caller="...)
		b = appendTextString(b, r.Caller)
		b = append(b, " request_id="...)
		b = appendTextString(b, r.RequestID)
		b = append(b, '\n')
	}
	_, _ = h.w.Write(b) // buffered: its output's failures are counted at the flush
	*bp = b
	lines.Put(bp)
	return true
}

// plain says whether s holds only bytes that neither slog's text nor its
// JSON handler quotes or escapes.
func plain(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' ||
			c == '/' || c == '_' || c == '-' || c == '.' || c == '~' || c == ':') {
			return false
		}
	}
	return true
}

func appendJSONString(b []byte, s string) []byte {
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}

// appendTextString writes a plain s as slog's text handler does: bare,
// or "" when empty.
func appendTextString(b []byte, s string) []byte {
	if s == "" {
		return append(b, `""`...)
	}
	return append(b, s...)
}

// appendRFC3339Millis is slog's text handler's time format: RFC 3339 with
// exactly three digits of milliseconds.
func appendRFC3339Millis(b []byte, t time.Time) []byte {
	const prefixLen = len("2006-01-02T15:04:05.000")
	n := len(b)
	t = t.Truncate(time.Millisecond).Add(time.Millisecond / 10)
	b = t.AppendFormat(b, time.RFC3339Nano)
	return append(b[:n+prefixLen], b[n+prefixLen+1:]...) // drop the 4th digit
}
