package provider

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/hashicorp/terraform-plugin-framework-timetypes/timetypes"
	"github.com/hashicorp/terraform-plugin-framework-validators/mapvalidator"
	"github.com/hashicorp/terraform-plugin-framework-validators/stringvalidator"
	"github.com/hashicorp/terraform-plugin-framework/ephemeral"
	"github.com/hashicorp/terraform-plugin-framework/ephemeral/schema"
	"github.com/hashicorp/terraform-plugin-framework/schema/validator"
	"github.com/hashicorp/terraform-plugin-framework/types"

	"github.com/keymint/terraform-provider-keymint/internal/vocab"
	"github.com/keymint/terraform-provider-keymint/internal/wire"
	"github.com/keymint/terraform-provider-keymint/keymint"
)

var (
	_ ephemeral.EphemeralResourceWithConfigure = (*apiKeyEphemeral)(nil)
	_ ephemeral.EphemeralResourceWithClose     = (*apiKeyEphemeral)(nil)
)

// NewAPIKeyEphemeral is the ephemeral keymint_api_key: a key for this run only.
func NewAPIKeyEphemeral() ephemeral.EphemeralResource { return &apiKeyEphemeral{now: time.Now} }

type apiKeyEphemeral struct {
	client *keymint.Client
	now    func() time.Time
}

type apiKeyEphemeralModel struct {
	App       types.String      `tfsdk:"app"`
	Name      types.String      `tfsdk:"name"`
	Scopes    types.Set         `tfsdk:"scopes"`
	Resources types.Set         `tfsdk:"resources"`
	Metadata  types.Map         `tfsdk:"metadata"`
	TTL       types.String      `tfsdk:"ttl"`
	ID        types.String      `tfsdk:"id"`
	Secret    types.String      `tfsdk:"secret"`
	ExpiresAt timetypes.RFC3339 `tfsdk:"expires_at"`
}

// ephemeralMaxTTL bounds an ephemeral key's life: a run, not a standing credential.
const ephemeralMaxTTL = 24 * time.Hour

func (r *apiKeyEphemeral) Metadata(_ context.Context, req ephemeral.MetadataRequest, resp *ephemeral.MetadataResponse) {
	resp.TypeName = req.ProviderTypeName + "_api_key"
}

func (r *apiKeyEphemeral) Schema(_ context.Context, _ ephemeral.SchemaRequest, resp *ephemeral.SchemaResponse) {
	resp.Schema = schema.Schema{
		MarkdownDescription: "A short-lived API key for this Terraform run only, never in state or plan files (Terraform >= 1.10, " +
			"OpenTofu >= 1.11). Opening it creates a key that expires after `ttl`; closing it, at the end of the run, revokes it. " +
			"Use it for a narrow credential the run needs, e.g. as the `token` of an aliased `keymint` provider (a key of the " +
			"`keymint` app) or handed to another provider. Terraform opens it at plan and again at apply, so each run leaves " +
			"one or two revoked keys behind (listed with status `revoked`, as every revoked key is).",
		Attributes: map[string]schema.Attribute{
			"app": schema.StringAttribute{Required: true, Validators: []validator.String{slugValidator},
				MarkdownDescription: "Slug of the auth app; `keymint` for a management credential."},
			"name": schema.StringAttribute{Required: true, Validators: nameValidators,
				MarkdownDescription: "Display name."},
			"scopes": schema.SetAttribute{ElementType: types.StringType, Required: true, Validators: scopesValidators,
				MarkdownDescription: "Scopes the key carries; each must be among the app's."},
			"resources": schema.SetAttribute{ElementType: types.StringType, Optional: true,
				MarkdownDescription: "Resource ids the key is confined to (for a management credential: app slugs)."},
			"metadata": schema.MapAttribute{ElementType: types.StringType, Optional: true,
				Validators:          []validator.Map{mapvalidator.SizeAtMost(vocab.MetadataMaxEntries)},
				MarkdownDescription: fmt.Sprintf("String map returned by verify (at most %d entries).", vocab.MetadataMaxEntries)},
			"ttl": schema.StringAttribute{Required: true, Validators: []validator.String{durationValidator{lo: time.Minute, hi: ephemeralMaxTTL}},
				MarkdownDescription: fmt.Sprintf("How long the key lives, as a Go duration from `1m` to `%s`; it is also revoked when the run ends.", ephemeralMaxTTL)},
			"id": schema.StringAttribute{Computed: true, MarkdownDescription: "The key's id."},
			"secret": schema.StringAttribute{Computed: true, Sensitive: true,
				MarkdownDescription: "The key itself."},
			"expires_at": schema.StringAttribute{CustomType: timetypes.RFC3339Type{}, Computed: true,
				MarkdownDescription: "When the key expires."},
		},
	}
}

func (r *apiKeyEphemeral) Configure(_ context.Context, req ephemeral.ConfigureRequest, resp *ephemeral.ConfigureResponse) {
	c, problem := configuredClient(req.ProviderData)
	if problem != "" {
		resp.Diagnostics.AddError("Unexpected provider data", problem)
	}
	r.client = c
}

// privateKeyID is where Open leaves the key's id for Close.
const privateKeyID = "key_id"

func (r *apiKeyEphemeral) Open(ctx context.Context, req ephemeral.OpenRequest, resp *ephemeral.OpenResponse) {
	var m apiKeyEphemeralModel
	resp.Diagnostics.Append(req.Config.Get(ctx, &m)...)
	if resp.Diagnostics.HasError() {
		return
	}
	ttl, _ := time.ParseDuration(m.TTL.ValueString()) // validated
	expires := r.now().Add(ttl).UTC()
	k, err := r.client.CreateKey(ctx, m.App.ValueString(), wire.CreateKey{
		Name: m.Name.ValueString(), Scopes: setStrings(m.Scopes), Resources: setStrings(m.Resources),
		Metadata: mapStrings(m.Metadata), ExpiresAt: expires.Format(time.RFC3339Nano),
	})
	if err != nil {
		resp.Diagnostics.AddError("Could not create ephemeral keymint API key", err.Error())
		return
	}
	m.ID = types.StringValue(k.Key.ID)
	m.Secret = types.StringValue(k.Secret)
	m.ExpiresAt = keepTime(timetypes.NewRFC3339Null(), k.Key.ExpiresAt)
	private, _ := json.Marshal(k.Key.ID) // private state holds JSON
	resp.Diagnostics.Append(resp.Private.SetKey(ctx, privateKeyID, private)...)
	resp.Diagnostics.Append(resp.Result.Set(ctx, &m)...)
}

// Close revokes the key: it was for this run only.
func (r *apiKeyEphemeral) Close(ctx context.Context, req ephemeral.CloseRequest, resp *ephemeral.CloseResponse) {
	private, diags := req.Private.GetKey(ctx, privateKeyID)
	resp.Diagnostics.Append(diags...)
	var id string
	if len(private) == 0 || resp.Diagnostics.HasError() || json.Unmarshal(private, &id) != nil {
		return
	}
	if err := r.client.RevokeKey(ctx, id); err != nil && !keymint.IsNotFound(err) {
		resp.Diagnostics.AddError("Could not revoke ephemeral keymint API key",
			fmt.Sprintf("%v. Key %s expires on its own at the end of its ttl; revoke it by hand to end it sooner.", err, id))
	}
}

// nameValidators is what the server requires of a name, checked at plan time.
var nameValidators = []validator.String{stringvalidator.LengthBetween(1, vocab.NameMaxLen), visibleText{}}
