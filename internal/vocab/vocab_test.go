package vocab

import (
	"strings"
	"testing"
	"time"
)

func TestValidKeyPrefix(t *testing.T) {
	for p, want := range map[string]bool{"acme_live": true, "ab": true, "a": false, "Acme": false, "acme_": false,
		"_acme": false, "acme__live": false, "9acme": false, strings.Repeat("a", 33): false} {
		if ValidKeyPrefix(p) != want {
			t.Errorf("ValidKeyPrefix(%q) = %v", p, !want)
		}
	}
}

func TestKeyStatusPrecedence(t *testing.T) {
	now := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	past, future := now.Add(-time.Second), now.Add(time.Second)
	for _, c := range []struct {
		revoked bool
		expires *time.Time
		enabled bool
		want    string
	}{
		{false, nil, true, StatusActive},
		{false, &future, true, StatusActive},
		{false, nil, false, StatusDisabled},
		{false, &now, true, StatusExpired}, // expiry is inclusive
		{false, &past, false, StatusExpired},
		{true, &past, false, StatusRevoked},
		{true, nil, true, StatusRevoked},
	} {
		if got := KeyStatus(c.revoked, c.expires, c.enabled, now); got != c.want {
			t.Errorf("KeyStatus(%v, %v, %v) = %s, want %s", c.revoked, c.expires, c.enabled, got, c.want)
		}
	}
}

func TestFormatDuration(t *testing.T) {
	for d, want := range map[time.Duration]string{time.Minute: "1m", time.Hour: "1h", 90 * time.Minute: "1h30m",
		720 * time.Hour: "720h", 1500 * time.Millisecond: "1.5s", time.Hour + time.Second: "1h0m1s", 0: "0s"} {
		got := FormatDuration(d)
		if back, err := time.ParseDuration(got); got != want || err != nil || back != d {
			t.Errorf("FormatDuration(%v) = %q (reads back %v, %v), want %q", d, got, back, err, want)
		}
	}
}
