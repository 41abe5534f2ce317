package main

import (
	"context"
	"encoding/json"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/keymint/terraform-provider-keymint/internal/keyformat"
	"github.com/keymint/terraform-provider-keymint/internal/wire"
)

// The operator's commands, end to end against a real keymint serve.
func TestOperatorCommands(t *testing.T) {
	const root = "root-token-for-cli-test-0123456789"
	url, _, _, stop := startServe(t, t.TempDir(), map[string]string{"KEYMINT_ROOT_TOKEN": root})
	defer stop()
	var secrets []string
	// km runs one command and checks its exit code; it returns stdout and stderr.
	km := func(token, stdin string, wantCode int, args ...string) (string, string) {
		t.Helper()
		c, out, errOut := testCLI(map[string]string{"KEYMINT_ENDPOINT": url, "KEYMINT_TOKEN": token}, stdin)
		code := exitCode(run(context.Background(), args, c), errOut)
		if code != wantCode {
			t.Fatalf("keymint %s: exit %d, want %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), code, wantCode, out, errOut)
		}
		return out.String(), errOut.String()
	}
	noSecretIn := func(what, s string) {
		t.Helper()
		for _, secret := range secrets {
			if strings.Contains(s, secret[16:]) {
				t.Fatalf("%s prints a secret", what)
			}
		}
	}

	// A confirmation is a message: on stderr, nothing on stdout.
	out, errOut := km(root, "", 0, "apps", "create", "--slug", "shop", "--name", "Shop API", "--scopes", "orders:read, orders:write", "--key-prefix", "shop_live", "--rate-limit", "100/1m")
	if out != "" || !strings.Contains(errOut, "created app shop") {
		t.Fatalf("apps create: stdout %q, stderr %q", out, errOut)
	}
	out, _ = km(root, "", 0, "apps", "list")
	if !strings.Contains(out, "shop") || !strings.Contains(out, "100/1m") {
		t.Fatalf("apps list:\n%s", out)
	}
	var apps []wire.App
	out, _ = km(root, "", 0, "apps", "list", "-o", "json")
	if err := json.Unmarshal([]byte(out), &apps); err != nil || len(apps) != 2 {
		t.Fatalf("apps list -o json: %v\n%s", err, out)
	}
	km(root, "", 0, "apps", "get", "shop")

	// keys create: the secret alone on stdout, the rest on stderr.
	out, errOut = km(root, "", 0, "keys", "create", "--app", "shop", "--name", "checkout", "--scopes", "orders:read", "--metadata", "env=prod", "--metadata", "team=pay", "--expires-in", "720h")
	secret := strings.TrimSuffix(out, "\n")
	if _, err := keyformat.Parse(secret); err != nil || strings.Count(out, "\n") != 1 || !strings.Contains(errOut, "created key key_") {
		t.Fatalf("keys create: stdout %q, stderr %q", out, errOut)
	}
	secrets = append(secrets, secret)
	var created wire.KeyWithSecret
	out, _ = km(root, "", 0, "keys", "create", "--app", "shop", "--name", "second", "--scopes", "orders:read", "-o", "json")
	if err := json.Unmarshal([]byte(out), &created); err != nil || created.Secret == "" {
		t.Fatalf("keys create -o json: %v\n%s", err, out)
	}
	secrets = append(secrets, created.Secret)

	// keys find names the key from the secret on stdin; id is what the rest use.
	out, _ = km(root, secret+"\n", 0, "keys", "find", "-o", "json")
	var found wire.Key
	if err := json.Unmarshal([]byte(out), &found); err != nil || found.App != "shop" || found.Metadata["team"] != "pay" || found.ExpiresAt == nil {
		t.Fatalf("keys find: %v\n%s", err, out)
	}
	noSecretIn("keys find", out)
	id := found.ID

	out, _ = km(root, "", 0, "keys", "list", "--app", "shop")
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		if len([]rune(line)) > 80 {
			t.Fatalf("keys list does not fit 80 columns: %q", line)
		}
	}
	if !strings.Contains(out, id) || strings.Count(out, "\n") != 3 {
		t.Fatalf("keys list:\n%s", out)
	}
	noSecretIn("keys list", out)
	var listed []wire.Key
	out, _ = km(root, "", 0, "keys", "list", "--app", "shop", "--status", "active", "-o", "json")
	if err := json.Unmarshal([]byte(out), &listed); err != nil || len(listed) != 2 {
		t.Fatalf("keys list -o json: %v\n%s", err, out)
	}
	out, _ = km(root, "", 0, "keys", "get", id)
	if !strings.Contains(out, "env=prod, team=pay") {
		t.Fatalf("keys get:\n%s", out)
	}
	noSecretIn("keys get", out)

	// rotate: a new secret alone on stdout; the old one works for the grace.
	out, _ = km(root, "", 0, "keys", "rotate", id, "--grace", "1h")
	rotated := strings.TrimSpace(out)
	secrets = append(secrets, rotated)
	verify := func(key, want string) {
		t.Helper()
		var code int
		c, vout, errOut := testCLI(map[string]string{"KEYMINT_ENDPOINT": url, "KEYMINT_TOKEN": root}, key)
		code = exitCode(run(context.Background(), []string{"verify", "--expect", want}, c), errOut)
		if code != 0 {
			t.Fatalf("verify: want %s, got %s", want, vout)
		}
	}
	verify(rotated, wire.CodeValid)
	verify(secret, wire.CodeValid)

	out, errOut = km(root, "", 0, "keys", "disable", id)
	if out != "" || !strings.Contains(errOut, "disabled") {
		t.Fatalf("keys disable: stdout %q, stderr %q", out, errOut)
	}
	verify(rotated, wire.CodeDisabled)
	km(root, "", 0, "keys", "enable", id)
	verify(rotated, wire.CodeValid)
	out, errOut = km(root, "", 0, "keys", "revoke", id)
	if out != "" || !strings.Contains(errOut, "revoked") {
		t.Fatalf("keys revoke: stdout %q, stderr %q", out, errOut)
	}
	verify(rotated, wire.CodeRevoked)

	// A management credential minted by the CLI works as a token, within its scopes.
	out, _ = km(root, "", 0, "keys", "create", "--app", "keymint", "--name", "reader", "--scopes", "apps:read,keys:read", "--resources", "shop")
	reader := strings.TrimSpace(out)
	secrets = append(secrets, reader)
	out, _ = km(reader, "", 0, "apps", "list")
	if !strings.Contains(out, "shop") {
		t.Fatalf("apps list as the confined reader:\n%s", out)
	}
	_, errOut = km(reader, "", 1, "keys", "revoke", created.Key.ID)
	if !strings.Contains(errOut, "insufficient_scope") || strings.Count(strings.TrimSpace(errOut), "\n") > 1 {
		t.Fatalf("a refused command should print the server's problem in a line or two: %q", errOut)
	}

	// Errors: the server's problem on stderr, exit 1; usage mistakes exit 2.
	_, errOut = km(root, "", 1, "keys", "get", "key_nope")
	if !strings.Contains(errOut, "not_found") {
		t.Fatalf("keys get of an unknown key: %q", errOut)
	}
	km(root, "", 2, "keys", "list")
	km(root, "", 2, "keys", "get")
	km(root, "", 2, "keys", "list", "--app", "shop", "--status", "gone")
	km(root, "", 2, "apps", "create", "--rate-limit", "lots")
	km(root, "", 2, "keys", "nonsense")
	km("", "", 2, "apps", "list")
	km(root, "", 2, "apps", "list", "-o", "yaml")
	for _, group := range [][]string{{"apps"}, {"keys"}, {"apps", "list"}, {"apps", "get"}, {"apps", "create"}, {"apps", "delete"},
		{"keys", "list"}, {"keys", "get"}, {"keys", "find"}, {"keys", "create"}, {"keys", "rotate"}, {"keys", "revoke"},
		{"keys", "disable"}, {"keys", "enable"}} {
		out, _ := km(root, "", 0, append(group, "--help")...)
		if !strings.Contains(out, "Usage:\n  keymint "+strings.Join(group, " ")) {
			t.Errorf("keymint %s --help: %q", strings.Join(group, " "), out)
		}
	}

	// The audit trail: who did what, newest first; never a secret.
	var events []wire.Event
	out, _ = km(root, "", 0, "events", "--key", id, "-o", "json")
	if err := json.Unmarshal([]byte(out), &events); err != nil || len(events) != 5 || events[0].Action != "key.revoke" || events[len(events)-1].Action != "key.create" {
		t.Fatalf("events of %s: %v\n%s", id, err, out)
	}
	noSecretIn("events", out)
	out, _ = km(root, "", 0, "events", "--limit", "3")
	if strings.Count(out, "\n") != 4 || !strings.Contains(out, "credential.mint") {
		t.Fatalf("events --limit 3:\n%s", out)
	}
	km(root, "", 0, "events", "--help")
	km(root, "", 2, "events", "--limit", "0")

	// An endpoint with nothing behind it says what to set.
	c, _, errOut2 := testCLI(map[string]string{"KEYMINT_ENDPOINT": "http://127.0.0.1:1", "KEYMINT_TOKEN": root}, "")
	if code := exitCode(run(context.Background(), []string{"apps", "list"}, c), errOut2); code != 1 || !strings.Contains(errOut2.String(), "Set KEYMINT_ENDPOINT") {
		t.Fatalf("unreachable endpoint: exit %d, %q", code, errOut2)
	}

	_, errOut = km(root, "", 1, "apps", "delete", "shop")
	if !strings.Contains(errOut, "live_keys") || !strings.Contains(errOut, "--force") {
		t.Fatalf("apps delete with live keys: %q", errOut)
	}
	km(root, "", 0, "apps", "delete", "shop", "--force")
}

// kmFunc runs one command with env and stdin and wants its exit code; it
// returns stdout and stderr.
type kmFunc func(env map[string]string, stdin string, wantCode int, args ...string) (string, string)

func kmRunner(t *testing.T) kmFunc {
	return func(env map[string]string, stdin string, wantCode int, args ...string) (string, string) {
		t.Helper()
		c, out, errOut := testCLI(env, stdin)
		code := exitCode(run(context.Background(), args, c), errOut)
		if code != wantCode {
			t.Fatalf("keymint %s: exit %d, want %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), code, wantCode, out, errOut)
		}
		return out.String(), errOut.String()
	}
}

func decodeJSON[T any](t *testing.T, what, s string) T {
	t.Helper()
	var v T
	if err := json.Unmarshal([]byte(s), &v); err != nil {
		t.Fatalf("%s: not JSON: %v\n%s", what, err, s)
	}
	return v
}

func fits80(t *testing.T, what, out string) {
	t.Helper()
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		if n := len([]rune(line)); n > 80 {
			t.Fatalf("%s: a line of %d columns, want at most 80: %q", what, n, line)
		}
	}
}

// apps update, keys update, whoami, expiry flags, -o table/wide/json, verify --token -o json.
func TestCLIUpdateWhoamiOutputs(t *testing.T) {
	const root = "root-token-for-cli-test-0123456789"
	url, _, _, stop := startServe(t, t.TempDir(), map[string]string{"KEYMINT_ROOT_TOKEN": root})
	defer stop()
	km := kmRunner(t)
	env := map[string]string{"KEYMINT_ENDPOINT": url, "KEYMINT_TOKEN": root}
	longName := "The Shop API of the online store, with a long name"

	km(env, "", 0, "apps", "create", "--slug", "shop", "--name", "Shop", "--scopes", "orders:read", "--key-prefix", "shop_live")
	a := decodeJSON[wire.App](t, "apps update", first(km(env, "", 0, "apps", "update", "shop", "--name", longName, "--scopes", "orders:read,orders:write,refunds:write",
		"--rate-limit", "10000/1d", "-o", "json")))
	if a.Name != longName || len(a.Scopes) != 3 || a.RateLimit == nil || a.RateLimit.Window != "24h" || a.RateLimit.Requests != 10000 {
		t.Fatalf("apps update: %+v", a)
	}
	out, errOut := km(env, "", 0, "apps", "update", "shop", "--description", "orders and refunds")
	if out != "" || !strings.Contains(errOut, "updated app shop") {
		t.Fatalf("apps update: stdout %q, stderr %q", out, errOut)
	}
	if a := decodeJSON[wire.App](t, "apps update --no-rate-limit", first(km(env, "", 0, "apps", "update", "shop", "--no-rate-limit", "-o", "json"))); a.RateLimit != nil || a.Description != "orders and refunds" || a.Name != longName {
		t.Fatalf("apps update --no-rate-limit: %+v", a)
	}

	// --expires-in in days; --expires-at absolute.
	before := time.Now()
	k30 := decodeJSON[wire.KeyWithSecret](t, "keys create --expires-in 30d", first(km(env, "", 0, "keys", "create", "--app", "shop", "--name", "thirty days",
		"--scopes", "orders:read", "--expires-in", "30d", "-o", "json")))
	if e := k30.Key.ExpiresAt; e == nil || e.Before(before.Add(30*24*time.Hour).Truncate(time.Second)) || e.After(time.Now().Add(30*24*time.Hour)) {
		t.Fatalf("--expires-in 30d: expires %v, created about %v", e, before)
	}
	at := "2031-02-03T04:05:06Z"
	kAt := decodeJSON[wire.KeyWithSecret](t, "keys create --expires-at", first(km(env, "", 0, "keys", "create", "--app", "shop", "--name", "A key with a rather long name for the table",
		"--scopes", "orders:read,refunds:write", "--owner", "team-payments@example.com", "--expires-at", at, "--metadata", "env=prod", "-o", "json")))
	if e := kAt.Key.ExpiresAt; e == nil || e.UTC().Format(time.RFC3339) != at {
		t.Fatalf("--expires-at %s: expires %v", at, e)
	}

	// keys update: name and metadata (the whole map), then cleared.
	k := decodeJSON[wire.Key](t, "keys update", first(km(env, "", 0, "keys", "update", k30.Key.ID, "--name", "renamed", "--metadata", "team=pay", "--metadata", "tier=gold", "-o", "json")))
	if k.Name != "renamed" || len(k.Metadata) != 2 || k.Metadata["tier"] != "gold" {
		t.Fatalf("keys update: %+v", k)
	}
	if k := decodeJSON[wire.Key](t, "keys update --clear-metadata", first(km(env, "", 0, "keys", "update", k30.Key.ID, "--clear-metadata", "-o", "json"))); len(k.Metadata) != 0 || k.Name != "renamed" {
		t.Fatalf("keys update --clear-metadata: %+v", k)
	}
	out, errOut = km(env, "", 0, "keys", "update", kAt.Key.ID, "--name", "A key with a rather long name for the table")
	if out != "" || !strings.Contains(errOut, "updated key "+kAt.Key.ID) {
		t.Fatalf("keys update: stdout %q, stderr %q", out, errOut)
	}

	// table fits 80 columns and cuts; wide shows every column whole; json parses.
	out, _ = km(env, "", 0, "apps", "list")
	fits80(t, "apps list", out)
	if strings.Contains(out, longName) || !strings.Contains(out, "…") {
		t.Fatalf("apps list should cut the long name:\n%s", out)
	}
	out, _ = km(env, "", 0, "apps", "list", "-o", "wide")
	for _, want := range []string{longName, "orders:read,orders:write,refunds:write", "orders and refunds"} {
		if !strings.Contains(out, want) {
			t.Fatalf("apps list -o wide lacks %q:\n%s", want, out)
		}
	}
	out, _ = km(env, "", 0, "keys", "list", "--app", "shop")
	fits80(t, "keys list", out)
	out, _ = km(env, "", 0, "keys", "list", "--app", "shop", "-o", "wide")
	for _, want := range []string{"A key with a rather long name for the table", "orders:read,refunds:write", "team-payments@example.com", at, "env=prod", kAt.Key.Start} {
		if !strings.Contains(out, want) {
			t.Fatalf("keys list -o wide lacks %q:\n%s", want, out)
		}
	}
	if keys := decodeJSON[[]wire.Key](t, "keys list -o json", first(km(env, "", 0, "keys", "list", "--app", "shop", "-o", "json"))); len(keys) != 2 {
		t.Fatalf("keys list -o json: %d keys", len(keys))
	}
	km(env, "", 2, "keys", "list", "--app", "shop", "-o", "yaml")

	// whoami: root, then a confined credential.
	if w := decodeJSON[wire.Whoami](t, "whoami", first(km(env, "", 0, "whoami", "-o", "json"))); w.ID != "root" || len(w.Scopes) != len(wire.ManagementScopes) {
		t.Fatalf("whoami as root: %+v", w)
	}
	reader := strings.TrimSpace(first(km(env, "", 0, "keys", "create", "--app", "keymint", "--name", "reader", "--scopes", "apps:read,verify", "--resources", "shop")))
	out, _ = km(map[string]string{"KEYMINT_ENDPOINT": url}, "", 0, "whoami", "--token", reader)
	if !strings.Contains(out, "apps:read, verify") || !strings.Contains(out, "confined to  shop") {
		t.Fatalf("whoami as a confined reader:\n%s", out)
	}

	// verify --token (no KEYMINT_TOKEN) and -o json; the verdict still sets the exit code.
	v := decodeJSON[wire.VerifyResponse](t, "verify -o json", first(km(map[string]string{"KEYMINT_ENDPOINT": url}, kAt.Secret, 0, "verify", "--token", reader, "--scopes", "refunds:write", "-o", "json")))
	if !v.Valid || v.KeyID != kAt.Key.ID || v.Owner != "team-payments@example.com" {
		t.Fatalf("verify -o json: %+v", v)
	}
	v = decodeJSON[wire.VerifyResponse](t, "verify -o json", first(km(map[string]string{"KEYMINT_ENDPOINT": url}, kAt.Secret, 3, "verify", "--token", reader, "--scopes", "nope", "-o", "json")))
	if v.Code != wire.CodeInsufficientScope {
		t.Fatalf("verify -o json of a missing scope: %+v", v)
	}
	out, _ = km(map[string]string{"KEYMINT_ENDPOINT": url}, kAt.Secret, 0, "verify", "--token", reader, "-o", "wide")
	if !strings.Contains(out, "VALID") || !strings.Contains(out, kAt.Key.ID) || strings.Contains(out, kAt.Secret[len(kAt.Key.Start):]) {
		t.Fatalf("verify -o wide: %q", out)
	}
}

func first(a, _ string) string { return a }

// The secret alone on stdout, every message on stderr, for create and rotate.
func TestCLIStreams(t *testing.T) {
	const root = "root-token-for-cli-test-0123456789"
	url, _, _, stop := startServe(t, t.TempDir(), map[string]string{"KEYMINT_ROOT_TOKEN": root})
	defer stop()
	km := kmRunner(t)
	env := map[string]string{"KEYMINT_ENDPOINT": url, "KEYMINT_TOKEN": root}
	out, errOut := km(env, "", 0, "apps", "create", "--slug", "shop", "--name", "Shop", "--scopes", "read", "--key-prefix", "shop")
	if out != "" || !strings.HasPrefix(errOut, "keymint: created app shop") {
		t.Fatalf("apps create: stdout %q, stderr %q", out, errOut)
	}
	for _, args := range [][]string{{"keys", "create", "--app", "shop", "--name", "k", "--scopes", "read", "--expires-in", "2w"}, {"keys", "rotate", "", "--grace", "1d"}} {
		if args[1] == "rotate" {
			keys := decodeJSON[[]wire.Key](t, "keys list", first(km(env, "", 0, "keys", "list", "--app", "shop", "-o", "json")))
			args[2] = keys[0].ID
		}
		out, errOut := km(env, "", 0, args...)
		secret := strings.TrimSuffix(out, "\n")
		if _, err := keyformat.Parse(secret); err != nil || out != secret+"\n" {
			t.Fatalf("%v: stdout %q should be the secret alone", args, out)
		}
		if strings.Contains(errOut, secret[len("shop_"):]) || !strings.Contains(errOut, "shown only this once") {
			t.Fatalf("%v: stderr %q", args, errOut)
		}
	}
	out, errOut = km(env, "", 0, "apps", "delete", "shop", "--force")
	if out != "" || !strings.Contains(errOut, "deleted app shop") {
		t.Fatalf("apps delete: stdout %q, stderr %q", out, errOut)
	}
}

// events filters by app, key, actor, action and time; events list is events.
func TestCLIEventsFilters(t *testing.T) {
	const root = "root-token-for-cli-test-0123456789"
	url, _, _, stop := startServe(t, t.TempDir(), map[string]string{"KEYMINT_ROOT_TOKEN": root})
	defer stop()
	km := kmRunner(t)
	env := map[string]string{"KEYMINT_ENDPOINT": url, "KEYMINT_TOKEN": root}
	start := time.Now().Add(-time.Second).UTC().Format(time.RFC3339)
	for _, slug := range []string{"shop", "blog"} {
		km(env, "", 0, "apps", "create", "--slug", slug, "--name", slug, "--scopes", "read", "--key-prefix", slug)
	}
	writer := strings.TrimSpace(first(km(env, "", 0, "keys", "create", "--app", "keymint", "--name", "writer", "--scopes", "keys:write,keys:read,audit:read")))
	writerEnv := map[string]string{"KEYMINT_ENDPOINT": url, "KEYMINT_TOKEN": writer}
	k := decodeJSON[wire.KeyWithSecret](t, "keys create", first(km(writerEnv, "", 0, "keys", "create", "--app", "shop", "--name", "k", "--scopes", "read", "-o", "json")))
	km(writerEnv, "", 0, "keys", "update", k.Key.ID, "--name", "k2")
	km(env, "", 0, "keys", "create", "--app", "blog", "--name", "b", "--scopes", "read")
	writerID := decodeJSON[wire.Whoami](t, "whoami", first(km(writerEnv, "", 0, "whoami", "-o", "json"))).ID

	events := func(args ...string) []wire.Event {
		t.Helper()
		return decodeJSON[[]wire.Event](t, "events", first(km(env, "", 0, append(append([]string{"events"}, args...), "-o", "json")...)))
	}
	actions := func(evs []wire.Event) string {
		var s []string
		for _, e := range evs {
			s = append(s, e.Action)
		}
		return strings.Join(s, " ")
	}
	for _, c := range []struct {
		args []string
		want string
	}{
		{nil, "key.create key.update key.create credential.mint app.create app.create"},
		{[]string{"--app", "shop"}, "key.update key.create app.create"},
		{[]string{"--key", k.Key.ID}, "key.update key.create"},
		{[]string{"--actor", writerID}, "key.update key.create"},
		{[]string{"--actor", "root", "--action", "key.create"}, "key.create"},
		{[]string{"--action", "app.create", "--limit", "1"}, "app.create"},
		{[]string{"--since", start}, "key.create key.update key.create credential.mint app.create app.create"},
		{[]string{"--until", start}, ""},
		{[]string{"--since", "1h"}, "key.create key.update key.create credential.mint app.create app.create"},
		{[]string{"--until", "1h"}, ""},
		{[]string{"--since", "2030-01-01T00:00:00Z"}, ""},
	} {
		if got := actions(events(c.args...)); got != c.want {
			t.Errorf("events %v: %q, want %q", c.args, got, c.want)
		}
	}
	if evs := events("--action", "app.create"); len(evs) != 2 || evs[0].App != "blog" {
		t.Errorf("events --action app.create: %+v", evs)
	}
	// events list is the same command, with the same filters.
	if got := actions(decodeJSON[[]wire.Event](t, "events list", first(km(env, "", 0, "events", "list", "--app", "shop", "-o", "json")))); got != "key.update key.create app.create" {
		t.Errorf("events list --app shop: %q", got)
	}
	out, _ := km(env, "", 0, "events", "list")
	fits80(t, "events", out)
	if strings.Count(out, "\n") != 7 {
		t.Errorf("events table: want a header and 6 rows:\n%s", out)
	}
	out, _ = km(env, "", 0, "events", "--key", k.Key.ID, "-o", "wide")
	if !strings.Contains(out, writerID) || !strings.Contains(out, k.Key.ID) || !strings.Contains(out, `"name":{"from":"k","to":"k2"}`) {
		t.Errorf("events -o wide should show whole ids and the changes:\n%s", out)
	}
	km(env, "", 2, "events", "--since", "yesterday")
	km(env, "", 2, "events", "--limit", "0")
	_, errOut := km(env, "", 2, "events", "lsit")
	if !strings.Contains(errOut, "did you mean keymint events list?") {
		t.Errorf("events lsit: %q", errOut)
	}
}

// Usage errors exit 2 before any request: the endpoint has nothing behind
// it, so a request would exit 1 ("cannot reach").
func TestCLIUsageErrors(t *testing.T) {
	km := kmRunner(t)
	env := map[string]string{"KEYMINT_ENDPOINT": "http://127.0.0.1:1", "KEYMINT_TOKEN": "some-token-0123456789"}
	key := keyformat.Generate("acme_live")
	for _, c := range []struct {
		args []string
		want string // in stderr
	}{
		{[]string{"apps", "create", "--slug", "shop"}, `required flag(s) "key-prefix", "name", "scopes" not set`},
		{[]string{"keys", "create", "--app", "shop", "--scopes", "read"}, `required flag(s) "name" not set`},
		{[]string{"keys", "list"}, `required flag(s) "app" not set`},
		{[]string{"apps", "update", "shop"}, "nothing to change"},
		{[]string{"apps", "update", "shop", "--rate-limit", "1/1m", "--no-rate-limit"}, "none of the others can be"},
		{[]string{"apps", "update", "shop", "--scopes", ","}, "at least one scope"},
		{[]string{"keys", "update", "key_x"}, "nothing to change"},
		{[]string{"keys", "update", "key_x", "--metadata", "novalue"}, "KEY=VALUE"},
		{[]string{"keys", "create", "--app", "a", "--name", "n", "--scopes", "s", "--expires-in", "30 days"}, "not a duration"},
		{[]string{"keys", "create", "--app", "a", "--name", "n", "--scopes", "s", "--expires-in", "-1d"}, "must be positive"},
		{[]string{"keys", "create", "--app", "a", "--name", "n", "--scopes", "s", "--expires-at", "tomorrow"}, "RFC 3339"},
		{[]string{"keys", "create", "--app", "a", "--name", "n", "--scopes", "s", "--expires-in", "1d", "--expires-at", "2030-01-01T00:00:00Z"}, "none of the others can be"},
		{[]string{"keys", "rotate", "key_x", "--grace", "soon"}, "not a duration"},
		{[]string{"keys", "get"}, "want ID, got 0 argument(s)"},
		{[]string{"apps", "get", "a", "b"}, "want SLUG, got 2 argument(s)"},
		{[]string{"apps", "list", "-o", "yaml"}, "-o must be table, wide or json"},
		{[]string{"apps", "list", "--nope"}, "unknown flag: --nope"},
		{[]string{"apps", "lsit"}, "did you mean keymint apps list?"},
		{[]string{"keys", "rotat"}, "did you mean keymint keys rotate?"},
		{[]string{"kyes", "list"}, "did you mean keymint keys?"},
		{[]string{"event"}, "did you mean keymint events?"},
		{[]string{"apps"}, "apps: no command given"},
		{[]string{"keys", "find", key}, "unexpected argument"},
		{[]string{"verify", key}, "read from standard input"},
		{[]string{"verify", "-" + key}, "unknown shorthand flag"},
	} {
		out, errOut := km(env, "", 2, c.args...)
		if !strings.Contains(errOut, c.want) || out != "" {
			t.Errorf("keymint %v: stdout %q, stderr %q; want %q in stderr", c.args, out, errOut, c.want)
		}
		if strings.Contains(errOut, key[len("acme_live_")+4:]) {
			t.Errorf("keymint %v echoes a key: %q", c.args, errOut)
		}
		if strings.Count(errOut, "Usage:") > 0 && !strings.Contains(errOut, "no command given") {
			t.Errorf("keymint %v dumps the usage: %q", c.args, errOut)
		}
	}
	// The same commands, well formed, do send a request.
	_, errOut := km(env, "", 1, "apps", "list")
	if !strings.Contains(errOut, "cannot reach") {
		t.Fatalf("apps list to nothing: %q", errOut)
	}
}

// Profiles: endpoint and token file from the config file under
// XDG_CONFIG_HOME; a flag beats its variable, which beats the profile.
func TestCLIProfiles(t *testing.T) {
	const root = "root-token-for-cli-test-0123456789"
	url, _, _, stop := startServe(t, t.TempDir(), map[string]string{"KEYMINT_ROOT_TOKEN": root})
	defer stop()
	km := kmRunner(t)
	dir := t.TempDir()
	tokenFile := filepath.Join(dir, "root.token")
	if err := os.WriteFile(tokenFile, []byte(root+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	base := map[string]string{"XDG_CONFIG_HOME": filepath.Join(dir, "config"), "HOME": filepath.Join(dir, "home")}
	with := func(kv ...string) map[string]string {
		env := maps.Clone(base)
		for i := 0; i < len(kv); i += 2 {
			env[kv[i]] = kv[i+1]
		}
		return env
	}
	nowhere := "http://127.0.0.1:1"

	// No config file: nothing changes, and asking for a profile says what to do.
	km(with("KEYMINT_ENDPOINT", url, "KEYMINT_TOKEN", root), "", 0, "apps", "list")
	if _, errOut := km(with("KEYMINT_ENDPOINT", url, "KEYMINT_TOKEN", root), "", 2, "apps", "list", "--profile", "prod"); !strings.Contains(errOut, "keymint profile add") {
		t.Fatalf("--profile with no config file: %q", errOut)
	}

	_, errOut := km(base, "", 0, "profile", "add", "local", "--endpoint", url, "--token-file", tokenFile)
	configFile := filepath.Join(dir, "config", "keymint", "config.json")
	if !strings.Contains(errOut, "added profile local in "+configFile) || !strings.Contains(errOut, "current profile") {
		t.Fatalf("profile add: %q", errOut)
	}
	if info, err := os.Stat(configFile); err != nil || info.Mode().Perm() != 0o600 {
		t.Fatalf("config file: %v %v", info, err)
	}
	b, _ := os.ReadFile(configFile)
	if strings.Contains(string(b), root) {
		t.Fatal("the config file holds the token")
	}
	km(base, "", 0, "profile", "add", "dead", "--endpoint", nowhere, "--token-file", tokenFile)

	// The current profile is enough: no flag, no variable.
	if w := decodeJSON[wire.Whoami](t, "whoami", first(km(base, "", 0, "whoami", "-o", "json"))); w.ID != "root" {
		t.Fatalf("whoami through the profile: %+v", w)
	}
	for _, c := range []struct {
		env  map[string]string
		args []string
		code int
	}{
		{base, []string{"--profile", "dead"}, 1},                                                  // the profile's endpoint
		{with("KEYMINT_PROFILE", "dead"), nil, 1},                                                 // the variable picks it
		{with("KEYMINT_PROFILE", "dead"), []string{"--profile", "local"}, 0},                      // the flag beats the variable
		{with("KEYMINT_PROFILE", "dead", "KEYMINT_ENDPOINT", url, "KEYMINT_TOKEN", root), nil, 0}, // a variable beats the profile
		{with("KEYMINT_PROFILE", "dead", "KEYMINT_ENDPOINT", url), nil, 2},                        // but the profile's token stays with its endpoint
		{with("KEYMINT_ENDPOINT", nowhere), nil, 2},                                               // ... on the current profile too
		{with("KEYMINT_ENDPOINT", nowhere), []string{"--endpoint", url}, 0},                       // the flag beats the variable
		{with("KEYMINT_TOKEN", "wrong-token-0123456789abcdef"), nil, 1},                           // KEYMINT_TOKEN beats the token file
		{with("KEYMINT_TOKEN", "wrong-token-0123456789abcdef"), []string{"--token", root}, 0},     // --token beats KEYMINT_TOKEN
		{with("KEYMINT_TOKEN_FILE", filepath.Join(dir, "missing")), nil, 2},                       // KEYMINT_TOKEN_FILE beats the profile's
		{base, []string{"--token-file", tokenFile, "--profile", "local", "--endpoint", url}, 0},   // all flags
		{base, []string{"--profile", "prod"}, 2},                                                  // no such profile
	} {
		_, errOut := km(c.env, "", c.code, append([]string{"apps", "list"}, c.args...)...)
		want := "cannot reach"
		if c.env["KEYMINT_TOKEN"] != "" {
			want = "unauthenticated"
		}
		if c.code == 1 && !strings.Contains(errOut, want) {
			t.Errorf("apps list %v: %q", c.args, errOut)
		}
		if c.code == 2 && c.env["KEYMINT_ENDPOINT"] != "" && !strings.Contains(errOut, "goes only to its own endpoint") {
			t.Errorf("apps list %v with KEYMINT_ENDPOINT=%s: %q", c.args, c.env["KEYMINT_ENDPOINT"], errOut)
		}
	}
	if _, errOut := km(base, "", 2, "apps", "list", "--profile", "prod"); !strings.Contains(errOut, "it has dead, local") {
		t.Errorf("an unknown profile should list the known ones: %q", errOut)
	}

	// profile list and use.
	out, _ := km(base, "", 0, "profile", "list")
	if !strings.Contains(out, "*  local") || !strings.Contains(out, tokenFile) {
		t.Fatalf("profile list:\n%s", out)
	}
	km(base, "", 0, "profile", "use", "dead")
	km(base, "", 1, "apps", "list")
	km(base, "", 2, "profile", "use", "nope")
	km(base, "", 0, "profile", "remove", "dead")
	km(base, "", 0, "apps", "list", "--profile", "local")
	if cfg := decodeJSON[config](t, "profile list -o json", first(km(base, "", 0, "profile", "list", "-o", "json"))); cfg.Current != "" || len(cfg.Profiles) != 1 {
		t.Fatalf("after removing the current profile: %+v", cfg)
	}

	// A token file others can read works, with a warning.
	if err := os.Chmod(tokenFile, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, errOut := km(base, "", 0, "apps", "list", "--profile", "local"); !strings.Contains(errOut, "readable by others") {
		t.Errorf("no warning for a 0644 token file: %q", errOut)
	}
	// A token written inline is refused, without echoing it.
	inline := `{"profiles": {"prod": {"endpoint": "` + url + `", "token": "` + root + `"}}}`
	if err := os.WriteFile(configFile, []byte(inline), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, errOut := km(base, "", 2, "apps", "list", "--profile", "prod"); !strings.Contains(errOut, "holds a token inline") || strings.Contains(errOut, root) {
		t.Errorf("an inline token: %q", errOut)
	}
}

// keymint completion writes a script for each shell; bash's parses.
func TestCLICompletion(t *testing.T) {
	km := kmRunner(t)
	for _, shell := range []string{"bash", "zsh", "fish"} {
		out, _ := km(nil, "", 0, "completion", shell)
		if !strings.Contains(out, "keymint") || len(out) < 1000 {
			t.Fatalf("completion %s: %q", shell, out)
		}
		if shell == "bash" {
			bash, err := exec.LookPath("bash")
			if err != nil {
				t.Fatalf("bash is needed to check the script: %v", err)
			}
			script := filepath.Join(t.TempDir(), "keymint.bash")
			if err := os.WriteFile(script, []byte(out), 0o600); err != nil {
				t.Fatal(err)
			}
			if b, err := exec.Command(bash, "-n", script).CombinedOutput(); err != nil {
				t.Fatalf("bash -n rejects the completion script: %v\n%s", err, b)
			}
		}
	}
	// What the scripts ask: commands, subcommands, flag values.
	for _, c := range []struct {
		args []string
		want []string
	}{
		{[]string{"__complete", "ap"}, []string{"apps"}},
		{[]string{"__complete", "keys", "r"}, []string{"rotate", "revoke"}},
		{[]string{"__complete", "events", "--ac"}, []string{"--action", "--actor"}},
		{[]string{"__complete", "apps", "list", "-o", ""}, []string{"table", "wide", "json"}},
		{[]string{"__complete", "keys", "list", "--status", ""}, []string{"active", "revoked"}},
	} {
		out, _ := km(nil, "", 0, c.args...)
		for _, w := range c.want {
			if !strings.Contains(out, w+"\n") && !strings.Contains(out, w+"\t") {
				t.Errorf("keymint %v: no %q in\n%s", c.args, w, out)
			}
		}
	}
}
