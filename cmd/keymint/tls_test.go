package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// writeCert writes a self-signed certificate for keymint.example (not for
// 127.0.0.1) and its key as PEM.
func writeCert(t *testing.T, certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: "keymint.example"},
		DNSNames: []string{"keymint.example"}, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, _ := x509.MarshalPKCS8PrivateKey(key)
	os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600)
	os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600)
}

// TestServeTLSFromEnv: KEYMINT_TLS_CERT/KEYMINT_TLS_KEY make serve speak
// HTTPS, and healthcheck (with the same environment, as in the container)
// asks over HTTPS and trusts exactly that certificate.
func TestServeTLSFromEnv(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
	writeCert(t, certFile, keyFile)
	env := map[string]string{"KEYMINT_TLS_CERT": certFile, "KEYMINT_TLS_KEY": keyFile}
	url, _, _, stop := startServe(t, dir, env)
	defer stop()
	probe := func(cert string) error {
		c, _, _ := testCLI(map[string]string{"KEYMINT_ADDR": strings.TrimPrefix(url, "http://"), "KEYMINT_TLS_CERT": cert}, "")
		return run(context.Background(), []string{"healthcheck"}, c)
	}
	if err := probe(certFile); err != nil {
		t.Fatalf("healthcheck over TLS: %v", err)
	}
	otherCert := filepath.Join(dir, "other.crt")
	writeCert(t, otherCert, filepath.Join(dir, "other.key"))
	if err := probe(otherCert); err == nil || !strings.Contains(err.Error(), "not the one in KEYMINT_TLS_CERT") {
		t.Fatalf("healthcheck trusting another certificate: %v", err)
	}
}
