package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/legacy"
)

// The API's contract is docs/openapi.json: every response the API tests
// receive is validated against it (kin-openapi), so that an undocumented
// status, header or body shape fails the test that provoked it.

var contract struct {
	once   sync.Once
	doc    *openapi3.T
	router routers.Router
	err    error
}

// loadContract reads docs/openapi.json once, checks it is a valid OpenAPI
// document, and makes it strict for the tests: an object schema that lists
// its properties admits no others (a field the server sends must be
// documented), while the published document leaves clients free to ignore
// fields added later.
func loadContract() (*openapi3.T, routers.Router, error) {
	contract.once.Do(func() {
		loader := openapi3.NewLoader()
		doc, err := loader.LoadFromFile("../../docs/openapi.json")
		if err != nil {
			contract.err = err
			return
		}
		if err := doc.Validate(context.Background()); err != nil {
			contract.err = fmt.Errorf("docs/openapi.json is not a valid OpenAPI document: %w", err)
			return
		}
		no := false
		for _, s := range doc.Components.Schemas {
			if len(s.Value.Properties) > 0 && s.Value.AdditionalProperties.Has == nil && s.Value.AdditionalProperties.Schema == nil {
				s.Value.AdditionalProperties = openapi3.AdditionalProperties{Has: &no}
			}
		}
		doc.Servers = nil // match any host: the tests' servers listen on a random port
		contract.doc = doc
		contract.router, contract.err = legacy.NewRouter(doc)
	})
	return contract.doc, contract.router, contract.err
}

// headersAnyResponse may come with any response without being documented:
// Content-Type is checked with the body; Content-Length is HTTP's framing.
var headersAnyResponse = []string{"Content-Type", "Content-Length"}

// checkContract validates one response against docs/openapi.json; it returns
// what does not match, or nil.
func checkContract(r *http.Request, status int, header http.Header, body []byte) error {
	doc, router, err := loadContract()
	if err != nil {
		return err
	}
	if r.Method == http.MethodHead {
		return nil // no body; GET's answer is checked
	}
	route, params, err := router.FindRoute(r)
	if err != nil {
		return checkUnrouted(doc, r, status, header, body)
	}
	in := &openapi3filter.ResponseValidationInput{
		RequestValidationInput: &openapi3filter.RequestValidationInput{Request: r, PathParams: params, Route: route},
		Status:                 status,
		Header:                 header,
		Options:                &openapi3filter.Options{IncludeResponseStatus: true, MultiError: true},
	}
	in.SetBodyBytes(body)
	if err := openapi3filter.ValidateResponse(context.Background(), in); err != nil {
		return err
	}
	declared := map[string]bool{}
	for name := range route.Operation.Responses.Status(status).Value.Headers {
		declared[http.CanonicalHeaderKey(name)] = true
	}
	for name := range header {
		if !slices.Contains(headersAnyResponse, name) && !declared[http.CanonicalHeaderKey(name)] {
			return fmt.Errorf("header %s is not documented for status %d", name, status)
		}
	}
	return nil
}

// checkUnrouted holds an answer to a method or path the document does not
// list to what the document's description promises: 404 no_route, or 405
// method_not_allowed with Allow, as problem JSON.
func checkUnrouted(doc *openapi3.T, r *http.Request, status int, header http.Header, body []byte) error {
	if status != http.StatusNotFound && status != http.StatusMethodNotAllowed {
		return fmt.Errorf("%d for %s %s, which docs/openapi.json does not list (only 404 or 405 may answer it)", status, r.Method, r.URL.Path)
	}
	if (status == http.StatusMethodNotAllowed) != (header.Get("Allow") != "") {
		return fmt.Errorf("%d with Allow %q", status, header.Get("Allow"))
	}
	for name := range header {
		if !slices.Contains(append([]string{"X-Request-Id", "Allow"}, headersAnyResponse...), name) {
			return fmt.Errorf("header %s on a %d", name, status)
		}
	}
	if ct := header.Get("Content-Type"); ct != "application/problem+json" {
		return fmt.Errorf("%d with Content-Type %q", status, ct)
	}
	var v any
	if err := json.Unmarshal(body, &v); err != nil {
		return err
	}
	return doc.Components.Schemas["Problem"].Value.VisitJSON(v, openapi3.VisitAsResponse(), openapi3.EnableJSONSchema2020())
}

// contractHandler serves h and fails t for every answer that does not keep
// the contract. t is read per request: a fuzz target swaps it per input.
func contractHandler(t func() testing.TB, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, r)
		if err := checkContract(r, rec.Code, rec.Header(), rec.Body.Bytes()); err != nil {
			t().Errorf("%s %s: %d %s\nbreaks docs/openapi.json: %v", r.Method, r.URL.RequestURI(), rec.Code,
				bytes.TrimSpace(rec.Body.Bytes()), strings.ReplaceAll(err.Error(), "\n", "\n  "))
		}
		for k, v := range rec.Header() {
			w.Header()[k] = v
		}
		w.WriteHeader(rec.Code)
		w.Write(rec.Body.Bytes())
	})
}

// TestContractCatchesDrift shows the check fails an answer the document does
// not describe: an undocumented status, header, field, or missing field.
func TestContractCatchesDrift(t *testing.T) {
	get := httptest.NewRequest("GET", "/v1/whoami", nil)
	ok := http.Header{"Content-Type": {"application/json"}, "X-Request-Id": {"req_1"}}
	good := `{"id":"root","scopes":["apps:read"],"confined_to":[]}`
	if err := checkContract(get, 200, ok, []byte(good)); err != nil {
		t.Fatalf("a documented answer: %v", err)
	}
	extra := ok.Clone()
	extra.Set("X-Undocumented", "1")
	problem := http.Header{"Content-Type": {"application/problem+json"}, "X-Request-Id": {"req_1"}}
	for name, c := range map[string]struct {
		status int
		header http.Header
		body   string
	}{
		"an undocumented status": {403, problem, `{"type":"urn:keymint:problem:insufficient_scope","title":"Forbidden","status":403,"detail":"d","code":"insufficient_scope"}`},
		"an undocumented header": {200, extra, good},
		"an undocumented field":  {200, ok, `{"id":"root","scopes":[],"confined_to":[],"extra":1}`},
		"a missing field":        {200, ok, `{"id":"root","scopes":[]}`},
		"a wrong type":           {200, ok, `{"id":"root","scopes":null,"confined_to":[]}`},
		"no X-Request-Id":        {200, http.Header{"Content-Type": {"application/json"}}, good},
		"a 500 not as a problem": {500, ok, good},
		"a 405 without Allow":    {405, problem, `{"type":"t","title":"t","status":405,"code":"method_not_allowed"}`},
	} {
		r := get
		if c.status == 405 {
			r = httptest.NewRequest("PUT", "/v1/whoami", nil)
		}
		if err := checkContract(r, c.status, c.header, []byte(c.body)); err == nil {
			t.Errorf("%s: passed", name)
		}
	}
}
