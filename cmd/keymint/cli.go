package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/keymint/terraform-provider-keymint/internal/vocab"
	"github.com/keymint/terraform-provider-keymint/internal/wire"
	"github.com/keymint/terraform-provider-keymint/keymint"
)

// The operator's commands: `keymint apps ...`, `keys ...`, `events`,
// `whoami` (and verify, in verify.go), each a thin adapter over the typed
// client. Output is a table for people (-o table, fitting 80 columns), every
// column uncut (-o wide), or JSON for jq (-o json), on standard output;
// confirmations and warnings go to standard error. Only keys create and keys
// rotate ever print a secret: alone, on standard output.

const defaultEndpoint = "http://127.0.0.1:8080"

// session is what every operator command shares: the client and the output format.
type session struct {
	cli
	client *keymint.Client
	output string
}

// globals are the flags of every command that talks to a server.
type globals struct {
	endpoint, token, tokenFile, profile, output string
	insecure                                    bool
}

// serverFlags adds the globals to fs.
func (t *tree) serverFlags(cmd *cobra.Command, fs *pflag.FlagSet, g *globals) {
	fs.StringVar(&g.endpoint, "endpoint", defaultEndpoint, "server URL (env KEYMINT_ENDPOINT, else the profile's)")
	fs.StringVar(&g.token, "token", "", "management token (env KEYMINT_TOKEN; prefer a token file or the variable: a flag shows in the process list)")
	fs.StringVar(&g.tokenFile, "token-file", "", "read the management token from this file (env KEYMINT_TOKEN_FILE, else the profile's token_file)")
	fs.StringVar(&g.profile, "profile", "", "the config file's profile to use (env KEYMINT_PROFILE, else its current one; see keymint profile --help)")
	fs.BoolVar(&g.insecure, "insecure", false, "allow a plain http:// endpoint on another machine: the token travels in clear text (env KEYMINT_INSECURE=true, else the profile's)")
	fs.StringVarP(&g.output, "output", "o", "table", "output: table (fits 80 columns), wide (every column, nothing cut) or json")
	_ = cmd.RegisterFlagCompletionFunc("output", cobra.FixedCompletions([]string{"table", "wide", "json"}, cobra.ShellCompDirectiveNoFileComp))
	_ = cmd.RegisterFlagCompletionFunc("profile", t.completeProfiles)
}

func checkOutput(output string) error {
	if output != "table" && output != "wide" && output != "json" {
		return usageErrorf("-o must be table, wide or json, got %q", output)
	}
	return nil
}

// open resolves the globals, each from its flag, else its environment
// variable, else the profile, else the default, and makes the client.
func (t *tree) open(cmd *cobra.Command, g *globals) (*session, error) {
	if err := checkOutput(g.output); err != nil {
		return nil, err
	}
	set := cmd.Flags().Changed
	cfg, err := loadConfig(t.getenv)
	if err != nil {
		return nil, err
	}
	name, prof, err := cfg.selected(g.profile, t.getenv)
	if err != nil {
		return nil, err
	}
	if prof == nil {
		prof = &profile{}
	}
	endpoint := g.endpoint
	if !set("endpoint") {
		endpoint = firstOf(t.getenv("KEYMINT_ENDPOINT"), prof.Endpoint, defaultEndpoint)
	}
	insecure := g.insecure
	if !set("insecure") {
		if v := t.getenv("KEYMINT_INSECURE"); v != "" {
			insecure = v == "true"
		} else {
			insecure = prof.Insecure
		}
	}
	var token string
	switch {
	case set("token") && set("token-file"):
		return nil, usageErrorf("%s: give --token or --token-file, not both", commandName(cmd))
	case set("token"):
		token = g.token
	case set("token-file"):
		token, err = t.readTokenFile(g.tokenFile, "--token-file")
	case t.getenv("KEYMINT_TOKEN") != "":
		token = t.getenv("KEYMINT_TOKEN")
	case t.getenv("KEYMINT_TOKEN_FILE") != "":
		token, err = t.readTokenFile(t.getenv("KEYMINT_TOKEN_FILE"), "KEYMINT_TOKEN_FILE")
	case prof.TokenFile != "":
		// A profile's token goes to its own server only: an endpoint from
		// the flag or the environment would otherwise receive the credential
		// of another server.
		if endpoint != prof.Endpoint {
			return nil, usageErrorf("%s: the endpoint %s is not profile %s's (%s), and the token would come from that profile's token_file: "+
				"a profile's token goes only to its own endpoint. Give this server's token (--token-file or KEYMINT_TOKEN_FILE), "+
				"or drop --endpoint/KEYMINT_ENDPOINT to use the profile", commandName(cmd), endpoint, name, firstOf(prof.Endpoint, "none"))
		}
		token, err = t.readTokenFile(cfg.tokenPath(t.getenv, prof.TokenFile), fmt.Sprintf("profile %s's token_file", name))
	}
	if err != nil {
		return nil, err
	}
	if token == "" {
		return nil, usageErrorf("%s: no token: set KEYMINT_TOKEN (or KEYMINT_TOKEN_FILE, --token-file, --token) to a keymint management token, or use a profile with a token_file (keymint profile --help)", commandName(cmd))
	}
	var opts []keymint.Option
	if insecure {
		opts = append(opts, keymint.WithInsecure())
	}
	cl, err := keymint.New(endpoint, token, append(opts, keymint.WithTimeout(30*time.Second), keymint.WithUserAgent("keymint-cli/"+version))...)
	if err != nil {
		return nil, usageErrorf("%s: %v", commandName(cmd), err)
	}
	return &session{cli: t.cli, client: cl, output: g.output}, nil
}

func firstOf(vs ...string) string {
	for _, v := range vs {
		if v != "" {
			return v
		}
	}
	return ""
}

// op makes an operator command: the globals are its flags, and run gets the
// opened session (opened once flags and arguments are checked, before run).
func (t *tree) op(cmd *cobra.Command, run func(s *session, cmd *cobra.Command, args []string) error) *cobra.Command {
	var g globals
	t.serverFlags(cmd, cmd.Flags(), &g)
	cmd.RunE = t.act(func(cmd *cobra.Command, args []string) error {
		s, err := t.open(cmd, &g)
		if err != nil {
			return err
		}
		return run(s, cmd, args)
	})
	return cmd
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func (s *session) wide() bool { return s.output == "wide" }

// emit writes v as JSON (-o json) or as the table table writes (-o table, wide).
func (s *session) emit(v any, table func(w *tabwriter.Writer)) error {
	if s.output == "json" {
		return writeJSON(s.stdout, v)
	}
	w := tabwriter.NewWriter(s.stdout, 0, 0, 2, ' ', 0)
	table(w)
	return w.Flush()
}

// done reports a change: v on standard output with -o json, else a message
// on standard error (data on stdout, messages on stderr).
func (s *session) done(v any, format string, args ...any) error {
	if s.output == "json" {
		return writeJSON(s.stdout, v)
	}
	_, err := fmt.Fprintf(s.stderr, "keymint: "+format+"\n", args...)
	return err
}

func short(s string, n int) string {
	if len([]rune(s)) <= n {
		return s
	}
	return string([]rune(s)[:n-1]) + "…"
}

// shortLeft keeps the end of s: a start's random characters, which a log line shows.
func shortLeft(s string, n int) string {
	if len([]rune(s)) <= n {
		return s
	}
	r := []rune(s)
	return "…" + string(r[len(r)-n+1:])
}

func stamp(t *time.Time) string {
	if t == nil {
		return "-"
	}
	return t.UTC().Format(time.RFC3339)
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func rateLimit(rl *wire.RateLimit) string {
	if rl == nil {
		return "-"
	}
	return fmt.Sprintf("%d/%s", rl.Requests, rl.Window)
}

// parseRateLimit reads REQUESTS/WINDOW; the window may be in days or weeks.
func parseRateLimit(cmd, v string) (*wire.RateLimit, error) {
	n, window, ok := strings.Cut(v, "/")
	requests, err := strconv.Atoi(n)
	d, derr := vocab.ParseDuration(window)
	if !ok || err != nil || derr != nil {
		return nil, usageErrorf("%s: --rate-limit must be REQUESTS/WINDOW, e.g. 100/1m or 10000/1d, got %q", cmd, v)
	}
	return &wire.RateLimit{Requests: requests, Window: vocab.FormatDuration(d)}, nil
}

func splitList(v string) []string {
	var out []string
	for _, s := range strings.Split(v, ",") {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out
}

// ---- apps

func (t *tree) appsCommand() *cobra.Command {
	return t.group("apps", "List, get, create, update, delete apps",
		t.appsList(), t.appsGet(), t.appsCreate(), t.appsUpdate(), t.appsDelete())
}

func (t *tree) appsList() *cobra.Command {
	return t.op(&cobra.Command{Use: "list", Short: "List the apps this token can see", Args: positional()},
		func(s *session, cmd *cobra.Command, _ []string) error {
			apps, err := s.client.ListApps(cmd.Context())
			if err != nil {
				return err
			}
			return s.emit(apps, func(w *tabwriter.Writer) {
				if s.wide() {
					fmt.Fprintln(w, "SLUG\tNAME\tKEY PREFIX\tSCOPES\tRATE LIMIT\tCREATED\tUPDATED\tDESCRIPTION")
					for _, a := range apps {
						fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", a.Slug, a.Name, a.KeyPrefix, strings.Join(a.Scopes, ","),
							rateLimit(a.RateLimit), stamp(&a.CreatedAt), stamp(&a.UpdatedAt), strings.ReplaceAll(a.Description, "\n", " "))
					}
					return
				}
				// 16+16+16+12+10 and 4 gaps of 2: 78 columns.
				fmt.Fprintln(w, "SLUG\tNAME\tKEY PREFIX\tSCOPES\tRATE LIMIT")
				for _, a := range apps {
					fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\n", short(a.Slug, 16), short(a.Name, 16), short(a.KeyPrefix, 16),
						short(strings.Join(a.Scopes, ","), 12), short(rateLimit(a.RateLimit), 10))
				}
			})
		})
}

func appDetails(w *tabwriter.Writer, a wire.App) {
	for _, row := range [][2]string{{"slug", a.Slug}, {"name", a.Name}, {"description", a.Description}, {"key prefix", a.KeyPrefix},
		{"scopes", strings.Join(a.Scopes, ", ")}, {"rate limit", rateLimit(a.RateLimit)}, {"created", stamp(&a.CreatedAt)}, {"updated", stamp(&a.UpdatedAt)}} {
		fmt.Fprintf(w, "%s\t%s\n", row[0], row[1])
	}
}

func (t *tree) appsGet() *cobra.Command {
	return t.op(&cobra.Command{Use: "get SLUG", Short: "Show one app, every field", Args: positional("SLUG")},
		func(s *session, cmd *cobra.Command, args []string) error {
			a, err := s.client.GetApp(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			return s.emit(a, func(w *tabwriter.Writer) { appDetails(w, a) })
		})
}

func (t *tree) appsCreate() *cobra.Command {
	var slug, name, description, scopes, prefix, limit string
	cmd := t.op(&cobra.Command{Use: "create --slug S --name N --scopes a,b --key-prefix P [--description D] [--rate-limit 100/1m]",
		Short: "Create an app", Args: positional()},
		func(s *session, cmd *cobra.Command, _ []string) error {
			req := wire.CreateApp{Slug: slug, Name: name, Description: description, Scopes: splitList(scopes), KeyPrefix: prefix}
			if limit != "" {
				rl, err := parseRateLimit("apps create", limit)
				if err != nil {
					return err
				}
				req.RateLimit = rl
			}
			a, err := s.client.CreateApp(cmd.Context(), req)
			if err != nil {
				return err
			}
			return s.done(a, "created app %s (keys start %s_)", a.Slug, a.KeyPrefix)
		})
	f := cmd.Flags()
	f.StringVar(&slug, "slug", "", "the app's slug ("+vocab.SlugRule+")")
	f.StringVar(&name, "name", "", "display name")
	f.StringVar(&description, "description", "", "description")
	f.StringVar(&scopes, "scopes", "", "comma-separated scopes its keys may carry")
	f.StringVar(&prefix, "key-prefix", "", "key prefix ("+vocab.KeyPrefixRule+")")
	f.StringVar(&limit, "rate-limit", "", "verifies per key, as REQUESTS/WINDOW, e.g. 100/1m or 10000/1d")
	for _, required := range []string{"slug", "name", "scopes", "key-prefix"} {
		_ = cmd.MarkFlagRequired(required)
	}
	return cmd
}

func (t *tree) appsUpdate() *cobra.Command {
	var name, description, scopes, limit string
	var noLimit bool
	cmd := t.op(&cobra.Command{Use: "update SLUG [--name N] [--description D] [--scopes a,b] [--rate-limit 100/1m | --no-rate-limit]",
		Short: "Change an app's name, description, scopes or rate limit (its slug and key prefix are fixed)", Args: positional("SLUG")},
		func(s *session, cmd *cobra.Command, args []string) error {
			set := cmd.Flags().Changed
			var req wire.UpdateApp
			if set("name") {
				req.Name = &name
			}
			if set("description") {
				req.Description = &description
			}
			if set("scopes") {
				if req.Scopes = splitList(scopes); len(req.Scopes) == 0 {
					return usageErrorf("apps update: --scopes needs at least one scope")
				}
			}
			switch {
			case set("rate-limit"):
				rl, err := parseRateLimit("apps update", limit)
				if err != nil {
					return err
				}
				req.RateLimit = wire.Nullable[wire.RateLimit]{Set: true, Value: rl}
			case noLimit:
				req.RateLimit = wire.Nullable[wire.RateLimit]{Set: true}
			}
			if req.Name == nil && req.Description == nil && req.Scopes == nil && !req.RateLimit.Set {
				return usageErrorf("apps update: nothing to change: give --name, --description, --scopes, --rate-limit or --no-rate-limit")
			}
			a, err := s.client.UpdateApp(cmd.Context(), args[0], req)
			if err != nil {
				return err
			}
			return s.done(a, "updated app %s", a.Slug)
		})
	f := cmd.Flags()
	f.StringVar(&name, "name", "", "new display name")
	f.StringVar(&description, "description", "", "new description (\"\" clears it)")
	f.StringVar(&scopes, "scopes", "", "the scopes its keys may carry, comma-separated: replaces the list")
	f.StringVar(&limit, "rate-limit", "", "verifies per key, as REQUESTS/WINDOW, e.g. 100/1m")
	f.BoolVar(&noLimit, "no-rate-limit", false, "remove the rate limit")
	cmd.MarkFlagsMutuallyExclusive("rate-limit", "no-rate-limit")
	return cmd
}

func (t *tree) appsDelete() *cobra.Command {
	var force bool
	cmd := t.op(&cobra.Command{Use: "delete SLUG [--force]", Short: "Delete an app (--force revokes its live keys with it)", Args: positional("SLUG")},
		func(s *session, cmd *cobra.Command, args []string) error {
			if err := s.client.DeleteApp(cmd.Context(), args[0], force); err != nil {
				return err
			}
			return s.done(map[string]string{"deleted": args[0]}, "deleted app %s", args[0])
		})
	cmd.Flags().BoolVar(&force, "force", false, "revoke the app's live keys with it")
	return cmd
}

// ---- keys

func (t *tree) keysCommand() *cobra.Command {
	return t.group("keys", "List, get, find, create, update, rotate, revoke, disable, enable keys",
		t.keysList(), t.keysGet(), t.keysFind(), t.keysCreate(), t.keysUpdate(), t.keysRotate(), t.keysRevoke(),
		t.keysEnable(false), t.keysEnable(true))
}

func (t *tree) keysList() *cobra.Command {
	var app, status string
	cmd := t.op(&cobra.Command{Use: "list --app SLUG [--status " + strings.Join(vocab.Statuses, "|") + "]",
		Short: "List an app's keys (--app keymint: management credentials)", Args: positional()},
		func(s *session, cmd *cobra.Command, _ []string) error {
			if status != "" && !slices.Contains(vocab.Statuses, status) {
				return usageErrorf("keys list: --status must be one of %s, got %q", strings.Join(vocab.Statuses, ", "), status)
			}
			keys, err := s.client.ListKeys(cmd.Context(), app, status) // every page
			if err != nil {
				return err
			}
			return s.emit(keys, func(w *tabwriter.Writer) { s.keyTable(w, keys) })
		})
	cmd.Flags().StringVar(&app, "app", "", "the app's slug (keymint: management credentials)")
	cmd.Flags().StringVar(&status, "status", "", "only keys with this status: "+strings.Join(vocab.Statuses, ", "))
	_ = cmd.MarkFlagRequired("app")
	_ = cmd.RegisterFlagCompletionFunc("status", cobra.FixedCompletions(vocab.Statuses, cobra.ShellCompDirectiveNoFileComp))
	return cmd
}

func metadataString(m map[string]string) string {
	meta := make([]string, 0, len(m))
	for name, v := range m {
		meta = append(meta, name+"="+v)
	}
	slices.Sort(meta)
	return strings.Join(meta, ",")
}

// keyTable fits 80 columns: id (28), name (11), status (8), the end of start
// with its random characters (14), last used (11). -o wide adds every column.
func (s *session) keyTable(w *tabwriter.Writer, keys []wire.Key) {
	if s.wide() {
		fmt.Fprintln(w, "ID\tAPP\tNAME\tSTATUS\tSTART\tSCOPES\tRESOURCES\tOWNER\tEXPIRES\tCREATED\tLAST USED\tMETADATA")
		for _, k := range keys {
			fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", k.ID, k.App, k.Name, k.Status, k.Start,
				strings.Join(k.Scopes, ","), orDash(strings.Join(k.Resources, ",")), orDash(k.Owner), stamp(k.ExpiresAt),
				stamp(&k.CreatedAt), stamp(k.LastUsedAt), orDash(metadataString(k.Metadata)))
		}
		return
	}
	fmt.Fprintln(w, "ID\tNAME\tSTATUS\tSTART\tLAST USED")
	for _, k := range keys {
		used := "-"
		if k.LastUsedAt != nil {
			used = k.LastUsedAt.UTC().Format("01-02 15:04")
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\n", k.ID, short(k.Name, 11), k.Status, shortLeft(k.Start, 14), used)
	}
}

func keyDetails(w *tabwriter.Writer, k wire.Key) {
	expires := "never"
	if k.ExpiresAt != nil {
		expires = k.ExpiresAt.UTC().Format(time.RFC3339)
	}
	for _, row := range [][2]string{{"id", k.ID}, {"app", k.App}, {"name", k.Name}, {"status", k.Status}, {"start", k.Start},
		{"scopes", strings.Join(k.Scopes, ", ")}, {"resources", strings.Join(k.Resources, ", ")}, {"owner", k.Owner},
		{"metadata", strings.ReplaceAll(metadataString(k.Metadata), ",", ", ")}, {"expires", expires}, {"created", stamp(&k.CreatedAt)},
		{"rotated", stamp(k.RotatedAt)}, {"revoked", stamp(k.RevokedAt)}, {"last used", stamp(k.LastUsedAt)}} {
		fmt.Fprintf(w, "%s\t%s\n", row[0], row[1])
	}
}

func (t *tree) keysGet() *cobra.Command {
	return t.op(&cobra.Command{Use: "get ID", Short: "Show one key, every field", Args: positional("ID")},
		func(s *session, cmd *cobra.Command, args []string) error {
			k, err := s.client.GetKey(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			return s.emit(k, func(w *tabwriter.Writer) { keyDetails(w, k) })
		})
}

// readSecret reads a key from standard input: never from an argument, which
// a process list shows.
func (c cli) readSecret(cmd string) (string, error) {
	secret, err := bufio.NewReader(c.stdin).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return "", err
	}
	if secret = strings.TrimSpace(secret); secret == "" {
		return "", usageErrorf("%s: no key on standard input (keymint %s < keyfile)", cmd, cmd)
	}
	return secret, nil
}

func (t *tree) keysFind() *cobra.Command {
	return t.op(&cobra.Command{Use: "find < keyfile", Short: "Name the key a secret belongs to (the secret is read from standard input)", Args: positional()},
		func(s *session, cmd *cobra.Command, _ []string) error {
			secret, err := s.readSecret("keys find")
			if err != nil {
				return err
			}
			k, err := s.client.FindKey(cmd.Context(), secret)
			if err != nil {
				return err
			}
			return s.emit(k, func(w *tabwriter.Writer) { keyDetails(w, k) })
		})
}

// parseMetadata reads repeated --metadata KEY=VALUE.
func parseMetadata(cmd string, pairs []string) (map[string]string, error) {
	m := map[string]string{}
	for _, v := range pairs {
		k, val, ok := strings.Cut(v, "=")
		if !ok || k == "" {
			return nil, usageErrorf("%s: --metadata wants KEY=VALUE, got %q", cmd, v)
		}
		m[k] = val
	}
	return m, nil
}

// secretOut prints a created or rotated key: the secret alone on stdout (so
// SECRET=$(keymint keys create ...) works) and the rest on stderr; with -o
// json, the whole answer on stdout.
func (s *session) secretOut(k wire.KeyWithSecret, did string) error {
	if s.output == "json" {
		return writeJSON(s.stdout, k)
	}
	fmt.Fprintf(s.stderr, "keymint: %s key %s (%s) in app %s, start %s; the secret is on standard output, shown only this once\n", did, k.Key.ID, k.Key.Name, k.Key.App, k.Key.Start)
	_, err := fmt.Fprintln(s.stdout, k.Secret)
	return err
}

// expiry reads --expires-in (a duration from now) or --expires-at (RFC 3339).
func expiry(cmd, in, at string, now time.Time) (string, error) {
	switch {
	case in != "":
		d, err := vocab.ParseDuration(in)
		if err != nil {
			return "", usageErrorf("%s: --expires-in: %v", cmd, err)
		}
		if d <= 0 {
			return "", usageErrorf("%s: --expires-in must be positive, got %q", cmd, in)
		}
		return now.Add(d).UTC().Format(time.RFC3339), nil
	case at != "":
		t, err := time.Parse(time.RFC3339, at)
		if err != nil {
			return "", usageErrorf("%s: --expires-at must be an RFC 3339 time such as 2030-01-02T15:04:05Z, got %q", cmd, at)
		}
		return t.Format(time.RFC3339Nano), nil // the server says if it is not in the future
	}
	return "", nil
}

func (t *tree) keysCreate() *cobra.Command {
	var app, name, scopes, resources, owner, expiresIn, expiresAt string
	var metadata []string
	cmd := t.op(&cobra.Command{Use: "create --app SLUG --name N --scopes a,b [--resources r1,r2] [--owner O] [--expires-in 30d | --expires-at TIME] [--metadata k=v ...]",
		Short: "Create a key; its secret alone goes to standard output", Args: positional()},
		func(s *session, cmd *cobra.Command, _ []string) error {
			meta, err := parseMetadata("keys create", metadata)
			if err != nil {
				return err
			}
			exp, err := expiry("keys create", expiresIn, expiresAt, time.Now())
			if err != nil {
				return err
			}
			req := wire.CreateKey{Name: name, Scopes: splitList(scopes), Resources: splitList(resources), Owner: owner, ExpiresAt: exp}
			if len(meta) > 0 {
				req.Metadata = meta
			}
			k, err := s.client.CreateKey(cmd.Context(), app, req)
			if err != nil {
				return err
			}
			return s.secretOut(k, "created")
		})
	f := cmd.Flags()
	f.StringVar(&app, "app", "", "the app's slug (keymint: mint a management credential)")
	f.StringVar(&name, "name", "", "display name")
	f.StringVar(&scopes, "scopes", "", "comma-separated scopes")
	f.StringVar(&resources, "resources", "", "comma-separated resources the key is confined to (for a management credential: app slugs)")
	f.StringVar(&owner, "owner", "", "who the key is for")
	f.StringVar(&expiresIn, "expires-in", "", "expire the key this long from now: "+vocab.DurationRule+" (default: never)")
	f.StringVar(&expiresAt, "expires-at", "", "expire the key at this RFC 3339 time, e.g. 2030-01-02T15:04:05Z")
	f.StringArrayVar(&metadata, "metadata", nil, "KEY=VALUE returned by verify; repeat for more")
	cmd.MarkFlagsMutuallyExclusive("expires-in", "expires-at")
	for _, required := range []string{"app", "name", "scopes"} {
		_ = cmd.MarkFlagRequired(required)
	}
	return cmd
}

func (t *tree) keysUpdate() *cobra.Command {
	var name string
	var metadata []string
	var clear bool
	cmd := t.op(&cobra.Command{Use: "update ID [--name N] [--metadata k=v ... | --clear-metadata]",
		Short: "Change a key's name or metadata",
		Long: "Changes a key's name or metadata: the fields the API lets change. --metadata replaces the whole map.\n" +
			"Scopes, resources, owner and expiry are fixed at creation: create a new key (and revoke this one) to change them;\n" +
			"keys disable/enable switch a key off and on.",
		Args: positional("ID")},
		func(s *session, cmd *cobra.Command, args []string) error {
			var req wire.UpdateKey
			if cmd.Flags().Changed("name") {
				req.Name = &name
			}
			if len(metadata) > 0 || clear {
				meta, err := parseMetadata("keys update", metadata)
				if err != nil {
					return err
				}
				req.Metadata = &meta
			}
			if req.Name == nil && req.Metadata == nil {
				return usageErrorf("keys update: nothing to change: give --name, --metadata or --clear-metadata")
			}
			k, err := s.client.UpdateKey(cmd.Context(), args[0], req)
			if err != nil {
				return err
			}
			return s.done(k, "updated key %s (%s)", k.ID, k.Name)
		})
	f := cmd.Flags()
	f.StringVar(&name, "name", "", "new display name")
	f.StringArrayVar(&metadata, "metadata", nil, "KEY=VALUE; repeat for more: replaces the key's whole metadata")
	f.BoolVar(&clear, "clear-metadata", false, "remove every metadata entry")
	cmd.MarkFlagsMutuallyExclusive("metadata", "clear-metadata")
	return cmd
}

func (t *tree) keysRotate() *cobra.Command {
	var grace string
	cmd := t.op(&cobra.Command{Use: "rotate ID [--grace 1h]", Short: "Give a key a new secret (alone on standard output); the old one works for --grace", Args: positional("ID")},
		func(s *session, cmd *cobra.Command, args []string) error {
			d, err := vocab.ParseDuration(grace)
			if err != nil {
				return usageErrorf("keys rotate: --grace: %v", err)
			}
			k, err := s.client.RotateKey(cmd.Context(), args[0], wire.RotateKey{GracePeriod: vocab.FormatDuration(d)})
			if err != nil {
				return err
			}
			return s.secretOut(k, "rotated")
		})
	cmd.Flags().StringVar(&grace, "grace", "0s", "how long the previous secret keeps working (0s to 30d): "+vocab.DurationRule)
	return cmd
}

func (t *tree) keysRevoke() *cobra.Command {
	return t.op(&cobra.Command{Use: "revoke ID", Short: "Revoke a key: its next verify is REVOKED", Args: positional("ID")},
		func(s *session, cmd *cobra.Command, args []string) error {
			if err := s.client.RevokeKey(cmd.Context(), args[0]); err != nil {
				return err
			}
			k, err := s.client.GetKey(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			return s.done(k, "revoked key %s (%s); its next verify is REVOKED", k.ID, k.Name)
		})
}

func (t *tree) keysEnable(enabled bool) *cobra.Command {
	use, short := "disable", "Disable a key (DISABLED until enabled again)"
	if enabled {
		use, short = "enable", "Enable a disabled key"
	}
	return t.op(&cobra.Command{Use: use + " ID", Short: short, Args: positional("ID")},
		func(s *session, cmd *cobra.Command, args []string) error {
			k, err := s.client.UpdateKey(cmd.Context(), args[0], wire.UpdateKey{Enabled: &enabled})
			if err != nil {
				return err
			}
			return s.done(k, "key %s (%s) is %s", k.ID, k.Name, k.Status)
		})
}

// ---- events, whoami

// since reads --since or --until: an RFC 3339 time, or a duration ago (24h, 7d).
func since(name, v string, now time.Time) (time.Time, error) {
	if v == "" {
		return time.Time{}, nil
	}
	if t, err := time.Parse(time.RFC3339, v); err == nil {
		return t, nil
	}
	d, err := vocab.ParseDuration(v)
	if err != nil || d < 0 {
		return time.Time{}, usageErrorf("events: --%s must be an RFC 3339 time (2030-01-02T15:04:05Z) or a duration ago (%s), got %q", name, vocab.DurationRule, v)
	}
	return now.Add(-d), nil
}

func (t *tree) eventsCommand() *cobra.Command {
	var f keymint.EventFilter
	var from, until string
	run := func(s *session, cmd *cobra.Command, _ []string) error {
		if f.Limit < 1 {
			return usageErrorf("events: --limit must be at least 1, got %d", f.Limit)
		}
		now := time.Now()
		var err error
		if f.Since, err = since("since", from, now); err != nil {
			return err
		}
		if f.Until, err = since("until", until, now); err != nil {
			return err
		}
		evs, err := s.client.ListEventsMatching(cmd.Context(), f)
		if err != nil {
			return err
		}
		return s.emit(evs, func(w *tabwriter.Writer) {
			if s.wide() {
				fmt.Fprintln(w, "AT (UTC)\tACTOR\tACTION\tAPP\tKEY\tREQUEST\tCHANGES")
				for _, e := range evs {
					changes, _ := json.Marshal(e.Changes)
					fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", e.At.UTC().Format(time.RFC3339Nano), e.Actor, e.Action, orDash(e.App), orDash(e.KeyID), e.RequestID, changes)
				}
				return
			}
			// 16+15+12+14+14 and 4 gaps of 2: 79 columns; ids keep their
			// random ends. -o wide shows them whole, with the request and changes.
			fmt.Fprintln(w, "AT (UTC)\tACTION\tAPP\tKEY\tACTOR")
			for _, e := range evs {
				fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\n", e.At.UTC().Format("2006-01-02 15:04"), short(e.Action, 15), short(orDash(e.App), 12),
					shortLeft(orDash(e.KeyID), 14), shortLeft(e.Actor, 14))
			}
		})
	}
	use := "[--app SLUG] [--key ID] [--actor ID] [--action A] [--since T] [--until T] [--limit N]"
	long := "The audit trail, newest first: who changed what, when, in which request.\n" +
		"--since and --until take an RFC 3339 time or a duration ago (24h, 7d, 2w); events at or after --since, before --until."
	events := t.op(&cobra.Command{Use: "events " + use, Short: "The audit trail, newest first, filtered", Long: long, Args: subcommandArgs}, run)
	events.SuggestionsMinimumDistance = 2
	fs := events.PersistentFlags()
	fs.StringVar(&f.App, "app", "", "only this app's events")
	fs.StringVar(&f.Key, "key", "", "only this key's events")
	fs.StringVar(&f.Actor, "actor", "", "only events made by this credential: root or a management key's id")
	fs.StringVar(&f.Action, "action", "", "only this action, e.g. key.rotate, app.update, credential.mint")
	fs.StringVar(&from, "since", "", "only events at or after this time (RFC 3339, or a duration ago: 24h, 7d)")
	fs.StringVar(&until, "until", "", "only events before this time (RFC 3339, or a duration ago)")
	fs.IntVar(&f.Limit, "limit", 50, "how many events at most (pages are followed)")
	// keymint events list: the same command, as keys list and apps list read.
	events.AddCommand(t.op(&cobra.Command{Use: "list " + use, Short: "The same as keymint events", Long: long, Args: positional()}, run))
	return events
}

func (t *tree) whoamiCommand() *cobra.Command {
	return t.op(&cobra.Command{Use: "whoami", Short: "Show the credential the token is: its id, scopes and the apps it is confined to", Args: positional()},
		func(s *session, cmd *cobra.Command, _ []string) error {
			who, err := s.client.Whoami(cmd.Context())
			if err != nil {
				return err
			}
			confined := strings.Join(who.ConfineTo, ", ")
			if confined == "" {
				confined = "- (every app)"
			}
			return s.emit(who, func(w *tabwriter.Writer) {
				for _, row := range [][2]string{{"id", who.ID}, {"scopes", strings.Join(who.Scopes, ", ")}, {"confined to", confined}} {
					fmt.Fprintf(w, "%s\t%s\n", row[0], row[1])
				}
			})
		})
}
