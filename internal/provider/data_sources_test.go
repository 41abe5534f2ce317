package provider

import (
	"net"
	"regexp"
	"testing"

	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/knownvalue"
	"github.com/hashicorp/terraform-plugin-testing/statecheck"
	"github.com/hashicorp/terraform-plugin-testing/tfjsonpath"

	"github.com/keymint/terraform-provider-keymint/internal/wire"
)

func TestAccDataSources(t *testing.T) {
	ts := newTestServer(t)
	resource.ParallelTest(t, resource.TestCase{
		ProtoV6ProviderFactories: protoV6Providers,
		CheckDestroy:             ts.checkDestroy,
		Steps: []resource.TestStep{
			{
				Config: ts.config(appHCL + `
resource "keymint_api_key" "on" {
  app    = keymint_auth_app.acme.slug
  name   = "on"
  scopes = ["read:data"]
}

resource "keymint_api_key" "off" {
  app     = keymint_auth_app.acme.slug
  name    = "off"
  scopes  = ["read:data"]
  enabled = false
}

data "keymint_auth_app" "acme" {
  slug = keymint_auth_app.acme.slug
}

data "keymint_api_keys" "active" {
  app        = keymint_auth_app.acme.slug
  status     = "active"
  depends_on = [keymint_api_key.on, keymint_api_key.off]
}

data "keymint_api_keys" "all" {
  app        = keymint_auth_app.acme.slug
  depends_on = [keymint_api_key.on, keymint_api_key.off]
}
`),
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue("data.keymint_auth_app.acme", tfjsonpath.New("key_prefix"), knownvalue.StringExact("acme_live")),
					statecheck.ExpectKnownValue("data.keymint_auth_app.acme", tfjsonpath.New("scopes"),
						knownvalue.SetExact([]knownvalue.Check{knownvalue.StringExact("read:data"), knownvalue.StringExact("write:data")})),
					statecheck.ExpectKnownValue("data.keymint_api_keys.active", tfjsonpath.New("keys"), knownvalue.ListSizeExact(1)),
					statecheck.ExpectKnownValue("data.keymint_api_keys.active", tfjsonpath.New("keys").AtSliceIndex(0).AtMapKey("name"), knownvalue.StringExact("on")),
					statecheck.ExpectKnownValue("data.keymint_api_keys.all", tfjsonpath.New("keys"), knownvalue.ListSizeExact(2)),
				},
				Check: resource.ComposeAggregateTestCheckFunc(
					ts.verifies("keymint_api_key.on", wire.CodeValid),
					ts.verifies("keymint_api_key.off", wire.CodeDisabled),
				),
			},
			{
				Config:      ts.config(`data "keymint_auth_app" "x" { slug = "missing" }`),
				ExpectError: regexp.MustCompile(`not_found`),
			},
		},
	})
}

// Not parallel: it clears the provider's environment variables.
func TestAccProvider_missingConfig(t *testing.T) {
	t.Setenv("KEYMINT_ENDPOINT", "")
	t.Setenv("KEYMINT_TOKEN", "")
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: protoV6Providers,
		Steps: []resource.TestStep{{
			Config:      `data "keymint_auth_app" "x" { slug = "keymint" }`,
			ExpectError: regexp.MustCompile(`(?s)Missing keymint endpoint.*Missing keymint token`),
		}},
	})
}

// silentEndpoint accepts connections and never answers, until the test ends.
func silentEndpoint(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			t.Cleanup(func() { c.Close() })
		}
	}()
	return "http://" + ln.Addr().String()
}

func TestAccProvider_configErrors(t *testing.T) {
	ts := newTestServer(t)
	silent := silentEndpoint(t)
	app := `
data "keymint_auth_app" "x" {
  slug = "keymint"
}`
	resource.ParallelTest(t, resource.TestCase{
		ProtoV6ProviderFactories: protoV6Providers,
		Steps: []resource.TestStep{
			{Config: `provider "keymint" {
  endpoint = "` + ts.URL + `"
  token    = "wrong"
}` + app, ExpectError: regexp.MustCompile(`keymint rejected the token`)},
			{Config: `provider "keymint" {
  endpoint = "http://127.0.0.1:1"
  token    = "whatever"
}` + app, ExpectError: regexp.MustCompile(`Cannot reach keymint`)},
			// An endpoint that never answers fails within the request timeout (twice: one retry).
			{Config: `provider "keymint" {
  endpoint        = "` + silent + `"
  token           = "whatever"
  request_timeout = "1s"
}` + app, ExpectError: regexp.MustCompile(`(?s)Cannot reach keymint.*Timeout`)},
			{Config: `provider "keymint" {
  endpoint        = "` + ts.URL + `"
  token           = "whatever"
  request_timeout = "forever"
}` + app, ExpectError: regexp.MustCompile(`Invalid duration`)},
			{Config: `provider "keymint" {
  endpoint = "localhost:8080"
  token    = "whatever"
}` + app, ExpectError: regexp.MustCompile(`Invalid keymint endpoint`)},
			// A plain http:// endpoint off this machine is refused before any request
			// (.invalid never resolves: nothing leaves loopback), unless insecure = true.
			{Config: `provider "keymint" {
  endpoint = "http://keymint.example.invalid:8080"
  token    = "whatever"
}` + app, ExpectError: regexp.MustCompile(`(?s)Invalid keymint endpoint.*refusing to send the token in clear\s+text`)},
			{Config: `provider "keymint" {
  endpoint = "http://keymint.example.invalid:8080"
  token    = "whatever"
  insecure = true
}` + app, ExpectError: regexp.MustCompile(`Cannot reach keymint`)},
			// An endpoint known only after apply is an error at plan, not a nil client.
			{Config: `resource "terraform_data" "endpoint" {
  input = "` + ts.URL + `"
}
provider "keymint" {
  endpoint = terraform_data.endpoint.output
  token    = "` + ts.Token + `"
}` + app, PlanOnly: true, ExpectError: regexp.MustCompile(`Unknown keymint endpoint`)},
			{Config: ts.config("%s", app), Check: resource.TestCheckResourceAttr("data.keymint_auth_app.x", "name", "keymint management")},
		},
	})
}
