// Command tfmirror builds the local Terraform provider mirror used by
// `make demo`: hashicorp/time from the Go module proxy, plus keymint's
// provider binary. It prints the CLI config path to use as TF_CLI_CONFIG_FILE.
// The mirrored providers are pinned: the config fetches them from nowhere else,
// so only their mirrored versions install (it says so on stderr).
//
//	go run ./tools/tfmirror -dir .demo/mirror -provider bin/terraform-provider-keymint -version 0.1.0
package main

import (
	"flag"
	"fmt"
	"os"

	"github.com/keymint/terraform-provider-keymint/internal/provider"
	"github.com/keymint/terraform-provider-keymint/internal/tfmirror"
)

func main() {
	dir := flag.String("dir", ".tfmirror", "mirror directory")
	bin := flag.String("provider", "", "keymint provider binary to add (optional)")
	version := flag.String("version", "0.1.0", "version to file the keymint provider under")
	flag.Parse()
	var providers []tfmirror.Provider
	if *bin != "" {
		providers = append(providers, tfmirror.Provider{Source: provider.Address, Version: *version, Binary: *bin})
	}
	rc, err := tfmirror.Setup(*dir, os.Stderr, providers...)
	if err != nil {
		fmt.Fprintln(os.Stderr, "tfmirror:", err)
		os.Exit(1)
	}
	pinned := "hashicorp/time " + tfmirror.TimeVersion
	if *bin != "" {
		pinned += " and " + provider.Address + " " + *version
	}
	fmt.Fprintf(os.Stderr, "tfmirror: with this config, %s install from %s only: a configuration or lock file that asks for another version of them fails init; other providers come from their registries\n", pinned, *dir)
	fmt.Println(rc)
}
