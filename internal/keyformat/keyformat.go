// Package keyformat mints, parses and hashes keymint API keys.
//
// A key reads <prefix>_<random><checksum>: the random part is 32 base62
// characters from crypto/rand (190.5 bits), the checksum is the CRC-32 of
// everything before it, as 6 base62 characters. The checksum lets verify turn
// away a mistyped or invented key without a store lookup, and lets secret
// scanners recognise real keys.
package keyformat

import (
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"hash/crc32"
	"strings"
	"unsafe"

	"github.com/keymint/terraform-provider-keymint/internal/vocab"
)

const (
	alphabet    = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
	RandomLen   = 32 // 32 * log2(62) = 190.5 bits
	ChecksumLen = 6  // 62^6 > 2^32
	startLen    = 6  // random characters shown in Start
	HashSize    = sha256.Size
)

// ErrMalformed is returned for anything that is not a well-formed key with a valid checksum.
var ErrMalformed = errors.New("malformed key")

// Generate returns a new key with the given prefix. Its random part always
// passes Strong: the rare draw that EntropyBits rates low (about 5 in a
// million) is drawn again, so a generated secret is always accepted back.
func Generate(prefix string) string {
	for {
		if k := generate(prefix); Strong(k) {
			return k
		}
	}
}

// Strong reports whether a well-formed key's random part carries at least
// vocab.MinSecretBits by vocab.EntropyBits (the checksum adds none).
func Strong(key string) bool {
	i := strings.LastIndexByte(key, '_')
	if i < 0 || len(key)-i-1 != RandomLen+ChecksumLen {
		return false
	}
	return vocab.EntropyBits(key[i+1:len(key)-ChecksumLen]) >= vocab.MinSecretBits
}

func generate(prefix string) string {
	var buf [RandomLen]byte
	out := make([]byte, 0, len(prefix)+1+RandomLen+ChecksumLen)
	out = append(out, prefix...)
	out = append(out, '_')
	// Rejection sampling keeps every character uniform: 248 = 4*62.
	for n := 0; n < RandomLen; {
		if _, err := rand.Read(buf[:]); err != nil {
			panic("keyformat: crypto/rand failed: " + err.Error())
		}
		for _, b := range buf {
			if b < 248 && n < RandomLen {
				out = append(out, alphabet[b%62])
				n++
			}
		}
	}
	return string(appendChecksum(out, crc32.ChecksumIEEE(out)))
}

func appendChecksum(dst []byte, sum uint32) []byte {
	var c [ChecksumLen]byte
	for i := ChecksumLen - 1; i >= 0; i-- {
		c[i] = alphabet[sum%62]
		sum /= 62
	}
	return append(dst, c[:]...)
}

// Parse checks the shape and checksum of key and returns its prefix.
// It allocates nothing and never touches a store.
func Parse(key string) (prefix string, err error) {
	i := strings.LastIndexByte(key, '_')
	if i < 2 || i > vocab.KeyPrefixMaxLen || len(key)-i-1 != RandomLen+ChecksumLen {
		return "", ErrMalformed
	}
	body := key[i+1:]
	for j := 0; j < len(body); j++ {
		if !isBase62(body[j]) {
			return "", ErrMalformed
		}
	}
	sum := crc32.ChecksumIEEE(readOnlyBytes(key[:len(key)-ChecksumLen]))
	var want [ChecksumLen]byte
	if string(appendChecksum(want[:0], sum)) != key[len(key)-ChecksumLen:] {
		return "", ErrMalformed
	}
	return key[:i], nil
}

func isBase62(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z'
}

// Hash is the only form of a key that is stored.
func Hash(key string) [HashSize]byte { return sha256.Sum256(readOnlyBytes(key)) }

// readOnlyBytes views s as bytes without copying it, for functions that only
// read their input: verify parses and hashes every key it sees, and the copy
// was its only allocation here.
func readOnlyBytes(s string) []byte { return unsafe.Slice(unsafe.StringData(s), len(s)) }

// Start is the safe-to-log display prefix of a well-formed key: its prefix and
// the first characters of the random part (leaving 150+ bits unknown).
func Start(key string) string {
	i := strings.LastIndexByte(key, '_')
	if i < 0 || len(key) < i+1+startLen {
		return ""
	}
	return key[:i+1+startLen]
}

// Redact cuts anything in s that may be a key, or most of one, to its first
// characters and "…", so text that may carry one (a request path, an error
// message) is safe to log or send back. It errs on the side of cutting: a run
// of key characters (letters, digits, '_') that holds a stretch of at least
// minSecretRun characters without '_' is cut, whatever surrounds it, which
// catches a key with a character more or less, in another case, or its
// random part alone (a client that percent-encoded the key in a path).
// Key ids (key_ and 24 characters) and slugs are left alone.
func Redact(s string) string {
	var b strings.Builder
	last := 0 // s[:last] is in b
	for i := 0; i < len(s); {
		if !isKeyByte(s[i]) {
			i++
			continue
		}
		j := i
		for j < len(s) && isKeyByte(s[j]) {
			j++
		}
		if run := s[i:j]; mayBeKey(run) {
			keep := redactKeep
			if !strings.Contains(run, "_") {
				keep = bareKeep
			}
			b.WriteString(s[last:i])
			b.WriteString(run[:min(len(run), keep)])
			b.WriteString("…")
			last = j
		}
		i = j
	}
	if last == 0 {
		return s
	}
	b.WriteString(s[last:])
	return b.String()
}

const (
	// minSecretRun is the shortest stretch of a random part that is cut: a
	// key's has RandomLen+ChecksumLen (38) characters, a key id's 24.
	minSecretRun = 30
	// redactKeep is how much of a cut run stays: about a prefix and Start's
	// characters, far from the 150+ unknown bits that keep a key secret.
	redactKeep = 16
	// bareKeep is how much stays of a cut run with no '_': a random part cut
	// off its prefix (a client that percent-encoded a key, or split it with
	// an escaped character), of which nothing but a few characters may stay.
	bareKeep = 6
)

// mayBeKey says whether run (key characters only) holds a stretch of
// minSecretRun characters without '_': most of a key's random part, with or
// without its prefix (a bare run of hex digits excepted).
func mayBeKey(run string) bool {
	if !strings.Contains(run, "_") && isHex(run) {
		// A trace id or a digest: a key's random part (base62) is all hex
		// with odds of (22/62)^38.
		return false
	}
	stretch := 0
	for k := 0; k < len(run); k++ {
		if run[k] == '_' {
			stretch = 0
			continue
		}
		if stretch++; stretch >= minSecretRun {
			return true
		}
	}
	return false
}

func isHex(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; !('0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F') {
			return false
		}
	}
	return true
}

func isKeyByte(c byte) bool { return c == '_' || isBase62(c) }

// WithChecksum completes s (a prefix, '_' and RandomLen base62 characters)
// with its checksum: for tests that build a key from a chosen body.
func WithChecksum(s string) string {
	return string(appendChecksum([]byte(s), crc32.ChecksumIEEE([]byte(s))))
}
