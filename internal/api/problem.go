package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/keymint/terraform-provider-keymint/internal/store"
	"github.com/keymint/terraform-provider-keymint/internal/wire"
)

// maxBody caps every request body; the largest legitimate one (a key with
// full metadata) is a few KiB.
const maxBody = 64 << 10

// problem is an error the client caused, rendered as application/problem+json.
type problem wire.Problem

func (p *problem) Error() string { return p.Code + ": " + p.Detail }

func newProblem(status int, code, format string, args ...any) *problem {
	return &problem{Status: status, Code: code, Title: http.StatusText(status), Detail: fmt.Sprintf(format, args...)}
}

// fieldErrors collects validation errors for one request.
type fieldErrors []wire.FieldError

func (f *fieldErrors) add(field, format string, args ...any) {
	*f = append(*f, wire.FieldError{Field: field, Message: fmt.Sprintf(format, args...)})
}

func (f fieldErrors) err() error {
	if len(f) == 0 {
		return nil
	}
	p := newProblem(http.StatusUnprocessableEntity, "validation_failed", "the request has %d invalid field(s); see errors", len(f))
	p.Errors = f
	return p
}

func notFound(what, id string) *problem {
	return newProblem(http.StatusNotFound, "not_found", "%s %q does not exist (or this credential cannot see it)", what, id)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

// writeError renders err; anything that is not a problem is a 500 whose
// details go to the log, not to the client.
func (s *Server) writeError(w http.ResponseWriter, r *http.Request, err error) {
	var p *problem
	var live *store.LiveKeysError
	switch {
	case errors.As(err, &p):
	case errors.As(err, &live):
		p = newProblem(http.StatusConflict, "live_keys", "%s; revoke them first (or delete with ?force=true)", live.Reason)
		p.KeyIDs = live.KeyIDs
	case errors.Is(err, store.ErrRevoked):
		p = newProblem(http.StatusConflict, "key_revoked", "the key is revoked; create a new key instead")
	default:
		s.log.ErrorContext(r.Context(), "internal error", "method", r.Method, "path", r.URL.Path, "err", err)
		p = newProblem(http.StatusInternalServerError, "internal", "internal error; the server log has details")
	}
	p.Type = "urn:keymint:problem:" + p.Code
	if p.Status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Bearer realm="keymint"`)
	}
	w.Header().Set("Content-Type", "application/problem+json")
	w.WriteHeader(p.Status)
	json.NewEncoder(w).Encode((*wire.Problem)(p))
}

// decode reads a JSON body strictly: one object, no unknown fields, at most maxBody bytes.
func decode(w http.ResponseWriter, r *http.Request, v any) error {
	body, err := readBody(w, r)
	if err != nil {
		return err
	}
	return decodeBytes(body, v)
}

// readBody reads the raw body, capped at maxBody, for handlers that also hash it.
func readBody(w http.ResponseWriter, r *http.Request) ([]byte, error) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return nil, newProblem(http.StatusRequestEntityTooLarge, "body_too_large", "the request body is over %d bytes", maxBody)
		}
		return nil, newProblem(http.StatusBadRequest, "invalid_body", "could not read the request body: %v", err)
	}
	return body, nil
}

func decodeBytes(body []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		if err == io.EOF {
			return newProblem(http.StatusBadRequest, "invalid_json", "the request body is empty; send a JSON object")
		}
		return newProblem(http.StatusBadRequest, "invalid_json", "the request body is not valid: %s", strings.TrimPrefix(err.Error(), "json: "))
	}
	if dec.More() {
		return newProblem(http.StatusBadRequest, "invalid_json", "the request body has data after the JSON object")
	}
	return nil
}
