package provider

import (
	"context"
	"time"

	"github.com/hashicorp/terraform-plugin-framework-timetypes/timetypes"
	"github.com/hashicorp/terraform-plugin-framework-validators/stringvalidator"
	"github.com/hashicorp/terraform-plugin-framework/datasource"
	"github.com/hashicorp/terraform-plugin-framework/datasource/schema"
	"github.com/hashicorp/terraform-plugin-framework/schema/validator"
	"github.com/hashicorp/terraform-plugin-framework/types"

	"github.com/keymint/terraform-provider-keymint/internal/wire"
	"github.com/keymint/terraform-provider-keymint/keymint"
)

// NewAPIKeysDataSource is the keymint_api_keys data source.
func NewAPIKeysDataSource() datasource.DataSource { return &apiKeysDataSource{} }

type apiKeysDataSource struct{ client *keymint.Client }

type apiKeysDataModel struct {
	ID     types.String      `tfsdk:"id"`
	App    types.String      `tfsdk:"app"`
	Status types.String      `tfsdk:"status"`
	Keys   []apiKeyDataModel `tfsdk:"keys"`
}

type apiKeyDataModel struct {
	ID         types.String      `tfsdk:"id"`
	Name       types.String      `tfsdk:"name"`
	Scopes     types.Set         `tfsdk:"scopes"`
	Resources  types.Set         `tfsdk:"resources"`
	Owner      types.String      `tfsdk:"owner"`
	Metadata   types.Map         `tfsdk:"metadata"`
	ExpiresAt  timetypes.RFC3339 `tfsdk:"expires_at"`
	Enabled    types.Bool        `tfsdk:"enabled"`
	Status     types.String      `tfsdk:"status"`
	Start      types.String      `tfsdk:"start"`
	CreatedAt  timetypes.RFC3339 `tfsdk:"created_at"`
	LastUsedAt timetypes.RFC3339 `tfsdk:"last_used_at"`
	RotatedAt  timetypes.RFC3339 `tfsdk:"rotated_at"`
	RevokedAt  timetypes.RFC3339 `tfsdk:"revoked_at"`
}

func (d *apiKeysDataSource) Metadata(_ context.Context, req datasource.MetadataRequest, resp *datasource.MetadataResponse) {
	resp.TypeName = req.ProviderTypeName + "_api_keys"
}

func (d *apiKeysDataSource) Schema(_ context.Context, _ datasource.SchemaRequest, resp *datasource.SchemaResponse) {
	rfc := func(desc string) schema.Attribute {
		return schema.StringAttribute{CustomType: timetypes.RFC3339Type{}, Computed: true, MarkdownDescription: desc}
	}
	resp.Schema = schema.Schema{
		MarkdownDescription: "Lists an app's API keys, optionally by status. Never returns secrets: the server does not have them.",
		Attributes: map[string]schema.Attribute{
			"id":  schema.StringAttribute{Computed: true, MarkdownDescription: "The app slug and status filter."},
			"app": schema.StringAttribute{Required: true, Validators: []validator.String{slugValidator}, MarkdownDescription: "The app's slug."},
			"status": schema.StringAttribute{Optional: true, MarkdownDescription: "Only keys with this status: `active`, `disabled`, `expired` or `revoked`.",
				Validators: []validator.String{stringvalidator.OneOf("active", "disabled", "expired", "revoked")}},
			"keys": schema.ListNestedAttribute{
				Computed: true, MarkdownDescription: "The keys, oldest first.",
				NestedObject: schema.NestedAttributeObject{Attributes: map[string]schema.Attribute{
					"id":           schema.StringAttribute{Computed: true, MarkdownDescription: "Key id."},
					"name":         schema.StringAttribute{Computed: true, MarkdownDescription: "Display name."},
					"scopes":       schema.SetAttribute{ElementType: types.StringType, Computed: true, MarkdownDescription: "Scopes."},
					"resources":    schema.SetAttribute{ElementType: types.StringType, Computed: true, MarkdownDescription: "Resources the key is confined to."},
					"owner":        schema.StringAttribute{Computed: true, MarkdownDescription: "Owner."},
					"metadata":     schema.MapAttribute{ElementType: types.StringType, Computed: true, MarkdownDescription: "Metadata."},
					"expires_at":   rfc("Expiry, if any."),
					"enabled":      schema.BoolAttribute{Computed: true, MarkdownDescription: "Whether the key is enabled."},
					"status":       schema.StringAttribute{Computed: true, MarkdownDescription: "`active`, `disabled`, `expired` or `revoked`."},
					"start":        schema.StringAttribute{Computed: true, MarkdownDescription: "Safe-to-log beginning of the secret."},
					"created_at":   rfc("When the key was created."),
					"last_used_at": rfc("When the key last verified successfully, to the minute (a first use shows within seconds)."),
					"rotated_at":   rfc("When the key was last rotated."),
					"revoked_at":   rfc("When the key was revoked."),
				}},
			},
		},
	}
}

func (d *apiKeysDataSource) Configure(_ context.Context, req datasource.ConfigureRequest, resp *datasource.ConfigureResponse) {
	c, problem := configuredClient(req.ProviderData)
	if problem != "" {
		resp.Diagnostics.AddError("Unexpected provider data", problem)
	}
	d.client = c
}

func (d *apiKeysDataSource) Read(ctx context.Context, req datasource.ReadRequest, resp *datasource.ReadResponse) {
	var cfg apiKeysDataModel
	resp.Diagnostics.Append(req.Config.Get(ctx, &cfg)...)
	if resp.Diagnostics.HasError() {
		return
	}
	keys, err := d.client.ListKeys(ctx, cfg.App.ValueString(), cfg.Status.ValueString())
	if err != nil {
		resp.Diagnostics.AddError("Could not list keymint API keys of "+cfg.App.ValueString(), err.Error())
		return
	}
	cfg.ID = types.StringValue(cfg.App.ValueString() + "/" + cfg.Status.ValueString())
	cfg.Keys = make([]apiKeyDataModel, 0, len(keys))
	for _, k := range keys {
		cfg.Keys = append(cfg.Keys, keyData(k))
	}
	resp.Diagnostics.Append(resp.State.Set(ctx, &cfg)...)
}

func keyData(k wire.Key) apiKeyDataModel {
	metadata, _ := types.MapValueFrom(context.Background(), types.StringType, k.Metadata)
	t := func(v *time.Time) timetypes.RFC3339 { return keepTime(timetypes.NewRFC3339Null(), v) }
	return apiKeyDataModel{
		ID: types.StringValue(k.ID), Name: types.StringValue(k.Name), Scopes: stringSet(k.Scopes), Resources: stringSet(k.Resources),
		Owner: types.StringValue(k.Owner), Metadata: metadata, ExpiresAt: t(k.ExpiresAt), Enabled: types.BoolValue(k.Enabled),
		Status: types.StringValue(k.Status), Start: types.StringValue(k.Start), CreatedAt: t(&k.CreatedAt),
		LastUsedAt: t(k.LastUsedAt), RotatedAt: t(k.RotatedAt), RevokedAt: t(k.RevokedAt),
	}
}
