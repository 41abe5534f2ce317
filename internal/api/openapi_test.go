package api_test

import (
	"encoding/json"
	"os"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/keymint/terraform-provider-keymint/internal/api"
	"github.com/keymint/terraform-provider-keymint/internal/service"
	"github.com/keymint/terraform-provider-keymint/internal/wire"
)

type openAPIOperation struct {
	Scope       *string `json:"x-keymint-scope"`
	RequestBody struct {
		Content map[string]struct {
			Example json.RawMessage `json:"example"`
		} `json:"content"`
	} `json:"requestBody"`
}

type openAPIDoc struct {
	Paths      map[string]map[string]openAPIOperation `json:"paths"`
	Components struct {
		Schemas map[string]struct {
			Properties map[string]json.RawMessage `json:"properties"`
			Required   []string                   `json:"required"`
		} `json:"schemas"`
	} `json:"components"`
}

func loadOpenAPI(t testing.TB) openAPIDoc {
	b, err := os.ReadFile("../../docs/openapi.json")
	if err != nil {
		t.Fatal(err)
	}
	var doc openAPIDoc
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	return doc
}

// TestOpenAPIMatchesRoutes keeps docs/openapi.json true to the server: the
// same endpoints. TestAuthorizationMatrix checks each documented scope is the
// one the server enforces.
func TestOpenAPIMatchesRoutes(t *testing.T) {
	doc := loadOpenAPI(t)
	var documented, served []string
	for path, ops := range doc.Paths {
		for method := range ops {
			documented = append(documented, strings.ToUpper(method)+" "+path)
		}
	}
	served = append(served, "GET /healthz", "GET /readyz")
	for _, rt := range api.Routes() {
		served = append(served, rt.Pattern)
	}
	slices.Sort(documented)
	slices.Sort(served)
	if !slices.Equal(documented, served) {
		t.Fatalf("docs/openapi.json documents\n  %v\nthe server serves\n  %v", documented, served)
	}
}

// TestOpenAPISchemasMatchWire checks each documented schema has exactly the JSON fields of its Go type.
func TestOpenAPISchemasMatchWire(t *testing.T) {
	doc := loadOpenAPI(t)
	types := map[string]any{
		"App": wire.App{}, "CreateApp": wire.CreateApp{}, "UpdateApp": wire.UpdateApp{}, "AppList": wire.AppList{},
		"RateLimit": wire.RateLimit{}, "Key": wire.Key{}, "CreateKey": wire.CreateKey{}, "UpdateKey": wire.UpdateKey{},
		"RotateKey": wire.RotateKey{}, "KeyWithSecret": wire.KeyWithSecret{}, "KeyList": wire.KeyList{},
		"VerifyRequest": wire.VerifyRequest{}, "FindKey": wire.FindKey{}, "Event": wire.Event{}, "EventList": wire.EventList{}, "VerifyResponse": wire.VerifyResponse{}, "VerifyRateLimit": wire.VerifyRateLimit{},
		"Whoami": wire.Whoami{}, "Problem": wire.Problem{}, "FieldError": wire.FieldError{},
		"Health": struct {
			Status string `json:"status"`
		}{},
		"Ready": struct {
			Status      string `json:"status"`
			VerifyCache string `json:"verify_cache,omitempty"`
		}{},
	}
	// What the server sends: each field it always sends is required, so a
	// client (and the contract check) can count on it.
	responses := []string{"App", "AppList", "RateLimit", "Key", "KeyWithSecret", "KeyList", "Event", "EventList",
		"VerifyResponse", "VerifyRateLimit", "Whoami", "Problem", "FieldError", "Health", "Ready"}
	for name, v := range types {
		schema, ok := doc.Components.Schemas[name]
		if !ok {
			t.Errorf("schema %s is not documented", name)
			continue
		}
		var want, got, always []string
		rt := reflect.TypeOf(v)
		for i := range rt.NumField() {
			tag, opts, _ := strings.Cut(rt.Field(i).Tag.Get("json"), ",")
			want = append(want, tag)
			if !strings.Contains(opts, "omitempty") && !strings.Contains(opts, "omitzero") {
				always = append(always, tag)
			}
		}
		if slices.Contains(responses, name) {
			required := slices.Clone(schema.Required)
			slices.Sort(required)
			slices.Sort(always)
			if !slices.Equal(required, always) {
				t.Errorf("schema %s requires %v; the server always sends %v", name, required, always)
			}
		}
		for p := range schema.Properties {
			got = append(got, p)
		}
		slices.Sort(want)
		slices.Sort(got)
		if !slices.Equal(want, got) {
			t.Errorf("schema %s documents %v, the Go type has %v", name, got, want)
		}
	}
	if len(doc.Components.Schemas) != len(types) {
		t.Errorf("%d schemas documented, %d checked: check the new ones here", len(doc.Components.Schemas), len(types))
	}
}

// TestOpenAPIActionsMatchService keeps the documented audit actions the ones
// the service records and the events filter accepts.
func TestOpenAPIActionsMatchService(t *testing.T) {
	doc := loadOpenAPI(t)
	var action struct {
		Enum []string `json:"enum"`
	}
	if err := json.Unmarshal(doc.Components.Schemas["Event"].Properties["action"], &action); err != nil {
		t.Fatal(err)
	}
	got, want := slices.Sorted(slices.Values(action.Enum)), slices.Sorted(slices.Values(service.Actions))
	if !slices.Equal(got, want) {
		t.Fatalf("docs/openapi.json's Event.action enum %v, the service's actions %v", got, want)
	}
}
