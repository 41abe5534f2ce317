package vocab

import (
	"testing"
	"time"
)

func TestParseDuration(t *testing.T) {
	day := 24 * time.Hour
	for in, want := range map[string]time.Duration{
		"30d": 30 * day, "2w": 14 * day, "1w3d": 10 * day, "2w12h": 14*day + 12*time.Hour, "1d30m": day + 30*time.Minute,
		"720h": 720 * time.Hour, "90s": 90 * time.Second, "1h30m": 90 * time.Minute, "0": 0, "0d": 0, "-1d": -day, " 7d ": 7 * day,
	} {
		got, err := ParseDuration(in)
		if err != nil || got != want {
			t.Errorf("ParseDuration(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"", "d", "30", "1.5d", "3d1w", "1x", "30days", "1d-1h", "99999999999999w", "15251w", "15250w2d"} {
		if got, err := ParseDuration(in); err == nil {
			t.Errorf("ParseDuration(%q) = %v, want an error", in, got)
		}
	}
}
