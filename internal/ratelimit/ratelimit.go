// Package ratelimit counts verifies per key against its app's rate limit.
//
// Each key gets a token bucket (golang.org/x/time/rate) holding Requests
// tokens that refills over Window, so a key may burst to its limit and then
// gets Requests per Window. Counts live in this process: with several replicas
// each counts on its own.
package ratelimit

import (
	"math"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// Limit is a rate limit: Requests per Window.
type Limit struct {
	Requests int
	Window   time.Duration
}

// Verdict is the outcome of one Allow.
type Verdict struct {
	Allowed   bool
	Limit     int
	Remaining int
	Reset     time.Time // when the bucket is full again
}

type bucket struct {
	limit Limit
	lim   *rate.Limiter
}

// Limiters holds one bucket per key.
type Limiters struct {
	buckets sync.Map // key id -> *bucket
	mu      sync.Mutex
}

// Allow takes one token from id's bucket at now.
func (l *Limiters) Allow(id string, limit Limit, now time.Time) Verdict {
	b := l.bucket(id, limit, now)
	allowed := b.lim.AllowN(now, 1)
	tokens := b.lim.TokensAt(now)
	perSecond := float64(limit.Requests) / limit.Window.Seconds()
	missing := float64(limit.Requests) - tokens
	reset := now.Add(time.Duration(missing / perSecond * float64(time.Second)))
	return Verdict{
		Allowed:   allowed,
		Limit:     limit.Requests,
		Remaining: max(0, int(math.Floor(tokens))),
		Reset:     reset,
	}
}

func (l *Limiters) bucket(id string, limit Limit, now time.Time) *bucket {
	if v, ok := l.buckets.Load(id); ok && v.(*bucket).limit == limit {
		return v.(*bucket)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if v, ok := l.buckets.Load(id); ok && v.(*bucket).limit == limit {
		return v.(*bucket)
	}
	// A new or changed limit starts with a full bucket.
	every := rate.Limit(float64(limit.Requests) / limit.Window.Seconds())
	b := &bucket{limit: limit, lim: rate.NewLimiter(every, limit.Requests)}
	b.lim.SetLimitAt(now, every)
	l.buckets.Store(id, b)
	return b
}

// Forget drops id's bucket (the key was revoked or deleted).
func (l *Limiters) Forget(id string) { l.buckets.Delete(id) }
