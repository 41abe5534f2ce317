package keyformat

import (
	"hash/crc32"
	"strings"
	"testing"
)

func TestGenerateParse(t *testing.T) {
	seen := map[string]bool{}
	for range 1000 {
		k := Generate("acme_live")
		if seen[k] {
			t.Fatalf("duplicate key %s", k)
		}
		seen[k] = true
		p, err := Parse(k)
		if err != nil || p != "acme_live" {
			t.Fatalf("Parse(%s) = %q, %v", k, p, err)
		}
		if len(k) != len("acme_live_")+RandomLen+ChecksumLen {
			t.Fatalf("length %d", len(k))
		}
		if s := Start(k); s != k[:len("acme_live_")+startLen] {
			t.Fatalf("Start = %s", s)
		}
	}
}

func TestParseRejects(t *testing.T) {
	k := Generate("acme")
	flip := func(i int) string {
		b := []byte(k)
		if b[i] == 'a' {
			b[i] = 'b'
		} else {
			b[i] = 'a'
		}
		return string(b)
	}
	for name, bad := range map[string]string{
		"empty":           "",
		"no prefix":       k[len("acme_"):],
		"typo in random":  flip(len("acme_") + 3),
		"typo in sum":     flip(len(k) - 1),
		"typo in prefix":  "acmf" + k[4:],
		"truncated":       k[:len(k)-1],
		"extended":        k + "a",
		"non-base62":      k[:10] + "-" + k[11:],
		"made up":         "acme_" + strings.Repeat("a", RandomLen+ChecksumLen),
		"only underscore": "_",
	} {
		if _, err := Parse(bad); err == nil {
			t.Errorf("%s: Parse(%q) accepted", name, bad)
		}
	}
}

func FuzzParse(f *testing.F) {
	f.Add(Generate("acme_live"))
	f.Add("acme_live_xxxx")
	f.Fuzz(func(t *testing.T, s string) {
		if p, err := Parse(s); err == nil && !strings.HasPrefix(s, p+"_") {
			t.Fatalf("Parse(%q) returned prefix %q", s, p)
		}
	})
}

func BenchmarkParse(b *testing.B) {
	k := Generate("acme_live")
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Parse(k); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkHash(b *testing.B) {
	k := Generate("acme_live")
	b.ReportAllocs()
	for b.Loop() {
		Hash(k)
	}
}

func BenchmarkGenerate(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		Generate("acme_live")
	}
}

func TestRedact(t *testing.T) {
	k := Generate("acme_live")
	cut := k[:16] + "…"
	for in, want := range map[string]string{
		"":                                      "",
		"/v1/keys/key_06xydy9601c0y0kz8p37s6kw": "/v1/keys/key_06xydy9601c0y0kz8p37s6kw", // a key id stays
		"/v1/apps/a-long-slug-with-many-words-in-it-0123456789/keys": "/v1/apps/a-long-slug-with-many-words-in-it-0123456789/keys",
		"/v1/verify/" + k:                  "/v1/verify/" + cut,
		`unknown member "` + k + `" at /x`: `unknown member "` + cut + `" at /x`,
		k + " and " + k:                    cut + " and " + cut,
		"/v1/keys/" + k + "x":              "/v1/keys/" + cut, // a character more
		"/v1/keys/x" + k:                   "/v1/keys/x" + k[:15] + "…",
		"/v1/keys/" + k[:len(k)-1]:         "/v1/keys/" + cut, // a character less
		"/v1/keys/" + strings.ToUpper(k):   "/v1/keys/" + strings.ToUpper(k)[:16] + "…",
		"/v1/keys/" + k + "_":              "/v1/keys/" + cut,
		// The random part cut off its prefix: a double percent-encoded key, or
		// one split by an escaped character (both seen in a trial).
		"/v1/keys/acme_live_%2533" + k[10:]:                "/v1/keys/acme_live_%2533" + k[10:12] + "…",   // the run is "2533…"
		"/v1/keys/" + k[:14] + "%2F" + k[14:]:              "/v1/keys/" + k[:14] + "%2F" + k[14:18] + "…", // the run is "2F…"
		"/v1/keys/ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefgh":      "/v1/keys/ABCDEF…",                            // a long bare run: cut too
		"trace 4bf92f3577b34da6a3ce929d0e0e4736":           "trace 4bf92f3577b34da6a3ce929d0e0e4736",      // unless it is hex
		"/v1/events?after=req_0123456789abcdef01234567&x=": "/v1/events?after=req_0123456789abcdef01234567&x=",
	} {
		if got := Redact(in); got != want {
			t.Errorf("Redact(%q) = %q, want %q", in, got, want)
		}
	}
}

func FuzzRedact(f *testing.F) {
	k := Generate("acme_live")
	f.Add("/v1/verify/" + k)
	f.Add(`unknown member "` + k + `"`)
	f.Add(k + k)
	f.Fuzz(func(t *testing.T, s string) {
		out := Redact(s)
		// No key, nor anything that may be one, is left in the output.
		for _, run := range strings.FieldsFunc(out, func(r rune) bool { return r > 0x7f || !isKeyByte(byte(r)) }) {
			if _, err := Parse(run); err == nil || mayBeKey(run) {
				t.Fatalf("Redact(%q) = %q keeps %q", s, out, run)
			}
		}
		if Redact(out) != out {
			t.Fatalf("Redact is not idempotent on %q", s)
		}
	})
}

func TestStrong(t *testing.T) {
	for range 1000 {
		if k := Generate("acme_live"); !Strong(k) {
			t.Fatalf("Generate made %s, which Strong refuses", k)
		}
	}
	weak := string(appendChecksum([]byte("keymint_"+strings.Repeat("0", RandomLen)), crc32.ChecksumIEEE([]byte("keymint_"+strings.Repeat("0", RandomLen)))))
	if _, err := Parse(weak); err != nil {
		t.Fatal(err)
	}
	if Strong(weak) {
		t.Errorf("Strong(%s) = true", weak)
	}
}
