package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/keymint/terraform-provider-keymint/internal/keyformat"
)

// The command tree is built with cobra (github.com/spf13/cobra): it parses
// the flags, writes the help, suggests a command for a typo ("did you mean")
// and generates shell completion for bash, zsh, fish and PowerShell: code
// keymint would otherwise write and keep by hand. The server-side commands
// (serve, migrate, copy, reset-root-token, healthcheck) keep their
// standard-library flag sets under cobra's DisableFlagParsing: their flags,
// environment variables and -h are exactly as before.

// run runs one command line; the error decides the exit code (exitCode).
func run(ctx context.Context, args []string, c cli) error {
	if args == nil {
		args = []string{} // nil would make cobra read os.Args
	}
	t := &tree{cli: c}
	root := t.root()
	root.SetArgs(args)
	cmd, err := root.ExecuteContextC(ctx)
	if err == nil || t.ran {
		return err
	}
	// Cobra refused the command line before any command ran: an unknown
	// command or flag, a missing required flag, a wrong argument count.
	var usage usageError
	if errors.As(err, &usage) {
		return err
	}
	if cmd == nil {
		cmd = root
	}
	// Never echo an argument whole: it may be a key typed where stdin was meant.
	msg := keyformat.Redact(strings.TrimSpace(err.Error()))
	if cmd.HasParent() {
		msg = commandName(cmd) + ": " + msg
	}
	return usageErrorf("%s (see %s --help)", msg, cmd.CommandPath())
}

// tree builds the commands for one run; ran records that a command's own
// code started (so an error before it is a usage error: nothing was sent).
type tree struct {
	cli
	ran bool
}

// act wraps a command's code.
func (t *tree) act(fn func(cmd *cobra.Command, args []string) error) func(*cobra.Command, []string) error {
	return func(cmd *cobra.Command, args []string) error {
		t.ran = true
		return fn(cmd, args)
	}
}

func (t *tree) root() *cobra.Command {
	root := &cobra.Command{
		Use:           "keymint",
		Short:         "API-key lifecycle service",
		Long:          usage,
		Version:       version,
		SilenceErrors: true, // exitCode reports the error, once
		SilenceUsage:  true,
		Args:          subcommandArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			fmt.Fprint(t.stderr, cmd.UsageString())
			return usageErrorf("no command given")
		},
	}
	root.SetOut(t.stdout)
	root.SetErr(t.stderr)
	root.SetIn(t.stdin)
	root.SetVersionTemplate("{{.Version}}\n")
	root.SuggestionsMinimumDistance = 2
	root.AddCommand(
		t.legacy("serve", "Run the server", serve),
		t.verifyCommand(),
		t.legacy("reset-root-token", "Replace a lost root token", resetRootToken),
		t.legacy("migrate", "Bring a database's schema up to date", migrateCmd),
		t.legacy("copy", "Copy everything from one database to an empty one", copyCmd),
		t.appsCommand(),
		t.keysCommand(),
		t.eventsCommand(),
		t.whoamiCommand(),
		t.profileCommand(),
		t.legacy("healthcheck", "Exit 0 if the server on KEYMINT_ADDR is ready (the image's probe)", healthcheck),
		&cobra.Command{Use: "version", Short: "Print the version", Args: cobra.NoArgs, Run: func(*cobra.Command, []string) {
			fmt.Fprintln(t.stdout, version)
		}},
	)
	return root
}

// legacy runs a command that parses its own flags with the standard library.
func (t *tree) legacy(name, short string, fn func(context.Context, []string, cli) error) *cobra.Command {
	return &cobra.Command{
		Use: name + " [flags]", Short: short + " (keymint " + name + " -h for its flags)", DisableFlagParsing: true,
		RunE: t.act(func(cmd *cobra.Command, args []string) error {
			err := fn(cmd.Context(), args, t.cli)
			if errors.Is(err, flag.ErrHelp) {
				return nil // -h: its usage is printed
			}
			return err
		}),
	}
}

// group is a command that only holds others (keymint apps, keys, profile).
func (t *tree) group(use, short string, cmds ...*cobra.Command) *cobra.Command {
	g := &cobra.Command{
		Use: use, Short: short, Args: subcommandArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			fmt.Fprint(t.stderr, cmd.UsageString())
			return usageErrorf("%s: no command given", commandName(cmd))
		},
	}
	g.SuggestionsMinimumDistance = 2
	g.AddCommand(cmds...)
	return g
}

// subcommandArgs refuses an argument that names no subcommand, suggesting
// the nearest ones.
func subcommandArgs(cmd *cobra.Command, args []string) error {
	if len(args) == 0 {
		return nil
	}
	msg := fmt.Sprintf("unknown command %q for %q", args[0], cmd.CommandPath())
	if s := cmd.SuggestionsFor(args[0]); len(s) > 0 {
		msg += "; did you mean " + cmd.CommandPath() + " " + strings.Join(s, " or ") + "?"
	} else {
		msg += fmt.Sprintf(" (see %s --help)", cmd.CommandPath())
	}
	return usageErrorf("%s", keyformat.Redact(msg))
}

// positional wants exactly the named arguments.
func positional(names ...string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(names) == 0 && len(args) > 0 {
			return usageErrorf("%s: unexpected argument %q (see %s --help)", commandName(cmd), keyformat.Redact(args[0]), cmd.CommandPath())
		}
		if len(args) != len(names) {
			return usageErrorf("%s: want %s, got %d argument(s) (see %s --help)", commandName(cmd), strings.Join(names, " "), len(args), cmd.CommandPath())
		}
		return nil
	}
}

// commandName is the command's path without the program's name, for the
// start of an error message (exitCode prefixes "keymint: ").
func commandName(cmd *cobra.Command) string {
	return strings.TrimPrefix(cmd.CommandPath(), cmd.Root().Name()+" ")
}
