package api

import (
	"bytes"
	"errors"
	"fmt"
	"mime"
	"net/http"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	jsonv2 "github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"

	"github.com/keymint/terraform-provider-keymint/internal/keyformat"
	"github.com/keymint/terraform-provider-keymint/internal/service"
	"github.com/keymint/terraform-provider-keymint/internal/wire"
)

// maxBody caps every request body; the largest legitimate one (a key with
// full metadata) is a few KiB.
const maxBody = 64 << 10

// statuses is the one mapping from the service's error kinds to HTTP statuses.
var statuses = map[service.Kind]int{
	service.Invalid:          http.StatusUnprocessableEntity,
	service.BadRequest:       http.StatusBadRequest,
	service.Unauthenticated:  http.StatusUnauthorized,
	service.Forbidden:        http.StatusForbidden,
	service.NotFound:         http.StatusNotFound,
	service.Conflict:         http.StatusConflict,
	service.Unavailable:      http.StatusServiceUnavailable,
	service.TooLarge:         http.StatusRequestEntityTooLarge,
	service.Unsupported:      http.StatusUnsupportedMediaType,
	service.MethodNotAllowed: http.StatusMethodNotAllowed,
	service.TooManyRequests:  http.StatusTooManyRequests,
}

// StatusOf is the HTTP status of a service error kind, for the portal's pages.
func StatusOf(k service.Kind) int { return statusOf(k) }

// statusOf is the HTTP status of a service error kind (500 for an unknown one).
func statusOf(k service.Kind) int {
	if s, ok := statuses[k]; ok {
		return s
	}
	return http.StatusInternalServerError
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	writeBody(w, status, jsonType, v)
}

var (
	jsonType    = []string{"application/json"}
	problemType = []string{"application/problem+json"}
	// encodeOptions make go-json-experiment (the decoder's library too) write
	// what encoding/json would: nil as null, map keys sorted, invalid UTF-8
	// replaced, and <, > and & as they are (these are API answers, not HTML).
	encodeOptions = jsonv2.JoinOptions(jsonv2.Deterministic(true), jsonv2.FormatNilSliceAsNull(true),
		jsonv2.FormatNilMapAsNull(true), jsontext.AllowInvalidUTF8(true))
	bodies = sync.Pool{New: func() any { return bytes.NewBuffer(make([]byte, 0, 1024)) }}
)

// jsonAppender is an answer that encodes itself without reflection
// (wire.VerifyResponse: verify's cost is on every customer request).
type jsonAppender interface{ AppendJSON([]byte) []byte }

// jsonParser is a request that decodes its usual shape without reflection
// (wire.VerifyRequest), reporting false for anything it leaves to the
// strict decoder.
type jsonParser interface{ ParseJSON([]byte) bool }

// putBody returns buf to the pool, unless a large body grew it.
func putBody(buf *bytes.Buffer) {
	if buf.Cap() <= 64<<10 {
		buf.Reset()
		bodies.Put(buf)
	}
}

// heldBody is net/http's response buffer before it would send a body
// chunked (bufferBeforeChunkingSize): a body that fits, written once, goes
// out whole with the Content-Length net/http computes.
const heldBody = 2048

// writeBody encodes v into a pooled buffer and sends it in one write, with
// its Content-Length.
func writeBody(w http.ResponseWriter, status int, contentType []string, v any) {
	buf := bodies.Get().(*bytes.Buffer)
	defer putBody(buf)
	if a, ok := v.(jsonAppender); ok {
		buf.Write(a.AppendJSON(buf.AvailableBuffer()))
	} else if err := jsonv2.MarshalWrite(buf, v, encodeOptions); err != nil {
		// Only a type the API should never answer with gets here.
		panic(fmt.Sprintf("api: cannot encode %T: %v", v, err))
	}
	buf.WriteByte('\n')
	h := w.Header()
	h["Content-Type"] = contentType
	if buf.Len() > heldBody {
		h["Content-Length"] = []string{strconv.Itoa(buf.Len())}
	} // else net/http holds the whole body and writes its length itself, with no allocation
	w.WriteHeader(status)
	w.Write(buf.Bytes())
}

// respond writes v, or err if there is one.
func respond(w http.ResponseWriter, status int, v any, err error) error {
	if err != nil {
		return err
	}
	writeJSON(w, status, v)
	return nil
}

// writeReplayable writes v, marked as the replay of an earlier request if it is one.
func writeReplayable(w http.ResponseWriter, status int, v any, replayed bool) {
	if replayed {
		w.Header().Set(wire.ReplayedHeader, "true")
	}
	writeJSON(w, status, v)
}

// sent lists the names whose flag is set, sorted: the immutable fields a PATCH carried.
func sent(fields map[string]bool) []string {
	var out []string
	for name, ok := range fields {
		if ok {
			out = append(out, name)
		}
	}
	slices.Sort(out)
	return out
}

// StatusClientClosedRequest is the status logged for a request whose client
// went away before its answer (nginx's 499; HTTP itself has none).
const StatusClientClosedRequest = 499

// writeError renders err as problem JSON; anything that is not a
// *service.Error is a 500 whose details go to the log, not to the client.
func (s *Server) writeError(w http.ResponseWriter, r *http.Request, err error) {
	var e *service.Error
	if gone := r.Context().Err(); gone != nil && errors.Is(err, gone) {
		// The client gave up (or the server is shutting down) while the
		// request waited on the database: nothing broke and nobody reads an
		// answer. The request line says 499, as nginx logs a closed request.
		w.WriteHeader(StatusClientClosedRequest)
		return
	}
	if !errors.As(err, &e) {
		s.log.ErrorContext(r.Context(), "internal error", "method", r.Method, "path", keyformat.Redact(r.URL.Path), "err", keyformat.Redact(err.Error()))
		e = service.Errorf(0, "internal", "internal error; the server log has details")
	}
	status := statusOf(e.Kind)
	// Messages may quote what the client sent; a key in them is cut to its start.
	p := wire.Problem{Type: "urn:keymint:problem:" + e.Code, Title: http.StatusText(status), Status: status,
		Detail: keyformat.Redact(e.Message), Code: e.Code, KeyIDs: e.KeyIDs}
	for _, f := range e.Fields {
		p.Errors = append(p.Errors, wire.FieldError{Field: f.Field, Message: keyformat.Redact(f.Message)})
	}
	if status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Bearer realm="keymint"`)
	}
	if e.RetryAfter > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(int((e.RetryAfter+time.Second-1)/time.Second)))
	}
	writeBody(w, status, problemType, p)
}

// decode reads a JSON body strictly (see decodeBytes), at most maxBody bytes.
func decode(w http.ResponseWriter, r *http.Request, v any) error {
	buf := bodies.Get().(*bytes.Buffer)
	defer putBody(buf)
	if err := readBodyInto(w, r, buf); err != nil {
		return err
	}
	return decodeBytes(buf.Bytes(), v) // the decoder copies what it keeps
}

// readBody reads the raw body (see readBodyInto).
func readBody(w http.ResponseWriter, r *http.Request) ([]byte, error) {
	var buf bytes.Buffer
	err := readBodyInto(w, r, &buf)
	return buf.Bytes(), err
}

// readBodyInto reads the raw body into buf, capped at maxBody. A body must say it is JSON.
func readBodyInto(w http.ResponseWriter, r *http.Request, buf *bytes.Buffer) error {
	if _, err := buf.ReadFrom(http.MaxBytesReader(w, r.Body, maxBody)); err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return service.Errorf(service.TooLarge, "body_too_large", "the request body is over %d bytes", maxBody)
		}
		return service.Errorf(service.BadRequest, "invalid_body", "could not read the request body: %v", err)
	}
	if buf.Len() > 0 && !isJSON(r.Header.Get("Content-Type")) {
		return service.Errorf(service.Unsupported, "unsupported_media_type", "send the body as JSON in UTF-8, with Content-Type: application/json")
	}
	return nil
}

// isJSON reports whether a Content-Type is application/json or an
// application/*+json type (such as merge-patch+json), in UTF-8 if it says.
func isJSON(contentType string) bool {
	if contentType == "application/json" { // what nearly every client sends: no parsing
		return true
	}
	mt, params, err := mime.ParseMediaType(contentType)
	if err != nil || mt != "application/json" && !(strings.HasPrefix(mt, "application/") && strings.HasSuffix(mt, "+json")) {
		return false
	}
	cs, ok := params["charset"]
	return !ok || strings.EqualFold(cs, "utf-8")
}

// decodeBytes reads one JSON object strictly: member names exactly as
// documented (no case folding), no duplicate names, no unknown members at any
// depth, valid UTF-8 only, nothing after the object. What a proxy or WAF
// reads from a body is then what keymint acts on.
func decodeBytes(body []byte, v any) error {
	if p, ok := v.(jsonParser); ok && p.ParseJSON(body) {
		return nil
	}
	switch trimmed := bytes.TrimSpace(body); {
	case len(trimmed) == 0:
		return service.Errorf(service.BadRequest, "invalid_json", "the request body is empty; send a JSON object")
	case string(trimmed) == "null": // the decoder would take it as {}
		return service.Errorf(service.BadRequest, "invalid_json", "the request body is null; send a JSON object")
	}
	if err := jsonv2.Unmarshal(body, v, jsonv2.RejectUnknownMembers(true)); err != nil {
		return service.Errorf(service.BadRequest, "invalid_json", "the request body is not valid JSON for this endpoint: %s", describeJSONError(err))
	}
	return nil
}

// describeJSONError says what was wrong and where, in the API's terms (no Go
// type names), and never quotes a value the client sent.
func describeJSONError(err error) string {
	var se *jsonv2.SemanticError
	if errors.As(err, &se) {
		where := ""
		if se.JSONPointer != "" {
			where = " at " + string(se.JSONPointer)
		}
		if se.Err != nil {
			return se.Err.Error() + where
		}
		return fmt.Sprintf("JSON %s%s where %s was expected", se.JSONKind, where, jsonKindOf(se.GoType))
	}
	var syn *jsontext.SyntacticError
	if errors.As(err, &syn) {
		return strings.TrimPrefix(syn.Error(), "jsontext: ")
	}
	return err.Error()
}

// jsonKindOf names the JSON a Go type is decoded from.
func jsonKindOf(t reflect.Type) string {
	if t == nil {
		return "another value"
	}
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "true or false"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64, reflect.Uint, reflect.Uint8,
		reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.Slice, reflect.Array:
		return "an array"
	case reflect.Map, reflect.Struct:
		return "an object"
	}
	return "another value"
}
