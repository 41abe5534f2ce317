package provider

import (
	"context"
	"fmt"
	"regexp"
	"time"

	"github.com/hashicorp/terraform-plugin-framework-validators/setvalidator"
	"github.com/hashicorp/terraform-plugin-framework-validators/stringvalidator"
	"github.com/hashicorp/terraform-plugin-framework/schema/validator"
)

// These mirror the server's rules so mistakes show at plan time; the server
// stays the authority.
var (
	slugValidator = stringvalidator.RegexMatches(regexp.MustCompile(`^[a-z0-9][a-z0-9-]{1,62}$`),
		"must be 2-63 characters: lowercase letters, digits and '-', starting with a letter or digit")
	prefixValidator = stringvalidator.RegexMatches(regexp.MustCompile(`^[a-z][a-z0-9]*(_[a-z0-9]+)*$`),
		"must be lowercase letters and digits, words joined by '_', starting with a letter (e.g. acme_live)")
	scopesValidators = []validator.Set{
		setvalidator.SizeAtLeast(1),
		setvalidator.ValueStringsAre(stringvalidator.RegexMatches(regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.:/*-]{0,127}$`),
			"must be a scope such as read:data: letters, digits and _ . : / * -")),
	}
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
