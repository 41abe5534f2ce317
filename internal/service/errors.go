package service

import (
	"errors"
	"fmt"
	"time"

	"github.com/keymint/terraform-provider-keymint/internal/store"
	"github.com/keymint/terraform-provider-keymint/internal/wire"
)

// Kind classifies an Error; each entry point maps kinds to its own terms
// (the HTTP API to statuses, in one table).
type Kind int

const (
	Invalid          Kind = iota + 1 // the request is well-formed but a field breaks a rule
	BadRequest                       // the request itself is malformed (body, query, header)
	Unauthenticated                  // no valid credential
	Forbidden                        // the credential may not do this
	NotFound                         // no such thing, or the caller may not see it
	Conflict                         // the current state forbids it
	TooLarge                         // the request is over a size limit
	Unsupported                      // the request's media type is not accepted
	MethodNotAllowed                 // the path exists, not with this method
	Unavailable                      // this process cannot answer correctly now (readiness)
	TooManyRequests                  // the caller must wait RetryAfter before trying again
)

// Error is what the service says to a caller: a kind, a stable code and a
// message that says what was wrong and what to do. It never holds a secret.
type Error struct {
	Kind    Kind
	Code    string
	Message string
	Fields  []wire.FieldError // Invalid: one entry per bad field
	KeyIDs  []string          // live_keys: the keys in the way
	// RetryAfter is how long a TooManyRequests caller should wait.
	RetryAfter time.Duration
}

func (e *Error) Error() string { return e.Code + ": " + e.Message }

// Errorf returns an *Error.
func Errorf(kind Kind, code, format string, args ...any) *Error {
	return &Error{Kind: kind, Code: code, Message: fmt.Sprintf(format, args...)}
}

func notFound(what, id string) *Error {
	return Errorf(NotFound, "not_found", "%s %q does not exist (or this credential cannot see it)", what, id)
}

// fieldErrors collects the validation errors of one request.
type fieldErrors []wire.FieldError

func (f *fieldErrors) add(field, format string, args ...any) {
	*f = append(*f, wire.FieldError{Field: field, Message: fmt.Sprintf(format, args...)})
}

func (f fieldErrors) err() error {
	if len(f) == 0 {
		return nil
	}
	e := Errorf(Invalid, "validation_failed", "the request has %d invalid field(s); see errors", len(f))
	e.Fields = f
	return e
}

// storeError turns the store's sentinel errors into coded ones; what names
// the thing the request was about (e.g. `key "key_…"`), for a not-found race.
func storeError(err error, what, id string) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, store.ErrSecretTaken):
		// Which key has it is not said: that would tell a guesser where a secret works.
		return Errorf(Conflict, "secret_taken", "this secret is already in use; generate a new one")
	case errors.Is(err, store.ErrRevoked):
		return Errorf(Conflict, "key_revoked", "the key is revoked; create a new key instead")
	case errors.Is(err, store.ErrNotFound):
		// Deleted between the check and the write.
		return notFound(what, id)
	}
	return err
}
