package httpapi

import (
	"context"
	"encoding/json"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/companin/companin/domain/es"
	"github.com/google/uuid"
)

var uuidRe = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`)

// noRedirects is a client that shows redirects instead of following them.
var noRedirects = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

func expectError(t *testing.T, r response, status int) map[string]any {
	t.Helper()
	if r.Status != status {
		t.Fatalf("status %d, want %d: %s", r.Status, status, r.Body)
	}
	m := r.json(t)
	if m["status"] != "error" || m["status_code"] != float64(status) {
		t.Fatalf("error envelope: %s", r.Body)
	}
	if d, ok := m["detail"].(string); !ok || d == "" {
		t.Fatalf("detail: %s", r.Body)
	}
	if _, ok := m["data"]; !ok {
		t.Fatalf("data key missing: %s", r.Body)
	}
	if strings.Contains(string(r.Body), "goroutine") || strings.Contains(string(r.Body), ".go:") {
		t.Fatalf("stack trace on the wire: %s", r.Body)
	}
	if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Fatalf("content type %q", ct)
	}
	return m
}

func fieldErrors(t *testing.T, m map[string]any) map[string]string {
	t.Helper()
	data, ok := m["data"].(map[string]any)
	if !ok {
		t.Fatalf("no error data: %v", m)
	}
	out := map[string]string{}
	list, _ := data["errors"].([]any)
	for _, e := range list {
		fe := e.(map[string]any)
		out[fe["field"].(string)] = fe["message"].(string)
	}
	return out
}

func TestNotFoundAndMethodNotAllowedAreJSON(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	expectError(t, ts.do(t, http.MethodGet, "/api/v1/nope", ts.org, ""), 404)
	expectError(t, ts.do(t, http.MethodGet, "/", testOrg{}, ""), 404)
	r := ts.do(t, http.MethodDelete, "/api/v1/events", ts.org, "")
	expectError(t, r, 405)
	if allow := r.Header.Get("Allow"); allow != "GET, OPTIONS" {
		t.Fatalf("Allow %q", allow)
	}
	r = ts.do(t, http.MethodGet, "/api/v1/auth/widget-token/", testOrg{}, "")
	expectError(t, r, 405)
	if allow := r.Header.Get("Allow"); allow != "OPTIONS, POST" {
		t.Fatalf("Allow %q", allow)
	}
}

func TestTrailingSlashesWithoutRedirect(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	var hits atomic.Int32
	for _, m := range []string{"GET", "POST", "PATCH", "PUT", "DELETE"} {
		ts.Server.handle(m, "/probe/{id}", ScopeAPI, func(w http.ResponseWriter, r *http.Request) {
			hits.Add(1)
			writeData(w, r, 200, map[string]string{"method": r.Method, "id": pathID(r)})
		})
	}
	for _, m := range []string{"GET", "POST", "PATCH", "PUT", "DELETE"} {
		for _, p := range []string{"/api/v1/probe/42", "/api/v1/probe/42/"} {
			req, _ := http.NewRequest(m, ts.URL+p, strings.NewReader(`{}`))
			req.Header.Set("X-API-Key", ts.org.ClientID)
			req.Header.Set("X-API-Secret", ts.org.Secret)
			resp, err := noRedirects.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != 200 {
				t.Fatalf("%s %s: %d", m, p, resp.StatusCode)
			}
		}
	}
	if hits.Load() != 10 {
		t.Fatalf("handler ran %d times", hits.Load())
	}
	r := ts.do(t, http.MethodGet, "/api/v1/events/", ts.org, "")
	if r.Status != 200 {
		t.Fatalf("GET /events/: %d", r.Status)
	}
	r = ts.do(t, http.MethodGet, "/healthz/", testOrg{}, "")
	if r.Status != 200 {
		t.Fatalf("GET /healthz/: %d", r.Status)
	}
	r = ts.do(t, http.MethodHead, "/api/v1/events/", ts.org, "")
	if r.Status != 200 || len(r.Body) != 0 || r.Header.Get("X-RateLimit-Limit") == "" {
		t.Fatalf("HEAD /events/: %d %q", r.Status, r.Body)
	}
}

func pathID(r *http.Request) string { return muxVar(r, "id") }

func TestRequestID(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	r := ts.do(t, http.MethodGet, "/healthz", testOrg{}, "")
	if !uuidRe.MatchString(r.Header.Get("X-Request-ID")) {
		t.Fatalf("generated request id %q", r.Header.Get("X-Request-ID"))
	}
	r = ts.do(t, http.MethodGet, "/api/v1/nope", testOrg{}, "", "X-Request-ID", "req-123")
	if r.Header.Get("X-Request-ID") != "req-123" {
		t.Fatalf("echoed request id %q", r.Header.Get("X-Request-ID"))
	}
	r = ts.do(t, http.MethodGet, "/api/v1/events", testOrg{}, "", "X-Request-ID", "abc")
	if r.Status != 401 || r.Header.Get("X-Request-ID") != "abc" {
		t.Fatalf("401 request id %q", r.Header.Get("X-Request-ID"))
	}
	if r.Header.Get("WWW-Authenticate") == "" {
		t.Fatal("401 without WWW-Authenticate")
	}
	// An id that could forge log lines or is absurdly long is replaced.
	for _, bad := range []string{"a b", strings.Repeat("x", 200)} {
		r = ts.do(t, http.MethodGet, "/healthz", testOrg{}, "", "X-Request-ID", bad)
		if !uuidRe.MatchString(r.Header.Get("X-Request-ID")) {
			t.Fatalf("request id %q kept as %q", bad, r.Header.Get("X-Request-ID"))
		}
	}
}

func TestRequestIDAndActorReachEventMetadata(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	ts.Server.handle(http.MethodPost, "/probe", ScopeAPI, func(w http.ResponseWriter, r *http.Request) {
		md := es.MetadataFrom(r.Context())
		writeData(w, r, 201, md)
	})
	r := ts.do(t, http.MethodPost, "/api/v1/probe", ts.org, `{}`, "X-Request-ID", "trace-7")
	d := r.data(t)
	if d["organization_id"] != ts.org.ID || d["actor"] != "api_key:"+ts.org.ClientID ||
		d["request_id"] != "trace-7" || d["correlation_id"] != "trace-7" {
		t.Fatalf("metadata %v", d)
	}
}

func TestBodyLimits(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t, withConfig(Config{MaxBodyBytes: 1024}))
	big := `{"client_id":"` + strings.Repeat("x", 4096) + `"}`
	expectError(t, ts.do(t, http.MethodPost, "/api/v1/auth/widget-token", testOrg{}, big), 413)

	// Chunked: no Content-Length, the limit hits while reading.
	req, _ := http.NewRequest(http.MethodPost, ts.URL+"/api/v1/auth/widget-token", strings.NewReader(big))
	req.ContentLength = -1
	req.TransferEncoding = []string{"chunked"}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 413 {
		t.Fatalf("chunked: %d", resp.StatusCode)
	}
}

func TestDecodingErrors(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	type probe struct {
		Name     string            `json:"name"`
		Tags     []string          `json:"tags"`
		Metadata map[string]string `json:"metadata"`
		Count    int               `json:"count"`
	}
	ts.Server.handle(http.MethodPost, "/probe", ScopeAPI, func(w http.ResponseWriter, r *http.Request) {
		var p probe
		if err := decodeJSON(w, r, &p); err != nil {
			writeError(w, r, err)
			return
		}
		var v validation
		v.required("name", p.Name)
		v.maxLen("name", p.Name, 5)
		if err := v.err(); err != nil {
			writeError(w, r, err)
			return
		}
		writeData(w, r, 201, p)
	})
	cases := []struct {
		body   string
		status int
		field  string
	}{
		{`{"name":"ok","unknown":1}`, 201, ""},
		{``, 400, ""},
		{`{"name":`, 400, ""},
		{`{"name":"a"} trailing`, 400, ""},
		{`[1,2]`, 400, ""},
		{`"str"`, 400, ""},
		{`{"name":5}`, 422, "name"},
		{`{"name":"ok","tags":"x"}`, 422, "tags"},
		{`{"name":"ok","tags":[1]}`, 422, "tags"},
		{`{"name":"ok","metadata":{"a":1}}`, 422, "metadata"},
		{`{"name":"ok","count":1.5}`, 422, "count"},
		{`{"name":"ok","count":1e400}`, 422, "count"},
		{`{}`, 422, "name"},
		{`{"name":"toolong"}`, 422, "name"},
	}
	for _, c := range cases {
		r := ts.do(t, http.MethodPost, "/api/v1/probe", ts.org, c.body)
		if c.status == 201 {
			if r.Status != 201 {
				t.Fatalf("%s: %d %s", c.body, r.Status, r.Body)
			}
			continue
		}
		m := expectError(t, r, c.status)
		if c.field != "" {
			if _, ok := fieldErrors(t, m)[c.field]; !ok {
				t.Fatalf("%s: no field error for %s: %s", c.body, c.field, r.Body)
			}
		}
	}
}

func TestPanicsAndUnknownErrorsAre500WithoutDetails(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	ts.Server.handle(http.MethodGet, "/boom", ScopeAPI, func(w http.ResponseWriter, r *http.Request) {
		panic("secret internals")
	})
	ts.Server.handle(http.MethodGet, "/fail", ScopeAPI, func(w http.ResponseWriter, r *http.Request) {
		writeError(w, r, errorsNew("pq: relation secret_table does not exist"))
	})
	for _, p := range []string{"/api/v1/boom", "/api/v1/fail"} {
		r := ts.do(t, http.MethodGet, p, ts.org, "")
		m := expectError(t, r, 500)
		if strings.Contains(string(r.Body), "secret") || m["detail"] != "Internal server error" {
			t.Fatalf("%s leaks: %s", p, r.Body)
		}
	}
	if r := ts.do(t, http.MethodGet, "/healthz", testOrg{}, ""); r.Status != 200 {
		t.Fatalf("server died after panic: %d", r.Status)
	}
}

func TestCORS(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	for _, p := range []string{"/api/v1/sessions/", "/api/v1/events", "/api/v1/auth/widget-token", "/api/v1/assistants/123"} {
		r := ts.do(t, http.MethodOptions, p, testOrg{}, "",
			"Origin", "https://shop.example.com",
			"Access-Control-Request-Method", "POST",
			"Access-Control-Request-Headers", "authorization, content-type, idempotency-key")
		if r.Status != 204 {
			t.Fatalf("preflight %s: %d %s", p, r.Status, r.Body)
		}
		h := r.Header
		if h.Get("Access-Control-Allow-Origin") != "https://shop.example.com" || h.Get("Access-Control-Allow-Credentials") != "true" {
			t.Fatalf("preflight %s origin/credentials: %v", p, h)
		}
		for _, want := range []string{"Authorization", "X-API-Key", "X-API-Secret", "Content-Type", "Idempotency-Key", "X-Request-ID"} {
			if !strings.Contains(h.Get("Access-Control-Allow-Headers"), want) {
				t.Fatalf("preflight %s: %s not allowed: %q", p, want, h.Get("Access-Control-Allow-Headers"))
			}
		}
		if !strings.Contains(h.Get("Access-Control-Allow-Methods"), "POST") {
			t.Fatalf("preflight %s methods %q", p, h.Get("Access-Control-Allow-Methods"))
		}
	}
	r := ts.do(t, http.MethodGet, "/api/v1/events", ts.org, "", "Origin", "https://app.example.org")
	if r.Status != 200 || r.Header.Get("Access-Control-Allow-Origin") != "https://app.example.org" ||
		r.Header.Get("Access-Control-Allow-Credentials") != "true" {
		t.Fatalf("simple request CORS: %d %v", r.Status, r.Header)
	}
	for _, want := range []string{"X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset", "X-Request-ID", "Retry-After", "Idempotent-Replayed"} {
		if !strings.Contains(r.Header.Get("Access-Control-Expose-Headers"), want) {
			t.Fatalf("%s not exposed: %q", want, r.Header.Get("Access-Control-Expose-Headers"))
		}
	}
	// Errors carry CORS too, or the browser hides them from the page.
	r = ts.do(t, http.MethodGet, "/api/v1/events", testOrg{}, "", "Origin", "https://app.example.org")
	if r.Status != 401 || r.Header.Get("Access-Control-Allow-Origin") != "https://app.example.org" {
		t.Fatalf("401 without CORS: %v", r.Header)
	}
}

func TestRateLimitPerOrganization(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t, withConfig(Config{RateLimitPerHour: 3}))
	other := ts.newOrg(t, "Other")
	for i := 1; i <= 3; i++ {
		r := ts.do(t, http.MethodGet, "/api/v1/events", ts.org, "")
		if r.Status != 200 {
			t.Fatalf("request %d: %d %s", i, r.Status, r.Body)
		}
		if r.Header.Get("X-RateLimit-Limit") != "3" || r.Header.Get("X-RateLimit-Remaining") != itoa(3-i) {
			t.Fatalf("request %d headers: limit %q remaining %q", i, r.Header.Get("X-RateLimit-Limit"), r.Header.Get("X-RateLimit-Remaining"))
		}
		reset := r.Header.Get("X-RateLimit-Reset")
		if len(reset) != 10 {
			t.Fatalf("reset %q is not unix seconds", reset)
		}
	}
	r := ts.do(t, http.MethodGet, "/api/v1/events", ts.org, "")
	m := expectError(t, r, 429)
	if r.Header.Get("Retry-After") == "" || r.Header.Get("X-RateLimit-Remaining") != "0" {
		t.Fatalf("429 headers: %v", r.Header)
	}
	if data, _ := m["data"].(map[string]any); data["code"] != "rate_limited" {
		t.Fatalf("429 code: %s", r.Body)
	}
	// The other organization has its own budget.
	r = ts.do(t, http.MethodGet, "/api/v1/events", other, "")
	if r.Status != 200 || r.Header.Get("X-RateLimit-Remaining") != "2" {
		t.Fatalf("other org: %d remaining %q", r.Status, r.Header.Get("X-RateLimit-Remaining"))
	}
	// The counter is in the database: a second instance shares it.
	srv2 := New(Deps{Store: ts.Store, Pool: ts.Pool, Runtime: ts.Server.deps.Runtime, Config: Config{RateLimitPerHour: 3}})
	rec := serve(t, srv2, http.MethodGet, "/api/v1/events", ts.org)
	if rec.Status != 429 {
		t.Fatalf("second instance: %d", rec.Status)
	}
}

func itoa(i int) string { return strconvItoa(i) }

// appendProbeEvent registers POST /api/v1/probe-events that appends one event
// for the caller's organization and answers with it, counting its runs.
func appendProbeEvent(ts *testServer, runs *atomic.Int32, delay time.Duration) {
	ts.Server.handle(http.MethodPost, "/probe-events", ScopeWidget, func(w http.ResponseWriter, r *http.Request) {
		var body map[string]any
		if err := decodeJSON(w, r, &body); err != nil {
			writeError(w, r, err)
			return
		}
		runs.Add(1)
		time.Sleep(delay)
		id := uuid.New()
		data, _ := json.Marshal(body)
		res, err := ts.Store.Append(r.Context(), "probe-"+id.String(), es.NoStream,
			es.NewEvent{ID: id, Type: "ProbeHappened", SchemaVersion: 1, Data: data, Metadata: es.MetadataFrom(r.Context())})
		if err != nil {
			writeError(w, r, err)
			return
		}
		ts.Server.waitForProjections(r, res.Position)
		w.Header().Set("Location", "/api/v1/probe-events/"+id.String())
		writeData(w, r, 201, map[string]any{"id": id, "position": res.Position})
	})
}

func countEvents(t *testing.T, store es.Store, org string) int {
	t.Helper()
	evs, err := store.ReadAll(context.Background(), es.Start, 10000, es.Filter{OrganizationID: org, Types: []string{"ProbeHappened"}})
	if err != nil {
		t.Fatal(err)
	}
	return len(evs)
}

func TestIdempotencyKey(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	var runs atomic.Int32
	appendProbeEvent(ts, &runs, 0)
	first := ts.do(t, http.MethodPost, "/api/v1/probe-events", ts.org, `{"a":1}`, "Idempotency-Key", "k1")
	if first.Status != 201 || first.Header.Get("Idempotent-Replayed") != "" {
		t.Fatalf("first: %d %v", first.Status, first.Header)
	}
	again := ts.do(t, http.MethodPost, "/api/v1/probe-events/", ts.org, `{"a":1}`, "Idempotency-Key", "k1")
	if again.Status != 201 || again.Header.Get("Idempotent-Replayed") != "true" || string(again.Body) != string(first.Body) {
		t.Fatalf("replay: %d %v %s", again.Status, again.Header, again.Body)
	}
	if again.Header.Get("Location") != first.Header.Get("Location") || again.Header.Get("X-RateLimit-Limit") == "" {
		t.Fatalf("replayed headers: %v", again.Header)
	}
	m := expectError(t, ts.do(t, http.MethodPost, "/api/v1/probe-events", ts.org, `{"a":2}`, "Idempotency-Key", "k1"), 422)
	if data, _ := m["data"].(map[string]any); data["code"] != "idempotency_key_reused" {
		t.Fatalf("code: %v", m)
	}
	if runs.Load() != 1 || countEvents(t, ts.Store, ts.org.ID) != 1 {
		t.Fatalf("ran %d times, %d events", runs.Load(), countEvents(t, ts.Store, ts.org.ID))
	}
	// Keys belong to an organization: another may use the same one.
	other := ts.newOrg(t, "Other")
	if r := ts.do(t, http.MethodPost, "/api/v1/probe-events", other, `{"a":1}`, "Idempotency-Key", "k1"); r.Status != 201 || r.Header.Get("Idempotent-Replayed") != "" {
		t.Fatalf("other org: %d %v", r.Status, r.Header)
	}
	// Without a key, every POST runs.
	ts.do(t, http.MethodPost, "/api/v1/probe-events", ts.org, `{"a":1}`)
	ts.do(t, http.MethodPost, "/api/v1/probe-events", ts.org, `{"a":1}`)
	if n := countEvents(t, ts.Store, ts.org.ID); n != 3 {
		t.Fatalf("%d events", n)
	}
	// A failed request (4xx is a response too) is stored; a bad body replays its 400.
	bad := ts.do(t, http.MethodPost, "/api/v1/probe-events", ts.org, `{`, "Idempotency-Key", "k2")
	badAgain := ts.do(t, http.MethodPost, "/api/v1/probe-events", ts.org, `{`, "Idempotency-Key", "k2")
	if bad.Status != 400 || badAgain.Status != 400 || badAgain.Header.Get("Idempotent-Replayed") != "true" {
		t.Fatalf("bad body: %d %d", bad.Status, badAgain.Status)
	}
	long := strings.Repeat("k", 300)
	expectError(t, ts.do(t, http.MethodPost, "/api/v1/probe-events", ts.org, `{"a":1}`, "Idempotency-Key", long), 422)
}

func TestIdempotencyConcurrentDuplicatesRunOnce(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	var runs atomic.Int32
	appendProbeEvent(ts, &runs, 300*time.Millisecond)
	var wg sync.WaitGroup
	statuses := make([]int, 8)
	for i := range statuses {
		wg.Add(1)
		go func() {
			defer wg.Done()
			statuses[i] = ts.do(t, http.MethodPost, "/api/v1/probe-events", ts.org, `{"a":1}`, "Idempotency-Key", "same").Status
		}()
	}
	wg.Wait()
	if runs.Load() != 1 || countEvents(t, ts.Store, ts.org.ID) != 1 {
		t.Fatalf("ran %d times; statuses %v", runs.Load(), statuses)
	}
	for _, s := range statuses {
		if s != 201 && s != 409 {
			t.Fatalf("statuses %v", statuses)
		}
	}
	if r := ts.do(t, http.MethodPost, "/api/v1/probe-events", ts.org, `{"a":1}`, "Idempotency-Key", "same"); r.Status != 201 || r.Header.Get("Idempotent-Replayed") != "true" {
		t.Fatalf("after: %d", r.Status)
	}
}

func TestIdempotencyFreesKeyAfterServerError(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	var calls atomic.Int32
	ts.Server.handle(http.MethodPost, "/flaky", ScopeAPI, func(w http.ResponseWriter, r *http.Request) {
		if calls.Add(1) == 1 {
			panic("transient")
		}
		writeData(w, r, 201, map[string]int{"call": int(calls.Load())})
	})
	expectError(t, ts.do(t, http.MethodPost, "/api/v1/flaky", ts.org, `{}`, "Idempotency-Key", "f"), 500)
	r := ts.do(t, http.MethodPost, "/api/v1/flaky", ts.org, `{}`, "Idempotency-Key", "f")
	if r.Status != 201 || r.Header.Get("Idempotent-Replayed") != "" {
		t.Fatalf("retry after 500: %d %v %s", r.Status, r.Header, r.Body)
	}
}

func TestOpenAPIMetricsReadiness(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	r := ts.do(t, http.MethodGet, "/api/v1/openapi.json", testOrg{}, "")
	doc := r.json(t)
	if doc["openapi"] != "3.0.3" {
		t.Fatalf("openapi: %s", r.Body[:100])
	}
	paths := doc["paths"].(map[string]any)
	for _, p := range []string{"/events", "/events/stream", "/auth/widget-token"} {
		if _, ok := paths[p]; !ok {
			t.Fatalf("path %s missing", p)
		}
	}
	if _, ok := paths["/events"].(map[string]any)["get"]; !ok {
		t.Fatal("GET /events missing")
	}
	r = ts.do(t, http.MethodGet, "/metrics", testOrg{}, "")
	if r.Status != 200 || !strings.Contains(string(r.Body), "companin_http_requests_total") {
		t.Fatalf("metrics: %d", r.Status)
	}
	r = ts.do(t, http.MethodGet, "/readyz", testOrg{}, "")
	if r.Status != 200 || r.data(t)["database"] != "ok" {
		t.Fatalf("readyz: %d %s", r.Status, r.Body)
	}
}

// stuckProjections never catch up.
type stuckProjections struct{}

func (stuckProjections) WaitForProjections(ctx context.Context, _ es.Position, _ ...string) error {
	<-ctx.Done()
	return ctx.Err()
}

func TestReadyzNeedsProjectionsCaughtUp(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	stuck := New(Deps{Store: ts.Store, Pool: ts.Pool, Runtime: stuckProjections{}})
	r := serve(t, stuck, http.MethodGet, "/readyz", testOrg{})
	m := expectError(t, r, 503)
	if data, _ := m["data"].(map[string]any); data["projections"] != "behind" || data["database"] != "ok" {
		t.Fatalf("readyz: %s", r.Body)
	}
	if r := serve(t, ts.Server, http.MethodGet, "/readyz", testOrg{}); r.Status != 200 {
		t.Fatalf("caught up: %d %s", r.Status, r.Body)
	}
}
