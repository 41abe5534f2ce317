// Package vocab is keymint's shared vocabulary: key statuses, the patterns
// that slugs, scopes and key prefixes follow, and the bounds on names,
// metadata and durations. The server's service layer enforces them and the
// provider's plan-time validators check them, from this one place.
package vocab

import (
	"math"
	"regexp"
	"strings"
	"time"
)

// Key statuses, as reported by the API and accepted by the list filter.
const (
	StatusActive   = "active"
	StatusDisabled = "disabled"
	StatusExpired  = "expired"
	StatusRevoked  = "revoked"
)

// Statuses lists every status, for filters and validation.
var Statuses = []string{StatusActive, StatusDisabled, StatusExpired, StatusRevoked}

// KeyStatus derives a key's status at now. Revocation wins over expiry, which
// wins over disabling: the strongest reason a key cannot be used is reported.
func KeyStatus(revoked bool, expiresAt *time.Time, enabled bool, now time.Time) string {
	switch {
	case revoked:
		return StatusRevoked
	case expiresAt != nil && !now.Before(*expiresAt):
		return StatusExpired
	case !enabled:
		return StatusDisabled
	default:
		return StatusActive
	}
}

// Patterns, each with the sentence that explains it to a user.
var (
	SlugPattern = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{1,62}$`)
	SlugRule    = "2-63 characters: lowercase letters, digits and '-', starting with a letter or digit"

	ScopePattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.:/*-]{0,127}$`)
	ScopeRule    = "letters, digits and _ . : / * - (e.g. read:data), at most 128 characters"

	// KeyPrefixPattern is what an auth app's key_prefix matches, within
	// KeyPrefixMinLen and KeyPrefixMaxLen bytes.
	KeyPrefixPattern = regexp.MustCompile(`^[a-z][a-z0-9]*(_[a-z0-9]+)*$`)
	KeyPrefixRule    = "2-32 characters: lowercase letters and digits, words joined by '_', starting with a letter (e.g. acme_live)"
)

// Bounds.
const (
	KeyPrefixMinLen = 2
	KeyPrefixMaxLen = 32

	NameMaxLen        = 200
	DescriptionMaxLen = 2000
	OwnerMaxLen       = 200
	ResourceMaxLen    = 200

	MetadataMaxEntries  = 50
	MetadataKeyMaxLen   = 64
	MetadataValueMaxLen = 512

	// MaxGracePeriod bounds how long a rotated-out secret keeps working.
	MaxGracePeriod = 720 * time.Hour
	// MaxRateWindow bounds a rate limit's window.
	MaxRateWindow = 720 * time.Hour

	DefaultPageSize = 100
	MaxPageSize     = 1000
)

// MaxTime is the latest time keymint stores: times are kept as int64
// nanoseconds since 1970, so every accepted time reads back exactly.
var MaxTime = time.Unix(0, math.MaxInt64).UTC()

// ValidKeyPrefix reports whether p can be an app's key prefix.
func ValidKeyPrefix(p string) bool {
	return len(p) >= KeyPrefixMinLen && len(p) <= KeyPrefixMaxLen && KeyPrefixPattern.MatchString(p)
}

// FormatDuration writes d as Go does, without zero trailing units: 1m, not
// 1m0s; 1h30m, not 1h30m0s. time.ParseDuration reads it back.
func FormatDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = s[:len(s)-2]
	}
	if strings.HasSuffix(s, "h0m") {
		s = s[:len(s)-2]
	}
	return s
}

// MaxRateRequests bounds a rate limit's requests: it fits a 32-bit integer
// on every backend, so any database can be copied to any other.
const MaxRateRequests = 1_000_000_000
