package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"time"
)

// healthcheck asks this machine's server whether it is ready: the probe of
// the container image, which has no shell or curl.
func healthcheck(ctx context.Context, args []string, c cli) error {
	fs := newFlagSet("healthcheck", "healthcheck [--url URL]\n\nExits 0 if the server answers GET /readyz with 200, 1 otherwise (the container image's HEALTHCHECK).", c)
	addr := envOr(c.getenv, "KEYMINT_ADDR", "127.0.0.1:8080")
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return usageErrorf("healthcheck: KEYMINT_ADDR %q is not host:port", addr)
	}
	if host == "" || host == "0.0.0.0" || host == "::" {
		host = "127.0.0.1" // a wildcard listener answers on loopback
	}
	scheme, certFile := "http", c.getenv("KEYMINT_TLS_CERT")
	if certFile != "" {
		scheme = "https"
	}
	url := fs.String("url", scheme+"://"+net.JoinHostPort(host, port)+"/readyz", "the readiness URL to ask (https when KEYMINT_TLS_CERT is set)")
	timeout := fs.Duration("timeout", 3*time.Second, "how long to wait for the answer")
	if err := parse(fs, args); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, *url, nil)
	if err != nil {
		return usageErrorf("healthcheck: --url: %v", err)
	}
	client := http.DefaultClient
	if certFile != "" {
		client = &http.Client{Transport: &http.Transport{TLSClientConfig: trustFile(certFile)}}
	}
	res, err := client.Do(req)
	if err != nil {
		// %v, not %w: this is a probe of the local server, not a client of a remote one.
		return fmt.Errorf("healthcheck: %s: %v", *url, errors.Unwrap(err)) //nolint:errorlint // deliberately not wrapped, as said above
	}
	res.Body.Close()
	if res.StatusCode != http.StatusOK {
		return fmt.Errorf("healthcheck: %s answered %s", *url, res.Status)
	}
	fmt.Fprintln(c.stdout, "ready")
	return nil
}

// trustFile trusts exactly the certificate in KEYMINT_TLS_CERT, whatever
// names it holds: the probe asks this machine's own server, on loopback,
// whose certificate names its public host. It sends no credential.
func trustFile(certFile string) *tls.Config {
	return &tls.Config{
		InsecureSkipVerify: true, // replaced by VerifyConnection: the served leaf must be the file's
		VerifyConnection: func(cs tls.ConnectionState) error {
			pemBytes, err := os.ReadFile(certFile)
			if err != nil {
				return err
			}
			block, _ := pem.Decode(pemBytes)
			if block == nil || len(cs.PeerCertificates) == 0 || !bytes.Equal(block.Bytes, cs.PeerCertificates[0].Raw) {
				return fmt.Errorf("the server's certificate is not the one in KEYMINT_TLS_CERT (%s)", certFile)
			}
			return nil
		},
	}
}
