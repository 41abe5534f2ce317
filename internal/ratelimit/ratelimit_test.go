package ratelimit

import (
	"testing"
	"time"
)

func TestAllowBurstThenRefill(t *testing.T) {
	var l Limiters
	t0 := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	lim := Limit{Requests: 3, Window: time.Minute}
	for i := range 3 {
		v := l.Allow("k", lim, t0)
		if !v.Allowed || v.Remaining != 2-i || v.Limit != 3 {
			t.Fatalf("request %d: %+v", i, v)
		}
	}
	v := l.Allow("k", lim, t0)
	if v.Allowed || v.Remaining != 0 || !v.Reset.Equal(t0.Add(time.Minute)) {
		t.Fatalf("4th request: %+v, want refused with reset at %v", v, t0.Add(time.Minute))
	}
	if v := l.Allow("other", lim, t0); !v.Allowed {
		t.Fatal("keys must not share a bucket")
	}
	if v := l.Allow("k", lim, t0.Add(19*time.Second)); v.Allowed {
		t.Fatalf("a token came back early: %+v", v)
	}
	if v := l.Allow("k", lim, t0.Add(20*time.Second)); !v.Allowed {
		t.Fatalf("one token per 20s: %+v", v)
	}
	// A changed limit starts a fresh bucket.
	if v := l.Allow("k", Limit{Requests: 10, Window: time.Minute}, t0.Add(20*time.Second)); !v.Allowed || v.Remaining != 9 {
		t.Fatalf("after the limit changed: %+v", v)
	}
	l.Forget("k")
	if v := l.Allow("k", lim, t0.Add(20*time.Second)); v.Remaining != 2 {
		t.Fatalf("after Forget: %+v", v)
	}
}
