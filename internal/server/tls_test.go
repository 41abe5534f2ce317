package server_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/keymint/terraform-provider-keymint/internal/server"
)

// selfSigned makes a certificate for 127.0.0.1 and writes it and its key
// as PEM to certFile and keyFile, each through a new file renamed in place
// (as certbot or a Kubernetes secret mount replaces them).
func selfSigned(t *testing.T, serial int64, certFile, keyFile string) *x509.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: "keymint test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IPAddresses: []net.IP{net.ParseIP("127.0.0.1")},
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	for file, block := range map[string]*pem.Block{certFile: {Type: "CERTIFICATE", Bytes: der}, keyFile: {Type: "PRIVATE KEY", Bytes: keyDER}} {
		if err := os.WriteFile(file+".new", pem.EncodeToMemory(block), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(file+".new", file); err != nil {
			t.Fatal(err)
		}
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return cert
}

// TestTLSReloadsCertificate: with --tls-cert/--tls-key the API speaks
// HTTPS, HTTP/2 and TLS 1.2 at least, and a certificate replaced while
// serving is the one the next connection sees.
func TestTLSReloadsCertificate(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
	first := selfSigned(t, 1, certFile, keyFile)
	base := startWith(t, server.Config{DB: "sqlite:" + filepath.Join(dir, "k.db"), RootToken: "bX0HcE4fVq2m8RkTz1wYpL6nJ3sDgA9u",
		TLSCert: certFile, TLSKey: keyFile})
	url := "https://" + strings.TrimPrefix(base, "http://") + "/healthz"
	roots := x509.NewCertPool()
	roots.AddCert(first)
	transport := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots}, ForceAttemptHTTP2: true}
	client := &http.Client{Transport: transport, Timeout: 5 * time.Second}
	get := func() (*tls.ConnectionState, string) {
		t.Helper()
		transport.CloseIdleConnections() // a new connection, a new handshake
		res, err := client.Get(url)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != 200 {
			t.Fatalf("GET /healthz: %d", res.StatusCode)
		}
		return res.TLS, res.Proto
	}
	state, proto := get()
	if proto != "HTTP/2.0" || state.NegotiatedProtocol != "h2" {
		t.Fatalf("protocol %s (ALPN %q), want HTTP/2", proto, state.NegotiatedProtocol)
	}
	if got := state.PeerCertificates[0].SerialNumber.Int64(); got != 1 {
		t.Fatalf("serial %d, want 1", got)
	}

	second := selfSigned(t, 2, certFile, keyFile)
	roots.AddCert(second)
	if state, _ := get(); state.PeerCertificates[0].SerialNumber.Int64() != 2 {
		t.Fatalf("after replacing the files: serial %d, want 2 (the new certificate)", state.PeerCertificates[0].SerialNumber)
	}

	// Below TLS 1.2 there is no handshake.
	conn, err := tls.Dial("tcp", strings.TrimPrefix(base, "http://"), &tls.Config{RootCAs: roots, MaxVersion: tls.VersionTLS11})
	if err == nil {
		conn.Close()
		t.Fatal("a TLS 1.1 handshake succeeded")
	}
}

func TestTLSFlagsChecked(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
	selfSigned(t, 1, certFile, keyFile)
	other := filepath.Join(dir, "other.key")
	selfSigned(t, 2, filepath.Join(dir, "other.crt"), other)
	for name, c := range map[string]struct{ cert, key, want string }{
		"cert only":     {certFile, "", "go together"},
		"missing file":  {certFile, filepath.Join(dir, "nope.key"), "no such file"},
		"key not match": {certFile, other, "does not match"},
	} {
		cfg := server.Config{Addr: "127.0.0.1:0", DB: "sqlite:" + filepath.Join(dir, "k.db"), TLSCert: c.cert, TLSKey: c.key}
		if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want an error saying %q", name, err, c.want)
		}
	}
}
