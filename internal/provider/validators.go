package provider

import (
	"context"
	"fmt"
	"time"

	"github.com/hashicorp/terraform-plugin-framework-validators/setvalidator"
	"github.com/hashicorp/terraform-plugin-framework-validators/stringvalidator"
	"github.com/hashicorp/terraform-plugin-framework/schema/validator"

	"github.com/keymint/terraform-provider-keymint/internal/vocab"
)

// Plan-time checks of the server's rules, from the vocabulary the server
// enforces, so mistakes show at plan time; the server stays the authority.
var (
	slugValidator   = stringvalidator.RegexMatches(vocab.SlugPattern, "must be "+vocab.SlugRule)
	prefixValidator = stringvalidator.All(
		stringvalidator.LengthBetween(vocab.KeyPrefixMinLen, vocab.KeyPrefixMaxLen),
		stringvalidator.RegexMatches(vocab.KeyPrefixPattern, "must be "+vocab.KeyPrefixRule))
	scopesValidators = []validator.Set{
		setvalidator.SizeAtLeast(1),
		setvalidator.ValueStringsAre(stringvalidator.RegexMatches(vocab.ScopePattern, "must be a scope: "+vocab.ScopeRule)),
	}
	// textValidators: every free-text attribute, as the server checks it.
	textValidators       = []validator.String{visibleText{}}
	gracePeriodValidator = durationValidator{lo: 0, hi: vocab.MaxGracePeriod}
	rateWindowValidator  = durationValidator{lo: time.Nanosecond, hi: vocab.MaxRateWindow}
)

// durationValidator checks a Go duration string within [lo, hi].
type durationValidator struct{ lo, hi time.Duration }

func (v durationValidator) Description(context.Context) string {
	return fmt.Sprintf("a Go duration such as 30m or 24h, from %s to %s", v.lo, v.hi)
}

func (v durationValidator) MarkdownDescription(ctx context.Context) string { return v.Description(ctx) }

func (v durationValidator) ValidateString(ctx context.Context, req validator.StringRequest, resp *validator.StringResponse) {
	if req.ConfigValue.IsNull() || req.ConfigValue.IsUnknown() {
		return
	}
	d, err := time.ParseDuration(req.ConfigValue.ValueString())
	if err != nil || d < v.lo || d > v.hi {
		resp.Diagnostics.AddAttributeError(req.Path, "Invalid duration",
			fmt.Sprintf("%q is not %s.", req.ConfigValue.ValueString(), v.Description(ctx)))
	}
}

// visibleText refuses invisible and direction-changing characters (Unicode
// Cf, Zl, Zp), by the server's own check (vocab.InvisibleError).
type visibleText struct{}

func (visibleText) Description(context.Context) string { return vocab.InvisibleRule }

func (v visibleText) MarkdownDescription(ctx context.Context) string { return v.Description(ctx) }

func (visibleText) ValidateString(_ context.Context, req validator.StringRequest, resp *validator.StringResponse) {
	if req.ConfigValue.IsNull() || req.ConfigValue.IsUnknown() {
		return
	}
	if msg := vocab.InvisibleError(req.ConfigValue.ValueString()); msg != "" {
		resp.Diagnostics.AddAttributeError(req.Path, "Invisible character", "The value "+msg+".")
	}
}
