package server

import (
	"container/list"
	"crypto/tls"
	"log/slog"
	"net"
	"net/http"
	"sync"
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
type capListener struct {
	net.Listener
	max    int
	mu     sync.Mutex
	freed  *sync.Cond
	open   int
	idle   *list.List                 // idle connections, idle longest first
	conns  map[net.Conn]*list.Element // open connections; nil: in a request
	closed bool
}

func newCapListener(l net.Listener, max int) *capListener {
	c := &capListener{Listener: l, max: max, idle: list.New(), conns: map[net.Conn]*list.Element{}}
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
	for l.open >= l.max && l.idle.Len() == 0 && !l.closed {
		l.freed.Wait() // every connection is in a request: this one waits its turn
	}
	if l.closed {
		_ = c.Close()
		return nil, net.ErrClosed
	}
	if l.open >= l.max {
		oldest := l.idle.Remove(l.idle.Front()).(net.Conn)
		delete(l.conns, oldest)
		l.open--
		if tc, ok := oldest.(*tls.Conn); ok {
			oldest = tc.NetConn() // no close_notify: it may wait up to 5s on a peer that does not read
		}
		_ = oldest.Close()
	}
	l.open++
	l.conns[c] = l.idle.PushBack(c) // idle until its first request starts
	return c, nil
}

func (l *capListener) Close() error {
	l.mu.Lock()
	l.closed = true
	l.freed.Broadcast()
	l.mu.Unlock()
	return l.Listener.Close()
}

// connState is the http.Server's ConnState hook: it tracks which
// connections are idle.
func (l *capListener) connState(c net.Conn, state http.ConnState) {
	l.mu.Lock()
	defer l.mu.Unlock()
	el, ok := l.conns[c]
	if !ok {
		return // closed here already
	}
	switch state {
	case http.StateActive:
		if el != nil {
			l.idle.Remove(el)
			l.conns[c] = nil
		}
	case http.StateIdle:
		if el != nil {
			l.idle.Remove(el)
		}
		l.conns[c] = l.idle.PushBack(c)
		l.freed.Signal()
	case http.StateClosed, http.StateHijacked:
		if el != nil {
			l.idle.Remove(el)
		}
		delete(l.conns, c)
		l.open--
		l.freed.Signal()
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
