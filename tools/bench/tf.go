package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/keymint/terraform-provider-keymint/internal/provider"
	"github.com/keymint/terraform-provider-keymint/internal/tfmirror"
)

// tfTimes is one run's wall times for apply, a no-change plan (with refresh) and destroy.
type tfTimes struct{ Apply, Plan, Destroy time.Duration }

const providerVersion = "0.1.0"

var tfConfigs = map[string]string{
	"keymint_api_key": `terraform {
  required_providers {
    keymint = { source = "keymint/keymint", version = "` + providerVersion + `" }
  }
}
provider "keymint" {}
resource "keymint_auth_app" "bench" {
  slug       = "bench"
  name       = "bench"
  scopes     = ["read:data"]
  key_prefix = "bench"
}
resource "keymint_api_key" "k" {
  count  = %d
  app    = keymint_auth_app.bench.slug
  name   = "key ${count.index}"
  scopes = ["read:data"]
}
`,
	"time_static": `terraform {
  required_providers {
    time = { source = "hashicorp/time", version = "` + tfmirror.TimeVersion + `" }
  }
}
resource "time_static" "t" {
  count = %d
}
`,
	"terraform_data": `resource "terraform_data" "d" {
  count = %d
  input = count.index
}
`,
}

// quietTime is time_static with the plugin SDK's trace logs off, as keymint's
// provider runs by default: the like-for-like floor.
const quietTime = "time_static (SDK logs off)"

// tfKinds is the report's column order: keymint, its floors, the no-plugin reference.
var tfKinds = []string{"keymint_api_key", "time_static", quietTime, "terraform_data"}

func benchTerraform(ctx context.Context, work string, r *report) error {
	abs, err := filepath.Abs(*providerBin)
	if err != nil {
		return err
	}
	rc, err := tfmirror.Setup(".tfmirror", os.Stderr, tfmirror.Provider{Source: provider.Address, Version: providerVersion, Binary: abs})
	if err != nil {
		return err
	}
	r.TFResources, r.TFParallelism = *tfResources, *parallelism
	r.TF = map[string][]tfTimes{}
	for run := range *runs {
		for _, kind := range tfKinds {
			logf("terraform: %d × %s, run %d/%d", *tfResources, kind, run+1, *runs)
			t, err := tfRun(work, rc, kind)
			if err != nil {
				return fmt.Errorf("%s: %w", kind, err)
			}
			r.TF[kind] = append(r.TF[kind], t)
		}
	}
	return nil
}

func tfRun(work, rc, kind string) (tfTimes, error) {
	var t tfTimes
	dir, err := os.MkdirTemp(work, "tf-")
	if err != nil {
		return t, err
	}
	config := tfConfigs[kind]
	env := []string{"TF_CLI_CONFIG_FILE=" + rc, "CHECKPOINT_DISABLE=1", "TF_IN_AUTOMATION=1"}
	if kind == quietTime {
		config = tfConfigs["time_static"]
		env = append(env, "TF_LOG_SDK=off", "TF_LOG_SDK_FRAMEWORK=off", "TF_LOG_SDK_PROTO=off")
	}
	if err := os.WriteFile(filepath.Join(dir, "main.tf"), []byte(fmt.Sprintf(config, *tfResources)), 0o644); err != nil {
		return t, err
	}
	if kind == "keymint_api_key" {
		// A fresh server for each run, so no run inherits another's keys.
		srv, err := startServer(dir, *keymintBin, []string{"KEYMINT_ROOT_TOKEN=" + benchRootToken}, "serve", "--db", "sqlite:"+filepath.Join(dir, "keymint.db"))
		if err != nil {
			return t, err
		}
		defer srv.stop()
		env = append(env, "KEYMINT_ENDPOINT="+srv.url(), "KEYMINT_TOKEN="+benchRootToken)
	}
	tf := func(args ...string) (time.Duration, error) {
		cmd := exec.Command("terraform", args...)
		cmd.Dir, cmd.Env = dir, append(os.Environ(), env...)
		start := time.Now()
		out, err := cmd.CombinedOutput()
		if err != nil {
			return 0, fmt.Errorf("terraform %s: %w\n%s", strings.Join(args, " "), err, out)
		}
		return time.Since(start), nil
	}
	par := fmt.Sprintf("-parallelism=%d", *parallelism)
	if _, err := tf("init", "-input=false"); err != nil {
		return t, err
	}
	if t.Apply, err = tf("apply", "-input=false", "-auto-approve", par); err != nil {
		return t, err
	}
	if t.Plan, err = tf("plan", "-input=false", "-detailed-exitcode", par); err != nil {
		return t, fmt.Errorf("the no-change plan was not empty or failed: %w", err)
	}
	if t.Destroy, err = tf("destroy", "-input=false", "-auto-approve", par); err != nil {
		return t, err
	}
	return t, nil
}
