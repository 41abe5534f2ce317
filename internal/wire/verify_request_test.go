package wire

import (
	"reflect"
	"testing"

	jsonv2 "github.com/go-json-experiment/json"
)

// strictDecode is how the API decodes every body: what ParseJSON must agree with.
func strictDecode(b []byte) (VerifyRequest, error) {
	var v VerifyRequest
	err := jsonv2.Unmarshal(b, &v, jsonv2.RejectUnknownMembers(true))
	return v, err
}

var verifyRequestSeeds = []string{
	`{"key":"acme_0123456789abcdefghijABCDEFGHIJ_x1Yz","scopes":["read"]}`,
	`{"key":"k","scopes":["read","write:all"],"resource":"orders/42"}`,
	" \n{ \"resource\" : \"r\" ,\t\"key\":\"k\" }\r\n",
	`{}`, `{"scopes":[]}`, `{"key":""}`,
	// each of these must go to the strict decoder
	`{"key":"k","key":"k"}`, `{"Key":"k"}`, `{"key":"k","extra":1}`, `{"key":null}`, `{"scopes":null}`,
	`{"key":"a\"b"}`, `{"key":"é"}`, `{"key":"\u0041"}`, `{"key":"k"} {}`, `{"key":"k",}`, `{"scopes":["a",]}`,
	`{"key":1}`, `{"scopes":"read"}`, `[]`, ``, `{"key":"k"`, "{\"key\":\"a\x01\"}", `{"key":"k"}x`,
}

// TestVerifyRequestParseJSON: the shapes clients send take the fast path and
// decode as the strict decoder does; anything unusual is left to it.
func TestVerifyRequestParseJSON(t *testing.T) {
	for i, s := range verifyRequestSeeds {
		var got VerifyRequest
		ok := got.ParseJSON([]byte(s))
		if fast := i < 6; ok != fast {
			t.Errorf("%q: fast path %v, want %v", s, ok, fast)
		}
		if ok {
			want, err := strictDecode([]byte(s))
			if err != nil || !reflect.DeepEqual(got, want) {
				t.Errorf("%q: fast path %#v, strict decoder %#v (%v)", s, got, want, err)
			}
		} else if !reflect.DeepEqual(got, VerifyRequest{}) {
			t.Errorf("%q: a refused body changed the request: %#v", s, got)
		}
	}
}

// FuzzVerifyRequestParseJSON: whatever the fast path accepts, the strict
// decoder accepts too, with the same result.
func FuzzVerifyRequestParseJSON(f *testing.F) {
	for _, s := range verifyRequestSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var got VerifyRequest
		if !got.ParseJSON(b) {
			return
		}
		want, err := strictDecode(b)
		if err != nil {
			t.Fatalf("%q: the fast path accepted what the strict decoder refuses: %v", b, err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("%q: fast path %#v, strict decoder %#v", b, got, want)
		}
	})
}

func BenchmarkVerifyRequestDecode(b *testing.B) {
	body := []byte(`{"key":"acme_0123456789abcdefghijABCDEFGHIJ_x1Yz","scopes":["read"]}`)
	b.Run("hand-written", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			var v VerifyRequest
			if !v.ParseJSON(body) {
				b.Fatal("not parsed")
			}
		}
	})
	b.Run("reflection", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := strictDecode(body); err != nil {
				b.Fatal(err)
			}
		}
	})
}
