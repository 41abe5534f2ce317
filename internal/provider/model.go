package provider

import (
	"context"
	"fmt"
	"reflect"

	fwattr "github.com/hashicorp/terraform-plugin-framework/attr"
	"github.com/hashicorp/terraform-plugin-framework/diag"
	"github.com/hashicorp/terraform-plugin-framework/types/basetypes"
	"github.com/hashicorp/terraform-plugin-go/tftypes"
)

// A field is one attribute of a model: its name in the schema and a pointer
// to the model's value for it (*types.String, *types.Set, ...).
type field struct {
	name string
	ptr  any
}

// A model lists its fields. Hot paths read and write plans and states
// through decodeModel and encodeModel instead of the framework's Get and Set,
// whose struct reflection compiles a regexp per field name on every call: a
// quarter of the provider's CPU in an apply of many keys.
type model interface{ fields() []field }

// objectSchema is the schema of a plan, state or configuration (tfsdk.State.Schema...).
type objectSchema interface{ Type() fwattr.Type }

// decodeModel fills m from raw, an object of schema s.
func decodeModel(ctx context.Context, raw tftypes.Value, s objectSchema, m model) diag.Diagnostics {
	var diags diag.Diagnostics
	var values map[string]tftypes.Value
	if err := raw.As(&values); err != nil {
		diags.AddError("Unexpected value", fmt.Sprintf("Reading an object: %s. This is a bug in the provider.", err))
		return diags
	}
	types := s.Type().(basetypes.ObjectType).AttrTypes
	for _, f := range m.fields() {
		t, ok := types[f.name]
		if !ok {
			diags.AddError("Unexpected attribute", fmt.Sprintf("%q is not in the schema. This is a bug in the provider.", f.name))
			return diags
		}
		v, err := t.ValueFromTerraform(ctx, values[f.name])
		if err != nil {
			diags.AddError("Unexpected value", fmt.Sprintf("Reading %s: %s. This is a bug in the provider.", f.name, err))
			return diags
		}
		reflect.ValueOf(f.ptr).Elem().Set(reflect.ValueOf(v))
	}
	return diags
}

// encodeModel sets *raw, an object of schema s (a plan's or state's Raw), to m.
func encodeModel(ctx context.Context, raw *tftypes.Value, s objectSchema, m model) diag.Diagnostics {
	var diags diag.Diagnostics
	fields := m.fields()
	values := make(map[string]tftypes.Value, len(fields))
	for _, f := range fields {
		v, err := value(f).ToTerraformValue(ctx)
		if err != nil {
			diags.AddError("Unexpected value", fmt.Sprintf("Writing %s: %s. This is a bug in the provider.", f.name, err))
			return diags
		}
		values[f.name] = v
	}
	*raw = tftypes.NewValue(s.Type().TerraformType(ctx), values)
	return diags
}

func value(f field) fwattr.Value { return reflect.ValueOf(f.ptr).Elem().Interface().(fwattr.Value) }

// sameModel reports whether a and b, two models of one type, hold equal values in every field.
func sameModel(a, b model) bool {
	fa, fb := a.fields(), b.fields()
	for i := range fa {
		if !value(fa[i]).Equal(value(fb[i])) {
			return false
		}
	}
	return true
}
