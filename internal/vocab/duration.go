package vocab

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// DurationRule says what ParseDuration accepts, for help texts and errors.
const DurationRule = "a Go duration (90s, 12h, 1h30m) or whole days and weeks (30d, 2w, 1w3d12h)"

// ParseDuration reads a duration as time.ParseDuration does, and also in whole
// days (d, 24h) and weeks (w, 168h), leading and in that order: 30d, 2w,
// 1w3d, 2w12h. Days are 24 hours: no calendar, no daylight saving.
func ParseDuration(s string) (time.Duration, error) {
	in := strings.TrimSpace(s)
	neg := strings.HasPrefix(in, "-")
	rest := strings.TrimPrefix(strings.TrimPrefix(in, "-"), "+")
	var total time.Duration
	units := 0
	for _, u := range []struct {
		suffix byte
		d      time.Duration
	}{{'w', 7 * 24 * time.Hour}, {'d', 24 * time.Hour}} {
		i := 0
		for i < len(rest) && rest[i] >= '0' && rest[i] <= '9' {
			i++
		}
		if i == 0 || i >= len(rest) || rest[i] != u.suffix {
			continue
		}
		n, err := strconv.ParseInt(rest[:i], 10, 64)
		if err != nil || n > int64(math.MaxInt64/u.d) || total > math.MaxInt64-time.Duration(n)*u.d {
			return 0, fmt.Errorf("%q is too long a duration", s)
		}
		total += time.Duration(n) * u.d
		rest = rest[i+1:]
		units++
	}
	if rest != "" || units == 0 {
		d, err := time.ParseDuration(rest)
		if err != nil || (units > 0 && strings.HasPrefix(rest, "-")) {
			return 0, fmt.Errorf("%q is not a duration: use %s", s, DurationRule)
		}
		if d > 0 && total > math.MaxInt64-d {
			return 0, fmt.Errorf("%q is too long a duration", s)
		}
		total += d
	}
	if neg {
		total = -total
	}
	return total, nil
}
