package vocab

import (
	"fmt"
	"math"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Secret strength. A client may supply a key's secret (to keep it out of
// Terraform state); it must then be as hard to guess as one keymint makes.
const (
	// MinSecretBits is what a supplied key secret's random part must carry by
	// EntropyBits. A keymint-made one has 190.5 bits; EntropyBits rates 32
	// uniformly random base62 characters below 128 about 5 times in a million
	// draws (keyformat.Generate draws again then).
	MinSecretBits = 128
	// MinTokenBits is what KEYMINT_ROOT_TOKEN must carry by EntropyBits: far
	// below what `openssl rand -base64 32` gives (about 240), far above
	// a word repeated (rootrootrootrootrootroot1234 rates 19).
	MinTokenBits = 64
)

// SecretRule says what a supplied secret must be, and how to make one.
var SecretRule = fmt.Sprintf("a supplied secret's 32 random characters must carry at least %d bits of randomness "+
	"by a conservative estimate (no repeated, sequential or low-variety bodies): generate it with a cryptographic "+
	"random source, e.g. the provider's ephemeral keymint_secret, or leave secret out and let the server make one", MinSecretBits)

// EntropyBits is a conservative estimate of the randomness in s, in bits: its
// length, less every character that continues an arithmetic run (aaa, 123,
// aceg) or a three-character sequence seen earlier in s, times the Shannon
// entropy of its character distribution (Miller-Madow corrected, as a short
// sample understates it). It is the one estimator for supplied secrets and
// for the root token, on the server and in the provider.
func EntropyBits(s string) float64 {
	if ascii(s) { // a key body or a token: no allocation
		var counts [utf8.RuneSelf]int
		for i := 0; i < len(s); i++ {
			counts[s[i]]++
		}
		return estimate(len(s), counts[:], func(i int) bool {
			return int(s[i])-int(s[i-1]) == int(s[i-1])-int(s[i-2]) || strings.Contains(s[:i], s[i-2:i+1])
		})
	}
	r := []rune(s)
	counts := map[rune]int{}
	for _, c := range r {
		counts[c]++
	}
	cs := make([]int, 0, len(counts))
	for _, c := range counts {
		cs = append(cs, c)
	}
	return estimate(len(r), cs, func(i int) bool {
		return r[i]-r[i-1] == r[i-1]-r[i-2] || strings.Contains(string(r[:i]), string(r[i-2:i+1]))
	})
}

func ascii(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			return false
		}
	}
	return true
}

// estimate is EntropyBits over n characters with the given counts (zeros
// ignored), predictable(i) saying whether character i (from 2) continues a
// run or repeats an earlier sequence.
func estimate(n int, counts []int, predictable func(i int) bool) float64 {
	if n == 0 {
		return 0
	}
	h, distinct := 0.0, 0
	for _, c := range counts {
		if c > 0 {
			p := float64(c) / float64(n)
			h -= p * math.Log2(p)
			distinct++
		}
	}
	h += float64(distinct-1) / (2 * float64(n) * math.Ln2)
	effective := n
	for i := 2; i < n; i++ {
		if predictable(i) {
			effective--
		}
	}
	return h * float64(effective)
}

// InvisibleRule says which characters no text field may hold, and why.
const InvisibleRule = "invisible and direction-changing characters (Unicode categories Cf, Zl and Zp, such as U+200B, U+202E and U+2028) are not allowed: they make a value read differently from what it is"

// Invisible finds the first invisible or direction-changing character in s
// (Unicode categories Cf, Zl and Zp: zero-width characters, bidi controls,
// line and paragraph separators), by character index; -1 if there is none.
func Invisible(s string) (index int, r rune) {
	index = 0
	for _, c := range s {
		if c != utf8.RuneError && unicode.In(c, unicode.Cf, unicode.Zl, unicode.Zp) {
			return index, c
		}
		index++
	}
	return -1, 0
}

// InvisibleError describes an invisible character in a text field, or "".
func InvisibleError(s string) string {
	i, r := Invisible(s)
	if i < 0 {
		return ""
	}
	return fmt.Sprintf("contains %U at character %d (counting from 0): %s; remove it", r, i, InvisibleRule)
}
