package provider

import (
	"context"

	"github.com/hashicorp/terraform-plugin-framework-timetypes/timetypes"
	"github.com/hashicorp/terraform-plugin-framework/datasource"
	"github.com/hashicorp/terraform-plugin-framework/datasource/schema"
	"github.com/hashicorp/terraform-plugin-framework/schema/validator"
	"github.com/hashicorp/terraform-plugin-framework/types"

	"github.com/keymint/terraform-provider-keymint/keymint"
)

// NewAuthAppDataSource is the keymint_auth_app data source.
func NewAuthAppDataSource() datasource.DataSource { return &authAppDataSource{} }

type authAppDataSource struct{ client *keymint.Client }

type authAppDataModel struct {
	ID          types.String      `tfsdk:"id"`
	Slug        types.String      `tfsdk:"slug"`
	Name        types.String      `tfsdk:"name"`
	Description types.String      `tfsdk:"description"`
	Scopes      types.Set         `tfsdk:"scopes"`
	KeyPrefix   types.String      `tfsdk:"key_prefix"`
	RateLimit   *rateLimitModel   `tfsdk:"rate_limit"`
	CreatedAt   timetypes.RFC3339 `tfsdk:"created_at"`
}

func (d *authAppDataSource) Metadata(_ context.Context, req datasource.MetadataRequest, resp *datasource.MetadataResponse) {
	resp.TypeName = req.ProviderTypeName + "_auth_app"
}

func (d *authAppDataSource) Schema(_ context.Context, _ datasource.SchemaRequest, resp *datasource.SchemaResponse) {
	resp.Schema = schema.Schema{
		MarkdownDescription: "Reads an auth app by slug, e.g. one managed in another workspace.",
		Attributes: map[string]schema.Attribute{
			"slug":        schema.StringAttribute{Required: true, Validators: []validator.String{slugValidator}, MarkdownDescription: "The app's slug."},
			"id":          schema.StringAttribute{Computed: true, MarkdownDescription: "The app's slug."},
			"name":        schema.StringAttribute{Computed: true, MarkdownDescription: "Display name."},
			"description": schema.StringAttribute{Computed: true, MarkdownDescription: "Description."},
			"scopes":      schema.SetAttribute{ElementType: types.StringType, Computed: true, MarkdownDescription: "Scopes the app's keys may carry."},
			"key_prefix":  schema.StringAttribute{Computed: true, MarkdownDescription: "Prefix of the app's keys."},
			"rate_limit": schema.SingleNestedAttribute{Computed: true, MarkdownDescription: "Rate limit per key, if any.",
				Attributes: map[string]schema.Attribute{
					"requests": schema.Int64Attribute{Computed: true, MarkdownDescription: "Requests per window."},
					"window":   schema.StringAttribute{Computed: true, MarkdownDescription: "Window, a Go duration."},
				}},
			"created_at": schema.StringAttribute{CustomType: timetypes.RFC3339Type{}, Computed: true, MarkdownDescription: "When the app was created."},
		},
	}
}

func (d *authAppDataSource) Configure(_ context.Context, req datasource.ConfigureRequest, resp *datasource.ConfigureResponse) {
	c, problem := configuredClient(req.ProviderData)
	if problem != "" {
		resp.Diagnostics.AddError("Unexpected provider data", problem)
	}
	d.client = c
}

func (d *authAppDataSource) Read(ctx context.Context, req datasource.ReadRequest, resp *datasource.ReadResponse) {
	var cfg authAppDataModel
	resp.Diagnostics.Append(req.Config.Get(ctx, &cfg)...)
	if resp.Diagnostics.HasError() {
		return
	}
	a, err := d.client.GetApp(ctx, cfg.Slug.ValueString())
	if err != nil {
		resp.Diagnostics.AddError("Could not read keymint auth app "+cfg.Slug.ValueString(), err.Error())
		return
	}
	var m authAppModel
	m.fromAPI(a)
	out := authAppDataModel{ID: m.ID, Slug: m.Slug, Name: m.Name, Description: m.Description, Scopes: m.Scopes,
		KeyPrefix: m.KeyPrefix, RateLimit: m.RateLimit, CreatedAt: m.CreatedAt}
	resp.Diagnostics.Append(resp.State.Set(ctx, &out)...)
}
