package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"slices"
	"strings"

	"github.com/keymint/terraform-provider-keymint/internal/service"
	"github.com/keymint/terraform-provider-keymint/internal/wire"
)

// maxBody caps every request body; the largest legitimate one (a key with
// full metadata) is a few KiB.
const maxBody = 64 << 10

// statusOf is the one mapping from the service's error kinds to HTTP statuses.
var statusOf = map[service.Kind]int{
	service.Invalid:         http.StatusUnprocessableEntity,
	service.BadRequest:      http.StatusBadRequest,
	service.Unauthenticated: http.StatusUnauthorized,
	service.Forbidden:       http.StatusForbidden,
	service.NotFound:        http.StatusNotFound,
	service.Conflict:        http.StatusConflict,
	service.TooLarge:        http.StatusRequestEntityTooLarge,
}

// StatusOf is the HTTP status of a service error kind (500 for an unknown one).
func StatusOf(k service.Kind) int {
	if s, ok := statusOf[k]; ok {
		return s
	}
	return http.StatusInternalServerError
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
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

// writeError renders err as problem JSON; anything that is not a
// *service.Error is a 500 whose details go to the log, not to the client.
func (s *Server) writeError(w http.ResponseWriter, r *http.Request, err error) {
	var e *service.Error
	if !errors.As(err, &e) {
		s.log.ErrorContext(r.Context(), "internal error", "method", r.Method, "path", r.URL.Path, "err", err)
		e = service.Errorf(0, "internal", "internal error; the server log has details")
	}
	status := StatusOf(e.Kind)
	p := wire.Problem{Type: "urn:keymint:problem:" + e.Code, Title: http.StatusText(status), Status: status,
		Detail: e.Message, Code: e.Code, Errors: e.Fields, KeyIDs: e.KeyIDs}
	if status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Bearer realm="keymint"`)
	}
	w.Header().Set("Content-Type", "application/problem+json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(p)
}

// decode reads a JSON body strictly: one object, no unknown fields, at most maxBody bytes.
func decode(w http.ResponseWriter, r *http.Request, v any) error {
	body, err := readBody(w, r)
	if err != nil {
		return err
	}
	return decodeBytes(body, v)
}

// readBody reads the raw body, capped at maxBody.
func readBody(w http.ResponseWriter, r *http.Request) ([]byte, error) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return nil, service.Errorf(service.TooLarge, "body_too_large", "the request body is over %d bytes", maxBody)
		}
		return nil, service.Errorf(service.BadRequest, "invalid_body", "could not read the request body: %v", err)
	}
	return body, nil
}

func decodeBytes(body []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		if err == io.EOF {
			return service.Errorf(service.BadRequest, "invalid_json", "the request body is empty; send a JSON object")
		}
		return service.Errorf(service.BadRequest, "invalid_json", "the request body is not valid: %s", strings.TrimPrefix(err.Error(), "json: "))
	}
	if dec.More() {
		return service.Errorf(service.BadRequest, "invalid_json", "the request body has data after the JSON object")
	}
	return nil
}
