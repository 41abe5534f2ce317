// Package provider is the keymint Terraform provider.
package provider

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"time"

	"github.com/hashicorp/terraform-plugin-framework/datasource"
	"github.com/hashicorp/terraform-plugin-framework/ephemeral"
	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/provider"
	"github.com/hashicorp/terraform-plugin-framework/provider/schema"
	"github.com/hashicorp/terraform-plugin-framework/resource"
	"github.com/hashicorp/terraform-plugin-framework/schema/validator"
	"github.com/hashicorp/terraform-plugin-framework/types"

	"github.com/keymint/terraform-provider-keymint/keymint"
)

var _ provider.ProviderWithEphemeralResources = (*keymintProvider)(nil)

// Address is the provider's source address.
const Address = "registry.terraform.io/keymint/keymint"

type keymintProvider struct{ version string }

type providerModel struct {
	Endpoint       types.String `tfsdk:"endpoint"`
	Token          types.String `tfsdk:"token"`
	RequestTimeout types.String `tfsdk:"request_timeout"`
	Insecure       types.Bool   `tfsdk:"insecure"`
}

// defaultRequestTimeout bounds each request unless request_timeout says otherwise.
const defaultRequestTimeout = 30 * time.Second

// New returns the provider factory for providerserver.
func New(version string) func() provider.Provider {
	return func() provider.Provider { return &keymintProvider{version: version} }
}

func (p *keymintProvider) Metadata(_ context.Context, _ provider.MetadataRequest, resp *provider.MetadataResponse) {
	resp.TypeName = "keymint"
	resp.Version = p.version
}

func (p *keymintProvider) Schema(_ context.Context, _ provider.SchemaRequest, resp *provider.SchemaResponse) {
	resp.Schema = schema.Schema{
		MarkdownDescription: "Manage [keymint](https://github.com/keymint/terraform-provider-keymint) auth apps and API keys as code.",
		Attributes: map[string]schema.Attribute{
			"endpoint": schema.StringAttribute{
				Optional:            true,
				MarkdownDescription: "Base URL of the keymint server, e.g. `http://127.0.0.1:8080`. Defaults to the `KEYMINT_ENDPOINT` environment variable.",
			},
			"insecure": schema.BoolAttribute{
				Optional:            true,
				MarkdownDescription: "Allow a plain `http://` endpoint on another machine, sending the token in clear text. Without it the provider refuses such an endpoint (loopback addresses are always allowed). Defaults to the `KEYMINT_INSECURE` environment variable (`true`), else `false`.",
			},
			"request_timeout": schema.StringAttribute{
				Optional:            true,
				Validators:          []validator.String{durationValidator{lo: time.Second, hi: 10 * time.Minute}},
				MarkdownDescription: "How long one request to the server may take, as a Go duration (`1s` to `10m`); failed requests are retried a few times with backoff. Defaults to the `KEYMINT_REQUEST_TIMEOUT` environment variable, else `30s`.",
			},
			"token": schema.StringAttribute{
				Optional:            true,
				Sensitive:           true,
				MarkdownDescription: "Management token: the root token or a key of the `keymint` app. Defaults to the `KEYMINT_TOKEN` environment variable. Prefer the variable, so the token stays out of configuration.",
			},
		},
	}
}

func (p *keymintProvider) Configure(ctx context.Context, req provider.ConfigureRequest, resp *provider.ConfigureResponse) {
	var cfg providerModel
	resp.Diagnostics.Append(req.Config.Get(ctx, &cfg)...)
	if resp.Diagnostics.HasError() {
		return
	}
	// A value known only after apply (from another resource) leaves every
	// keymint resource without a client during plan: say so, and how to fix it.
	if cfg.Endpoint.IsUnknown() {
		resp.Diagnostics.AddAttributeError(path.Root("endpoint"), "Unknown keymint endpoint",
			"The provider's endpoint depends on a value known only after apply, so keymint cannot be reached during plan. "+
				"Apply the resource it comes from first (terraform apply -target=...), set endpoint statically, or use the KEYMINT_ENDPOINT environment variable.")
	}
	if cfg.Token.IsUnknown() {
		resp.Diagnostics.AddAttributeError(path.Root("token"), "Unknown keymint token",
			"The provider's token depends on a value known only after apply, so keymint cannot be reached during plan. "+
				"Apply the resource it comes from first (terraform apply -target=...), or use the KEYMINT_TOKEN environment variable.")
	}
	if resp.Diagnostics.HasError() {
		return
	}
	endpoint := valueOrEnv(cfg.Endpoint, "KEYMINT_ENDPOINT")
	token := valueOrEnv(cfg.Token, "KEYMINT_TOKEN")
	if endpoint == "" {
		resp.Diagnostics.AddAttributeError(path.Root("endpoint"), "Missing keymint endpoint",
			"Set endpoint in the provider block or the KEYMINT_ENDPOINT environment variable, e.g. http://127.0.0.1:8080.")
	}
	if token == "" {
		resp.Diagnostics.AddAttributeError(path.Root("token"), "Missing keymint token",
			"Set the KEYMINT_TOKEN environment variable (or token in the provider block) to a keymint management token.")
	}
	if resp.Diagnostics.HasError() {
		return
	}
	timeout := defaultRequestTimeout
	if v := valueOrEnv(cfg.RequestTimeout, "KEYMINT_REQUEST_TIMEOUT"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d < time.Second || d > 10*time.Minute {
			resp.Diagnostics.AddAttributeError(path.Root("request_timeout"), "Invalid request timeout",
				fmt.Sprintf("%q (from request_timeout or KEYMINT_REQUEST_TIMEOUT) is not a Go duration from 1s to 10m, e.g. 30s.", v))
			return
		}
		timeout = d
	}
	ua := fmt.Sprintf("terraform-provider-keymint/%s (+https://registry.terraform.io/providers/keymint/keymint) Terraform/%s", p.version, req.TerraformVersion)
	opts := []keymint.Option{keymint.WithUserAgent(ua), keymint.WithTimeout(timeout)}
	if cfg.Insecure.ValueBool() || cfg.Insecure.IsNull() && os.Getenv("KEYMINT_INSECURE") == "true" {
		opts = append(opts, keymint.WithInsecure())
	}
	c, err := keymint.New(endpoint, token, opts...)
	if err != nil {
		resp.Diagnostics.AddAttributeError(path.Root("endpoint"), "Invalid keymint endpoint", err.Error())
		return
	}
	// Check the endpoint and token now, so a wrong one is a clear error here
	// rather than a failure halfway through an apply.
	c.MaxRetries = 1 // so an endpoint that never answers fails in about two timeouts
	if _, err := c.Whoami(ctx); err != nil {
		if keymint.StatusCode(err) == http.StatusUnauthorized {
			resp.Diagnostics.AddAttributeError(path.Root("token"), "keymint rejected the token",
				"The server at "+endpoint+" does not accept this token: it is unknown, revoked, expired or disabled. Check KEYMINT_TOKEN.")
		} else {
			resp.Diagnostics.AddAttributeError(path.Root("endpoint"), "Cannot reach keymint",
				fmt.Sprintf("Checking the credential at %s failed: %v. Is the server running and the endpoint right?", endpoint, err))
		}
		return
	}
	c.MaxRetries = 4
	// Every kind of provider data gets the client, so no kind of resource
	// (ephemeral ones, actions, list resources) is ever left without one.
	resp.ResourceData = c
	resp.DataSourceData = c
	resp.EphemeralResourceData = c
	resp.ActionData = c
	resp.ListResourceData = c
}

func valueOrEnv(v types.String, env string) string {
	if !v.IsNull() && v.ValueString() != "" {
		return v.ValueString()
	}
	return os.Getenv(env)
}

func (p *keymintProvider) Resources(context.Context) []func() resource.Resource {
	return []func() resource.Resource{NewAuthAppResource, NewAPIKeyResource}
}

func (p *keymintProvider) EphemeralResources(context.Context) []func() ephemeral.EphemeralResource {
	return []func() ephemeral.EphemeralResource{NewAPIKeyEphemeral, NewSecretEphemeral}
}

func (p *keymintProvider) DataSources(context.Context) []func() datasource.DataSource {
	return []func() datasource.DataSource{NewAuthAppDataSource, NewAPIKeysDataSource}
}

// configuredClient takes the client from provider data, or says why there is none.
func configuredClient(data any) (*keymint.Client, string) {
	if data == nil {
		return nil, "" // not configured yet (e.g. validate): nothing to do
	}
	c, ok := data.(*keymint.Client)
	if !ok {
		return nil, fmt.Sprintf("expected *keymint.Client, got %T; please report this issue to the provider developers", data)
	}
	return c, ""
}
