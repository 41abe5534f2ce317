// Package ratelimit counts verifies per key against its app's rate limit.
//
// The promise is the one users read in "requests = 5, window = 10s": never
// more than Requests successful verifies in any interval of length Window.
// Each key has a sliding window cut into slots (Window/Slots wide) holding
// counts of successes; a verify succeeds only if the slots that could
// overlap the last Window (the current one and the k before it, where k
// slots cover a Window) hold fewer than Requests. Counting a whole slot that
// is partly older than Window errs on the side of refusing: a key may be
// refused up to Window/Slots early, never allowed one too many. Memory is a
// few hundred bytes per key whatever the limit. Counts live in this process.
package ratelimit

import (
	"context"
	"sync"
	"time"
)

// Counter counts verifies against limits: Limiters in this process (one
// server on SQLite), or one shared by replicas (postgres.RateLimits).
type Counter interface {
	// Allow counts one verify of key id (of app) at now if limit allows it.
	Allow(ctx context.Context, id, app string, limit Limit, now time.Time) (Verdict, error)
	// Forget drops id's counts (the key was revoked, disabled or deleted).
	Forget(id string)
	// ForgetApp drops the counts of every key of app (the app was deleted).
	ForgetApp(app string)
	// Sweep drops what no longer counts at now and says how many keys still have counts.
	Sweep(ctx context.Context, now time.Time) (kept int, err error)
}

var _ Counter = (*Limiters)(nil)

// Slots is how many slots a window is cut into.
const Slots = 16

// Limit is a rate limit: Requests per Window.
type Limit struct {
	Requests int
	Window   time.Duration
}

// Verdict is the outcome of one Allow.
type Verdict struct {
	Allowed bool
	Limit   int
	// Remaining is how many more verifies would succeed now.
	Remaining int
	// Reset is when the oldest counted verify stops counting: with Remaining
	// 0, the earliest time a verify can succeed again. Now if none counts.
	Reset time.Time
}

// window is one key's counts.
type window struct {
	mu     sync.Mutex
	app    string
	limit  Limit
	width  int64 // nanoseconds per slot
	span   int64 // slots that cover a Window; span+1 are counted
	head   int64 // the newest slot index counted (time / width)
	counts [Slots + 1]int32
	total  int32
	swept  bool // removed by Sweep: Allow must use the window in the map
}

func newWindow(app string, limit Limit) *window {
	w := &window{app: app, limit: limit}
	n := limit.Window.Nanoseconds()
	w.width = max(1, (n+Slots-1)/Slots)
	w.span = (n + w.width - 1) / w.width
	return w
}

// advance moves the window to slot idx, dropping slots that no longer count.
func (w *window) advance(idx int64) {
	if idx <= w.head {
		return // the same slot, or a clock that stepped back: keep counting
	}
	if idx-w.head > w.span {
		clear(w.counts[:])
		w.total = 0
	} else {
		for j := w.head + 1; j <= idx; j++ {
			c := &w.counts[j%(w.span+1)]
			w.total -= *c
			*c = 0
		}
	}
	w.head = idx
}

// reset is when the oldest counted slot stops counting.
func (w *window) reset(now time.Time) time.Time {
	for j := w.head - w.span; j <= w.head; j++ {
		if j >= 0 && w.counts[j%(w.span+1)] > 0 {
			return time.Unix(0, (j+w.span+1)*w.width)
		}
	}
	return now
}

// Limiters holds one window per key.
type Limiters struct {
	windows sync.Map // key id -> *window
}

// Allow counts one verify of key id (of app) at now if the limit allows it.
func (l *Limiters) Allow(_ context.Context, id, app string, limit Limit, now time.Time) (Verdict, error) {
	return l.allow(id, app, limit, now), nil
}

func (l *Limiters) allow(id, app string, limit Limit, now time.Time) Verdict {
	w := l.window(id, app, limit)
	w.mu.Lock()
	for w.swept { // raced with Sweep: count in the window that replaced it
		w.mu.Unlock()
		w = l.window(id, app, limit)
		w.mu.Lock()
	}
	defer w.mu.Unlock()
	idx := now.UnixNano() / w.width
	w.advance(idx)
	v := Verdict{Limit: limit.Requests}
	if int(w.total) < limit.Requests {
		v.Allowed = true
		w.counts[w.head%(w.span+1)]++
		w.total++
	}
	v.Remaining = limit.Requests - int(w.total)
	v.Reset = w.reset(now).UTC()
	return v
}

func (l *Limiters) window(id, app string, limit Limit) *window {
	if v, ok := l.windows.Load(id); ok && v.(*window).limit == limit {
		return v.(*window)
	}
	// A new or changed limit starts counting afresh.
	fresh := newWindow(app, limit)
	for {
		v, loaded := l.windows.LoadOrStore(id, fresh)
		if !loaded {
			return fresh
		}
		if w := v.(*window); w.limit == limit {
			return w
		}
		l.windows.CompareAndDelete(id, v)
	}
}

// Forget drops id's counts (the key was revoked, disabled or deleted).
func (l *Limiters) Forget(id string) { l.windows.Delete(id) }

// ForgetApp drops the counts of every key of app (the app was deleted).
func (l *Limiters) ForgetApp(app string) {
	l.windows.Range(func(id, v any) bool {
		if v.(*window).app == app {
			l.windows.Delete(id)
		}
		return true
	})
}

// Sweep drops the windows in which nothing counts any more at now (idle
// keys, and keys that expired or were disabled since), and returns how many
// windows it kept.
func (l *Limiters) Sweep(_ context.Context, now time.Time) (kept int, err error) {
	return l.sweep(now), nil
}

func (l *Limiters) sweep(now time.Time) (kept int) {
	l.windows.Range(func(id, v any) bool {
		w := v.(*window)
		w.mu.Lock()
		w.advance(now.UnixNano() / w.width)
		if w.total == 0 {
			w.swept = true
			l.windows.CompareAndDelete(id, w)
		} else {
			kept++
		}
		w.mu.Unlock()
		return true
	})
	return kept
}
