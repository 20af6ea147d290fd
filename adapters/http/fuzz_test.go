package httpapi

import (
	"bytes"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/companin/companin/domain/es"
	"github.com/google/uuid"
)

// fuzzDTO has the kinds of field request bodies use.
type fuzzDTO struct {
	Name      string         `json:"name"`
	Content   string         `json:"content"`
	Optional  *string        `json:"optional"`
	IsActive  *bool          `json:"is_active"`
	Limit     int            `json:"limit"`
	Score     float64        `json:"score"`
	Tasks     []string       `json:"default_tasks"`
	Metadata  map[string]any `json:"metadata"`
	Traits    map[string]any `json:"traits"`
	Assistant uuid.UUID      `json:"assistant_id"`
}

var fuzzSeeds = []string{
	``, `{}`, `null`, `[]`, `"x"`, `{"content":"hi","metadata":{"a":[1,{"b":null}]}}`,
	`{"user_reference":"u-1","traits":{"name":"J","preferences":{"language":"en"}}}`,
	`{"content":5}`, `{"metadata":"x"}`, `{"assistant_id":"not-a-uuid"}`, `{"limit":1e999}`,
	`{"is_active":"yes"}`, `{"default_tasks":[1,2]}`, `{"content":"\ud800"}`, "{\"content\":\"\xff\"}",
	`{"a":` + strings.Repeat(`[`, 5000) + strings.Repeat(`]`, 5000) + `}`, `{"content":"x"}{"content":"y"}`,
	`{"client_id":"ci_x"}`, `{"content":"` + strings.Repeat("a", 70000) + `"}`,
	// Text no reader of the log can store: NUL escapes and raw invalid
	// UTF-8, in values and keys, nested; an escaped backslash that is fine.
	`{"content":"a\u0000b"}`, `{"metadata":{"a":[1,{"b":"\u0000"}]}}`, `{"traits":{"\u0000":1}}`,
	"{\"content\":\"caf\xc3\"}", "{\"metadata\":{\"k\":[\"\xe2\x82\"]}}", "{\"traits\":{\"\xff\":\"x\"}}",
	`{"content":"\udc00"}`, `{"content":"\\u0000"}`, "{\"content\":\"a\x00b\"}",
}

// FuzzDecodeJSON: whatever the body, decoding answers a client error, never
// a panic or something that would become a 500.
func FuzzDecodeJSON(f *testing.F) {
	for _, s := range fuzzSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		var dto fuzzDTO
		err := decodeBytes(body, &dto)
		if err == nil && es.CheckJSONText(bytes.TrimSpace(body)) != nil {
			t.Fatalf("body %q: accepted with text the log cannot store", body)
		}
		if err == nil {
			var v validation
			v.required("content", dto.Content)
			v.maxLen("content", dto.Content, 10000)
			v.maxJSON("metadata", dto.Metadata, 64<<10)
			err = v.err()
		}
		if err == nil {
			return
		}
		var ae *apiError
		if !errors.As(err, &ae) || ae.status < 400 || ae.status >= 500 {
			t.Fatalf("body %q: %v is not a client error", body, err)
		}
		if ae.status == http.StatusUnprocessableEntity && len(ae.fields) == 0 {
			t.Fatalf("body %q: a 422 naming no field", body)
		}
		rec := httptest.NewRecorder()
		writeError(rec, httptest.NewRequest(http.MethodPost, "/", nil), err)
		if rec.Code >= 500 || !bytes.Contains(rec.Body.Bytes(), []byte(`"status":"error"`)) {
			t.Fatalf("body %q: answered %d %s", body, rec.Code, rec.Body)
		}
	})
}

// FuzzPostRoutes sends the fuzzed body to every JSON POST route of the real
// router (message and context endpoints among them, once registered), as an
// authenticated client, and asserts no 5xx. Path ids are fresh UUIDs, so a
// handler that decodes before loading is fuzzed on its decoding.
func FuzzPostRoutes(f *testing.F) {
	for _, s := range fuzzSeeds {
		for i := range uint8(8) {
			f.Add([]byte(s), i)
		}
	}
	ts := newTestServer(f, withConfig(Config{RateLimitPerHour: 1 << 30, ReplyWait: 1}))
	h := ts.Server.Handler()
	contract := newContractChecker(f, ts.Server)
	var paths []string
	for _, rt := range ts.Server.sortedRoutes() {
		if rt.Method != http.MethodPost || rt.Scope == ScopePublic && !strings.HasSuffix(rt.Path, "widget-token") ||
			strings.Contains(rt.Path, "/knowledge/files") {
			continue
		}
		paths = append(paths, pathParam.ReplaceAllString(rt.Path, uuid.NewString()))
	}
	f.Fuzz(func(t *testing.T, body []byte, which uint8) {
		path := paths[int(which)%len(paths)]
		req := httptest.NewRequest(http.MethodPost, path+"?wait=0", bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("X-API-Key", ts.org.ClientID)
		req.Header.Set("X-API-Secret", ts.org.Secret)
		rec := httptest.NewRecorder()
		contract.wrap(t, h).ServeHTTP(rec, req)
		if rec.Code >= 500 {
			t.Fatalf("POST %s %q: %d %s", path, body, rec.Code, rec.Body)
		}
	})
}
