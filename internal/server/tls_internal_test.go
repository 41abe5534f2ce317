package server

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"log/slog"
	"math/big"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func pemPair(t *testing.T, serial int64) (certPEM, keyPEM []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(serial), NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, _ := x509.MarshalPKCS8PrivateKey(key)
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER})
}

// TestCertReloaderKeepsServingThroughABadRenewal: a certificate replaced
// before its key (a mismatched pair) or a file missing for a moment keeps
// the previous certificate served; the completed pair is then served.
func TestCertReloaderKeepsServingThroughABadRenewal(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "c.pem"), filepath.Join(dir, "k.pem")
	c1, k1 := pemPair(t, 1)
	c2, k2 := pemPair(t, 2)
	os.WriteFile(certFile, c1, 0o600)
	os.WriteFile(keyFile, k1, 0o600)
	r, err := newCertReloader(certFile, keyFile, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	serial := func() int64 {
		t.Helper()
		c, err := r.GetCertificate(nil)
		if err != nil {
			t.Fatal(err)
		}
		return c.Leaf.SerialNumber.Int64()
	}
	if s := serial(); s != 1 {
		t.Fatalf("serial %d, want 1", s)
	}
	os.WriteFile(certFile, c2, 0o600) // the key is still the old one
	if s := serial(); s != 1 {
		t.Fatalf("mismatched pair: serial %d, want the previous certificate 1", s)
	}
	os.Remove(keyFile)
	if s := serial(); s != 1 {
		t.Fatalf("key missing: serial %d, want 1", s)
	}
	os.WriteFile(keyFile, k2, 0o600)
	if s := serial(); s != 2 {
		t.Fatalf("completed pair: serial %d, want 2", s)
	}
}
