package provider

import (
	"context"
	"fmt"
	"regexp"
	"slices"
	"testing"

	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/knownvalue"
	"github.com/hashicorp/terraform-plugin-testing/plancheck"
	"github.com/hashicorp/terraform-plugin-testing/statecheck"
	"github.com/hashicorp/terraform-plugin-testing/terraform"
	"github.com/hashicorp/terraform-plugin-testing/tfjsonpath"

	"github.com/keymint/terraform-provider-keymint/internal/wire"
)

func TestAccAuthApp_basic(t *testing.T) {
	ts := newTestServer(t)
	const addr = "keymint_auth_app.acme"
	resource.ParallelTest(t, resource.TestCase{
		ProtoV6ProviderFactories: protoV6Providers,
		CheckDestroy:             ts.checkDestroy,
		Steps: []resource.TestStep{
			{
				Config: ts.config(`
resource "keymint_auth_app" "acme" {
  slug       = "acme"
  name       = "Acme API"
  scopes     = ["read:data", "write:data"]
  key_prefix = "acme_live"
  rate_limit = { requests = 100, window = "1m" }
}`),
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue(addr, tfjsonpath.New("id"), knownvalue.StringExact("acme")),
					statecheck.ExpectKnownValue(addr, tfjsonpath.New("description"), knownvalue.StringExact("")),
					statecheck.ExpectKnownValue(addr, tfjsonpath.New("rate_limit"), knownvalue.ObjectExact(map[string]knownvalue.Check{
						"requests": knownvalue.Int64Exact(100), "window": knownvalue.StringExact("1m"),
					})),
					statecheck.ExpectKnownValue(addr, tfjsonpath.New("created_at"), knownvalue.NotNull()),
				},
				Check: ts.appIs("acme", func(a wire.App) error {
					if a.Name != "Acme API" || !slices.Equal(a.Scopes, []string{"read:data", "write:data"}) || a.RateLimit == nil || a.RateLimit.Requests != 100 {
						return fmt.Errorf("server has %+v", a)
					}
					return nil
				}),
			},
			{
				Config: ts.config(`
resource "keymint_auth_app" "acme" {
  slug        = "acme"
  name        = "Acme API v2"
  description = "The public API"
  scopes      = ["read:data", "write:data", "admin"]
  key_prefix  = "acme_live"
}`),
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					plancheck.ExpectResourceAction(addr, plancheck.ResourceActionUpdate),
				}},
				Check: ts.appIs("acme", func(a wire.App) error {
					if a.Name != "Acme API v2" || a.Description != "The public API" || len(a.Scopes) != 3 || a.RateLimit != nil {
						return fmt.Errorf("server has %+v", a)
					}
					return nil
				}),
			},
			{
				ResourceName:      addr,
				ImportState:       true,
				ImportStateId:     "acme",
				ImportStateVerify: true,
			},
			{
				Config: ts.config(`
resource "keymint_auth_app" "acme" {
  slug        = "acme-two"
  name        = "Acme API v2"
  scopes      = ["read:data"]
  key_prefix  = "acme_live"
}`),
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					plancheck.ExpectResourceAction(addr, plancheck.ResourceActionDestroyBeforeCreate),
				}},
				Check: ts.appIs("acme-two", func(wire.App) error { return nil }),
			},
		},
	})
}

func (ts *testServer) appIs(slug string, check func(wire.App) error) resource.TestCheckFunc {
	return func(*terraform.State) error {
		a, err := ts.Client.GetApp(context.Background(), slug)
		if err != nil {
			return err
		}
		return check(a)
	}
}

// An app with keys made outside Terraform is not destroyed unless force_destroy.
func TestAccAuthApp_forceDestroy(t *testing.T) {
	ts := newTestServer(t)
	app := func(force bool) string {
		return ts.config(`
resource "keymint_auth_app" "acme" {
  slug          = "acme"
  name          = "Acme"
  scopes        = ["read"]
  key_prefix    = "acme"
  force_destroy = %v
}`, force)
	}
	resource.ParallelTest(t, resource.TestCase{
		ProtoV6ProviderFactories: protoV6Providers,
		CheckDestroy:             ts.checkDestroy,
		Steps: []resource.TestStep{
			{
				Config: app(false),
				Check: func(*terraform.State) error {
					k, err := ts.Client.CreateKey(context.Background(), "acme", wire.CreateKey{Name: "out of band", Scopes: []string{"read"}})
					ts.remember(k.Secret)
					return err
				},
			},
			{Config: app(false), Destroy: true, ExpectError: regexp.MustCompile(`still has live keys`)},
			{
				Config: app(true),
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					plancheck.ExpectResourceAction("keymint_auth_app.acme", plancheck.ResourceActionUpdate),
				}},
			},
		},
	})
}

func TestAccAuthApp_badConfig(t *testing.T) {
	ts := newTestServer(t)
	app := func(slug, prefix, window string) string {
		return ts.config(`
resource "keymint_auth_app" "x" {
  slug       = %q
  name       = "X"
  scopes     = ["read"]
  key_prefix = %q
  rate_limit = { requests = 1, window = %q }
}`, slug, prefix, window)
	}
	resource.ParallelTest(t, resource.TestCase{
		ProtoV6ProviderFactories: protoV6Providers,
		Steps: []resource.TestStep{
			{Config: app("", "xx", "1m"), PlanOnly: true, ExpectError: regexp.MustCompile(`Attribute slug must\s+be\s+2-63`)},
			{Config: app("Bad Slug", "xx", "1m"), PlanOnly: true, ExpectError: regexp.MustCompile(`Attribute slug must\s+be\s+2-63`)},
			{Config: app("xx", "Bad-Prefix", "1m"), PlanOnly: true, ExpectError: regexp.MustCompile(`Attribute key_prefix must\s+be\s+2-32`)},
			{Config: app("xx", "xx", "soon"), PlanOnly: true, ExpectError: regexp.MustCompile(`Invalid duration`)},
			{Config: app("xx", "xx", "721h"), PlanOnly: true, ExpectError: regexp.MustCompile(`Invalid duration`)},
			{Config: ts.config(`
resource "keymint_auth_app" "x" {
  slug       = "keymint"
  name       = "X"
  scopes     = ["read"]
  key_prefix = "xx"
}`), ExpectError: regexp.MustCompile(`slug_taken`)},
		},
	})
	apps, err := ts.Client.ListApps(context.Background())
	if err != nil || len(apps) != 1 {
		t.Fatalf("bad config left apps on the server: %+v %v", apps, err)
	}
}
