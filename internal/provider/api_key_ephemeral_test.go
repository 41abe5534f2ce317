package provider

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/terraform-plugin-go/tfprotov6"
	"github.com/hashicorp/terraform-plugin-testing/echoprovider"
	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/plancheck"
	"github.com/hashicorp/terraform-plugin-testing/terraform"

	"github.com/keymint/terraform-provider-keymint/internal/keyformat"
	"github.com/keymint/terraform-provider-keymint/internal/wire"
)

// withEcho adds hashicorp's echo provider, which surfaces an ephemeral value
// in its own state so that a test can look at it.
var withEcho = map[string]func() (tfprotov6.ProviderServer, error){
	"keymint": protoV6Providers["keymint"],
	"echo":    echoprovider.NewProviderServer(),
}

// credentialsNamed lists the management credentials with this name.
func (ts *testServer) credentialsNamed(name string) ([]wire.Key, error) {
	keys, err := ts.Client.ListKeys(context.Background(), wire.ManagementApp, "")
	var out []wire.Key
	for _, k := range keys {
		if k.Name == name {
			out = append(out, k)
		}
	}
	return out, err
}

// The ephemeral key's main use: a narrow credential for this run only, as
// the token of an aliased provider. It works during the run (the app below is
// created with it) and is revoked when the run ends; it is in no state. The
// provider runs as a built binary here: Terraform starts one process per
// configuration, as it does for users.
func TestAccAPIKeyEphemeral_runCredential(t *testing.T) {
	ts := newTestServer(t)
	cfg := ts.config(`
terraform {
  required_providers {
    keymint = { source = "keymint/keymint" }
  }
}

ephemeral "keymint_api_key" "run" {
  app    = "keymint"
  name   = "ci run"
  scopes = ["apps:read", "apps:write"]
  ttl    = "15m"
}

provider "keymint" {
  alias    = "narrow"
  endpoint = %q
  token    = ephemeral.keymint_api_key.run.secret
}

resource "keymint_auth_app" "made_by_run" {
  provider   = keymint.narrow
  slug       = "made-by-run"
  name       = "Made by the run's own credential"
  scopes     = ["read:data"]
  key_prefix = "made_by_run"
}

provider "echo" {
  data = ephemeral.keymint_api_key.run
}

resource "echo" "run" {}
`, ts.URL)
	resource.ParallelTest(t, resource.TestCase{
		ProtoV6ProviderFactories: map[string]func() (tfprotov6.ProviderServer, error){"echo": echoprovider.NewProviderServer()},
		ExternalProviders:        builtProvider,
		CheckDestroy:             ts.checkDestroy,
		Steps: []resource.TestStep{{
			Config: cfg,
			Check: resource.ComposeAggregateTestCheckFunc(
				func(s *terraform.State) error {
					if _, err := ts.Client.GetApp(context.Background(), "made-by-run"); err != nil {
						return fmt.Errorf("the app the run's credential was to create: %w", err)
					}
					creds, err := ts.credentialsNamed("ci run")
					if err != nil || len(creds) == 0 {
						return fmt.Errorf("no ephemeral credential was created: %w", err)
					}
					for _, k := range creds {
						// ttl on the provider's clock (a process of its own here), created_at on the server's.
						if k.ExpiresAt == nil || k.Status != "revoked" || k.ExpiresAt.Sub(k.CreatedAt) < 14*time.Minute || k.ExpiresAt.Sub(k.CreatedAt) > 16*time.Minute {
							return fmt.Errorf("ephemeral credential %s after the run: status %s, expires %v (created %v)", k.ID, k.Status, k.ExpiresAt, k.CreatedAt)
						}
					}
					// The secret the run used (echo's state holds it, for this test) no longer works.
					secret := s.RootModule().Resources["echo.run"].Primary.Attributes["data.secret"]
					if !strings.HasPrefix(secret, "keymint_") {
						return fmt.Errorf("echo did not surface the ephemeral secret")
					}
					ts.remember(secret)
					if err := ts.wantCode(secret, wire.CodeRevoked); err != nil {
						return err
					}
					// And no keymint resource's state holds it.
					for addr, rs := range s.RootModule().Resources {
						if strings.HasPrefix(addr, "keymint_") && strings.Contains(fmt.Sprint(rs.Primary.Attributes), secret) {
							return fmt.Errorf("%s's state holds the ephemeral secret", addr)
						}
					}
					return nil
				},
			),
		}},
	})
}

// With secret_wo the secret goes to the server and into no state or plan;
// bumping secret_wo_version rotates in place to the new value, with grace.
func TestAccAPIKey_writeOnlySecret(t *testing.T) {
	ts := newTestServer(t)
	first, second := keyformat.Generate("acme_live"), keyformat.Generate("acme_live")
	ts.remember(first)
	ts.remember(second)
	key := func(secret string, version int) string {
		return ts.config(appHCL+`
resource "keymint_api_key" "ci" {
  app                   = keymint_auth_app.acme.slug
  name                  = "ci"
  scopes                = ["read:data"]
  secret_wo             = %q
  secret_wo_version     = %d
  rotation_grace_period = "1h"
}`, secret, version)
	}
	var id saved
	noSecretIn := func(secrets ...string) plancheck.PlanCheck { return planHoldsNone{secrets} }
	resource.ParallelTest(t, resource.TestCase{
		ProtoV6ProviderFactories: protoV6Providers,
		CheckDestroy:             ts.checkDestroy,
		Steps: []resource.TestStep{
			{
				Config: key(first, 1),
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					plancheck.ExpectResourceAction(keyAddr, plancheck.ResourceActionCreate),
					noSecretIn(first),
				}},
				Check: resource.ComposeAggregateTestCheckFunc(
					resource.TestCheckNoResourceAttr(keyAddr, "secret"),
					resource.TestCheckNoResourceAttr(keyAddr, "secret_wo"),
					stateHoldsNone(first),
					id.from(keyAddr, "id"),
					func(*terraform.State) error { return ts.wantCode(first, wire.CodeValid) },
				),
			},
			{
				// The same version: a new secret_wo value alone changes nothing.
				Config:             key(second, 1),
				PlanOnly:           true,
				ExpectNonEmptyPlan: false,
			},
			{
				Config: key(second, 2),
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					plancheck.ExpectResourceAction(keyAddr, plancheck.ResourceActionUpdate),
					noSecretIn(first, second),
				}},
				Check: resource.ComposeAggregateTestCheckFunc(
					resource.TestCheckNoResourceAttr(keyAddr, "secret"),
					stateHoldsNone(first, second),
					func(s *terraform.State) error {
						if got, _ := attr(s, keyAddr, "id"); got != id.value {
							return fmt.Errorf("secret_wo_version replaced the key (%s, was %s): it must rotate in place", got, id.value)
						}
						if err := ts.wantCode(second, wire.CodeValid); err != nil {
							return err
						}
						if err := ts.wantCode(first, wire.CodeValid); err != nil {
							return fmt.Errorf("the previous secret within its grace: %w", err)
						}
						ts.Clock.Advance(61 * 60e9)
						return ts.wantCode(first, wire.CodeNotFound)
					},
				),
			},
		},
	})
}

// keymint_secret makes the value for secret_wo in the same apply: the secret
// is in no state, and it is the one the server verifies.
func TestAccSecretEphemeral_writeOnly(t *testing.T) {
	ts := newTestServer(t)
	cfg := ts.config(appHCL + `
ephemeral "keymint_secret" "ci" {
  key_prefix = keymint_auth_app.acme.key_prefix
}

resource "keymint_api_key" "ci" {
  app               = keymint_auth_app.acme.slug
  name              = "ci"
  scopes            = ["read:data"]
  secret_wo         = ephemeral.keymint_secret.ci.value
  secret_wo_version = 1
}

provider "echo" {
  data = ephemeral.keymint_secret.ci.value
}

resource "echo" "secret" {}
`)
	resource.ParallelTest(t, resource.TestCase{
		ProtoV6ProviderFactories: withEcho,
		CheckDestroy:             ts.checkDestroy,
		Steps: []resource.TestStep{{
			Config: cfg,
			Check: resource.ComposeAggregateTestCheckFunc(
				resource.TestCheckNoResourceAttr(keyAddr, "secret"),
				func(s *terraform.State) error {
					// echo opens the ephemeral value once more: a new secret, not the one
					// the key got. So the check is on shape, and on the key's start.
					v := s.RootModule().Resources["echo.secret"].Primary.Attributes["data"]
					if _, err := keyformat.Parse(v); err != nil || !strings.HasPrefix(v, "acme_live_") {
						return fmt.Errorf("keymint_secret gave %q", keyformat.Start(v))
					}
					start, _ := attr(s, keyAddr, "start")
					if !strings.HasPrefix(start, "acme_live_") {
						return fmt.Errorf("the key's start is %q", start)
					}
					return nil
				},
			),
		}},
	})
}

type planHoldsNone struct{ secrets []string }

func (c planHoldsNone) CheckPlan(_ context.Context, req plancheck.CheckPlanRequest, resp *plancheck.CheckPlanResponse) {
	b := fmt.Sprintf("%+v", req.Plan)
	for _, s := range c.secrets {
		if strings.Contains(b, s) {
			resp.Error = fmt.Errorf("the plan holds a write-only secret")
		}
	}
}

// stateHoldsNone checks the whole state Terraform reports (from its state
// file) for the secrets.
func stateHoldsNone(secrets ...string) resource.TestCheckFunc {
	return func(s *terraform.State) error {
		dump := s.String()
		for _, r := range s.RootModule().Resources {
			dump += fmt.Sprint(r.Primary.Attributes)
		}
		for _, secret := range secrets {
			if strings.Contains(dump, secret) {
				return fmt.Errorf("the state holds a write-only secret")
			}
		}
		return nil
	}
}
