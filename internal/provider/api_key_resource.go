package provider

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/hashicorp/terraform-plugin-framework-timetypes/timetypes"
	"github.com/hashicorp/terraform-plugin-framework-validators/mapvalidator"
	"github.com/hashicorp/terraform-plugin-framework/diag"
	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/resource"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/booldefault"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/mapplanmodifier"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/planmodifier"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/setplanmodifier"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/stringdefault"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/stringplanmodifier"
	"github.com/hashicorp/terraform-plugin-framework/schema/validator"
	"github.com/hashicorp/terraform-plugin-framework/tfsdk"
	"github.com/hashicorp/terraform-plugin-framework/types"

	"github.com/keymint/terraform-provider-keymint/internal/keyformat"
	"github.com/keymint/terraform-provider-keymint/internal/vocab"
	"github.com/keymint/terraform-provider-keymint/internal/wire"
	"github.com/keymint/terraform-provider-keymint/keymint"
)

var (
	_ resource.ResourceWithConfigure      = (*apiKeyResource)(nil)
	_ resource.ResourceWithImportState    = (*apiKeyResource)(nil)
	_ resource.ResourceWithModifyPlan     = (*apiKeyResource)(nil)
	_ resource.ResourceWithValidateConfig = (*apiKeyResource)(nil)
)

// ValidateConfig checks the attributes that go together. It reads the three
// attributes directly: the framework's path-matching config validators walk
// the whole configuration for each key, a fifth of a large plan's CPU.
func (r *apiKeyResource) ValidateConfig(ctx context.Context, req resource.ValidateConfigRequest, resp *resource.ValidateConfigResponse) {
	var wo types.String
	var triggers types.Map
	var version types.Int64
	resp.Diagnostics.Append(req.Config.GetAttribute(ctx, path.Root("secret_wo"), &wo)...)
	resp.Diagnostics.Append(req.Config.GetAttribute(ctx, path.Root("secret_wo_version"), &version)...)
	resp.Diagnostics.Append(req.Config.GetAttribute(ctx, path.Root("rotation_triggers"), &triggers)...)
	if resp.Diagnostics.HasError() {
		return
	}
	switch {
	case !wo.IsNull() && version.IsNull():
		resp.Diagnostics.AddAttributeError(path.Root("secret_wo_version"), "Missing secret_wo_version",
			"secret_wo needs secret_wo_version: a write-only value is never stored, so Terraform compares the version to know when to send a new one. Set secret_wo_version = 1, and bump it to rotate.")
	case wo.IsNull() && !wo.IsUnknown() && !version.IsNull() && !version.IsUnknown():
		resp.Diagnostics.AddAttributeError(path.Root("secret_wo"), "Missing secret_wo",
			"secret_wo_version is set without secret_wo: give the secret (e.g. ephemeral.keymint_secret.<name>.value), or remove secret_wo_version.")
	}
	// Where the value is known at plan time (a literal, not an ephemeral's),
	// the server's rule for a supplied secret is checked now.
	if v := wo.ValueString(); !wo.IsNull() && !wo.IsUnknown() {
		if _, err := keyformat.Parse(v); err == nil && !keyformat.Strong(v) {
			resp.Diagnostics.AddAttributeError(path.Root("secret_wo"), "Guessable secret_wo", "secret_wo is too easy to guess: "+vocab.SecretRule+".")
		}
	}
	if !wo.IsNull() && !triggers.IsNull() {
		resp.Diagnostics.AddAttributeError(path.Root("rotation_triggers"), "rotation_triggers with secret_wo",
			"rotation_triggers rotates on the server, which would put a server-made secret in state; with secret_wo, bump secret_wo_version to rotate instead.")
	}
}

// writeOnlySecret is the configured secret_wo, or "".
func writeOnlySecret(ctx context.Context, config tfsdk.Config) (string, diag.Diagnostics) {
	var v types.String
	diags := config.GetAttribute(ctx, path.Root("secret_wo"), &v)
	return v.ValueString(), diags
}

// NewAPIKeyResource is the keymint_api_key resource.
func NewAPIKeyResource() resource.Resource { return &apiKeyResource{now: time.Now} }

type apiKeyResource struct {
	client *keymint.Client
	now    func() time.Time
}

type apiKeyModel struct {
	ID                  types.String      `tfsdk:"id"`
	App                 types.String      `tfsdk:"app"`
	Name                types.String      `tfsdk:"name"`
	Scopes              types.Set         `tfsdk:"scopes"`
	Resources           types.Set         `tfsdk:"resources"`
	Owner               types.String      `tfsdk:"owner"`
	Metadata            types.Map         `tfsdk:"metadata"`
	ExpiresAt           timetypes.RFC3339 `tfsdk:"expires_at"`
	Enabled             types.Bool        `tfsdk:"enabled"`
	RotationTriggers    types.Map         `tfsdk:"rotation_triggers"`
	RotationGracePeriod types.String      `tfsdk:"rotation_grace_period"`
	Keepers             types.Map         `tfsdk:"keepers"`
	Secret              types.String      `tfsdk:"secret"`
	SecretWO            types.String      `tfsdk:"secret_wo"`
	SecretWOVersion     types.Int64       `tfsdk:"secret_wo_version"`
	Start               types.String      `tfsdk:"start"`
	Status              types.String      `tfsdk:"status"`
	CreatedAt           timetypes.RFC3339 `tfsdk:"created_at"`
	RotatedAt           timetypes.RFC3339 `tfsdk:"rotated_at"`
}

func (r *apiKeyResource) Metadata(_ context.Context, req resource.MetadataRequest, resp *resource.MetadataResponse) {
	resp.TypeName = req.ProviderTypeName + "_api_key"
}

func (r *apiKeyResource) Schema(_ context.Context, _ resource.SchemaRequest, resp *resource.SchemaResponse) {
	keep := []planmodifier.String{stringplanmodifier.UseStateForUnknown()}
	replace := []planmodifier.String{stringplanmodifier.RequiresReplace()}
	resp.Schema = schema.Schema{
		MarkdownDescription: "An API key of an auth app. The secret is generated by the server, shown once, and kept in " +
			"Terraform state as a sensitive value. Keys are immutable: changing `app`, `scopes`, `resources`, `owner`, " +
			"`expires_at` or `keepers` creates a new key (use `create_before_destroy` so the new key exists before the " +
			"old one is revoked). Changing `rotation_triggers` rotates the secret in place: same `id`, new `secret`.",
		Attributes: map[string]schema.Attribute{
			"id": schema.StringAttribute{
				Computed: true, PlanModifiers: keep,
				MarkdownDescription: "Stable key id; it survives rotation.",
			},
			"app": schema.StringAttribute{
				Required: true, PlanModifiers: replace, Validators: []validator.String{slugValidator},
				MarkdownDescription: "Slug of the auth app the key belongs to. Changing it creates a new key.",
			},
			"name": schema.StringAttribute{
				Required: true, Validators: nameValidators,
				MarkdownDescription: fmt.Sprintf("Display name (1 to %d bytes); updated in place.", vocab.NameMaxLen),
			},
			"scopes": schema.SetAttribute{
				ElementType: types.StringType, Required: true, Validators: scopesValidators,
				PlanModifiers:       []planmodifier.Set{setplanmodifier.RequiresReplace()},
				MarkdownDescription: "Scopes the key carries; each must be among the app's. Changing them creates a new key.",
			},
			"resources": schema.SetAttribute{
				ElementType: types.StringType, Optional: true,
				PlanModifiers:       []planmodifier.Set{setplanmodifier.RequiresReplace()},
				MarkdownDescription: "Resource ids the key is confined to (e.g. `vault-1`); a confined key is refused for any other resource. Unset: not confined. Changing them creates a new key.",
			},
			"owner": schema.StringAttribute{
				Optional: true, PlanModifiers: replace, Validators: textValidators,
				MarkdownDescription: "Who the key is for (a customer, team or pipeline). Changing it creates a new key.",
			},
			"metadata": schema.MapAttribute{
				ElementType: types.StringType, Optional: true,
				Validators:          []validator.Map{mapvalidator.SizeAtMost(vocab.MetadataMaxEntries)},
				MarkdownDescription: fmt.Sprintf("String map returned by verify; updated in place (at most %d entries).", vocab.MetadataMaxEntries),
			},
			"expires_at": schema.StringAttribute{
				CustomType: timetypes.RFC3339Type{}, Optional: true, PlanModifiers: replace,
				MarkdownDescription: "RFC 3339 time after which the key no longer verifies; must be in the future when the key is created. Changing it creates a new key. Once it passes, the key stays in state with `status = \"expired\"` and a warning, and plans stay clean, until `expires_at` changes: then the key is replaced. For keys that both expire and rotate, derive it from a `time_rotating`: `expires_at = timeadd(time_rotating.<name>.rfc3339, \"1080h\")`.",
			},
			"enabled": schema.BoolAttribute{
				Optional: true, Computed: true, Default: booldefault.StaticBool(true),
				MarkdownDescription: "A disabled key verifies as `DISABLED` until enabled again; updated in place.",
			},
			"rotation_triggers": schema.MapAttribute{
				ElementType: types.StringType, Optional: true,
				MarkdownDescription: "Arbitrary values; any change rotates the secret in place through the rotate endpoint. Feed it `time_rotating.<name>.id` for scheduled rotation.",
			},
			"rotation_grace_period": schema.StringAttribute{
				Optional: true, Computed: true, Default: stringdefault.StaticString("0s"),
				Validators:          []validator.String{gracePeriodValidator},
				MarkdownDescription: "How long the previous secret keeps working after a rotation, as a Go duration (`0s` to `720h`). Default `0s`: it stops at once.",
			},
			"keepers": schema.MapAttribute{
				ElementType: types.StringType, Optional: true,
				PlanModifiers:       []planmodifier.Map{mapplanmodifier.RequiresReplace()},
				MarkdownDescription: "Arbitrary values; any change creates a brand-new key (new `id`), as with hashicorp/random.",
			},
			"secret": schema.StringAttribute{
				Computed: true, Sensitive: true, PlanModifiers: keep,
				MarkdownDescription: "The key itself, generated by the server: set at create and at each rotation, kept in state as a sensitive value, never shown in plans. Null with `secret_wo`, and after import (the server keeps only a hash).",
			},
			"secret_wo": schema.StringAttribute{
				Optional: true, Sensitive: true, WriteOnly: true,
				MarkdownDescription: "Write-only (Terraform >= 1.11, OpenTofu >= 1.11): the key's secret, supplied rather than generated by the server, typically from the ephemeral `keymint_secret`. Its 32 random characters must carry at least 128 bits of randomness by keymint's conservative estimate (repeated, sequential or low-variety bodies are refused, at plan time when the value is known); a key of the reserved `keymint` app never takes one. It is sent to the server at create and when `secret_wo_version` changes, and is never stored in state or plan files; `secret` stays null. Requires `secret_wo_version`; not with `rotation_triggers`.",
			},
			"secret_wo_version": schema.Int64Attribute{
				Optional:            true,
				MarkdownDescription: "Version of `secret_wo`: a change rotates the key in place (same `id`) to the current `secret_wo`, with `rotation_grace_period` for the previous secret.",
			},
			"start": schema.StringAttribute{
				Computed: true, PlanModifiers: keep,
				MarkdownDescription: "Safe-to-log beginning of the secret, e.g. `acme_live_Ab3dE9`.",
			},
			"status": schema.StringAttribute{
				Computed: true, PlanModifiers: keep, // ModifyPlan sets it when enabled changes
				MarkdownDescription: "`active`, `disabled` or `expired` (a revoked key leaves state).",
			},
			"created_at": schema.StringAttribute{
				CustomType: timetypes.RFC3339Type{}, Computed: true, PlanModifiers: keep,
				MarkdownDescription: "When the key was created.",
			},
			"rotated_at": schema.StringAttribute{
				CustomType: timetypes.RFC3339Type{}, Computed: true, PlanModifiers: keep,
				MarkdownDescription: "When the secret was last rotated; null if never.",
			},
		},
	}
}

func (r *apiKeyResource) Configure(_ context.Context, req resource.ConfigureRequest, resp *resource.ConfigureResponse) {
	c, problem := configuredClient(req.ProviderData)
	if problem != "" {
		resp.Diagnostics.AddError("Unexpected provider data", problem)
	}
	r.client = c
}

// ModifyPlan checks at plan time what can be known then, and marks what a
// rotation will change as unknown.
func (r *apiKeyResource) ModifyPlan(ctx context.Context, req resource.ModifyPlanRequest, resp *resource.ModifyPlanResponse) {
	if req.Plan.Raw.IsNull() {
		return // destroy
	}
	if req.Plan.Raw.Equal(req.State.Raw) {
		return // nothing changes: the common case in a large no-change plan, kept cheap
	}
	var plan apiKeyModel
	resp.Diagnostics.Append(decodeModel(ctx, req.Plan.Raw, req.Plan.Schema, &plan)...)
	if resp.Diagnostics.HasError() {
		return
	}
	if !plan.Enabled.IsUnknown() {
		plan.Status = types.StringValue(r.plannedStatus(plan))
	}
	if !plan.SecretWOVersion.IsNull() {
		plan.Secret = types.StringNull() // the secret is the configuration's, never in state
	}
	if req.State.Raw.IsNull() {
		// A new key: its expiry must lie ahead. (Only at create: an existing
		// key's expiry passing is handled by Read, not by failing every plan.)
		if t, diags := plan.ExpiresAt.ValueRFC3339Time(); !plan.ExpiresAt.IsNull() && !plan.ExpiresAt.IsUnknown() && !diags.HasError() && !t.After(r.now()) {
			resp.Diagnostics.AddAttributeError(path.Root("expires_at"), "expires_at is in the past",
				fmt.Sprintf("A new key must expire in the future; %s has passed. Choose a later time, or remove expires_at for a key that does not expire.", plan.ExpiresAt.ValueString()))
		}
	} else {
		var state apiKeyModel
		resp.Diagnostics.Append(decodeModel(ctx, req.State.Raw, req.State.Schema, &state)...)
		if resp.Diagnostics.HasError() {
			return
		}
		if state.Status.ValueString() == "expired" && plan.ExpiresAt.Equal(state.ExpiresAt) {
			plan.Status = state.Status // the server's clock said so at refresh
		}
		if !plan.RotationTriggers.Equal(state.RotationTriggers) {
			plan.Secret = types.StringUnknown()
			plan.Start = types.StringUnknown()
			plan.RotatedAt = timetypes.NewRFC3339Unknown()
		}
		if !plan.SecretWOVersion.Equal(state.SecretWOVersion) && !plan.SecretWOVersion.IsNull() {
			plan.Start = types.StringUnknown()
			plan.RotatedAt = timetypes.NewRFC3339Unknown()
		}
	}
	resp.Diagnostics.Append(encodeModel(ctx, &resp.Plan.Raw, resp.Plan.Schema, &plan)...)
}

// plannedStatus is the status the key will have after apply, as far as plan
// can tell: expired once expires_at has passed, else by enabled.
func (r *apiKeyResource) plannedStatus(plan apiKeyModel) string {
	if t, diags := plan.ExpiresAt.ValueRFC3339Time(); !plan.ExpiresAt.IsNull() && !plan.ExpiresAt.IsUnknown() && !diags.HasError() && !t.After(r.now()) {
		return "expired"
	}
	if plan.Enabled.ValueBool() {
		return "active"
	}
	return "disabled"
}

// fromAPI copies the key's server-side fields into m. It keeps m's null for
// optional fields the server reports as empty, and m's spelling of equal times.
func (m *apiKeyModel) fromAPI(k wire.Key) {
	m.ID = types.StringValue(k.ID)
	m.App = types.StringValue(k.App)
	m.Name = types.StringValue(k.Name)
	m.Scopes = stringSet(k.Scopes)
	if !(m.Resources.IsNull() && len(k.Resources) == 0) {
		m.Resources = stringSet(k.Resources)
	}
	if !(m.Owner.IsNull() && k.Owner == "") {
		m.Owner = types.StringValue(k.Owner)
	}
	if !(m.Metadata.IsNull() && len(k.Metadata) == 0) {
		m.Metadata, _ = types.MapValueFrom(context.Background(), types.StringType, k.Metadata)
	}
	m.ExpiresAt = keepTime(m.ExpiresAt, k.ExpiresAt)
	m.Enabled = types.BoolValue(k.Enabled)
	m.Status = types.StringValue(k.Status)
	m.Start = types.StringValue(k.Start)
	m.CreatedAt = keepTime(m.CreatedAt, &k.CreatedAt)
	m.RotatedAt = keepTime(m.RotatedAt, k.RotatedAt)
}

// keepTime is t as state keeps it: prev's spelling if it is the same
// instant, else t to the nanosecond, exactly as the server has it (so a later
// comparison with the server's value is exact).
func keepTime(prev timetypes.RFC3339, t *time.Time) timetypes.RFC3339 {
	if t == nil {
		return timetypes.NewRFC3339Null()
	}
	if p, diags := prev.ValueRFC3339Time(); !prev.IsNull() && !prev.IsUnknown() && !diags.HasError() && p.Equal(*t) {
		return prev
	}
	return timetypes.NewRFC3339ValueMust(t.UTC().Format(time.RFC3339Nano))
}

func mapStrings(m types.Map) map[string]string {
	if m.IsNull() || m.IsUnknown() {
		return nil
	}
	out := make(map[string]string, len(m.Elements()))
	for k, v := range m.Elements() {
		out[k] = v.(types.String).ValueString()
	}
	return out
}

func (r *apiKeyResource) Create(ctx context.Context, req resource.CreateRequest, resp *resource.CreateResponse) {
	var plan apiKeyModel
	resp.Diagnostics.Append(decodeModel(ctx, req.Plan.Raw, req.Plan.Schema, &plan)...)
	if resp.Diagnostics.HasError() {
		return
	}
	supplied, diags := writeOnlySecret(ctx, req.Config)
	resp.Diagnostics.Append(diags...)
	if resp.Diagnostics.HasError() {
		return
	}
	enabled := plan.Enabled.ValueBool()
	k, err := r.client.CreateKey(ctx, plan.App.ValueString(), wire.CreateKey{
		Name: plan.Name.ValueString(), Scopes: setStrings(plan.Scopes), Resources: setStrings(plan.Resources),
		Owner: plan.Owner.ValueString(), Metadata: mapStrings(plan.Metadata), ExpiresAt: plan.ExpiresAt.ValueString(),
		Enabled: &enabled, Secret: supplied,
	})
	if err != nil {
		detail := err.Error()
		if keymint.IsNotFound(err) {
			detail += "\n\nThe app must exist first: create it with keymint_auth_app and reference its slug (app = keymint_auth_app.<name>.slug)."
		}
		resp.Diagnostics.AddError("Could not create keymint API key", detail)
		return
	}
	plan.fromAPI(k.Key)
	plan.Secret = types.StringNull()
	if supplied == "" {
		plan.Secret = types.StringValue(k.Secret)
	}
	resp.Diagnostics.Append(encodeModel(ctx, &resp.State.Raw, resp.State.Schema, &plan)...)
}

// goneReason says why a key read from the server can no longer be managed, or "".
// An expired key is not gone: it stays in state (see Read).
func goneReason(k wire.Key, err error) string {
	switch {
	case keymint.IsNotFound(err):
		return "was deleted outside Terraform (or its app was)"
	case err != nil:
		return ""
	case k.Status == "revoked":
		return "was revoked outside Terraform"
	}
	return ""
}

func (r *apiKeyResource) Read(ctx context.Context, req resource.ReadRequest, resp *resource.ReadResponse) {
	var state apiKeyModel
	resp.Diagnostics.Append(decodeModel(ctx, req.State.Raw, req.State.Schema, &state)...)
	if resp.Diagnostics.HasError() {
		return
	}
	k, err := r.client.GetKey(ctx, state.ID.ValueString())
	if reason := goneReason(k, err); reason != "" {
		resp.Diagnostics.AddWarning("keymint API key "+reason,
			fmt.Sprintf("API key %s %s. It is removed from state; the next apply creates a new key with a new secret.", state.ID.ValueString(), reason))
		resp.State.RemoveResource(ctx)
		return
	}
	if err != nil {
		resp.Diagnostics.AddError("Could not read keymint API key", err.Error())
		return
	}
	if k.Status == "expired" {
		// Kept in state, so plans stay clean: removing it would plan a new key
		// with the same expires_at, which has passed, and fail every plan.
		resp.Diagnostics.AddWarning("keymint API key expired",
			fmt.Sprintf("API key %s expired at %s and no longer verifies. It stays in state as expired until its configuration changes: "+
				"set a later expires_at (or derive it from a time_rotating, e.g. timeadd(time_rotating.<name>.rfc3339, \"1080h\")) to replace it with a new key.",
				k.ID, k.ExpiresAt.Format(time.RFC3339)))
	}
	if rotatedElsewhere(state, k) {
		resp.Diagnostics.AddWarning("keymint API key rotated outside Terraform",
			fmt.Sprintf("API key %s was rotated at %s, outside Terraform: the secret in state is the previous one and stops working when its grace period ends. "+
				"Change rotation_triggers to rotate it again from Terraform and get a working secret into state.", k.ID, k.RotatedAt.Format(time.RFC3339)))
	}
	refreshed := state
	refreshed.fromAPI(k)
	if sameModel(&refreshed, &state) {
		return // resp.State holds the prior state already
	}
	resp.Diagnostics.Append(encodeModel(ctx, &resp.State.Raw, resp.State.Schema, &refreshed)...)
}

func (m *apiKeyModel) fields() []field {
	return []field{{"id", &m.ID}, {"app", &m.App}, {"name", &m.Name}, {"scopes", &m.Scopes}, {"resources", &m.Resources},
		{"owner", &m.Owner}, {"metadata", &m.Metadata}, {"expires_at", &m.ExpiresAt}, {"enabled", &m.Enabled},
		{"rotation_triggers", &m.RotationTriggers}, {"rotation_grace_period", &m.RotationGracePeriod}, {"keepers", &m.Keepers},
		{"secret", &m.Secret}, {"secret_wo", &m.SecretWO}, {"secret_wo_version", &m.SecretWOVersion}, {"start", &m.Start},
		{"status", &m.Status}, {"created_at", &m.CreatedAt}, {"rotated_at", &m.RotatedAt}}
}

// rotatedElsewhere reports whether the server rotated the key since the
// secret in state was set. It compares at the precision state holds: whole
// seconds in states written by provider versions before 0.1.0 kept them so.
func rotatedElsewhere(state apiKeyModel, k wire.Key) bool {
	if state.Secret.IsNull() && state.SecretWOVersion.IsNull() || k.RotatedAt == nil {
		return false // imported (no secret to go stale) or never rotated
	}
	prev, diags := state.RotatedAt.ValueRFC3339Time()
	if state.RotatedAt.IsNull() || diags.HasError() {
		return true
	}
	server := *k.RotatedAt
	if !strings.Contains(state.RotatedAt.ValueString(), ".") {
		server = server.Truncate(time.Second)
	}
	return !prev.Equal(server)
}

func (r *apiKeyResource) Update(ctx context.Context, req resource.UpdateRequest, resp *resource.UpdateResponse) {
	var plan, state apiKeyModel
	resp.Diagnostics.Append(decodeModel(ctx, req.Plan.Raw, req.Plan.Schema, &plan)...)
	resp.Diagnostics.Append(decodeModel(ctx, req.State.Raw, req.State.Schema, &state)...)
	if resp.Diagnostics.HasError() {
		return
	}
	id := state.ID.ValueString()
	key := wire.Key{}
	if !plan.Name.Equal(state.Name) || !plan.Metadata.Equal(state.Metadata) || !plan.Enabled.Equal(state.Enabled) {
		name, enabled := plan.Name.ValueString(), plan.Enabled.ValueBool()
		metadata := mapStrings(plan.Metadata)
		if metadata == nil {
			metadata = map[string]string{}
		}
		k, err := r.client.UpdateKey(ctx, id, wire.UpdateKey{Name: &name, Metadata: &metadata, Enabled: &enabled})
		if err != nil {
			resp.Diagnostics.AddError("Could not update keymint API key", err.Error())
			return
		}
		key = k
	}
	plan.Secret, plan.Start, plan.RotatedAt = state.Secret, state.Start, state.RotatedAt
	rotateTo := ""
	if !plan.SecretWOVersion.Equal(state.SecretWOVersion) && !plan.SecretWOVersion.IsNull() {
		var diags diag.Diagnostics
		rotateTo, diags = writeOnlySecret(ctx, req.Config)
		resp.Diagnostics.Append(diags...)
		if resp.Diagnostics.HasError() {
			return
		}
	}
	if !plan.RotationTriggers.Equal(state.RotationTriggers) || rotateTo != "" {
		k, err := r.client.RotateKey(ctx, id, wire.RotateKey{GracePeriod: plan.RotationGracePeriod.ValueString(), Secret: rotateTo})
		if err != nil {
			detail := err.Error()
			if keymint.StatusCode(err) == http.StatusConflict {
				detail += "\n\nA revoked key cannot be rotated; run terraform apply -replace=<address> to create a new one."
			}
			resp.Diagnostics.AddError("Could not rotate keymint API key", detail)
			return
		}
		key = k.Key
		plan.Secret = types.StringValue(k.Secret)
		if rotateTo != "" {
			plan.Secret = types.StringNull() // the configuration's, never in state
		}
	}
	if key.ID == "" {
		// Only Terraform-side attributes changed (grace period): nothing to send.
		var err error
		if key, err = r.client.GetKey(ctx, id); err != nil {
			resp.Diagnostics.AddError("Could not read keymint API key", err.Error())
			return
		}
	}
	planned := plan.Status
	plan.fromAPI(key)
	if !planned.IsUnknown() {
		// The key may have expired between plan and apply; Terraform holds
		// apply to the plan, and the next refresh reports the expiry.
		plan.Status = planned
	}
	resp.Diagnostics.Append(encodeModel(ctx, &resp.State.Raw, resp.State.Schema, &plan)...)
}

func (r *apiKeyResource) Delete(ctx context.Context, req resource.DeleteRequest, resp *resource.DeleteResponse) {
	var id types.String
	resp.Diagnostics.Append(req.State.GetAttribute(ctx, path.Root("id"), &id)...)
	if resp.Diagnostics.HasError() {
		return
	}
	if err := r.client.RevokeKey(ctx, id.ValueString()); err != nil && !keymint.IsNotFound(err) {
		resp.Diagnostics.AddError("Could not revoke keymint API key", err.Error())
	}
}

// ImportState imports a key by id. The secret cannot be imported: the server
// keeps only its hash, so it stays null until the next rotation.
func (r *apiKeyResource) ImportState(ctx context.Context, req resource.ImportStateRequest, resp *resource.ImportStateResponse) {
	resp.Diagnostics.Append(resp.State.SetAttribute(ctx, path.Root("id"), req.ID)...)
	resp.Diagnostics.Append(resp.State.SetAttribute(ctx, path.Root("rotation_grace_period"), "0s")...)
}
