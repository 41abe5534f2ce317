package wire

import (
	"encoding/json"
	"fmt"
	"testing"
	"time"

	jsonv2 "github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"
)

// reflected has VerifyResponse's fields and tags and none of its methods:
// what the reflective encoders make of the tags.
type reflected VerifyResponse

// TestVerifyResponseJSON holds the hand-written encoder to the struct tags:
// it must write what go-json-experiment's reflection writes (the API's
// encoder for every other answer), and what encoding/json can read.
func TestVerifyResponseJSON(t *testing.T) {
	expires := time.Date(2031, 2, 3, 4, 5, 6, 789, time.FixedZone("x", 3600))
	reset := time.Date(2030, 1, 1, 0, 0, 1, 0, time.UTC)
	cases := []VerifyResponse{
		{Code: CodeNotFound},
		{Valid: true, Code: CodeValid, KeyID: "key_1", App: "acme", Scopes: []string{"read", "write"}, Owner: "team <a&b>",
			Metadata: map[string]string{"z": "last", "a": "first \"quoted\"\n", "m": "é\u2028"}, ExpiresAt: &expires,
			RateLimit: &VerifyRateLimit{Limit: 100, Remaining: 0, Reset: reset}},
		{Code: CodeRevoked, KeyID: "key_2", App: "acme", Scopes: []string{}, Metadata: map[string]string{}},
		{Code: "bad \xff utf-8 \x01", App: "a\\b", RateLimit: &VerifyRateLimit{Limit: 1, Remaining: -1, Reset: reset}},
	}
	many := map[string]string{}
	for i := range 40 { // more names than the encoder's stack array
		many[fmt.Sprintf("k%02d", 39-i)] = fmt.Sprint(i)
	}
	cases = append(cases, VerifyResponse{Code: CodeValid, Metadata: many})
	for i, c := range cases {
		want, err := jsonv2.Marshal((*reflected)(&c), jsonv2.Deterministic(true), jsontext.AllowInvalidUTF8(true))
		if err != nil {
			t.Fatal(err)
		}
		got := c.AppendJSON(nil)
		if string(got) != string(want) {
			t.Errorf("case %d:\n got %s\nwant %s", i, got, want)
		}
		var back reflected
		if err := json.Unmarshal(got, &back); err != nil {
			t.Errorf("case %d does not decode: %v", i, err)
		}
	}
}

func BenchmarkVerifyResponseJSON(b *testing.B) {
	reset := time.Now()
	r := &VerifyResponse{Valid: true, Code: CodeValid, KeyID: "key_06xydy960132nvpr65nzxgdn", App: "acme", Scopes: []string{"read:data"},
		Metadata: map[string]string{"customer": "c1"}, RateLimit: &VerifyRateLimit{Limit: 1000, Remaining: 999, Reset: reset}}
	buf := make([]byte, 0, 1024)
	b.Run("hand-written", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			r.AppendJSON(buf[:0])
		}
	})
	b.Run("reflection", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			jsonv2.Marshal((*reflected)(r), jsonv2.Deterministic(true))
		}
	})
}
