package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/keymint/terraform-provider-keymint/internal/ratelimit"
)

// RateLimits counts verifies in the database (rate_take), so a key's limit
// holds however its verifies spread over replicas. Each verify of a
// rate-limited key costs one round trip and an asynchronously committed write.
type RateLimits struct{ s *Store }

var _ ratelimit.Counter = RateLimits{}

// RateLimits returns the store's shared rate limit counter.
func (s *Store) RateLimits() RateLimits { return RateLimits{s} }

func (r RateLimits) Allow(ctx context.Context, id, _ string, limit ratelimit.Limit, _ time.Time) (ratelimit.Verdict, error) {
	// A changed limit counts afresh, as in this process's counter.
	key := fmt.Sprintf("%s/%d/%d", id, limit.Requests, limit.Window.Nanoseconds())
	v := ratelimit.Verdict{Limit: limit.Requests}
	var reset, now int64
	err := r.s.DB().QueryRowContext(ctx, `SELECT allowed, remaining, reset_at, now_ns FROM rate_take($1, $2, $3)`,
		key, limit.Requests, limit.Window.Nanoseconds()).Scan(&v.Allowed, &v.Remaining, &reset, &now)
	v.Reset = time.Unix(0, max(reset, now)).UTC()
	return v, err
}

// Forget and ForgetApp have nothing to do: a key's slots expire with its window.
func (RateLimits) Forget(string)    {}
func (RateLimits) ForgetApp(string) {}

// Sweep deletes the slots that no longer count and reports how many keys
// still have some. Slots are timed on the database's clock, so it is the
// one asked (this process's may differ), with a minute to spare for a
// clock that steps.
func (r RateLimits) Sweep(ctx context.Context, _ time.Time) (int, error) {
	if _, err := r.s.DB().ExecContext(ctx, `DELETE FROM rate_slots
		WHERE expires < (extract(epoch FROM clock_timestamp() - interval '1 minute') * 1000000)::BIGINT * 1000`); err != nil {
		return 0, err
	}
	var n int
	err := r.s.DB().QueryRowContext(ctx, `SELECT count(DISTINCT key_id) FROM rate_slots`).Scan(&n)
	return n, err
}
