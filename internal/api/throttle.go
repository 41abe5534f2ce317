package api

import (
	"container/list"
	"net"
	"net/netip"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/keymint/terraform-provider-keymint/internal/service"
)

// Failed bearer authentication is throttled per client address: each
// address has a bucket of AuthFailureBurst failures, refilled at
// AuthFailureBurst per AuthFailureWindow. Only failures are counted, and a
// valid token is always let through, so good tokens and verify traffic are
// never slowed, even from an address that is throttled.
const (
	AuthFailureBurst  = 20
	AuthFailureWindow = time.Minute
	// maxThrottledAddrs bounds the memory the throttle takes (about 200
	// bytes an address): past it the address seen longest ago is forgotten.
	maxThrottledAddrs = 50000
)

// authThrottle holds a token bucket of failures per client address, the
// most recently failed first.
type authThrottle struct {
	mu    sync.Mutex
	addrs map[netip.Prefix]*list.Element
	order *list.List // of *failureBucket, most recent failure at the front
	max   int
}

type failureBucket struct {
	addr    netip.Prefix
	limiter *rate.Limiter
}

func newAuthThrottle(max int) *authThrottle {
	return &authThrottle{addrs: map[netip.Prefix]*list.Element{}, order: list.New(), max: max}
}

// throttled reports whether addr has no failures left, and how long until it has one.
func (t *authThrottle) throttled(addr netip.Prefix, now time.Time) (time.Duration, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	el, ok := t.addrs[addr]
	if !ok {
		return 0, false
	}
	return waitForOne(el.Value.(*failureBucket).limiter, now)
}

// fail counts a failure from addr. It reports whether addr was already out
// of failures (the answer is then 429, not 401), and how long until it has one.
func (t *authThrottle) fail(addr netip.Prefix, now time.Time) (time.Duration, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	el, ok := t.addrs[addr]
	if ok {
		t.order.MoveToFront(el)
	} else {
		if t.order.Len() >= t.max {
			oldest := t.order.Back()
			delete(t.addrs, oldest.Value.(*failureBucket).addr)
			t.order.Remove(oldest)
		}
		b := &failureBucket{addr: addr, limiter: rate.NewLimiter(rate.Every(AuthFailureWindow/AuthFailureBurst), AuthFailureBurst)}
		el = t.order.PushFront(b)
		t.addrs[addr] = el
	}
	lim := el.Value.(*failureBucket).limiter
	if lim.AllowN(now, 1) {
		return 0, false
	}
	return waitForOne(lim, now)
}

// waitForOne is how long until lim has a whole token, if it has none now.
func waitForOne(lim *rate.Limiter, now time.Time) (time.Duration, bool) {
	tokens := lim.TokensAt(now)
	if tokens >= 1 {
		return 0, false
	}
	return time.Duration((1 - tokens) / float64(lim.Limit()) * float64(time.Second)), true
}

// clientAddr is the address a request's failures are counted against: the
// peer's IP (IPv6 by its /64, which one subscriber usually holds whole).
// X-Forwarded-For is not trusted: a client could name any address there.
func clientAddr(remoteAddr string) netip.Prefix {
	host, _, err := net.SplitHostPort(remoteAddr)
	if err != nil {
		host = remoteAddr
	}
	ip, err := netip.ParseAddr(host)
	if err != nil {
		return netip.Prefix{} // all unparsable peers share one bucket
	}
	ip = ip.Unmap().WithZone("")
	if ip.Is4() {
		return netip.PrefixFrom(ip, 32)
	}
	p, _ := ip.Prefix(64)
	return p
}

func tooManyAuthFailures(wait time.Duration) *service.Error {
	e := service.Errorf(service.TooManyRequests, "too_many_auth_failures",
		"more than %d failed authentications from this address within %s; check the token, and retry after Retry-After seconds", AuthFailureBurst, AuthFailureWindow)
	e.RetryAfter = max(wait, time.Second)
	return e
}
