package service

import (
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/keymint/terraform-provider-keymint/internal/store"
	"github.com/keymint/terraform-provider-keymint/internal/vocab"
	"github.com/keymint/terraform-provider-keymint/internal/wire"
)

func validateText(fe *fieldErrors, field, v string, required bool, maxLen int) {
	if required && v == "" {
		fe.add(field, "is required")
	}
	if len(v) > maxLen {
		fe.add(field, "must be at most %d bytes", maxLen)
	}
	validatePrintable(fe, field, v, "")
}

// validateDescription allows line breaks and tabs, as prose may have them.
func validateDescription(fe *fieldErrors, v string) {
	if len(v) > vocab.DescriptionMaxLen {
		fe.add("description", "must be at most %d bytes", vocab.DescriptionMaxLen)
	}
	validatePrintable(fe, "description", v, "\n\r\t")
}

// validatePrintable refuses invalid UTF-8, control characters (NUL,
// escapes, line breaks...) but those in allowed, and invisible or
// direction-changing characters: they break or spoof logs, terminals and the
// tools that read keymint's output. Every text field passes through it.
func validatePrintable(fe *fieldErrors, field, v, allowed string) {
	if !utf8.ValidString(v) {
		fe.add(field, "must be valid UTF-8")
		return
	}
	if i := strings.IndexFunc(v, func(r rune) bool { return unicode.IsControl(r) && !strings.ContainsRune(allowed, r) }); i >= 0 {
		fe.add(field, "must not contain control characters (found %U at character %d)", []rune(v[i:])[0], utf8.RuneCountInString(v[:i]))
	}
	if msg := vocab.InvisibleError(v); msg != "" {
		fe.add(field, "%s", msg)
	}
}

func validateSlug(fe *fieldErrors, field, v string) {
	if !vocab.SlugPattern.MatchString(v) {
		fe.add(field, "%q is not a valid slug: %s", v, vocab.SlugRule)
	}
}

// validateScopes checks scopes and returns them sorted, without duplicates.
func validateScopes(fe *fieldErrors, field string, scopes []string) []string {
	if len(scopes) == 0 {
		fe.add(field, "at least one scope is required")
	}
	for _, sc := range scopes {
		if !vocab.ScopePattern.MatchString(sc) {
			fe.add(field, "scope %q is not valid: use %s", sc, vocab.ScopeRule)
		}
	}
	return sortedUnique(scopes)
}

func sortedUnique(s []string) []string {
	out := slices.Clone(s)
	slices.Sort(out)
	return slices.Compact(out)
}

func validateMetadata(fe *fieldErrors, m map[string]string) {
	if len(m) > vocab.MetadataMaxEntries {
		fe.add("metadata", "at most %d entries, got %d", vocab.MetadataMaxEntries, len(m))
	}
	for k, v := range m {
		if k == "" || len(k) > vocab.MetadataKeyMaxLen {
			fe.add("metadata", "key %q must be 1-%d bytes", k, vocab.MetadataKeyMaxLen)
		}
		validatePrintable(fe, "metadata", k, "")
		if len(v) > vocab.MetadataValueMaxLen {
			fe.add("metadata."+k, "must be at most %d bytes", vocab.MetadataValueMaxLen)
		}
		validatePrintable(fe, "metadata."+k, v, "")
	}
}

func validateRateLimit(fe *fieldErrors, rl *wire.RateLimit) *store.RateLimit {
	if rl == nil {
		return nil
	}
	if rl.Requests < 1 || rl.Requests > vocab.MaxRateRequests {
		fe.add("rate_limit.requests", "must be from 1 to %d, got %d", vocab.MaxRateRequests, rl.Requests)
	}
	w, err := time.ParseDuration(rl.Window)
	switch {
	case err != nil:
		fe.add("rate_limit.window", "%q is not a duration: use a Go duration such as 1m, 1h or 24h", rl.Window)
	case w <= 0 || w > vocab.MaxRateWindow:
		fe.add("rate_limit.window", "must be more than 0s and at most %s, got %s", vocab.MaxRateWindow, rl.Window)
	}
	return &store.RateLimit{Requests: rl.Requests, Window: w}
}

// parseGrace reads a rotation's grace period; "" means none.
func parseGrace(v string) (time.Duration, error) {
	if v == "" {
		return 0, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil || d < 0 || d > vocab.MaxGracePeriod {
		var fe fieldErrors
		fe.add("grace_period", "%q is not a duration from 0s to %s: use a Go duration such as 0s, 30m or 24h", v, vocab.MaxGracePeriod)
		return 0, fe.err()
	}
	return d, nil
}

// immutableFields says, for each field a PATCH cannot change, why not.
var immutableFields = map[string]string{
	"app.slug":       "is immutable; create a new app instead",
	"app.key_prefix": "is immutable: existing keys carry it; create a new app instead",
	"key":            "keys are immutable except name, metadata and enabled; create a new key to change %s",
}

func refuseImmutable(fe *fieldErrors, kind string, fields []string) {
	for _, f := range fields {
		if msg, ok := immutableFields[kind+"."+f]; ok {
			fe.add(f, "%s", msg)
		} else {
			fe.add(f, immutableFields[kind], f)
		}
	}
}

func join(s []string) string { return strings.Join(s, ", ") }
