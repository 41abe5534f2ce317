package server

import (
	"errors"
	"net"
	"net/http"
	"testing"
	"time"
)

// TestCapListenerNeverClosesARequest: at the cap, a new connection closes
// the one idle longest, never one in a request; with every connection in a
// request, Accept waits until one goes idle or closes.
func TestCapListenerNeverClosesARequest(t *testing.T) {
	inner, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	l := newCapListener(inner, 2)
	defer l.Close()
	accepted := make(chan net.Conn, 4)
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			accepted <- c
		}
	}()
	dial := func() net.Conn {
		c, err := net.Dial("tcp", inner.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	dial()
	dial()
	a, b := <-accepted, <-accepted
	l.connState(a, http.StateActive)
	l.connState(b, http.StateActive)
	dial() // the third waits: both are in a request
	select {
	case <-accepted:
		t.Fatal("accepted past the cap while every connection was in a request")
	case <-time.After(200 * time.Millisecond): // proving a negative: nothing happens
	}
	l.connState(b, http.StateIdle) // b's request ended
	c := <-accepted
	if _, err := b.Read(make([]byte, 1)); err == nil {
		t.Fatal("b, idle, was not closed to make room")
	}
	a.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
	if _, err := a.Read(make([]byte, 1)); !isTimeout(err) {
		t.Fatalf("a, in a request, was closed: %v", err)
	}
	if l.open != 2 {
		t.Fatalf("%d connections counted, want 2", l.open)
	}
	l.connState(c, http.StateClosed)
	if l.open != 1 {
		t.Fatalf("%d connections counted after a close, want 1", l.open)
	}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}
