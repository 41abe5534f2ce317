package vocab

import (
	"crypto/rand"
	"encoding/base64"
	"strings"
	"testing"
)

func TestEntropyBitsRefusesGuessableBodies(t *testing.T) {
	for _, s := range []string{
		strings.Repeat("0", 32),
		strings.Repeat("ab", 16),
		"0123456789ABCDEFGHIJKLMNOPQRSTUV",     // a run
		"abcdefghABCDEFGHabcdefghABCDEFGH",     // a block repeated
		"aZ3kQ9pL0mX2vB7naZ3kQ9pL0mX2vB7n",     // a random half repeated
		"ababababababababababababababababZ3kQ", // low variety
		strings.Repeat("\u00e9\u00e8", 16),     // non-ASCII, low variety
	} {
		if b := EntropyBits(s); b >= MinSecretBits {
			t.Errorf("EntropyBits(%q) = %.1f, want < %d", s, b, MinSecretBits)
		}
	}
	if b := EntropyBits("rootrootrootrootrootroot1234"); b >= MinTokenBits {
		t.Errorf("EntropyBits(rootroot…) = %.1f, want < %d", b, MinTokenBits)
	}
}

func TestEntropyBitsAcceptsRandomBodies(t *testing.T) {
	const alphabet = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
	low := 0
	for range 20000 {
		b := make([]byte, 32)
		rand.Read(b)
		for i := range b {
			b[i] = alphabet[int(b[i])%62]
		}
		if EntropyBits(string(b)) < MinSecretBits {
			low++
		}
	}
	// About 5 in a million; more than 2 in 20,000 means the estimator moved.
	if low > 2 {
		t.Errorf("%d of 20000 random bodies rated below %d bits", low, MinSecretBits)
	}
	// What `openssl rand -base64 32` prints passes the token rule easily.
	tok := make([]byte, 32)
	rand.Read(tok)
	if b := EntropyBits(base64.StdEncoding.EncodeToString(tok)); b < 2*MinTokenBits {
		t.Errorf("a base64 token rates %.1f bits", b)
	}
}

func TestInvisible(t *testing.T) {
	for s, want := range map[string]int{"plain": -1, "a\u202eb": 1, "\u200bx": 0, "ab\u2028": 2, "é\u2029": 1, "x\ufeff": 1, "\u00e9t\u00e9": -1} {
		if got, _ := Invisible(s); got != want {
			t.Errorf("Invisible(%q) = %d, want %d", s, got, want)
		}
	}
	if msg := InvisibleError("ab\u202ec"); !strings.Contains(msg, "U+202E at character 2") {
		t.Errorf("InvisibleError: %q", msg)
	}
}
