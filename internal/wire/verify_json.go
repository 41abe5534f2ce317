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

// ParseJSON reads a verify request in the shape nearly every client sends,
// without reflection: one object of "key", "scopes" and "resource", each at
// most once, whose strings are printable ASCII with no escapes. It reports
// false, having changed nothing, for anything else (unknown or repeated
// members, null, escapes, non-ASCII, bad syntax, anything after the object):
// the caller then decodes with the general, strict decoder, which accepts or
// rejects it and says why. FuzzVerifyRequestParseJSON holds what it accepts
// to what go-json-experiment decodes.
func (r *VerifyRequest) ParseJSON(b []byte) bool {
	// One copy of the body: the strings are cut from it, one allocation for all.
	p := requestParser{b: string(b)}
	var out VerifyRequest
	var seen [3]bool
	if !p.consume('{') {
		return false
	}
	if p.peek() == '}' {
		p.i++
	} else {
		for {
			name, ok := p.str()
			if !ok || !p.consume(':') {
				return false
			}
			var field int
			switch name {
			case "key":
				field = 0
				if out.Key, ok = p.str(); !ok {
					return false
				}
			case "scopes":
				field = 1
				if out.Scopes, ok = p.strArray(); !ok {
					return false
				}
			case "resource":
				field = 2
				if out.Resource, ok = p.str(); !ok {
					return false
				}
			default:
				return false
			}
			if seen[field] {
				return false
			}
			seen[field] = true
			if p.consume(',') {
				continue
			}
			if !p.consume('}') {
				return false
			}
			break
		}
	}
	if p.skipSpace(); p.i != len(p.b) {
		return false
	}
	*r = out
	return true
}

// requestParser walks a JSON text for ParseJSON; every method skips the
// whitespace before what it reads.
type requestParser struct {
	b string
	i int
}

func (p *requestParser) skipSpace() {
	for p.i < len(p.b) {
		switch p.b[p.i] {
		case ' ', '\t', '\n', '\r':
			p.i++
		default:
			return
		}
	}
}

func (p *requestParser) peek() byte {
	if p.skipSpace(); p.i < len(p.b) {
		return p.b[p.i]
	}
	return 0
}

func (p *requestParser) consume(c byte) bool {
	if p.peek() == c {
		p.i++
		return true
	}
	return false
}

// str reads a string of printable ASCII with no escapes, without copying.
func (p *requestParser) str() (string, bool) {
	if !p.consume('"') {
		return "", false
	}
	start := p.i
	for ; p.i < len(p.b); p.i++ {
		switch c := p.b[p.i]; {
		case c == '"':
			p.i++
			return p.b[start : p.i-1], true
		case c < 0x20 || c == '\\' || c >= 0x7f:
			return "", false
		}
	}
	return "", false
}

func (p *requestParser) strArray() ([]string, bool) {
	if !p.consume('[') {
		return nil, false
	}
	out := []string{} // [] decodes to an empty slice, not nil, as go-json-experiment does
	if p.consume(']') {
		return out, true
	}
	for {
		s, ok := p.str()
		if !ok {
			return nil, false
		}
		out = append(out, s)
		if p.consume(']') {
			return out, true
		}
		if !p.consume(',') {
			return nil, false
		}
	}
}
