// Command crossbuild compiles every target that .goreleaser.yml ships, so a
// platform-specific break (a Unix-only syscall, a 32-bit overflow) fails CI
// rather than a release. It reads the builds' goos, goarch and ignore lists,
// keeps the pairs Go supports (as goreleaser does), and runs go build for
// each with CGO_ENABLED=0, as goreleaser does.
//
// `make cross` (in `make test`) passes -one-per-os: per operating system, the
// one target that compiles the most of what ships for it (then a 32-bit one
// first, as a 32-bit overflow is the likeliest break the host's own 64-bit
// build misses). `make release-snapshot` builds every target.
package main

import (
	"flag"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strings"

	"gopkg.in/yaml.v3"
)

type goreleaser struct {
	Builds []struct {
		Main   string     `yaml:"main"`
		Goos   []string   `yaml:"goos"`
		Goarch []string   `yaml:"goarch"`
		Ignore []platform `yaml:"ignore"`
	} `yaml:"builds"`
}

// platform is an ignore entry; an empty field matches any.
type platform struct {
	Goos   string `yaml:"goos"`
	Goarch string `yaml:"goarch"`
}

func (p platform) matches(goos, goarch string) bool {
	return (p.Goos == "" || p.Goos == goos) && (p.Goarch == "" || p.Goarch == goarch)
}

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "crossbuild:", err)
		os.Exit(1)
	}
}

// archPreference breaks ties in -one-per-os: 32-bit first, then the common ones.
var archPreference = []string{"386", "arm", "amd64", "arm64"}

func run() error {
	onePerOS := flag.Bool("one-per-os", false, "build one target per operating system instead of every target")
	list := flag.Bool("list", false, "print the targets and build nothing")
	flag.Parse()
	b, err := os.ReadFile(".goreleaser.yml")
	if err != nil {
		return err
	}
	var cfg goreleaser
	if err := yaml.Unmarshal(b, &cfg); err != nil {
		return fmt.Errorf(".goreleaser.yml: %w", err)
	}
	out, err := exec.Command("go", "tool", "dist", "list").Output()
	if err != nil {
		return fmt.Errorf("go tool dist list: %w", err)
	}
	supported := strings.Fields(string(out))
	// Each target with the mains that ship for it; one go build per target
	// compiles them all (several packages: compiled and checked, not linked).
	mains := map[string][]string{}
	var targets []string
	for _, bld := range cfg.Builds {
		for _, goos := range bld.Goos {
			for _, goarch := range bld.Goarch {
				t := goos + "/" + goarch
				ignored := slices.ContainsFunc(bld.Ignore, func(p platform) bool { return p.matches(goos, goarch) })
				if ignored || !slices.Contains(supported, t) {
					continue
				}
				if _, ok := mains[t]; !ok {
					targets = append(targets, t)
				}
				mains[t] = append(mains[t], "./"+strings.TrimPrefix(bld.Main, "./"))
			}
		}
	}
	if len(targets) == 0 {
		return fmt.Errorf(".goreleaser.yml names no target this Go supports")
	}
	if *onePerOS {
		targets = pickOnePerOS(targets, mains)
	}
	slices.Sort(targets)
	if *list {
		for _, t := range targets {
			fmt.Printf("%s\t%s\n", t, strings.Join(mains[t], " "))
		}
		return nil
	}
	// Binaries go to a scratch directory: a lone main package would otherwise
	// be written into the working tree.
	scratch, err := os.MkdirTemp("", "crossbuild")
	if err != nil {
		return err
	}
	defer os.RemoveAll(scratch)
	var failed []string
	for _, t := range targets {
		goos, goarch, _ := strings.Cut(t, "/")
		args := append([]string{"build", "-trimpath", "-o", scratch + string(os.PathSeparator)}, mains[t]...)
		fmt.Printf("crossbuild: %-14s go %s\n", t, strings.Join(args, " "))
		cmd := exec.Command("go", args...)
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS="+goos, "GOARCH="+goarch)
		cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
		if err := cmd.Run(); err != nil {
			failed = append(failed, t)
		}
	}
	if len(failed) > 0 {
		return fmt.Errorf("%d of %d targets failed to build: %s", len(failed), len(targets), strings.Join(failed, " "))
	}
	fmt.Printf("crossbuild: all %d targets build\n", len(targets))
	return nil
}

// pickOnePerOS keeps, for each OS, the target with the most mains; ties go to
// the architecture earliest in archPreference.
func pickOnePerOS(targets []string, mains map[string][]string) []string {
	rank := func(t string) int {
		_, arch, _ := strings.Cut(t, "/")
		if i := slices.Index(archPreference, arch); i >= 0 {
			return i
		}
		return len(archPreference)
	}
	best := map[string]string{}
	for _, t := range targets {
		goos, _, _ := strings.Cut(t, "/")
		b, ok := best[goos]
		if !ok || len(mains[t]) > len(mains[b]) || len(mains[t]) == len(mains[b]) && rank(t) < rank(b) {
			best[goos] = t
		}
	}
	var out []string
	for _, t := range best {
		out = append(out, t)
	}
	return out
}
