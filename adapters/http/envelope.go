package httpapi

import (
	"encoding/json"
	"net/http"
	"reflect"
)

// envelope is the shape of every JSON response but the widget token's.
type envelope struct {
	Status     string    `json:"status"`
	StatusCode int       `json:"status_code"`
	Detail     *string   `json:"detail"`
	Data       any       `json:"data"`
	Meta       *listMeta `json:"meta,omitempty"`
}

type listMeta struct {
	HasMore    bool    `json:"has_more"`
	NextCursor *string `json:"next_cursor"`
}

// errorData is the data of an error envelope when there is more to say than the detail.
type errorData struct {
	Code   string       `json:"code"`
	Errors []FieldError `json:"errors"`
}

// writeData answers with the success envelope around data.
func writeData(w http.ResponseWriter, r *http.Request, status int, data any) {
	writeJSON(w, status, envelope{Status: "success", StatusCode: status, Data: data})
}

// writeList answers 200 with a list: data is always an array, meta tells
// whether there is more and where to continue (nextCursor "" is null).
func writeList(w http.ResponseWriter, r *http.Request, items any, hasMore bool, nextCursor string) {
	if items == nil {
		items = []any{}
	} else if v := reflect.ValueOf(items); v.Kind() == reflect.Slice && v.IsNil() {
		items = []any{}
	}
	meta := &listMeta{HasMore: hasMore}
	if nextCursor != "" {
		meta.NextCursor = &nextCursor
	}
	writeJSON(w, http.StatusOK, envelope{Status: "success", StatusCode: http.StatusOK, Data: items, Meta: meta})
}

// writeJSON writes v as the body; encoding errors after the header are only
// the client going away, nothing to answer.
func writeJSON(w http.ResponseWriter, status int, v any) {
	body, err := json.Marshal(v)
	if err != nil {
		status = http.StatusInternalServerError
		body = []byte(`{"status":"error","status_code":500,"detail":"Internal server error","data":null}`)
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write(append(body, '\n'))
}

// writeProblem writes the error envelope.
func writeProblem(w http.ResponseWriter, status int, detail, code string, fields []FieldError) {
	env := envelope{Status: "error", StatusCode: status, Detail: &detail}
	if code != "" || len(fields) > 0 {
		if fields == nil {
			fields = []FieldError{}
		}
		env.Data = errorData{Code: code, Errors: fields}
	}
	writeJSON(w, status, env)
}
