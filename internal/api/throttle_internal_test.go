package api

import (
	"testing"
	"time"
)

func TestAuthThrottleBoundedAndKeyed(t *testing.T) {
	now := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	th := newAuthThrottle(2)
	a, b, c := clientAddr("192.0.2.1:1"), clientAddr("192.0.2.2:1"), clientAddr("192.0.2.3:1")
	for range AuthFailureBurst {
		th.fail(a, now)
	}
	if _, throttled := th.throttled(a, now); !throttled {
		t.Fatal("a is not throttled after the burst")
	}
	th.fail(b, now)
	th.fail(c, now) // over the bound: a, seen longest ago, is forgotten
	if len(th.addrs) != 2 || th.order.Len() != 2 {
		t.Fatalf("%d addresses kept, bound 2", len(th.addrs))
	}
	if _, throttled := th.throttled(a, now); throttled {
		t.Fatal("a still tracked past the bound")
	}
	// An IPv6 client is one /64; an IPv4-mapped address is the IPv4 one.
	if clientAddr("[2001:db8::1]:1") != clientAddr("[2001:db8::ffff:2]:9") || clientAddr("[::ffff:192.0.2.1]:5") != a {
		t.Fatal("addresses not keyed by /64 (IPv6) or unmapped (IPv4)")
	}
	if clientAddr("[2001:db8:0:1::1]:1") == clientAddr("[2001:db8::1]:1") {
		t.Fatal("two /64s share a bucket")
	}
}
