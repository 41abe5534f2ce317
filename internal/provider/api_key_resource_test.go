package provider

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/terraform-plugin-framework-timetypes/timetypes"
	fwresource "github.com/hashicorp/terraform-plugin-framework/resource"
	"github.com/hashicorp/terraform-plugin-framework/types"
	"github.com/hashicorp/terraform-plugin-testing/compare"
	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/knownvalue"
	"github.com/hashicorp/terraform-plugin-testing/plancheck"
	"github.com/hashicorp/terraform-plugin-testing/statecheck"
	"github.com/hashicorp/terraform-plugin-testing/terraform"
	"github.com/hashicorp/terraform-plugin-testing/tfjsonpath"

	"github.com/keymint/terraform-provider-keymint/internal/keyformat"
	"github.com/keymint/terraform-provider-keymint/internal/wire"
	"github.com/keymint/terraform-provider-keymint/keymint"
)

const keyAddr = "keymint_api_key.ci"

const appHCL = `
resource "keymint_auth_app" "acme" {
  slug       = "acme"
  name       = "Acme"
  scopes     = ["read:data", "write:data"]
  key_prefix = "acme_live"
}
`

// saved captures a state value in one step for a check in a later one.
type saved struct{ value string }

func (v *saved) from(addr, name string) resource.TestCheckFunc {
	return func(s *terraform.State) error {
		var err error
		v.value, err = attr(s, addr, name)
		return err
	}
}

func TestAccAPIKey_basic(t *testing.T) {
	ts := newTestServer(t)
	expires := time.Now().Add(72 * time.Hour).UTC().Truncate(time.Second).Format(time.RFC3339)
	key := func(name, metadata string, enabled bool) string {
		return ts.config(appHCL+`
resource "keymint_api_key" "ci" {
  app        = keymint_auth_app.acme.slug
  name       = %q
  scopes     = ["read:data"]
  resources  = ["vault-1"]
  owner      = "platform-team"
  metadata   = %s
  expires_at = %q
  enabled    = %v
}`, name, metadata, expires, enabled)
	}
	idSame := statecheck.CompareValue(compare.ValuesSame())
	secretSame := statecheck.CompareValue(compare.ValuesSame())
	resource.ParallelTest(t, resource.TestCase{
		ProtoV6ProviderFactories: protoV6Providers,
		CheckDestroy:             ts.checkDestroy,
		Steps: []resource.TestStep{
			{
				Config: key("ci", `{ pipeline = "deploy" }`, true),
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					plancheck.ExpectResourceAction(keyAddr, plancheck.ResourceActionCreate),
					plancheck.ExpectSensitiveValue(keyAddr, tfjsonpath.New("secret")),
					plancheck.ExpectUnknownValue(keyAddr, tfjsonpath.New("secret")),
				}},
				ConfigStateChecks: []statecheck.StateCheck{
					idSame.AddStateValue(keyAddr, tfjsonpath.New("id")),
					secretSame.AddStateValue(keyAddr, tfjsonpath.New("secret")),
					statecheck.ExpectSensitiveValue(keyAddr, tfjsonpath.New("secret")),
					statecheck.ExpectKnownValue(keyAddr, tfjsonpath.New("status"), knownvalue.StringExact("active")),
					statecheck.ExpectKnownValue(keyAddr, tfjsonpath.New("start"), knownvalue.StringRegexp(regexp.MustCompile(`^acme_live_[0-9A-Za-z]{6}$`))),
					statecheck.ExpectKnownValue(keyAddr, tfjsonpath.New("id"), knownvalue.StringRegexp(regexp.MustCompile(`^key_`))),
					statecheck.ExpectKnownValue(keyAddr, tfjsonpath.New("expires_at"), knownvalue.StringExact(expires)),
					statecheck.ExpectKnownValue(keyAddr, tfjsonpath.New("rotated_at"), knownvalue.Null()),
					statecheck.ExpectKnownValue(keyAddr, tfjsonpath.New("rotation_grace_period"), knownvalue.StringExact("0s")),
				},
				Check: resource.ComposeAggregateTestCheckFunc(
					ts.verifies(keyAddr, wire.CodeValid, "read:data"),
					ts.verifies(keyAddr, wire.CodeInsufficientScope, "write:data"),
					ts.keyIs(keyAddr, func(k wire.Key) error {
						if k.Owner != "platform-team" || k.Metadata["pipeline"] != "deploy" || k.Resources[0] != "vault-1" {
							return fmt.Errorf("server has %+v", k)
						}
						return nil
					}),
				),
			},
			{
				// name, metadata and enabled change in place: same id, same secret.
				Config: key("ci-renamed", `{ pipeline = "release", team = "platform" }`, false),
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					plancheck.ExpectResourceAction(keyAddr, plancheck.ResourceActionUpdate),
					plancheck.ExpectKnownValue(keyAddr, tfjsonpath.New("status"), knownvalue.StringExact("disabled")),
				}},
				ConfigStateChecks: []statecheck.StateCheck{
					idSame.AddStateValue(keyAddr, tfjsonpath.New("id")),
					secretSame.AddStateValue(keyAddr, tfjsonpath.New("secret")),
				},
				Check: resource.ComposeAggregateTestCheckFunc(
					ts.verifies(keyAddr, wire.CodeDisabled, "read:data"),
					ts.keyIs(keyAddr, func(k wire.Key) error {
						if k.Name != "ci-renamed" || k.Metadata["team"] != "platform" || k.Enabled {
							return fmt.Errorf("server has %+v", k)
						}
						return nil
					}),
				),
			},
			{
				ResourceName:      keyAddr,
				ImportState:       true,
				ImportStateVerify: true,
				// The server keeps only a hash of the secret; the rest is Terraform-side.
				ImportStateVerifyIgnore: []string{"secret"},
			},
		},
	})
}

func (ts *testServer) keyIs(addr string, check func(wire.Key) error) resource.TestCheckFunc {
	return func(s *terraform.State) error {
		id, err := attr(s, addr, "id")
		if err != nil {
			return err
		}
		k, err := ts.Client.GetKey(context.Background(), id)
		if err != nil {
			return err
		}
		return check(k)
	}
}

func TestAccAPIKey_scopeChangeReplacesCreateBeforeDestroy(t *testing.T) {
	ts := newTestServer(t)
	key := func(scopes string) string {
		return ts.config(appHCL+`
resource "keymint_api_key" "ci" {
  app    = keymint_auth_app.acme.slug
  name   = "ci"
  scopes = %s
  lifecycle {
    create_before_destroy = true
  }
}`, scopes)
	}
	var oldID, oldSecret saved
	served := 0
	resource.ParallelTest(t, resource.TestCase{
		ProtoV6ProviderFactories: protoV6Providers,
		CheckDestroy:             ts.checkDestroy,
		Steps: []resource.TestStep{
			{
				Config: key(`["read:data"]`),
				Check: resource.ComposeAggregateTestCheckFunc(
					ts.verifies(keyAddr, wire.CodeValid, "read:data"),
					oldID.from(keyAddr, "id"), oldSecret.from(keyAddr, "secret"),
					func(*terraform.State) error { served = ts.requestIndex("", 0) + 1; return nil },
				),
			},
			{
				Config: key(`["read:data", "write:data"]`),
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					plancheck.ExpectResourceAction(keyAddr, plancheck.ResourceActionCreateBeforeDestroy),
				}},
				Check: resource.ComposeAggregateTestCheckFunc(
					ts.verifies(keyAddr, wire.CodeValid, "read:data", "write:data"),
					func(s *terraform.State) error {
						if id, _ := attr(s, keyAddr, "id"); id == oldID.value {
							return errors.New("the key kept its id through a scope change")
						}
						if err := ts.wantCode(oldSecret.value, wire.CodeRevoked); err != nil {
							return fmt.Errorf("old key: %w", err)
						}
						created := ts.requestIndex("POST /v1/apps/acme/keys", served)
						revoked := ts.requestIndex("DELETE /v1/keys/"+oldID.value, served)
						if created < 0 || revoked < 0 || created > revoked {
							return fmt.Errorf("create at %d, revoke of the old key at %d: the new key must exist first", created, revoked)
						}
						return nil
					},
				),
			},
		},
	})
}

func TestAccAPIKey_rotationTriggers(t *testing.T) {
	ts := newTestServer(t)
	key := func(rotateAt string) string {
		return ts.config(appHCL+`
resource "time_static" "rotation" {
  rfc3339 = %q
}

resource "keymint_api_key" "ci" {
  app                   = keymint_auth_app.acme.slug
  name                  = "ci"
  scopes                = ["read:data"]
  rotation_triggers     = { rotation = time_static.rotation.id }
  rotation_grace_period = "1h"
}`, rotateAt)
	}
	var oldSecret saved
	secretDiffers := statecheck.CompareValue(compare.ValuesDiffer())
	idSame := statecheck.CompareValue(compare.ValuesSame())
	resource.ParallelTest(t, resource.TestCase{
		ProtoV6ProviderFactories: protoV6Providers,
		ExternalProviders:        timeProvider,
		CheckDestroy:             ts.checkDestroy,
		Steps: []resource.TestStep{
			{
				Config: key("2030-01-01T00:00:00Z"),
				ConfigStateChecks: []statecheck.StateCheck{
					secretDiffers.AddStateValue(keyAddr, tfjsonpath.New("secret")),
					idSame.AddStateValue(keyAddr, tfjsonpath.New("id")),
				},
				Check: resource.ComposeAggregateTestCheckFunc(
					ts.verifies(keyAddr, wire.CodeValid), oldSecret.from(keyAddr, "secret")),
			},
			{
				Config: key("2030-02-01T00:00:00Z"),
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					plancheck.ExpectResourceAction(keyAddr, plancheck.ResourceActionUpdate),
					plancheck.ExpectUnknownValue(keyAddr, tfjsonpath.New("secret")),
					plancheck.ExpectSensitiveValue(keyAddr, tfjsonpath.New("secret")),
				}},
				ConfigStateChecks: []statecheck.StateCheck{
					secretDiffers.AddStateValue(keyAddr, tfjsonpath.New("secret")),
					idSame.AddStateValue(keyAddr, tfjsonpath.New("id")),
					statecheck.ExpectKnownValue(keyAddr, tfjsonpath.New("rotated_at"), knownvalue.NotNull()),
				},
				Check: resource.ComposeAggregateTestCheckFunc(
					ts.verifies(keyAddr, wire.CodeValid),
					// State keeps the rotation time exactly as the server has it (to the
					// nanosecond), so the next refresh sees no rotation made elsewhere.
					func(s *terraform.State) error {
						inState, err := attr(s, keyAddr, "rotated_at")
						if err != nil {
							return err
						}
						return ts.keyIs(keyAddr, func(k wire.Key) error {
							if k.RotatedAt.Nanosecond() == 0 {
								return fmt.Errorf("the server's rotation time %v has no fraction: this test would not catch a truncation", k.RotatedAt)
							}
							if got, err := time.Parse(time.RFC3339Nano, inState); err == nil && got.Equal(*k.RotatedAt) {
								return nil
							}
							return fmt.Errorf("state has rotated_at %s, the server %s: the next plan would warn of a rotation outside Terraform", inState, k.RotatedAt.Format(time.RFC3339Nano))
						})(s)
					},
					func(s *terraform.State) error {
						if err := ts.wantCode(oldSecret.value, wire.CodeValid); err != nil {
							return fmt.Errorf("old secret inside the grace period: %w", err)
						}
						ts.Clock.Advance(time.Hour)
						if err := ts.wantCode(oldSecret.value, wire.CodeNotFound); err != nil {
							return fmt.Errorf("old secret after the grace period: %w", err)
						}
						return nil
					},
					ts.verifies(keyAddr, wire.CodeValid),
				),
			},
			{
				// After a rotation Terraform made, a refresh and plan find nothing to do.
				Config: key("2030-02-01T00:00:00Z"),
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					plancheck.ExpectEmptyPlan(),
				}},
			},
		},
	})
}

func TestAccAPIKey_keepersReplace(t *testing.T) {
	ts := newTestServer(t)
	key := func(generation string) string {
		return ts.config(appHCL+`
resource "keymint_api_key" "ci" {
  app     = keymint_auth_app.acme.slug
  name    = "ci"
  scopes  = ["read:data"]
  keepers = { generation = %q }
}`, generation)
	}
	idDiffers := statecheck.CompareValue(compare.ValuesDiffer())
	resource.ParallelTest(t, resource.TestCase{
		ProtoV6ProviderFactories: protoV6Providers,
		CheckDestroy:             ts.checkDestroy,
		Steps: []resource.TestStep{
			{Config: key("1"), ConfigStateChecks: []statecheck.StateCheck{idDiffers.AddStateValue(keyAddr, tfjsonpath.New("id"))},
				Check: ts.verifies(keyAddr, wire.CodeValid)},
			{
				Config: key("2"),
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					plancheck.ExpectResourceAction(keyAddr, plancheck.ResourceActionDestroyBeforeCreate),
				}},
				ConfigStateChecks: []statecheck.StateCheck{idDiffers.AddStateValue(keyAddr, tfjsonpath.New("id"))},
				Check:             ts.verifies(keyAddr, wire.CodeValid),
			},
		},
	})
}

func TestAccAPIKey_outOfBandChanges(t *testing.T) {
	ts := newTestServer(t)
	cfg := ts.config(appHCL + `
resource "keymint_api_key" "ci" {
  app    = keymint_auth_app.acme.slug
  name   = "ci"
  scopes = ["read:data"]
}`)
	var id saved
	resource.ParallelTest(t, resource.TestCase{
		ProtoV6ProviderFactories: protoV6Providers,
		CheckDestroy:             ts.checkDestroy,
		Steps: []resource.TestStep{
			{Config: cfg, Check: resource.ComposeAggregateTestCheckFunc(ts.verifies(keyAddr, wire.CodeValid), id.from(keyAddr, "id"))},
			{
				// Revoked outside Terraform: the refresh drops it and the plan creates a new key.
				PreConfig: func() {
					if err := ts.Client.RevokeKey(context.Background(), id.value); err != nil {
						t.Fatal(err)
					}
				},
				Config: cfg,
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					plancheck.ExpectResourceAction(keyAddr, plancheck.ResourceActionCreate),
					plancheck.ExpectResourceAction("keymint_auth_app.acme", plancheck.ResourceActionNoop),
				}},
				Check: resource.ComposeAggregateTestCheckFunc(ts.verifies(keyAddr, wire.CodeValid), id.from(keyAddr, "id")),
			},
			{
				// Deleted outside Terraform, with its app: both are created again.
				PreConfig: func() {
					if err := ts.Client.DeleteApp(context.Background(), "acme", true); err != nil {
						t.Fatal(err)
					}
				},
				Config: cfg,
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					plancheck.ExpectResourceAction(keyAddr, plancheck.ResourceActionCreate),
					plancheck.ExpectResourceAction("keymint_auth_app.acme", plancheck.ResourceActionCreate),
				}},
				Check: ts.verifies(keyAddr, wire.CodeValid),
			},
		},
	})
}

func TestRotatedElsewhere(t *testing.T) {
	at := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	later := at.Add(time.Hour)
	withSecret := apiKeyModel{Secret: types.StringValue("s"), RotatedAt: timetypes.NewRFC3339TimeValue(at)}
	neverRotated := apiKeyModel{Secret: types.StringValue("s"), RotatedAt: timetypes.NewRFC3339Null()}
	imported := apiKeyModel{Secret: types.StringNull(), RotatedAt: timetypes.NewRFC3339Null()}
	atNanos := at.Add(123456789 * time.Nanosecond)
	subSecond := apiKeyModel{Secret: types.StringValue("s"), RotatedAt: keepTime(timetypes.NewRFC3339Unknown(), &atNanos)}
	for name, c := range map[string]struct {
		state apiKeyModel
		key   wire.Key
		want  bool
	}{
		"unchanged":           {withSecret, wire.Key{RotatedAt: &at}, false},
		"rotated again":       {withSecret, wire.Key{RotatedAt: &later}, true},
		"first rotation":      {neverRotated, wire.Key{RotatedAt: &at}, true},
		"never rotated":       {neverRotated, wire.Key{}, false},
		"imported, no secret": {imported, wire.Key{RotatedAt: &at}, false},
		// State keeps the server's time to the nanosecond.
		"sub-second, unchanged":     {subSecond, wire.Key{RotatedAt: &atNanos}, false},
		"sub-second, rotated again": {subSecond, wire.Key{RotatedAt: new(atNanos.Add(time.Nanosecond))}, true},
		// States from before kept whole seconds: compared at that precision.
		"legacy seconds, same second": {withSecret, wire.Key{RotatedAt: new(at.Add(999 * time.Millisecond))}, false},
		"legacy seconds, later":       {withSecret, wire.Key{RotatedAt: new(at.Add(time.Second))}, true},
	} {
		if got := rotatedElsewhere(c.state, c.key); got != c.want {
			t.Errorf("%s: rotatedElsewhere = %v, want %v", name, got, c.want)
		}
	}
}

func TestGoneReasonWarnings(t *testing.T) {
	notFound := &keymint.Error{StatusCode: 404}
	for _, c := range []struct {
		key  wire.Key
		err  error
		want string
	}{
		{wire.Key{}, notFound, "deleted outside Terraform"},
		{wire.Key{Status: "revoked"}, nil, "revoked outside Terraform"},
		{wire.Key{Status: "expired"}, nil, ""}, // stays in state
		{wire.Key{Status: "disabled"}, nil, ""},
		{wire.Key{Status: "active"}, nil, ""},
		{wire.Key{}, &keymint.Error{StatusCode: 500}, ""},
	} {
		if got := goneReason(c.key, c.err); (c.want == "") != (got == "") || !strings.Contains(got, c.want) {
			t.Errorf("goneReason(%s, %v) = %q, want %q", c.key.Status, c.err, got, c.want)
		}
	}
}

func TestAccAPIKey_badConfig(t *testing.T) {
	ts := newTestServer(t)
	key := func(attrs string) string {
		return ts.config(appHCL+`
resource "keymint_api_key" "ci" {
  app    = keymint_auth_app.acme.slug
  name   = "ci"
  %s
}`, attrs)
	}
	past := time.Now().Add(-time.Hour).UTC().Format(time.RFC3339)
	resource.ParallelTest(t, resource.TestCase{
		ProtoV6ProviderFactories: protoV6Providers,
		CheckDestroy:             ts.checkDestroy,
		Steps: []resource.TestStep{
			{Config: key(`scopes = ["read:data"]
  rotation_grace_period = "1 hour"`), PlanOnly: true, ExpectError: regexp.MustCompile(`Invalid duration`)},
			{Config: key(`scopes = ["read:data"]
  expires_at = "` + past + `"`), PlanOnly: true, ExpectError: regexp.MustCompile(`expires_at is in the past`)},
			{Config: key(`scopes = ["read:data"]
  expires_at = "next tuesday"`), PlanOnly: true, ExpectError: regexp.MustCompile(`Invalid RFC3339`)},
			{Config: key(`scopes = []`), PlanOnly: true, ExpectError: regexp.MustCompile(`at least 1`)},
			// Spoofable text is refused at plan time, by the server's own check.
			{Config: key(`scopes = ["read:data"]
  owner = "team-\u202egnp"`), PlanOnly: true, ExpectError: regexp.MustCompile(`U\+202E\s+at\s+character\s+5`)},
			// A literal secret_wo is checked against the server's rule at plan time.
			{Config: key(`scopes = ["read:data"]
  secret_wo = "` + keyformat.WithChecksum("acme_live_"+strings.Repeat("0", keyformat.RandomLen)) + `"
  secret_wo_version = 1`), PlanOnly: true, ExpectError: regexp.MustCompile(`Guessable secret_wo`)},
			// Known only to the server: the app's scopes. The apply fails and no key is made.
			{Config: key(`scopes = ["admin"]`), ExpectError: regexp.MustCompile(`admin\s+not\s+among\s+app`)},
			{
				Config: ts.config("%s", appHCL),
				Check: func(*terraform.State) error {
					keys, err := ts.Client.ListKeys(context.Background(), "acme", "")
					if err != nil || len(keys) != 0 {
						return fmt.Errorf("a failed create left keys %+v (%w)", keys, err)
					}
					return nil
				},
			},
		},
	})
}

// An expired key never turns plan into an error: it stays in state as
// expired, plans stay clean, and a later expires_at replaces it.
func TestAccAPIKey_expired(t *testing.T) {
	ts := newTestServer(t)
	key := func(expires time.Time) string {
		return ts.config(appHCL+`
resource "keymint_api_key" "ci" {
  app        = keymint_auth_app.acme.slug
  name       = "ci"
  scopes     = ["read:data"]
  expires_at = %q
}`, expires.Format(time.RFC3339))
	}
	first := ts.Clock.Now().Add(time.Hour)
	later := time.Now().Add(72 * time.Hour) // ahead of both the server's clock and the provider's
	var id saved
	idDiffers := statecheck.CompareValue(compare.ValuesDiffer())
	resource.ParallelTest(t, resource.TestCase{
		ProtoV6ProviderFactories: protoV6Providers,
		CheckDestroy:             ts.checkDestroy,
		Steps: []resource.TestStep{
			{
				Config:            key(first),
				ConfigStateChecks: []statecheck.StateCheck{idDiffers.AddStateValue(keyAddr, tfjsonpath.New("id"))},
				Check:             resource.ComposeAggregateTestCheckFunc(ts.verifies(keyAddr, wire.CodeValid), id.from(keyAddr, "id")),
			},
			{
				// The server's clock passes expires_at: plan is clean, the key stays, expired.
				PreConfig: func() { ts.Clock.Advance(2 * time.Hour) },
				Config:    key(first),
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					plancheck.ExpectEmptyPlan(),
				}},
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue(keyAddr, tfjsonpath.New("status"), knownvalue.StringExact("expired")),
				},
				Check: resource.ComposeAggregateTestCheckFunc(ts.verifies(keyAddr, wire.CodeExpired),
					func(s *terraform.State) error {
						if got, _ := attr(s, keyAddr, "id"); got != id.value {
							return fmt.Errorf("the expired key was replaced without a configuration change")
						}
						return nil
					}),
			},
			{
				// A later expires_at (as a time_rotating would give) replaces it with a working key.
				Config: key(later),
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					plancheck.ExpectResourceAction(keyAddr, plancheck.ResourceActionDestroyBeforeCreate),
				}},
				ConfigStateChecks: []statecheck.StateCheck{
					idDiffers.AddStateValue(keyAddr, tfjsonpath.New("id")),
					statecheck.ExpectKnownValue(keyAddr, tfjsonpath.New("status"), knownvalue.StringExact("active")),
				},
				Check: ts.verifies(keyAddr, wire.CodeValid),
			},
		},
	})
}

func TestAccAPIKey_writeOnlyBadConfig(t *testing.T) {
	ts := newTestServer(t)
	key := func(attrs string) string {
		return ts.config(appHCL+`
resource "keymint_api_key" "ci" {
  app    = keymint_auth_app.acme.slug
  name   = "ci"
  scopes = ["read:data"]
  %s
}`, attrs)
	}
	secret := keyformat.Generate("acme_live")
	resource.ParallelTest(t, resource.TestCase{
		ProtoV6ProviderFactories: protoV6Providers,
		Steps: []resource.TestStep{
			{Config: key(`secret_wo = "` + secret + `"`), PlanOnly: true, ExpectError: regexp.MustCompile(`Missing secret_wo_version`)},
			{Config: key(`secret_wo_version = 1`), PlanOnly: true, ExpectError: regexp.MustCompile(`(?m)Missing secret_wo$`)},
			{Config: key(`secret_wo = "` + secret + `"
  secret_wo_version = 1
  rotation_triggers = { r = "1" }`), PlanOnly: true, ExpectError: regexp.MustCompile(`rotation_triggers with secret_wo`)},
		},
	})
}

// The model is read and written through fields(), not struct tags: each
// field must be listed under its tfsdk name and the schema's attributes must
// be exactly those.
func TestAPIKeyModelFieldsMatchTagsAndSchema(t *testing.T) {
	var m apiKeyModel
	byPtr := map[any]string{}
	for _, f := range m.fields() {
		byPtr[f.ptr] = f.name
	}
	v := reflect.ValueOf(&m).Elem()
	for i := range v.NumField() {
		tag := v.Type().Field(i).Tag.Get("tfsdk")
		if got := byPtr[v.Field(i).Addr().Interface()]; got != tag {
			t.Errorf("field %s (tfsdk:%q) is listed by fields() as %q", v.Type().Field(i).Name, tag, got)
		}
	}
	var resp fwresource.SchemaResponse
	NewAPIKeyResource().Schema(context.Background(), fwresource.SchemaRequest{}, &resp)
	if len(resp.Schema.Attributes) != len(byPtr) || v.NumField() != len(byPtr) {
		t.Errorf("schema has %d attributes, fields() %d, the struct %d", len(resp.Schema.Attributes), len(byPtr), v.NumField())
	}
	for name := range resp.Schema.Attributes {
		found := false
		for _, n := range byPtr {
			found = found || n == name
		}
		if !found {
			t.Errorf("schema attribute %q is not in fields()", name)
		}
	}
}
