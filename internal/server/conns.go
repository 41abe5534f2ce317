package server

import (
	"crypto/tls"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/keymint/terraform-provider-keymint/internal/keyformat"
)

// DefaultMaxConns is --max-conns: the connections each listener holds at
// once, well under the usual fd limit of 1024.
const DefaultMaxConns = 512

// capListener holds at most max connections open. At the cap, a new
// connection closes the one idle longest (connected and not in a request:
// a slow or abandoned client, or a keep-alive one that will reconnect), so
// idle connections cannot starve a new client as a plain limit
// (netutil.LimitListener) lets them until their timeouts run out. Only
// when every connection is in a request does Accept wait for one to end.
//
// A request's start and end (the ConnState hook, twice per request) take no
// lock: they set the connection's idle mark. Only Accept at the cap looks
// for the connection idle longest, among at most max.
type capListener struct {
	net.Listener
	max     int
	conns   sync.Map     // net.Conn -> *connMark: the open connections
	idleSeq atomic.Int64 // orders idle marks: the smaller, the longer idle
	waiting atomic.Int32 // Accepts waiting for a connection to go idle or close

	mu     sync.Mutex // guards open and closed; freed waits on it
	freed  *sync.Cond
	open   int
	closed bool
}

// connMark is a connection's state: 0 while in a request, evicted once
// Accept took it, else the idleSeq of the moment it went idle.
type connMark struct{ idle atomic.Int64 }

func newCapListener(l net.Listener, max int) *capListener {
	c := &capListener{Listener: l, max: max}
	c.freed = sync.NewCond(&c.mu)
	return c
}

func (l *capListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	var oldest net.Conn
	if l.open >= l.max {
		// Counted before looking, so that a connection going idle from here
		// on signals (connState).
		l.waiting.Add(1)
		for !l.closed && l.open >= l.max {
			if oldest = l.evictIdleLongest(); oldest != nil {
				break
			}
			l.freed.Wait() // every connection is in a request: this one waits its turn
		}
		l.waiting.Add(-1)
	}
	if l.closed {
		_ = c.Close()
		return nil, net.ErrClosed
	}
	if oldest != nil {
		l.conns.Delete(oldest)
		l.open--
		if tc, ok := oldest.(*tls.Conn); ok {
			oldest = tc.NetConn() // no close_notify: it may wait up to 5s on a peer that does not read
		}
		_ = oldest.Close()
	}
	l.open++
	m := &connMark{}
	m.idle.Store(l.idleSeq.Add(1)) // idle until its first request starts
	l.conns.Store(c, m)
	return c, nil
}

// evictIdleLongest marks the open connection idle longest as evicted and
// returns it, or nil if every one is in a request. A connection whose
// request starts meanwhile is not taken (its mark changed): the search runs
// again.
func (l *capListener) evictIdleLongest() net.Conn {
	for {
		var oldest net.Conn
		var mark *connMark
		var seq int64
		l.conns.Range(func(k, v any) bool {
			m := v.(*connMark)
			if s := m.idle.Load(); s > 0 && (oldest == nil || s < seq) {
				oldest, mark, seq = k.(net.Conn), m, s
			}
			return true
		})
		if oldest == nil || mark.idle.CompareAndSwap(seq, evicted) {
			return oldest
		}
	}
}

// evicted marks a connection Accept is closing to make room.
const evicted = -1

func (l *capListener) Close() error {
	l.mu.Lock()
	l.closed = true
	l.freed.Broadcast()
	l.mu.Unlock()
	return l.Listener.Close()
}

// connState is the http.Server's ConnState hook: it marks connections idle
// or in a request.
func (l *capListener) connState(c net.Conn, state http.ConnState) {
	v, ok := l.conns.Load(c)
	if !ok {
		return // closed here already
	}
	m := v.(*connMark)
	switch state {
	case http.StateActive:
		if old := m.idle.Load(); old == evicted || !m.idle.CompareAndSwap(old, 0) {
			return // Accept is closing it
		}
	case http.StateIdle:
		if old := m.idle.Load(); old == evicted || !m.idle.CompareAndSwap(old, l.idleSeq.Add(1)) {
			return
		}
		if l.waiting.Load() > 0 {
			l.mu.Lock()
			l.freed.Signal()
			l.mu.Unlock()
		}
	case http.StateClosed, http.StateHijacked:
		l.mu.Lock()
		if _, ok := l.conns.LoadAndDelete(c); ok {
			l.open--
		}
		l.freed.Signal()
		l.mu.Unlock()
	}
}

// Timeouts of every listener: a client that sends its headers slowly, its
// body slowly, reads the answer slowly or idles between requests is cut off.
const (
	readHeaderTimeout = 10 * time.Second
	readTimeout       = 30 * time.Second
	writeTimeout      = 30 * time.Second
	idleTimeout       = 120 * time.Second
)

// newHTTPServer is an http.Server with the timeouts above over a
// capListener of max connections on ln; serve it with Serve(capped).
// Its own errors (a failed TLS handshake, a handler's panic) go to log.
func newHTTPServer(h http.Handler, ln net.Listener, max int, writeTimeout time.Duration, log *slog.Logger) (*http.Server, net.Listener) {
	capped := newCapListener(ln, max)
	return &http.Server{Handler: h, ReadHeaderTimeout: readHeaderTimeout, ReadTimeout: readTimeout,
		WriteTimeout: writeTimeout, IdleTimeout: idleTimeout, MaxHeaderBytes: maxHeaderBytes, ConnState: capped.connState,
		ErrorLog: slog.NewLogLogger(keyformat.RedactingHandler(log.Handler()), slog.LevelWarn)}, capped
}
