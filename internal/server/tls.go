package server

import (
	"crypto/tls"
	"log/slog"
	"os"
	"sync"
)

// certReloader serves the certificate in certFile and keyFile, read again
// on the first handshake after either file changes (a new file renamed in
// place, or rewritten: its inode, size or modification time differs), so a
// renewed certificate is served without a restart. A pair that does not
// load (a renewal half written, a key that does not match) is logged once
// and the previous certificate kept.
type certReloader struct {
	certFile, keyFile string
	log               *slog.Logger

	mu       sync.Mutex
	cert     *tls.Certificate
	loaded   [2]os.FileInfo // of certFile and keyFile when cert was read
	lastFail [2]os.FileInfo // of the pair that last failed to load, not to log it again
}

func newCertReloader(certFile, keyFile string, log *slog.Logger) (*certReloader, error) {
	r := &certReloader{certFile: certFile, keyFile: keyFile, log: log}
	stat, err := r.stat()
	if err == nil {
		err = r.load(stat)
	}
	if err != nil {
		return nil, configErrorf("serve: --tls-cert %s and --tls-key %s (or KEYMINT_TLS_CERT, KEYMINT_TLS_KEY): %v; give a PEM certificate (chain) and its PEM private key", certFile, keyFile, err)
	}
	return r, nil
}

func (r *certReloader) stat() ([2]os.FileInfo, error) {
	var st [2]os.FileInfo
	var err error
	for i, name := range []string{r.certFile, r.keyFile} {
		if st[i], err = os.Stat(name); err != nil {
			return st, err
		}
	}
	return st, nil
}

func (r *certReloader) load(st [2]os.FileInfo) error {
	cert, err := tls.LoadX509KeyPair(r.certFile, r.keyFile)
	if err != nil {
		return err
	}
	r.cert, r.loaded = &cert, st
	return nil
}

func sameFiles(a, b [2]os.FileInfo) bool {
	for i := range a {
		if a[i] == nil || b[i] == nil || !os.SameFile(a[i], b[i]) || a[i].Size() != b[i].Size() || !a[i].ModTime().Equal(b[i].ModTime()) {
			return false
		}
	}
	return true
}

// GetCertificate is tls.Config's: the current certificate.
func (r *certReloader) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	st, err := r.stat()
	if err != nil || sameFiles(st, r.loaded) {
		return r.cert, nil // a file being replaced: keep serving the one we have
	}
	if err := r.load(st); err != nil {
		if !sameFiles(st, r.lastFail) {
			r.lastFail = st
			r.log.Warn("the TLS certificate changed but does not load; still serving the previous one", "cert", r.certFile, "key", r.keyFile, "err", err)
		}
		return r.cert, nil
	}
	r.log.Info("TLS certificate reloaded", "cert", r.certFile, "not_after", r.cert.Leaf.NotAfter)
	return r.cert, nil
}

// tlsConfig is the API listener's TLS: 1.2 or later, HTTP/2 offered, the
// certificate from r.
func tlsConfig(r *certReloader) *tls.Config {
	return &tls.Config{MinVersion: tls.VersionTLS12, GetCertificate: r.GetCertificate, NextProtos: []string{"h2", "http/1.1"}}
}

func checkTLSFlags(cert, key string) error {
	if (cert == "") != (key == "") {
		return configErrorf("serve: --tls-cert and --tls-key (or KEYMINT_TLS_CERT and KEYMINT_TLS_KEY) go together; got only %s", map[bool]string{true: "--tls-cert", false: "--tls-key"}[cert != ""])
	}
	return nil
}
