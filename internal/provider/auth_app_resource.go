package provider

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"github.com/hashicorp/terraform-plugin-framework-timetypes/timetypes"
	"github.com/hashicorp/terraform-plugin-framework-validators/int64validator"
	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/resource"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/booldefault"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/planmodifier"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/stringdefault"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/stringplanmodifier"
	"github.com/hashicorp/terraform-plugin-framework/schema/validator"
	"github.com/hashicorp/terraform-plugin-framework/types"

	"github.com/keymint/terraform-provider-keymint/internal/vocab"
	"github.com/keymint/terraform-provider-keymint/internal/wire"
	"github.com/keymint/terraform-provider-keymint/keymint"
)

var (
	_ resource.ResourceWithConfigure   = (*authAppResource)(nil)
	_ resource.ResourceWithImportState = (*authAppResource)(nil)
)

// NewAuthAppResource is the keymint_auth_app resource.
func NewAuthAppResource() resource.Resource { return &authAppResource{} }

type authAppResource struct{ client *keymint.Client }

type rateLimitModel struct {
	Requests types.Int64  `tfsdk:"requests"`
	Window   types.String `tfsdk:"window"`
}

type authAppModel struct {
	ID           types.String      `tfsdk:"id"`
	Slug         types.String      `tfsdk:"slug"`
	Name         types.String      `tfsdk:"name"`
	Description  types.String      `tfsdk:"description"`
	Scopes       types.Set         `tfsdk:"scopes"`
	KeyPrefix    types.String      `tfsdk:"key_prefix"`
	RateLimit    *rateLimitModel   `tfsdk:"rate_limit"`
	ForceDestroy types.Bool        `tfsdk:"force_destroy"`
	CreatedAt    timetypes.RFC3339 `tfsdk:"created_at"`
}

func (r *authAppResource) Metadata(_ context.Context, req resource.MetadataRequest, resp *resource.MetadataResponse) {
	resp.TypeName = req.ProviderTypeName + "_auth_app"
}

func (r *authAppResource) Schema(_ context.Context, _ resource.SchemaRequest, resp *resource.SchemaResponse) {
	resp.Schema = schema.Schema{
		MarkdownDescription: "An auth app: one product's API, the scopes its keys may carry, their key prefix and rate limit. " +
			"API keys (`keymint_api_key`) are issued under an app.",
		Attributes: map[string]schema.Attribute{
			"id": schema.StringAttribute{
				Computed:            true,
				MarkdownDescription: "The app's slug.",
				PlanModifiers:       []planmodifier.String{stringplanmodifier.UseStateForUnknown()},
			},
			"slug": schema.StringAttribute{
				Required:            true,
				MarkdownDescription: "Unique, immutable identifier: 2-63 lowercase letters, digits and `-`. Changing it replaces the app.",
				Validators:          []validator.String{slugValidator},
				PlanModifiers:       []planmodifier.String{stringplanmodifier.RequiresReplace()},
			},
			"name": schema.StringAttribute{
				Required:            true,
				Validators:          textValidators,
				MarkdownDescription: "Display name.",
			},
			"description": schema.StringAttribute{
				Optional:            true,
				Validators:          textValidators,
				Computed:            true,
				Default:             stringdefault.StaticString(""),
				MarkdownDescription: "Free-form description.",
			},
			"scopes": schema.SetAttribute{
				ElementType:         types.StringType,
				Required:            true,
				MarkdownDescription: "The scopes this app's keys may carry, e.g. `read:data`. Removing a scope that a live key holds fails, naming the keys.",
				Validators:          scopesValidators,
			},
			"key_prefix": schema.StringAttribute{
				Required:            true,
				MarkdownDescription: "Prefix of every key of this app (e.g. `acme_live` gives `acme_live_...`), unique across apps. Changing it replaces the app.",
				Validators:          []validator.String{prefixValidator},
				PlanModifiers:       []planmodifier.String{stringplanmodifier.RequiresReplace()},
			},
			"rate_limit": schema.SingleNestedAttribute{
				Optional:            true,
				MarkdownDescription: "Verifies allowed per key: never more than `requests` successful verifies in any interval of length `window` (a sliding window, counted at verify; a key may be refused up to `window`/16 early, never allowed one too many).",
				Attributes: map[string]schema.Attribute{
					"requests": schema.Int64Attribute{
						Required:            true,
						MarkdownDescription: fmt.Sprintf("Successful verifies allowed in any interval of length `window` (1 to %d).", vocab.MaxRateRequests),
						Validators:          []validator.Int64{int64validator.Between(1, vocab.MaxRateRequests)},
					},
					"window": schema.StringAttribute{
						Required:            true,
						MarkdownDescription: "Window as a Go duration, e.g. `1m` or `24h`; at most `720h`.",
						Validators:          []validator.String{rateWindowValidator},
					},
				},
			},
			"force_destroy": schema.BoolAttribute{
				Optional:            true,
				Computed:            true,
				Default:             booldefault.StaticBool(false),
				MarkdownDescription: "Destroying an app that still has live keys fails unless this is `true`, which revokes them first.",
			},
			"created_at": schema.StringAttribute{
				CustomType:          timetypes.RFC3339Type{},
				Computed:            true,
				MarkdownDescription: "When the app was created (RFC 3339).",
				PlanModifiers:       []planmodifier.String{stringplanmodifier.UseStateForUnknown()},
			},
		},
	}
}

func (r *authAppResource) Configure(_ context.Context, req resource.ConfigureRequest, resp *resource.ConfigureResponse) {
	c, problem := configuredClient(req.ProviderData)
	if problem != "" {
		resp.Diagnostics.AddError("Unexpected provider data", problem)
	}
	r.client = c
}

func rateLimitToWire(m *rateLimitModel) *wire.RateLimit {
	if m == nil {
		return nil
	}
	return &wire.RateLimit{Requests: int(m.Requests.ValueInt64()), Window: m.Window.ValueString()}
}

// fromAPI copies the app into m, keeping m's spelling of values the server
// normalises (a window of "1m" comes back as "1m0s").
func (m *authAppModel) fromAPI(a wire.App) {
	m.ID = types.StringValue(a.Slug)
	m.Slug = types.StringValue(a.Slug)
	m.Name = types.StringValue(a.Name)
	m.Description = types.StringValue(a.Description)
	m.Scopes = stringSet(a.Scopes)
	m.KeyPrefix = types.StringValue(a.KeyPrefix)
	m.CreatedAt = timetypes.NewRFC3339TimeValue(a.CreatedAt)
	if a.RateLimit == nil {
		m.RateLimit = nil
	} else {
		window := a.RateLimit.Window
		if m.RateLimit != nil && sameDuration(m.RateLimit.Window.ValueString(), window) {
			window = m.RateLimit.Window.ValueString()
		}
		m.RateLimit = &rateLimitModel{Requests: types.Int64Value(int64(a.RateLimit.Requests)), Window: types.StringValue(window)}
	}
	if m.ForceDestroy.IsNull() || m.ForceDestroy.IsUnknown() {
		m.ForceDestroy = types.BoolValue(false)
	}
}

func sameDuration(a, b string) bool {
	da, err1 := time.ParseDuration(a)
	db, err2 := time.ParseDuration(b)
	return err1 == nil && err2 == nil && da == db
}

func (r *authAppResource) Create(ctx context.Context, req resource.CreateRequest, resp *resource.CreateResponse) {
	var plan authAppModel
	resp.Diagnostics.Append(req.Plan.Get(ctx, &plan)...)
	if resp.Diagnostics.HasError() {
		return
	}
	a, err := r.client.CreateApp(ctx, wire.CreateApp{
		Slug: plan.Slug.ValueString(), Name: plan.Name.ValueString(), Description: plan.Description.ValueString(),
		Scopes: setStrings(plan.Scopes), KeyPrefix: plan.KeyPrefix.ValueString(), RateLimit: rateLimitToWire(plan.RateLimit),
	})
	if err != nil {
		hint := ""
		if keymint.ProblemCode(err) == "slug_taken" { // not key_prefix_taken: that app may be one this token cannot see
			hint = "\n\nTo manage the existing app, import it: terraform import <address> " + plan.Slug.ValueString()
		}
		resp.Diagnostics.AddError("Could not create keymint auth app", err.Error()+hint)
		return
	}
	plan.fromAPI(a)
	resp.Diagnostics.Append(resp.State.Set(ctx, &plan)...)
}

func (r *authAppResource) Read(ctx context.Context, req resource.ReadRequest, resp *resource.ReadResponse) {
	var state authAppModel
	resp.Diagnostics.Append(req.State.Get(ctx, &state)...)
	if resp.Diagnostics.HasError() {
		return
	}
	a, err := r.client.GetApp(ctx, state.Slug.ValueString())
	if keymint.IsNotFound(err) {
		resp.Diagnostics.AddWarning("keymint auth app deleted outside Terraform",
			"The auth app "+state.Slug.ValueString()+" no longer exists on the server; it is removed from state and the next apply creates it again.")
		resp.State.RemoveResource(ctx)
		return
	}
	if err != nil {
		resp.Diagnostics.AddError("Could not read keymint auth app", err.Error())
		return
	}
	state.fromAPI(a)
	resp.Diagnostics.Append(resp.State.Set(ctx, &state)...)
}

func (r *authAppResource) Update(ctx context.Context, req resource.UpdateRequest, resp *resource.UpdateResponse) {
	var plan authAppModel
	resp.Diagnostics.Append(req.Plan.Get(ctx, &plan)...)
	if resp.Diagnostics.HasError() {
		return
	}
	name, desc := plan.Name.ValueString(), plan.Description.ValueString()
	a, err := r.client.UpdateApp(ctx, plan.Slug.ValueString(), wire.UpdateApp{
		Name: &name, Description: &desc, Scopes: setStrings(plan.Scopes),
		RateLimit: wire.Nullable[wire.RateLimit]{Set: true, Value: rateLimitToWire(plan.RateLimit)},
	})
	if err != nil {
		resp.Diagnostics.AddError("Could not update keymint auth app", err.Error())
		return
	}
	plan.fromAPI(a)
	resp.Diagnostics.Append(resp.State.Set(ctx, &plan)...)
}

func (r *authAppResource) Delete(ctx context.Context, req resource.DeleteRequest, resp *resource.DeleteResponse) {
	var state authAppModel
	resp.Diagnostics.Append(req.State.Get(ctx, &state)...)
	if resp.Diagnostics.HasError() {
		return
	}
	err := r.client.DeleteApp(ctx, state.Slug.ValueString(), state.ForceDestroy.ValueBool())
	switch {
	case err == nil || keymint.IsNotFound(err):
	case keymint.StatusCode(err) == http.StatusConflict:
		resp.Diagnostics.AddError("keymint auth app still has live keys",
			err.Error()+"\n\nRevoke those keys (destroy their keymint_api_key resources), or set force_destroy = true on this app "+
				"and apply before destroying, to revoke them along with the app.")
	default:
		resp.Diagnostics.AddError("Could not delete keymint auth app", err.Error())
	}
}

func (r *authAppResource) ImportState(ctx context.Context, req resource.ImportStateRequest, resp *resource.ImportStateResponse) {
	resp.Diagnostics.Append(resp.State.SetAttribute(ctx, path.Root("slug"), req.ID)...)
	resp.Diagnostics.Append(resp.State.SetAttribute(ctx, path.Root("force_destroy"), false)...)
}

func stringSet(s []string) types.Set {
	vals := make([]string, len(s))
	copy(vals, s)
	v, _ := types.SetValueFrom(context.Background(), types.StringType, vals)
	return v
}

func setStrings(s types.Set) []string {
	if s.IsNull() || s.IsUnknown() {
		return nil
	}
	out := make([]string, 0, len(s.Elements()))
	for _, e := range s.Elements() {
		out = append(out, e.(types.String).ValueString())
	}
	return out
}
