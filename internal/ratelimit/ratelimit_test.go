package ratelimit

import (
	"math/rand/v2"
	"sort"
	"testing"
	"time"
)

var t0 = time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)

// maxInAnyWindow is the most allowed times that fall in one interval of
// length window (closed at both ends, the strictest reading).
func maxInAnyWindow(allowed []time.Time, window time.Duration) int {
	sort.Slice(allowed, func(i, j int) bool { return allowed[i].Before(allowed[j]) })
	best, lo := 0, 0
	for hi := range allowed {
		for allowed[hi].Sub(allowed[lo]) > window {
			lo++
		}
		best = max(best, hi-lo+1)
	}
	return best
}

// The promise: never more than Requests successes in any interval of
// length Window, whatever the arrival pattern; and not much fewer than the
// limit under steady load.
func TestNeverMoreThanRequestsInAnyWindow(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, lim := range []Limit{{5, 10 * time.Second}, {10, time.Second}, {1, time.Minute}, {100, 7 * time.Second}, {3, 17 * time.Nanosecond}} {
		for pattern := range 3 {
			var l Limiters
			var allowed []time.Time
			now := t0
			arrivals := 5000
			for range arrivals {
				switch pattern {
				case 0: // steady
					now = now.Add(lim.Window / 50)
				case 1: // bursts and pauses
					if rng.IntN(20) == 0 {
						now = now.Add(time.Duration(rng.Int64N(int64(lim.Window) * 2)))
					}
				case 2: // random
					now = now.Add(time.Duration(rng.Int64N(int64(lim.Window)/10 + 1)))
				}
				if v := l.allow("k", "app", lim, now); v.Allowed {
					allowed = append(allowed, now)
				}
			}
			if got := maxInAnyWindow(allowed, lim.Window); got > lim.Requests {
				t.Errorf("%+v pattern %d: %d successes in one window", lim, pattern, got)
			}
			if pattern == 0 {
				// Steady load over 100 windows: at least 15/16 of the limit gets through.
				ideal := min(float64(arrivals), float64(lim.Requests)*float64(now.Sub(t0))/float64(lim.Window))
				if float64(len(allowed)) < ideal*(1-1.0/Slots)-float64(lim.Requests) {
					t.Errorf("%+v steady: %d allowed of an ideal %.0f", lim, len(allowed), ideal)
				}
			}
		}
	}
}

// The cases users reported: 5 per 10 s gave 9 in 10 s; 10 per 1 s gave 19 in the first second.
func TestReportedBursts(t *testing.T) {
	var l Limiters
	n := 0
	for i := range 100 {
		if l.allow("a", "app", Limit{5, 10 * time.Second}, t0.Add(time.Duration(i)*100*time.Millisecond)).Allowed {
			n++
		}
	}
	if n != 5 {
		t.Fatalf("5 per 10s: %d successes in 10 s", n)
	}
	n = 0
	for i := range 1000 {
		if l.allow("b", "app", Limit{10, time.Second}, t0.Add(time.Duration(i)*time.Millisecond)).Allowed {
			n++
		}
	}
	if n != 10 {
		t.Fatalf("10 per 1s: %d successes in the first second", n)
	}
}

func TestVerdictAndLifecycle(t *testing.T) {
	var l Limiters
	lim := Limit{Requests: 3, Window: 16 * time.Second} // 1 s slots
	for i := range 3 {
		v := l.allow("k", "app", lim, t0.Add(time.Duration(i)*time.Second))
		if !v.Allowed || v.Remaining != 2-i || v.Limit != 3 || !v.Reset.Equal(t0.Add(17*time.Second)) {
			t.Fatalf("request %d: %+v", i, v)
		}
	}
	v := l.allow("k", "app", lim, t0.Add(3*time.Second))
	if v.Allowed || v.Remaining != 0 || !v.Reset.Equal(t0.Add(17*time.Second)) {
		t.Fatalf("4th: %+v, want refused until %v", v, t0.Add(17*time.Second))
	}
	if v := l.allow("k", "app", lim, t0.Add(17*time.Second-1)); v.Allowed {
		t.Fatalf("allowed before reset: %+v", v)
	}
	if v := l.allow("k", "app", lim, t0.Add(17*time.Second)); !v.Allowed || v.Remaining != 0 {
		t.Fatalf("at reset: %+v", v)
	}
	if v := l.allow("other", "app", lim, t0); !v.Allowed {
		t.Fatal("keys must not share a window")
	}
	// A changed limit counts afresh.
	if v := l.allow("k", "app", Limit{10, time.Minute}, t0.Add(17*time.Second)); !v.Allowed || v.Remaining != 9 {
		t.Fatalf("after the limit changed: %+v", v)
	}
	l.allow("x", "gone", lim, t0)
	l.ForgetApp("gone")
	l.Forget("other")
	if kept := l.sweep(t0.Add(17 * time.Second)); kept != 1 {
		t.Fatalf("sweep kept %d windows, want 1 (k)", kept)
	}
	if kept := l.sweep(t0.Add(time.Hour)); kept != 0 {
		t.Fatalf("an hour later, sweep kept %d idle windows", kept)
	}
	if v := l.allow("k", "app", lim, t0.Add(time.Hour)); !v.Allowed || v.Remaining != 2 {
		t.Fatalf("after a sweep: %+v", v)
	}
}
