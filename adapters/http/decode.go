package httpapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/companin/companin/domain/es"
	"github.com/gorilla/mux"
)

// decodeJSON reads the request body into dst (a pointer to a struct). Unknown
// fields are ignored. Its errors are ready for writeError: 413 for a body over
// the route's limit, 400 for malformed JSON or a body that is not an object,
// 422 with field errors for values of the wrong type.
func decodeJSON(w http.ResponseWriter, r *http.Request, dst any) error {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		return bodyReadError(err)
	}
	return decodeBytes(body, dst)
}

// bodyReadError answers a failed read of the request body: 413 over the limit.
func bodyReadError(err error) error {
	var tooBig *http.MaxBytesError
	if errors.As(err, &tooBig) {
		return httpError(http.StatusRequestEntityTooLarge, "body_too_large",
			fmt.Sprintf("Request body too large: at most %d bytes", tooBig.Limit))
	}
	return httpError(http.StatusBadRequest, "unreadable_body", "Request body could not be read")
}

// decodeBytes is decodeJSON on a body already read.
func decodeBytes(body []byte, dst any) error {
	trimmed := bytes.TrimSpace(body)
	if len(trimmed) == 0 {
		return httpError(http.StatusBadRequest, "empty_body", "Request body is empty: send a JSON object")
	}
	if trimmed[0] != '{' {
		return httpError(http.StatusBadRequest, "malformed_json", "Request body must be a JSON object")
	}
	dec := json.NewDecoder(bytes.NewReader(trimmed))
	if err := dec.Decode(dst); err != nil {
		return jsonError(err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return httpError(http.StatusBadRequest, "malformed_json", "Request body has data after the JSON object")
	}
	// After the syntax check, before anything is used: encoding/json would
	// quietly turn invalid UTF-8 into U+FFFD and keep NUL, which no reader
	// of the log can store.
	if terr := es.CheckJSONText(trimmed); terr != nil {
		return invalidText(terr.Path, terr.Problem)
	}
	return nil
}

// invalidText is the 422 of a field whose text the log cannot keep.
func invalidText(field, problem string) error {
	if field == "" {
		field = "body"
	}
	return invalid(FieldError{Field: field, Message: problem})
}

// checkParams refuses a query parameter or path variable holding NUL or
// invalid UTF-8 (as %00 or %FF): a 422 naming it, before any handler looks
// it up in the database (which would fail) or records it.
func checkParams(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var fields []FieldError
		for name, value := range mux.Vars(r) {
			if p := es.CheckText(value); p != "" {
				fields = append(fields, FieldError{Field: name, Message: "(in the path) " + p})
			}
		}
		for name, values := range r.URL.Query() {
			if p := es.CheckText(name); p != "" {
				fields = append(fields, FieldError{Field: "query", Message: "a parameter name " + p})
				continue
			}
			for _, v := range values {
				if p := es.CheckText(v); p != "" {
					fields = append(fields, FieldError{Field: name, Message: p})
					break
				}
			}
		}
		if len(fields) > 0 {
			slices.SortFunc(fields, func(a, b FieldError) int { return strings.Compare(a.Field, b.Field) })
			writeError(w, r, invalid(fields...))
			return
		}
		next.ServeHTTP(w, r)
	})
}

func jsonError(err error) error {
	var syntax *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syntax):
		return httpError(http.StatusBadRequest, "malformed_json",
			fmt.Sprintf("Malformed JSON at byte %d: %s", syntax.Offset, syntax.Error()))
	case errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF):
		return httpError(http.StatusBadRequest, "malformed_json", "Malformed JSON: unexpected end of input")
	case errors.As(err, &typ):
		field := typ.Field
		if field == "" {
			field = "body"
		}
		return invalid(FieldError{Field: field, Message: "must be " + describeType(typ.Type)})
	default:
		// e.g. a custom UnmarshalJSON refusing a value: the field is unknown to us.
		return invalid(FieldError{Field: "body", Message: err.Error()})
	}
}

func describeType(t reflect.Type) string {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "a boolean"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "an integer"
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.Slice, reflect.Array:
		return "an array"
	case reflect.Map, reflect.Struct:
		return "an object"
	default:
		return "a valid value"
	}
}

// Page bounds of every list.
const (
	defaultPageSize = 20
	maxPageSize     = 100
	maxCursorLen    = 512
)

// pageOf reads ?limit= (1-100, default 20) and ?cursor= (opaque); a bad value is a 422.
func pageOf(r *http.Request) (limit int, cursor string, err error) {
	q := r.URL.Query()
	limit = defaultPageSize
	if s := q.Get("limit"); s != "" {
		n, convErr := strconv.Atoi(s)
		if convErr != nil || n < 1 || n > maxPageSize {
			return 0, "", invalid(FieldError{Field: "limit", Message: fmt.Sprintf("must be an integer from 1 to %d", maxPageSize)})
		}
		limit = n
	}
	cursor = q.Get("cursor")
	if len(cursor) > maxCursorLen || !utf8.ValidString(cursor) {
		return 0, "", invalid(FieldError{Field: "cursor", Message: "is not a cursor this API returned"})
	}
	return limit, cursor, nil
}

// validation collects field errors so that a client learns everything wrong
// with a request at once:
//
//	var v validation
//	v.required("name", req.Name)
//	v.maxLen("name", req.Name, 200)
//	if err := v.err(); err != nil { writeError(w, r, err); return }
type validation struct{ fields []FieldError }

// add records a problem with field.
func (v *validation) add(field, message string) {
	v.fields = append(v.fields, FieldError{field, message})
}

// check records message for field unless ok.
func (v *validation) check(ok bool, field, message string) {
	if !ok {
		v.add(field, message)
	}
}

// required records a missing or blank string.
func (v *validation) required(field, value string) {
	v.check(strings.TrimSpace(value) != "", field, "is required")
}

// maxLen records a string longer than max characters.
func (v *validation) maxLen(field, value string, max int) {
	v.check(utf8.RuneCountInString(value) <= max, field, fmt.Sprintf("must be at most %d characters", max))
}

// maxJSON records a free-form value (metadata, traits) whose JSON is over max bytes.
func (v *validation) maxJSON(field string, value any, max int) {
	b, err := json.Marshal(value)
	v.check(err == nil && len(b) <= max, field, fmt.Sprintf("must be at most %d bytes of JSON", max))
}

// err is nil when nothing was recorded, else a 422 with every field error.
func (v *validation) err() error {
	if len(v.fields) == 0 {
		return nil
	}
	return invalid(v.fields...)
}
