package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
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
	url := fs.String("url", "http://"+net.JoinHostPort(host, port)+"/readyz", "the readiness URL to ask")
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
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		// %v, not %w: this is a probe of the local server, not a client of a remote one.
		return fmt.Errorf("healthcheck: %s: %v", *url, errors.Unwrap(err))
	}
	res.Body.Close()
	if res.StatusCode != http.StatusOK {
		return fmt.Errorf("healthcheck: %s answered %s", *url, res.Status)
	}
	fmt.Fprintln(c.stdout, "ready")
	return nil
}
