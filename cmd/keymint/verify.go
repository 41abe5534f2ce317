package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/keymint/terraform-provider-keymint/internal/keyformat"
	"github.com/keymint/terraform-provider-keymint/internal/wire"
	"github.com/keymint/terraform-provider-keymint/keymint"
)

// notValidError is a verdict other than the expected one (VALID by default): exit code 3.
type notValidError struct{ code string }

func (e notValidError) Error() string { return "unexpected verdict " + e.code }

// verifyCmd asks the server whether a key (read from stdin, so it never shows
// in a process list) is good for the given scopes and resource. It exits 0
// only for VALID.
func verifyCmd(ctx context.Context, args []string, c cli) error {
	fs := newFlagSet("verify", "verify [flags] < keyfile\n\nReads the key from standard input and the token from KEYMINT_TOKEN (a credential with the verify scope).\nPrints the verdict; exits 0 if it is VALID (or --expect), 3 if it is not, 1 on an error.", c)
	endpoint := fs.String("endpoint", envOr(c.getenv, "KEYMINT_ENDPOINT", "http://127.0.0.1:8080"), "server URL (env KEYMINT_ENDPOINT)")
	scopes := fs.String("scopes", "", "comma-separated scopes the key must carry")
	resource := fs.String("resource", "", "resource the key must be good for")
	expect := fs.String("expect", wire.CodeValid, "the verdict that counts as success (e.g. REVOKED, to check a revocation)")
	if err := parse(fs, args); err != nil {
		return err
	}
	if !slices.Contains(wire.Codes, *expect) {
		return usageErrorf("verify: --expect must be one of %s, got %q", strings.Join(wire.Codes, " "), *expect)
	}
	token := c.getenv("KEYMINT_TOKEN")
	if token == "" {
		return errors.New("set KEYMINT_TOKEN to a credential with the verify scope")
	}
	key, err := bufio.NewReader(c.stdin).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return err
	}
	key = strings.TrimSpace(key)
	if key == "" {
		return usageErrorf("verify: no key on standard input (keymint verify < keyfile)")
	}
	cl, err := keymint.New(*endpoint, token)
	if err != nil {
		return err
	}
	req := wire.VerifyRequest{Key: key, Resource: *resource}
	for _, sc := range strings.Split(*scopes, ",") {
		if sc = strings.TrimSpace(sc); sc != "" {
			req.Scopes = append(req.Scopes, sc)
		}
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	v, err := cl.Verify(ctx, req)
	if err != nil {
		return err
	}
	target := "any scope"
	if *scopes != "" {
		target = *scopes
	}
	if *resource != "" {
		target += " on " + *resource
	}
	shown := keyformat.Start(key)
	if shown == "" {
		shown = "(not a keymint key)"
	}
	fmt.Fprintf(c.stdout, "%-22s for %-32s -> %s\n", shown+"...", target, v.Code)
	if v.Code != *expect {
		return notValidError{v.Code}
	}
	return nil
}
