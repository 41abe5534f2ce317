package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/keymint/terraform-provider-keymint/internal/client"
	"github.com/keymint/terraform-provider-keymint/internal/keyformat"
	"github.com/keymint/terraform-provider-keymint/internal/wire"
)

// verifyCmd asks the server whether a key (read from stdin, so it never shows
// in a process list) is good for the given scopes and resource.
func verifyCmd(ctx context.Context, args []string, getenv func(string) string, stdin io.Reader, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("verify", flag.ContinueOnError)
	fs.SetOutput(stderr)
	endpoint := fs.String("endpoint", envOr(getenv, "KEYMINT_ENDPOINT", "http://127.0.0.1:8080"), "server URL (env KEYMINT_ENDPOINT)")
	scopes := fs.String("scopes", "", "comma-separated scopes the key must carry")
	resource := fs.String("resource", "", "resource the key must be good for")
	expect := fs.String("expect", "", "fail unless the verdict is this code (e.g. VALID)")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "Usage: keymint verify [flags] < keyfile\n\nReads the key from stdin; the token from KEYMINT_TOKEN (a credential with the verify scope).")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	token := getenv("KEYMINT_TOKEN")
	if token == "" {
		return errors.New("set KEYMINT_TOKEN to a credential with the verify scope")
	}
	key, err := bufio.NewReader(stdin).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return err
	}
	key = strings.TrimSpace(key)
	c, err := client.New(*endpoint, token)
	if err != nil {
		return err
	}
	req := wire.VerifyRequest{Key: key, Resource: *resource}
	if *scopes != "" {
		req.Scopes = strings.Split(*scopes, ",")
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	v, err := c.Verify(ctx, req)
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
	fmt.Fprintf(stdout, "%-22s for %-32s -> %s\n", keyformat.Start(key)+"...", target, v.Code)
	if *expect != "" && v.Code != *expect {
		return fmt.Errorf("verdict %s, expected %s", v.Code, *expect)
	}
	return nil
}
