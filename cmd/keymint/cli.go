package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/keymint/terraform-provider-keymint/internal/vocab"
	"github.com/keymint/terraform-provider-keymint/internal/wire"
	"github.com/keymint/terraform-provider-keymint/keymint"
)

// The operator's commands: `keymint apps ...` and `keymint keys ...`, each a
// thin adapter over the typed client. Output is a table for people (-o
// table, fitting 80 columns) or JSON for jq (-o json). Only keys create and
// keys rotate ever print a secret: alone, on standard output.

// session is what every operator command shares: the client and the output format.
type session struct {
	cli
	client *keymint.Client
	json   bool
}

// serverFlags adds --endpoint and --insecure to fs and returns a function
// that makes the client once fs is parsed: one rule for every command that
// sends a token.
func serverFlags(fs *flag.FlagSet, c cli) func(token string, opts ...keymint.Option) (*keymint.Client, error) {
	endpoint := fs.String("endpoint", envOr(c.getenv, "KEYMINT_ENDPOINT", "http://127.0.0.1:8080"), "server URL (env KEYMINT_ENDPOINT)")
	insecure := fs.Bool("insecure", envOr(c.getenv, "KEYMINT_INSECURE", "") == "true", "allow a plain http:// endpoint on another machine: the token travels in clear text (env KEYMINT_INSECURE=true)")
	return func(token string, opts ...keymint.Option) (*keymint.Client, error) {
		if *insecure {
			opts = append(opts, keymint.WithInsecure())
		}
		return keymint.New(*endpoint, token, opts...)
	}
}

// operatorFlags adds the global flags to fs and returns a function that
// opens the session once fs is parsed.
func operatorFlags(fs *flag.FlagSet, c cli) func() (*session, error) {
	connect := serverFlags(fs, c)
	token := fs.String("token", "", "management token (default: env KEYMINT_TOKEN; prefer the variable, a flag shows in the process list)")
	output := fs.String("o", "table", "output: table or json")
	return func() (*session, error) {
		if *output != "table" && *output != "json" {
			return nil, usageErrorf("%s: -o must be table or json, got %q", fs.Name(), *output)
		}
		t := *token
		if t == "" {
			t = c.getenv("KEYMINT_TOKEN")
		}
		if t == "" {
			return nil, usageErrorf("%s: set KEYMINT_TOKEN (or --token) to a keymint management token", fs.Name())
		}
		cl, err := connect(t, keymint.WithTimeout(30*time.Second))
		if err != nil {
			return nil, usageErrorf("%s: %v", fs.Name(), err)
		}
		return &session{cli: c, client: cl, json: *output == "json"}, nil
	}
}

// begin parses a command's arguments (its own flags already defined on fs,
// the global ones added here) and opens the session.
func begin(fs *flag.FlagSet, c cli, args []string, names ...string) (*session, []string, error) {
	open := operatorFlags(fs, c)
	pos, err := parseWithArgs(fs, args, names...)
	if err != nil {
		return nil, nil, err
	}
	s, err := open()
	return s, pos, err
}

type command struct {
	name, args, help string
	run              func(ctx context.Context, fs *flag.FlagSet, c cli, args []string) error
}

var appCommands = []command{
	{"list", "", "list the apps this token can see", appsList},
	{"get", "SLUG", "show one app", appsGet},
	{"create", "--slug S --name N --scopes a,b --key-prefix P [--description D] [--rate-limit 100/1m]", "create an app", appsCreate},
	{"delete", "SLUG [--force]", "delete an app (--force revokes its live keys with it)", appsDelete},
}

var keyCommands = []command{
	{"list", "--app SLUG [--status active|disabled|expired|revoked]", "list an app's keys (--app keymint: management credentials)", keysList},
	{"get", "ID", "show one key", keysGet},
	{"find", "< keyfile", "name the key a secret belongs to (the secret is read from standard input)", keysFind},
	{"create", "--app SLUG --name N --scopes a,b [--resources r1,r2] [--owner O] [--expires-in 720h] [--metadata k=v ...]", "create a key; its secret alone goes to standard output", keysCreate},
	{"rotate", "ID [--grace 1h]", "give a key a new secret (alone on standard output); the old one works for --grace", keysRotate},
	{"revoke", "ID", "revoke a key: its next verify is REVOKED", keysRevoke},
	{"disable", "ID", "disable a key (DISABLED until enabled again)", keysEnable(false)},
	{"enable", "ID", "enable a disabled key", keysEnable(true)},
}

// group runs `keymint <group> <command> ...`.
func group(ctx context.Context, name string, commands []command, args []string, c cli) error {
	usage := func(w io.Writer) {
		fmt.Fprintf(w, "Usage: keymint %s <command> [flags]\n\nCommands:\n", name)
		for _, cmd := range commands {
			fmt.Fprintf(w, "  %-8s %s\n", cmd.name, cmd.help)
		}
		fmt.Fprintf(w, "\nEvery command takes --endpoint (env KEYMINT_ENDPOINT), --token (env KEYMINT_TOKEN) and -o table|json;\nkeymint %s <command> -h for its flags.\n", name)
	}
	if len(args) == 0 {
		usage(c.stderr)
		return usageErrorf("%s: no command given", name)
	}
	if args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		usage(c.stdout)
		return nil
	}
	for _, cmd := range commands {
		if cmd.name == args[0] {
			fs := newFlagSet(name+" "+cmd.name, name+" "+cmd.name+" "+cmd.args+"\n\n"+cmd.help+".", c)
			return cmd.run(ctx, fs, c, args[1:])
		}
	}
	usage(c.stderr)
	return usageErrorf("%s: unknown command %q", name, args[0])
}

// parseWithArgs parses flags and wants exactly n positional arguments (flags may follow them).
func parseWithArgs(fs *flag.FlagSet, args []string, names ...string) ([]string, error) {
	var positional []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil, err
			}
			return nil, usageErrorf("%s: %v (see keymint %s -h)", fs.Name(), err, fs.Name())
		}
		if fs.NArg() == 0 {
			break
		}
		positional = append(positional, fs.Arg(0))
		args = fs.Args()[1:]
	}
	if len(positional) != len(names) {
		return nil, usageErrorf("%s: want %s, got %d argument(s)", fs.Name(), strings.Join(names, " "), len(positional))
	}
	return positional, nil
}

// emit writes v as JSON (-o json) or as the table table writes.
func (s *session) emit(v any, table func(w *tabwriter.Writer)) error {
	if s.json {
		enc := json.NewEncoder(s.stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(v)
	}
	w := tabwriter.NewWriter(s.stdout, 0, 0, 2, ' ', 0)
	table(w)
	return w.Flush()
}

func short(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n-1] + "…"
}

// shortLeft keeps the end of s: a start's random characters, which a log line shows.
func shortLeft(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "…" + s[len(s)-n+1:]
}

func when(t *time.Time) string {
	if t == nil {
		return "-"
	}
	return t.UTC().Format("2006-01-02 15:04")
}

func appsList(ctx context.Context, fs *flag.FlagSet, c cli, args []string) error {
	s, _, err := begin(fs, c, args)
	if err != nil {
		return err
	}
	apps, err := s.client.ListApps(ctx)
	if err != nil {
		return err
	}
	return s.emit(apps, func(w *tabwriter.Writer) {
		fmt.Fprintln(w, "SLUG\tNAME\tKEY PREFIX\tSCOPES\tRATE LIMIT")
		for _, a := range apps {
			fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\n", short(a.Slug, 16), short(a.Name, 16), short(a.KeyPrefix, 16),
				short(strings.Join(a.Scopes, ","), 12), short(rateLimit(a.RateLimit), 10))
		}
	})
}

func rateLimit(rl *wire.RateLimit) string {
	if rl == nil {
		return "-"
	}
	return fmt.Sprintf("%d/%s", rl.Requests, rl.Window)
}

func appsGet(ctx context.Context, fs *flag.FlagSet, c cli, args []string) error {
	s, pos, err := begin(fs, c, args, "SLUG")
	if err != nil {
		return err
	}
	a, err := s.client.GetApp(ctx, pos[0])
	if err != nil {
		return err
	}
	return s.emit(a, func(w *tabwriter.Writer) {
		for _, row := range [][2]string{{"slug", a.Slug}, {"name", a.Name}, {"description", a.Description}, {"key prefix", a.KeyPrefix},
			{"scopes", strings.Join(a.Scopes, ", ")}, {"rate limit", rateLimit(a.RateLimit)}, {"created", when(&a.CreatedAt)}, {"updated", when(&a.UpdatedAt)}} {
			fmt.Fprintf(w, "%s\t%s\n", row[0], row[1])
		}
	})
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

func appsCreate(ctx context.Context, fs *flag.FlagSet, c cli, args []string) error {
	slug := fs.String("slug", "", "the app's slug ("+vocab.SlugRule+")")
	name := fs.String("name", "", "display name")
	description := fs.String("description", "", "description")
	scopes := fs.String("scopes", "", "comma-separated scopes its keys may carry")
	prefix := fs.String("key-prefix", "", "key prefix ("+vocab.KeyPrefixRule+")")
	limit := fs.String("rate-limit", "", "verifies per key, as REQUESTS/WINDOW, e.g. 100/1m")
	s, _, err := begin(fs, c, args)
	if err != nil {
		return err
	}
	req := wire.CreateApp{Slug: *slug, Name: *name, Description: *description, Scopes: splitList(*scopes), KeyPrefix: *prefix}
	if *limit != "" {
		n, window, ok := strings.Cut(*limit, "/")
		requests, err := strconv.Atoi(n)
		if !ok || err != nil {
			return usageErrorf("apps create: --rate-limit must be REQUESTS/WINDOW, e.g. 100/1m, got %q", *limit)
		}
		req.RateLimit = &wire.RateLimit{Requests: requests, Window: window}
	}
	a, err := s.client.CreateApp(ctx, req)
	if err != nil {
		return err
	}
	return s.emit(a, func(w *tabwriter.Writer) { fmt.Fprintf(w, "created app %s (keys start %s_)\n", a.Slug, a.KeyPrefix) })
}

func appsDelete(ctx context.Context, fs *flag.FlagSet, c cli, args []string) error {
	force := fs.Bool("force", false, "revoke the app's live keys with it")
	s, pos, err := begin(fs, c, args, "SLUG")
	if err != nil {
		return err
	}
	if err := s.client.DeleteApp(ctx, pos[0], *force); err != nil {
		return err
	}
	return s.emit(map[string]string{"deleted": pos[0]}, func(w *tabwriter.Writer) { fmt.Fprintf(w, "deleted app %s\n", pos[0]) })
}

func keysList(ctx context.Context, fs *flag.FlagSet, c cli, args []string) error {
	app := fs.String("app", "", "the app's slug (keymint: management credentials)")
	status := fs.String("status", "", "only keys with this status: "+strings.Join(vocab.Statuses, ", "))
	s, _, err := begin(fs, c, args)
	if err != nil {
		return err
	}
	if *app == "" {
		return usageErrorf("keys list: --app is required")
	}
	if *status != "" && !slices.Contains(vocab.Statuses, *status) {
		return usageErrorf("keys list: --status must be one of %s, got %q", strings.Join(vocab.Statuses, ", "), *status)
	}
	keys, err := s.client.ListKeys(ctx, *app, *status) // every page
	if err != nil {
		return err
	}
	return s.emit(keys, func(w *tabwriter.Writer) { keyTable(w, keys) })
}

// keyTable fits 80 columns: id (28), name (11), status (8), the end of
// start with its random characters (14), last used (11).
func keyTable(w *tabwriter.Writer, keys []wire.Key) {
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
	meta := make([]string, 0, len(k.Metadata))
	for name, v := range k.Metadata {
		meta = append(meta, name+"="+v)
	}
	slices.Sort(meta)
	expires := "never"
	if k.ExpiresAt != nil {
		expires = k.ExpiresAt.UTC().Format(time.RFC3339)
	}
	for _, row := range [][2]string{{"id", k.ID}, {"app", k.App}, {"name", k.Name}, {"status", k.Status}, {"start", k.Start},
		{"scopes", strings.Join(k.Scopes, ", ")}, {"resources", strings.Join(k.Resources, ", ")}, {"owner", k.Owner},
		{"metadata", strings.Join(meta, ", ")}, {"expires", expires}, {"created", when(&k.CreatedAt)},
		{"rotated", when(k.RotatedAt)}, {"revoked", when(k.RevokedAt)}, {"last used", when(k.LastUsedAt)}} {
		fmt.Fprintf(w, "%s\t%s\n", row[0], row[1])
	}
}

func keysGet(ctx context.Context, fs *flag.FlagSet, c cli, args []string) error {
	s, pos, err := begin(fs, c, args, "ID")
	if err != nil {
		return err
	}
	k, err := s.client.GetKey(ctx, pos[0])
	if err != nil {
		return err
	}
	return s.emit(k, func(w *tabwriter.Writer) { keyDetails(w, k) })
}

func keysFind(ctx context.Context, fs *flag.FlagSet, c cli, args []string) error {
	s, _, err := begin(fs, c, args)
	if err != nil {
		return err
	}
	secret, err := bufio.NewReader(c.stdin).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return err
	}
	if secret = strings.TrimSpace(secret); secret == "" {
		return usageErrorf("keys find: no key on standard input (keymint keys find < keyfile)")
	}
	k, err := s.client.FindKey(ctx, secret)
	if err != nil {
		return err
	}
	return s.emit(k, func(w *tabwriter.Writer) { keyDetails(w, k) })
}

// metadataFlag collects repeated --metadata k=v.
type metadataFlag map[string]string

func (m metadataFlag) String() string { return "" }
func (m metadataFlag) Set(v string) error {
	k, val, ok := strings.Cut(v, "=")
	if !ok || k == "" {
		return fmt.Errorf("want KEY=VALUE, got %q", v)
	}
	m[k] = val
	return nil
}

// secretOut prints a created or rotated key: the secret alone on stdout (so
// SECRET=$(keymint keys create ...) works) and the rest on stderr; with -o
// json, the whole answer on stdout.
func (s *session) secretOut(k wire.KeyWithSecret, did string) error {
	if s.json {
		return s.emit(k, nil)
	}
	fmt.Fprintf(s.stderr, "%s key %s (%s) in app %s, start %s; the secret is on standard output, shown only this once\n", did, k.Key.ID, k.Key.Name, k.Key.App, k.Key.Start)
	_, err := fmt.Fprintln(s.stdout, k.Secret)
	return err
}

func keysCreate(ctx context.Context, fs *flag.FlagSet, c cli, args []string) error {
	app := fs.String("app", "", "the app's slug (keymint: mint a management credential)")
	name := fs.String("name", "", "display name")
	scopes := fs.String("scopes", "", "comma-separated scopes")
	resources := fs.String("resources", "", "comma-separated resources the key is confined to (for a management credential: app slugs)")
	owner := fs.String("owner", "", "who the key is for")
	expiresIn := fs.Duration("expires-in", 0, "expire the key after this long, e.g. 720h (default: never)")
	metadata := metadataFlag{}
	fs.Var(metadata, "metadata", "KEY=VALUE returned by verify; repeat for more")
	s, _, err := begin(fs, c, args)
	if err != nil {
		return err
	}
	if *app == "" {
		return usageErrorf("keys create: --app is required")
	}
	if *expiresIn < 0 {
		return usageErrorf("keys create: --expires-in must be positive, got %s", *expiresIn)
	}
	req := wire.CreateKey{Name: *name, Scopes: splitList(*scopes), Resources: splitList(*resources), Owner: *owner}
	if len(metadata) > 0 {
		req.Metadata = metadata
	}
	if *expiresIn > 0 {
		req.ExpiresAt = time.Now().Add(*expiresIn).UTC().Format(time.RFC3339)
	}
	k, err := s.client.CreateKey(ctx, *app, req)
	if err != nil {
		return err
	}
	return s.secretOut(k, "created")
}

func keysRotate(ctx context.Context, fs *flag.FlagSet, c cli, args []string) error {
	grace := fs.String("grace", "0s", "how long the previous secret keeps working (0s to 720h)")
	s, pos, err := begin(fs, c, args, "ID")
	if err != nil {
		return err
	}
	k, err := s.client.RotateKey(ctx, pos[0], wire.RotateKey{GracePeriod: *grace})
	if err != nil {
		return err
	}
	return s.secretOut(k, "rotated")
}

func keysRevoke(ctx context.Context, fs *flag.FlagSet, c cli, args []string) error {
	s, pos, err := begin(fs, c, args, "ID")
	if err != nil {
		return err
	}
	if err := s.client.RevokeKey(ctx, pos[0]); err != nil {
		return err
	}
	k, err := s.client.GetKey(ctx, pos[0])
	if err != nil {
		return err
	}
	return s.emit(k, func(w *tabwriter.Writer) {
		fmt.Fprintf(w, "revoked key %s (%s); its next verify is REVOKED\n", k.ID, k.Name)
	})
}

func keysEnable(enabled bool) func(context.Context, *flag.FlagSet, cli, []string) error {
	return func(ctx context.Context, fs *flag.FlagSet, c cli, args []string) error {
		s, pos, err := begin(fs, c, args, "ID")
		if err != nil {
			return err
		}
		k, err := s.client.UpdateKey(ctx, pos[0], wire.UpdateKey{Enabled: &enabled})
		if err != nil {
			return err
		}
		return s.emit(k, func(w *tabwriter.Writer) { fmt.Fprintf(w, "key %s (%s) is %s\n", k.ID, k.Name, k.Status) })
	}
}

func eventsCmd(ctx context.Context, fs *flag.FlagSet, c cli, args []string) error {
	app := fs.String("app", "", "only this app's events")
	key := fs.String("key", "", "only this key's events")
	limit := fs.Int("limit", 50, "how many events at most (pages are followed)")
	s, _, err := begin(fs, c, args)
	if err != nil {
		return err
	}
	if *limit < 1 {
		return usageErrorf("events: --limit must be at least 1, got %d", *limit)
	}
	evs, err := s.client.ListEvents(ctx, *app, *key, *limit)
	if err != nil {
		return err
	}
	return s.emit(evs, func(w *tabwriter.Writer) {
		// Wider than 80 columns: the full actor and request id are what an
		// operator looks up. -o json adds what changed.
		fmt.Fprintln(w, "AT (UTC)\tACTOR\tACTION\tAPP\tKEY\tREQUEST")
		for _, e := range evs {
			key := e.KeyID
			if key == "" {
				key = "-"
			}
			fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\n", e.At.UTC().Format("2006-01-02 15:04:05"), e.Actor, e.Action, short(e.App, 16), key, e.RequestID)
		}
	})
}
