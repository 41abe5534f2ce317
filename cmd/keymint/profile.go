package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"
)

// Profiles: named servers in a config file under the user's config directory
// (os.UserConfigDir()/keymint/config.json, or KEYMINT_CONFIG), each an
// endpoint and the path of a file holding its token. The token itself is
// never in the config file: that file is copied between machines, synced and
// backed up in the clear, where a token file can be kept 0600 or come from a
// secret manager. A profile that holds a "token" is refused, with the reason.

// config is the config file.
type config struct {
	Current  string              `json:"current,omitempty"`
	Profiles map[string]*profile `json:"profiles"`

	path    string // where it is (or would be)
	pathErr error  // why there is no path: no home directory
	exists  bool
}

type profile struct {
	Endpoint  string `json:"endpoint"`
	TokenFile string `json:"token_file,omitempty"`
	Insecure  bool   `json:"insecure,omitempty"`
	// Token is read only to refuse it.
	Token string `json:"token,omitempty"`
}

// userConfigDir is os.UserConfigDir, reading the environment through getenv.
func userConfigDir(getenv func(string) string) (string, error) {
	var dir string
	switch runtime.GOOS {
	case "windows":
		dir = getenv("AppData")
	case "darwin", "ios":
		if home := getenv("HOME"); home != "" {
			dir = filepath.Join(home, "Library", "Application Support")
		}
	case "plan9":
		if home := getenv("home"); home != "" {
			dir = filepath.Join(home, "lib")
		}
	default:
		dir = getenv("XDG_CONFIG_HOME")
		if dir == "" {
			if home := getenv("HOME"); home != "" {
				dir = filepath.Join(home, ".config")
			}
		} else if !filepath.IsAbs(dir) {
			return "", fmt.Errorf("XDG_CONFIG_HOME is %q, not an absolute path", dir)
		}
	}
	if dir == "" {
		return "", errors.New("cannot find the user's config directory (set HOME, or KEYMINT_CONFIG to the config file's path)")
	}
	return dir, nil
}

// configPath is KEYMINT_CONFIG, or keymint/config.json in the user's config directory.
func configPath(getenv func(string) string) (string, error) {
	if p := getenv("KEYMINT_CONFIG"); p != "" {
		return p, nil
	}
	dir, err := userConfigDir(getenv)
	if err != nil {
		return "", err
	}
	return filepath.Join(dir, "keymint", "config.json"), nil
}

// loadConfig reads the config file; a missing file is an empty config.
func loadConfig(getenv func(string) string) (*config, error) {
	path, err := configPath(getenv)
	cfg := &config{Profiles: map[string]*profile{}, path: path}
	if err != nil {
		// Fine until a profile is asked for, or one is to be saved.
		cfg.pathErr = usageError{err}
		return cfg, nil
	}
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return cfg, nil
	}
	if err != nil {
		return nil, usageErrorf("config file: %v", err)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(cfg); err != nil {
		return nil, usageErrorf("config file %s: %v (it holds {\"current\": NAME, \"profiles\": {NAME: {\"endpoint\": URL, \"token_file\": PATH, \"insecure\": false}}})", path, err)
	}
	cfg.exists = true
	if cfg.Profiles == nil {
		cfg.Profiles = map[string]*profile{}
	}
	for name, p := range cfg.Profiles {
		if p == nil {
			return nil, usageErrorf("config file %s: profile %q is empty", path, name)
		}
		if p.Token != "" {
			return nil, usageErrorf("config file %s: profile %q holds a token inline, which keymint refuses: a config file is copied, synced and backed up in the clear. "+
				"Write the token to a file of its own (chmod 600), set \"token_file\" to its path and delete \"token\"", path, name)
		}
	}
	return cfg, nil
}

// save writes the config file (0600, its directory 0700), replacing it whole.
func (cfg *config) save() error {
	if cfg.pathErr != nil {
		return cfg.pathErr
	}
	if err := os.MkdirAll(filepath.Dir(cfg.path), 0o700); err != nil {
		return err
	}
	b, err := json.MarshalIndent(cfg, "", "  ")
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(cfg.path), ".config-*.json")
	if err != nil {
		return err
	}
	defer func() { _ = os.Remove(tmp.Name()) }() // gone after the rename
	if _, err := tmp.Write(append(b, '\n')); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), cfg.path)
}

// tokenPath resolves a profile's token_file: ~/ is the home directory, a
// relative path is relative to the config file.
func (cfg *config) tokenPath(getenv func(string) string, p string) string {
	if rest, ok := strings.CutPrefix(p, "~/"); ok {
		if home := getenv("HOME"); home != "" {
			return filepath.Join(home, rest)
		}
	}
	if !filepath.IsAbs(p) {
		return filepath.Join(filepath.Dir(cfg.path), p)
	}
	return p
}

// selected returns the profile in use: --profile, else KEYMINT_PROFILE, else
// the file's current one, else none.
func (cfg *config) selected(flagValue string, getenv func(string) string) (string, *profile, error) {
	name, from := flagValue, "--profile"
	if name == "" {
		name, from = getenv("KEYMINT_PROFILE"), "KEYMINT_PROFILE"
	}
	if name == "" {
		name, from = cfg.Current, "the config file's current profile"
	}
	if name == "" {
		return "", nil, nil
	}
	if cfg.pathErr != nil {
		return "", nil, cfg.pathErr
	}
	p, ok := cfg.Profiles[name]
	if !ok {
		known := "it has none (keymint profile add NAME --endpoint URL --token-file PATH)"
		if len(cfg.Profiles) > 0 {
			known = "it has " + strings.Join(cfg.names(), ", ")
		}
		return "", nil, usageErrorf("%s names profile %q, which is not in %s: %s", from, name, cfg.path, known)
	}
	return name, p, nil
}

func (cfg *config) names() []string {
	names := make([]string, 0, len(cfg.Profiles))
	for name := range cfg.Profiles {
		names = append(names, name)
	}
	slices.Sort(names)
	return names
}

// readTokenFile reads a token from a file, warning on stderr if others may read it.
func (c cli) readTokenFile(path, from string) (string, error) {
	info, err := os.Stat(path)
	if err != nil {
		return "", usageErrorf("%s: %v", from, err)
	}
	if runtime.GOOS != "windows" && info.Mode().Perm()&0o077 != 0 {
		fmt.Fprintf(c.stderr, "keymint: warning: the token file %s is readable by others (mode %04o): chmod 600 %s\n", path, info.Mode().Perm(), path)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return "", usageErrorf("%s: %v", from, err)
	}
	token := strings.TrimSpace(string(b))
	if token == "" {
		return "", usageErrorf("%s: %s is empty", from, path)
	}
	return token, nil
}

func (t *tree) profileCommand() *cobra.Command {
	var output string
	list := &cobra.Command{
		Use: "list", Short: "List the profiles (* marks the current one)", Args: positional(),
		RunE: t.act(func(*cobra.Command, []string) error {
			if err := checkOutput(output); err != nil {
				return err
			}
			cfg, err := loadConfig(t.getenv)
			if err != nil {
				return err
			}
			if cfg.pathErr != nil {
				return cfg.pathErr
			}
			if output == "json" {
				return writeJSON(t.stdout, cfg)
			}
			if !cfg.exists {
				fmt.Fprintf(t.stderr, "keymint: no config file at %s (keymint profile add NAME --endpoint URL --token-file PATH makes one)\n", cfg.path)
				return nil
			}
			w := tabwriter.NewWriter(t.stdout, 0, 0, 2, ' ', 0)
			fmt.Fprintln(w, "\tNAME\tENDPOINT\tTOKEN FILE\tINSECURE")
			for _, name := range cfg.names() {
				p, mark := cfg.Profiles[name], ""
				if name == cfg.Current {
					mark = "*"
				}
				fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%t\n", mark, name, p.Endpoint, orDash(p.TokenFile), p.Insecure)
			}
			return w.Flush()
		}),
	}
	list.Flags().StringVarP(&output, "output", "o", "table", "output: table or json")

	var add profile
	var use bool
	addCmd := &cobra.Command{
		Use: "add NAME --endpoint URL [--token-file PATH] [--insecure] [--use]", Short: "Add or replace a profile",
		Long: "Adds a profile to the config file, or replaces the one of that name. The token stays in its own file\n" +
			"(--token-file; keep it 0600): the config file never holds one. Without --token-file the profile\n" +
			"takes the token from KEYMINT_TOKEN or --token.",
		Args: positional("NAME"),
		RunE: t.act(func(_ *cobra.Command, args []string) error {
			u, err := url.Parse(add.Endpoint)
			if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
				return usageErrorf("profile add: --endpoint must be an http:// or https:// URL, got %q", add.Endpoint)
			}
			if add.TokenFile != "" && !strings.HasPrefix(add.TokenFile, "~/") {
				if add.TokenFile, err = filepath.Abs(add.TokenFile); err != nil {
					return err
				}
			}
			cfg, err := loadConfig(t.getenv)
			if err != nil {
				return err
			}
			did := "added"
			if _, ok := cfg.Profiles[args[0]]; ok {
				did = "replaced"
			}
			p := add
			cfg.Profiles[args[0]] = &p
			if use || cfg.Current == "" {
				cfg.Current = args[0]
			}
			if err := cfg.save(); err != nil {
				return err
			}
			fmt.Fprintf(t.stderr, "keymint: %s profile %s in %s", did, args[0], cfg.path)
			if cfg.Current == args[0] {
				fmt.Fprint(t.stderr, "; it is the current profile")
			}
			fmt.Fprintln(t.stderr)
			return nil
		}),
	}
	addCmd.Flags().StringVar(&add.Endpoint, "endpoint", "", "the server's URL")
	addCmd.Flags().StringVar(&add.TokenFile, "token-file", "", "the file holding the token (stored as an absolute path; ~/ is kept)")
	addCmd.Flags().BoolVar(&add.Insecure, "insecure", false, "allow a plain http:// endpoint on another machine")
	addCmd.Flags().BoolVar(&use, "use", false, "make it the current profile (the first profile always is)")
	_ = addCmd.MarkFlagRequired("endpoint")

	useCmd := &cobra.Command{
		Use: "use NAME", Short: "Make a profile the current one", Args: positional("NAME"),
		ValidArgsFunction: t.completeProfiles,
		RunE: t.act(func(_ *cobra.Command, args []string) error {
			return t.editProfile(args[0], func(cfg *config) string {
				cfg.Current = args[0]
				return "the current profile is " + args[0]
			})
		}),
	}
	removeCmd := &cobra.Command{
		Use: "remove NAME", Short: "Remove a profile (its token file is left alone)", Args: positional("NAME"),
		ValidArgsFunction: t.completeProfiles,
		RunE: t.act(func(_ *cobra.Command, args []string) error {
			return t.editProfile(args[0], func(cfg *config) string {
				delete(cfg.Profiles, args[0])
				if cfg.Current == args[0] {
					cfg.Current = ""
				}
				return "removed profile " + args[0]
			})
		}),
	}
	g := t.group("profile", "Named servers: endpoint and token file, in the config file", list, addCmd, useCmd, removeCmd)
	g.Long = "Profiles live in KEYMINT_CONFIG, else keymint/config.json in the user's config directory\n" +
		"($XDG_CONFIG_HOME or ~/.config on Linux, ~/Library/Application Support on macOS, %AppData% on Windows):\n\n" +
		"  {\"current\": \"prod\",\n" +
		"   \"profiles\": {\"prod\": {\"endpoint\": \"https://keymint.internal:8080\", \"token_file\": \"~/.config/keymint/prod.token\"}}}\n\n" +
		"--profile NAME (or KEYMINT_PROFILE) picks one, else \"current\". A flag beats its environment variable,\n" +
		"which beats the profile: --endpoint > KEYMINT_ENDPOINT > profile; --token/--token-file >\n" +
		"KEYMINT_TOKEN/KEYMINT_TOKEN_FILE > profile's token_file. A profile's token_file is sent only to\n" +
		"that profile's endpoint. The config file never holds a token."
	return g
}

// completeProfiles completes a profile's name.
func (t *tree) completeProfiles(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective) {
	cfg, err := loadConfig(t.getenv)
	if err != nil {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	return cfg.names(), cobra.ShellCompDirectiveNoFileComp
}

// editProfile loads the config, checks that profile name exists, applies
// edit and saves; edit returns the confirmation (for standard error).
func (t *tree) editProfile(name string, edit func(*config) string) error {
	cfg, err := loadConfig(t.getenv)
	if err != nil {
		return err
	}
	if _, _, err := cfg.selected(name, t.getenv); err != nil {
		return err
	}
	done := edit(cfg)
	if err := cfg.save(); err != nil {
		return err
	}
	fmt.Fprintf(t.stderr, "keymint: %s\n", done)
	return nil
}
