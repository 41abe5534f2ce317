package keymint

import (
	"fmt"
	"net"
	"net/url"
	"strings"
)

// WithInsecure allows a plain http:// endpoint on another machine: the token
// then travels in clear text. Loopback endpoints never need it.
func WithInsecure() Option { return func(c *Client) { c.insecure = true } }

// checkTransport refuses to send a bearer token in clear text off this
// machine unless the caller said so.
func checkTransport(u *url.URL, insecure bool) error {
	if u.Scheme != "http" || insecure || isLoopback(u.Hostname()) {
		return nil
	}
	return fmt.Errorf("refusing to send the token in clear text to %s: use an https:// endpoint (keymint serve --tls-cert/--tls-key, or your TLS proxy), "+
		"or allow plain HTTP explicitly (CLI --insecure or KEYMINT_INSECURE=true; provider insecure = true)", u.Redacted())
}

func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
