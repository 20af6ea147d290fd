package httpapi

import (
	"errors"
	"net/http"
	"strings"

	"github.com/companin/companin/domain"
	"github.com/companin/companin/domain/es"
	"github.com/companin/companin/domain/organization"
)

// statusOf maps domain errors to HTTP statuses, matched with errors.Is through
// any wrapping, first match wins: put specific errors before the generic kinds
// of package domain they may wrap. The detail shown is the error's text:
// commands wrap domain errors with context meant for the caller, nothing internal.
var statusOf = []struct {
	err    error
	status int
	code   string
}{
	{organization.ErrInvalidName, http.StatusUnprocessableEntity, "invalid_name"},
	{organization.ErrInvalidOrigin, http.StatusUnprocessableEntity, "invalid_origin"},
	// Text the edge should have refused already (decode.go), caught again
	// at the append: still the client's input, never a 500.
	{es.ErrInvalidText, http.StatusUnprocessableEntity, "invalid_text"},
	{es.ErrWrongExpectedVersion, http.StatusConflict, "conflict"},
	{es.ErrDuplicateEventID, http.StatusConflict, "conflict"},
	{es.ErrStreamNotFound, http.StatusNotFound, "not_found"},
	{domain.ErrNotFound, http.StatusNotFound, "not_found"},
	{domain.ErrConflict, http.StatusConflict, "conflict"},
	{domain.ErrInvalid, http.StatusUnprocessableEntity, "invalid"},
	{domain.ErrForbidden, http.StatusForbidden, "forbidden"},
}

// statusClientClosed is answered (to nobody) when the client went away
// before the answer; nginx's convention, kept out of metrics' 5xx.
const statusClientClosed = 499

// FieldError says what is wrong with one field of a request. Field is the
// JSON path ("metadata.source", "default_tasks[2]"), "" for the whole body.
type FieldError struct {
	Field   string `json:"field"`
	Message string `json:"message"`
}

func (f FieldError) Error() string { return f.Field + ": " + f.Message }

// apiError is an error that already knows its HTTP answer.
type apiError struct {
	status int
	detail string
	code   string
	fields []FieldError
}

func (e *apiError) Error() string {
	if len(e.fields) == 0 {
		return e.detail
	}
	parts := make([]string, len(e.fields))
	for i, f := range e.fields {
		parts[i] = f.Error()
	}
	return e.detail + ": " + strings.Join(parts, "; ")
}

// invalid is a 422 listing what is wrong with each field.
func invalid(fields ...FieldError) error {
	return &apiError{status: http.StatusUnprocessableEntity, detail: "Validation failed", code: "validation_failed", fields: fields}
}

// httpError is an error with an explicit status and detail, for answers no
// domain error describes (e.g. a malformed cursor). code may be "".
func httpError(status int, code, detail string) error {
	return &apiError{status: status, detail: detail, code: code}
}

// writeError answers with the error envelope for err: an apiError as it says,
// a domain error through the statusOf table, anything else as a 500 whose
// cause is logged and not shown.
func writeError(w http.ResponseWriter, r *http.Request, err error) {
	var ae *apiError
	if errors.As(err, &ae) {
		writeProblem(w, ae.status, ae.detail, ae.code, ae.fields)
		return
	}
	var inv *domain.InvalidError
	if errors.As(err, &inv) {
		writeError(w, r, invalid(FieldError{Field: inv.Field, Message: inv.Message}))
		return
	}
	for _, m := range statusOf {
		if errors.Is(err, m.err) {
			writeProblem(w, m.status, capitalize(err.Error()), m.code, nil)
			return
		}
	}
	if r.Context().Err() != nil {
		// The client went away; nobody reads this answer.
		writeProblem(w, statusClientClosed, "Client closed request", "", nil)
		return
	}
	loggerFrom(r).ErrorContext(r.Context(), "unhandled error", "method", r.Method, "path", r.URL.Path, "err", err)
	writeProblem(w, http.StatusInternalServerError, "Internal server error", "internal_error", nil)
}

func capitalize(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}
