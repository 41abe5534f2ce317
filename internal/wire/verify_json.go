package wire

import (
	"slices"
	"strconv"
	"time"

	"github.com/go-json-experiment/json/jsontext"
)

// AppendJSON appends the verdict as JSON, as its struct tags describe,
// without reflection: verify answers every request of every customer, and
// encoding was most of its cost past the network. TestVerifyResponseJSON
// holds it to what go-json-experiment writes for the tags.
func (r *VerifyResponse) AppendJSON(b []byte) []byte {
	b = append(b, `{"valid":`...)
	b = strconv.AppendBool(b, r.Valid)
	b = append(b, `,"code":`...)
	b = appendString(b, r.Code)
	b = appendOptional(b, `,"key_id":`, r.KeyID)
	b = appendOptional(b, `,"app":`, r.App)
	if len(r.Scopes) > 0 {
		b = append(b, `,"scopes":[`...)
		for i, s := range r.Scopes {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendString(b, s)
		}
		b = append(b, ']')
	}
	b = appendOptional(b, `,"owner":`, r.Owner)
	if len(r.Metadata) > 0 {
		var stack [16]string
		names := stack[:0]
		for name := range r.Metadata {
			names = append(names, name)
		}
		slices.Sort(names) // sorted, as encoding/json and the Deterministic option write maps
		b = append(b, `,"metadata":{`...)
		for i, name := range names {
			if i > 0 {
				b = append(b, ',')
			}
			b = append(appendString(b, name), ':')
			b = appendString(b, r.Metadata[name])
		}
		b = append(b, '}')
	}
	if r.ExpiresAt != nil {
		b = appendTime(append(b, `,"expires_at":`...), *r.ExpiresAt)
	}
	if rl := r.RateLimit; rl != nil {
		b = strconv.AppendInt(append(b, `,"rate_limit":{"limit":`...), int64(rl.Limit), 10)
		b = strconv.AppendInt(append(b, `,"remaining":`...), int64(rl.Remaining), 10)
		b = append(appendTime(append(b, `,"reset":`...), rl.Reset), '}')
	}
	return append(b, '}')
}

func appendOptional(b []byte, member, value string) []byte {
	if value == "" {
		return b
	}
	return appendString(append(b, member...), value)
}

// appendString quotes s: printable ASCII other than " and \ as it is, anything
// else by the library (which replaces invalid UTF-8, as the API's encoder does).
func appendString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= 0x7f || c == '"' || c == '\\' {
			b, _ = jsontext.AppendQuote(b, s)
			return b
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}

// appendTime writes t in RFC 3339 with nanoseconds, as time.Time's JSON does.
func appendTime(b []byte, t time.Time) []byte {
	b = append(b, '"')
	return append(t.AppendFormat(b, time.RFC3339Nano), '"')
}
