package main

import (
	"fmt"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"github.com/keymint/terraform-provider-keymint/internal/keyformat"
	"github.com/keymint/terraform-provider-keymint/internal/wire"
)

// notValidError is a verdict other than the expected one (VALID by default): exit code 3.
type notValidError struct{ code string }

func (e notValidError) Error() string { return "unexpected verdict " + e.code }

// verifyCommand asks the server whether a key (read from stdin, so it never
// shows in a process list) is good for the given scopes and resource. It
// exits 0 only for the expected verdict (VALID by default), 3 for another.
func (t *tree) verifyCommand() *cobra.Command {
	var scopes, resource, expect string
	cmd := t.op(&cobra.Command{
		Use:   "verify [flags] < keyfile",
		Short: "Verify a key read from standard input",
		Long: "Reads the key from standard input (never from an argument) and asks the server for its verdict, with a token\n" +
			"that has the verify scope (--token, --token-file, KEYMINT_TOKEN, KEYMINT_TOKEN_FILE or the profile's).\n" +
			"Prints the verdict (-o json: the whole answer); exits 0 if it is VALID (or --expect), 3 if it is not, 1 on an error.",
		// Never echo an argument whole: it may be a key typed where stdin was meant.
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) > 0 {
				return usageErrorf("verify: unexpected argument %q: the key is read from standard input (keymint verify < keyfile)", keyformat.Redact(args[0]))
			}
			return nil
		},
	}, func(s *session, cmd *cobra.Command, _ []string) error {
		if !slices.Contains(wire.Codes, expect) {
			return usageErrorf("verify: --expect must be one of %s, got %q", strings.Join(wire.Codes, " "), expect)
		}
		key, err := s.readSecret("verify")
		if err != nil {
			return err
		}
		req := wire.VerifyRequest{Key: key, Resource: resource, Scopes: splitList(scopes)}
		v, err := s.client.Verify(cmd.Context(), req)
		if err != nil {
			return err
		}
		if s.output == "json" {
			if err := writeJSON(s.stdout, v); err != nil {
				return err
			}
		} else {
			target := "any scope"
			if scopes != "" {
				target = scopes
			}
			if resource != "" {
				target += " on " + resource
			}
			shown := keyformat.Start(key)
			if shown == "" {
				shown = "(not a keymint key)"
			}
			line := fmt.Sprintf("%-22s for %-32s -> %s", shown+"...", target, v.Code)
			if s.wide() && v.KeyID != "" {
				line += fmt.Sprintf("  key %s app %s owner %s expires %s", v.KeyID, v.App, orDash(v.Owner), stamp(v.ExpiresAt))
			}
			fmt.Fprintln(s.stdout, line)
		}
		if v.Code != expect {
			return notValidError{v.Code}
		}
		return nil
	})
	f := cmd.Flags()
	f.StringVar(&scopes, "scopes", "", "comma-separated scopes the key must carry")
	f.StringVar(&resource, "resource", "", "resource the key must be good for")
	f.StringVar(&expect, "expect", wire.CodeValid, "the verdict that counts as success (e.g. REVOKED, to check a revocation)")
	_ = cmd.RegisterFlagCompletionFunc("expect", cobra.FixedCompletions(wire.Codes, cobra.ShellCompDirectiveNoFileComp))
	return cmd
}
