// Command terraform-provider-keymint serves the keymint Terraform provider.
package main

import (
	"context"
	"flag"
	"log"
	"os"

	"github.com/hashicorp/terraform-plugin-framework/providerserver"

	"github.com/keymint/terraform-provider-keymint/internal/provider"
)

// version is set by goreleaser (-ldflags "-X main.version=...").
var version = "dev"

//go:generate go tool tfplugindocs generate --provider-name keymint

// quietSDKLogs turns off the plugin SDK's own logs unless the user asked for
// logs. Left unset, the SDK logs at TRACE (a JSON line per attribute per
// resource) only for Terraform to discard them: about a third of the
// provider's CPU in a large plan. TF_LOG=DEBUG or TRACE (or any TF_LOG_SDK*)
// brings them all back.
func quietSDKLogs() {
	for _, v := range []string{"TF_LOG", "TF_LOG_SDK", "TF_LOG_SDK_FRAMEWORK", "TF_LOG_SDK_PROTO"} {
		if os.Getenv(v) != "" {
			return
		}
	}
	for _, v := range []string{"TF_LOG_SDK", "TF_LOG_SDK_FRAMEWORK", "TF_LOG_SDK_PROTO"} {
		_ = os.Setenv(v, "off")
	}
}

func main() {
	var debug bool
	flag.BoolVar(&debug, "debug", false, "run the provider with support for debuggers like delve")
	flag.Parse()
	quietSDKLogs()
	tuneGC()
	stopProfile := startProfile(os.Stderr)
	err := providerserver.Serve(context.Background(), provider.New(version), providerserver.ServeOpts{
		Address: provider.Address,
		Debug:   debug,
	})
	stopProfile()
	if err != nil {
		log.Fatal(err)
	}
}
