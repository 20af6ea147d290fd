package httpapi

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/companin/companin/domain"
	"github.com/companin/companin/domain/es"
	"github.com/companin/companin/domain/organization"
)

func TestWriteErrorTable(t *testing.T) {
	t.Parallel()
	cases := []struct {
		err    error
		status int
		code   string
		field  string
	}{
		{fmt.Errorf("load session: %w", fmt.Errorf("session x: %w", domain.ErrNotFound)), 404, "not_found", ""},
		{fmt.Errorf("save: %w", es.ErrWrongExpectedVersion), 409, "conflict", ""},
		{fmt.Errorf("reserve: %w", domain.ErrConflict), 409, "conflict", ""},
		{fmt.Errorf("create: %w", domain.Invalid("name", "is required")), 422, "validation_failed", "name"},
		{organization.ErrInvalidOrigin, 422, "invalid_origin", ""},
		{fmt.Errorf("x: %w", domain.ErrInvalid), 422, "invalid", ""},
		{domain.ErrForbidden, 403, "forbidden", ""},
		{invalid(FieldError{Field: "limit", Message: "bad"}), 422, "validation_failed", "limit"},
		{httpError(409, "", "busy"), 409, "", ""},
		{fmt.Errorf("dial tcp: refused"), 500, "internal_error", ""},
	}
	for _, c := range cases {
		rec := httptest.NewRecorder()
		writeError(rec, httptest.NewRequest(http.MethodGet, "/", nil), c.err)
		var env struct {
			Status     string `json:"status"`
			StatusCode int    `json:"status_code"`
			Detail     string `json:"detail"`
			Data       *struct {
				Code   string       `json:"code"`
				Errors []FieldError `json:"errors"`
			} `json:"data"`
		}
		if err := json.Unmarshal(rec.Body.Bytes(), &env); err != nil {
			t.Fatalf("%v: %v", c.err, err)
		}
		if rec.Code != c.status || env.StatusCode != c.status || env.Status != "error" || env.Detail == "" {
			t.Fatalf("%v: %d %s", c.err, rec.Code, rec.Body)
		}
		code := ""
		if env.Data != nil {
			code = env.Data.Code
		}
		if code != c.code {
			t.Fatalf("%v: code %q in %s", c.err, code, rec.Body)
		}
		if c.field != "" && (len(env.Data.Errors) != 1 || env.Data.Errors[0].Field != c.field) {
			t.Fatalf("%v: field errors %s", c.err, rec.Body)
		}
		if c.status == 500 && env.Detail != "Internal server error" {
			t.Fatalf("500 detail leaks: %s", env.Detail)
		}
	}
}

func TestWriteListAlwaysAnArray(t *testing.T) {
	t.Parallel()
	rec := httptest.NewRecorder()
	var none []string
	writeList(rec, httptest.NewRequest(http.MethodGet, "/", nil), none, false, "")
	want := `{"status":"success","status_code":200,"detail":null,"data":[],"meta":{"has_more":false,"next_cursor":null}}` + "\n"
	if rec.Body.String() != want {
		t.Fatalf("got %s", rec.Body)
	}
	rec = httptest.NewRecorder()
	writeList(rec, httptest.NewRequest(http.MethodGet, "/", nil), []int{1}, true, "c2")
	if want := `{"status":"success","status_code":200,"detail":null,"data":[1],"meta":{"has_more":true,"next_cursor":"c2"}}` + "\n"; rec.Body.String() != want {
		t.Fatalf("got %s", rec.Body)
	}
}
