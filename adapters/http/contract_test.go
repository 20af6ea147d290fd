package httpapi

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/gorillamux"
)

// This file checks every answer the test suite receives against
// /api/v1/openapi.json: newTestServer (and serve) put checkContract in front
// of the API, which validates each request and response pair with
// kin-openapi's openapi3filter and fails the test that made it on a
// mismatch, naming the route, the status and the validation error.
//
// Requests are validated too. A request the document refuses may still be
// sent on purpose (tests of bad input): then the answer must be a 4xx error
// envelope. A request the document refuses that the server accepts (2xx)
// fails: the document would be stricter than the API.

func init() {
	openapi3filter.RegisterBodyDecoder("text/event-stream", openapi3filter.PlainBodyDecoder)
	openapi3filter.RegisterBodyDecoder("text/javascript", openapi3filter.PlainBodyDecoder)
	openapi3filter.RegisterBodyDecoder("text/html", openapi3filter.PlainBodyDecoder)
	openapi3filter.RegisterBodyDecoder("application/x-ndjson", ndjsonDecoder)
	// kin-openapi checks date-time by itself, uuid only when told.
	openapi3.DefineStringFormatValidator("uuid", openapi3.NewRegexpFormatValidator(openapi3.FormatOfStringForUUIDOfRFC9562))
}

// ndjsonDecoder reads one JSON value per line as an array.
func ndjsonDecoder(body io.Reader, _ http.Header, _ *openapi3.SchemaRef, _ openapi3filter.EncodingFn) (any, error) {
	out := []any{}
	sc := bufio.NewScanner(body)
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	for sc.Scan() {
		if len(bytes.TrimSpace(sc.Bytes())) == 0 {
			continue
		}
		var v any
		if err := json.Unmarshal(sc.Bytes(), &v); err != nil {
			return nil, fmt.Errorf("line %d: %w", len(out)+1, err)
		}
		out = append(out, v)
	}
	return out, sc.Err()
}

// contractDoc is the document of s as a client gets it: served, marshalled
// and loaded again with openapi3.NewLoader, so that every $ref resolves as
// for any other reader.
func contractDoc(t testing.TB, s *Server) *openapi3.T {
	t.Helper()
	rec := httptest.NewRecorder()
	s.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, APIPrefix+"/openapi.json", nil))
	if rec.Code != http.StatusOK {
		t.Fatalf("openapi.json: %d %s", rec.Code, rec.Body)
	}
	loader := openapi3.NewLoader()
	doc, err := loader.LoadFromData(rec.Body.Bytes())
	if err != nil {
		t.Fatalf("load openapi.json: %v", err)
	}
	if err := doc.Validate(loader.Context); err != nil {
		t.Fatalf("openapi.json is not a valid OpenAPI 3 document: %v", err)
	}
	return doc
}

// contractChecker validates exchanges against one server's document.
type contractChecker struct {
	doc    *openapi3.T
	router routers.Router
}

// checkers are made once per server: the document does not change.
var checkers sync.Map // *Server -> *contractChecker

func newContractChecker(t testing.TB, s *Server) *contractChecker {
	t.Helper()
	if c, ok := checkers.Load(s); ok {
		return c.(*contractChecker)
	}
	doc := contractDoc(t, s)
	router, err := gorillamux.NewRouter(doc)
	if err != nil {
		t.Fatalf("router of openapi.json: %v", err)
	}
	c := &contractChecker{doc: doc, router: router}
	checkers.Store(s, c)
	return c
}

// checkContract wraps h (s.Handler()) so that each exchange is validated
// against the document; mismatches fail t.
func checkContract(t testing.TB, s *Server, h http.Handler) http.Handler {
	return newContractChecker(t, s).wrap(t, h)
}

// wrap is checkContract with a checker made once (a fuzz target's).
func (c *contractChecker) wrap(t testing.TB, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		reqBody, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, "test harness: reading the request body: "+err.Error(), http.StatusBadRequest)
			return
		}
		r.Body = io.NopCloser(bytes.NewReader(reqBody))
		// idempotency.go's recorder: passes the answer on (flushes
		// included) and keeps a copy.
		rec := &recorder{ResponseWriter: w, status: http.StatusOK}
		h.ServeHTTP(rec, r)
		err = c.check(r, reqBody, rec.status, w.Header(), rec.body.Bytes())
		if tt, ok := exchanges.Load(r.Header.Get(headerTestExchange)); ok {
			t = tt.(testing.TB) // the (sub)test that sent it, through ts.do
		}
		if err != nil {
			t.Errorf("contract: %v", err)
			return
		}
		c.cover(r, rec.status)
	})
}

// headerTestExchange carries, from ts.do to checkContract, the id under
// which exchanges holds the test that sent the request, so that a mismatch
// fails that (sub)test rather than the one that started the server.
const headerTestExchange = "Companin-Test-Exchange"

var exchanges sync.Map // id -> testing.TB

// cover records an exchange that passed for the coverage summary.
func (c *contractChecker) cover(r *http.Request, status int) {
	probe, _ := asRouted(r, nil)
	route, _, err := c.router.FindRoute(probe)
	if err != nil {
		return
	}
	coverage.Lock()
	defer coverage.Unlock()
	for p, item := range c.doc.Paths.Map() {
		for m, op := range item.Operations() {
			coverage.all[m+" "+p] = len(op.Responses.Map())
		}
	}
	name := route.Method + " " + route.Path
	if coverage.seen[name] == nil {
		coverage.seen[name] = map[int]int{}
	}
	coverage.seen[name][status]++
}

// coverage counts the operations and statuses the suite's exchanges hit.
var coverage = struct {
	sync.Mutex
	seen map[string]map[int]int // "GET /assistants/{id}" -> status -> exchanges
	all  map[string]int         // every documented operation -> its documented statuses
}{seen: map[string]map[int]int{}, all: map[string]int{}}

func (c *contractChecker) check(r *http.Request, reqBody []byte, status int, header http.Header, body []byte) error {
	if r.Method == http.MethodOptions && r.Header.Get("Access-Control-Request-Method") != "" {
		return nil // CORS preflight: answered before any route
	}
	if status == statusClientClosed {
		return nil // nobody read it
	}
	probe, head := asRouted(r, reqBody)
	name := r.Method + " " + r.URL.Path
	route, params, err := c.router.FindRoute(probe)
	if err != nil {
		// Outside the document: no route (404), another method (405), or a
		// route a test registered. Still an envelope.
		return checkEnvelope(name, status, header, body)
	}
	name = route.Method + " " + route.Path

	opts := &openapi3filter.Options{
		AuthenticationFunc:    authPresent,
		IncludeResponseStatus: true,
		MultiError:            true,
	}
	in := &openapi3filter.RequestValidationInput{Request: probe, PathParams: params, Route: route, Options: opts}
	reqErr := openapi3filter.ValidateRequest(context.Background(), in)
	if reqErr != nil && status < 400 {
		return fmt.Errorf("%s answered %d to a request the document refuses: %v", name, status, reqErr)
	}
	if head {
		opts = &openapi3filter.Options{IncludeResponseStatus: true, ExcludeResponseBody: true}
	}
	out := &openapi3filter.ResponseValidationInput{RequestValidationInput: in, Status: status, Header: header, Options: opts}
	out.SetBodyBytes(body)
	if err := openapi3filter.ValidateResponse(context.Background(), out); err != nil {
		return fmt.Errorf("%s answered %d not as the document says: %v\nbody: %.500s", name, status, err, body)
	}
	if head {
		return nil
	}
	if strings.HasPrefix(header.Get("Content-Type"), "application/json") {
		if err := statusCodeMatches(status, body); err != nil {
			return fmt.Errorf("%s answered %d: %v", name, status, err)
		}
	}
	if strings.HasPrefix(header.Get("Content-Type"), "text/event-stream") {
		if err := c.checkEvents(route, body); err != nil {
			return fmt.Errorf("%s answered %d: %v", name, status, err)
		}
	}
	return nil
}

// asRouted is r as the document describes it: without the trailing slash
// every path also answers with, and HEAD as the GET it is (head true).
func asRouted(r *http.Request, body []byte) (probe *http.Request, head bool) {
	probe = r.Clone(context.Background())
	probe.Body = io.NopCloser(bytes.NewReader(body))
	if p := probe.URL.Path; len(p) > 1 && strings.HasSuffix(p, "/") {
		probe.URL.Path, probe.URL.RawPath = strings.TrimRight(p, "/"), ""
	}
	if head = probe.Method == http.MethodHead; head {
		probe.Method = http.MethodGet
	}
	return probe, head
}

// authPresent admits a request that carries what a security scheme names;
// whether the credentials are good is the server's to say (a 401).
func authPresent(_ context.Context, in *openapi3filter.AuthenticationInput) error {
	r := in.RequestValidationInput.Request
	switch in.SecuritySchemeName {
	case "widgetToken":
		if !strings.HasPrefix(r.Header.Get("Authorization"), "Bearer ") {
			return errors.New("no bearer token")
		}
	default:
		if r.Header.Get(in.SecurityScheme.Name) == "" {
			return fmt.Errorf("no %s header", in.SecurityScheme.Name)
		}
	}
	return nil
}

// checkEnvelope checks an answer outside the document: a JSON envelope
// whose status_code is the HTTP status.
func checkEnvelope(name string, status int, header http.Header, body []byte) error {
	if status == http.StatusNoContent || len(body) == 0 && status < 300 {
		return nil
	}
	if !strings.HasPrefix(header.Get("Content-Type"), "application/json") {
		return fmt.Errorf("%s answered %d with %q, not the JSON envelope", name, status, header.Get("Content-Type"))
	}
	var env struct {
		Status string          `json:"status"`
		Data   json.RawMessage `json:"data"`
	}
	if err := json.Unmarshal(body, &env); err != nil || env.Status == "" || env.Data == nil {
		return fmt.Errorf("%s answered %d without the envelope: %.300s", name, status, body)
	}
	if (status >= 400) != (env.Status == "error") {
		return fmt.Errorf("%s answered %d with status %q", name, status, env.Status)
	}
	return statusCodeMatches(status, body)
}

// statusCodeMatches checks an envelope's status_code against the HTTP status.
func statusCodeMatches(status int, body []byte) error {
	var env struct {
		StatusCode *int `json:"status_code"`
	}
	if json.Unmarshal(body, &env) != nil || env.StatusCode == nil {
		return nil // flat answers (widget token, the document itself)
	}
	if *env.StatusCode != status {
		return fmt.Errorf("envelope status_code %d differs from the HTTP status", *env.StatusCode)
	}
	return nil
}

// checkEvents validates each Server-Sent Event's data against the schema
// the contract names for its event type (sseData).
func (c *contractChecker) checkEvents(route *routers.Route, body []byte) error {
	key := route.Method + " " + route.Path
	events, ok := sseData[key]
	if !ok {
		return nil
	}
	for _, block := range strings.Split(string(body), "\n\n") {
		var event, data string
		for _, line := range strings.Split(block, "\n") {
			if v, ok := strings.CutPrefix(line, "event: "); ok {
				event = v
			}
			if v, ok := strings.CutPrefix(line, "data: "); ok {
				data = v
			}
		}
		if event == "" {
			continue
		}
		schema, ok := events[event]
		if !ok {
			schema, ok = events["*"]
		}
		if !ok {
			return fmt.Errorf("event %q is not in the contract", event)
		}
		ref := schema(newSchemaGen())
		name := strings.TrimPrefix(ref.Ref, "#/components/schemas/")
		s := c.doc.Components.Schemas[name]
		if s == nil {
			return fmt.Errorf("event %q: schema %s is not in the document", event, name)
		}
		var v any
		if err := json.Unmarshal([]byte(data), &v); err != nil {
			return fmt.Errorf("event %q: data is not JSON: %v", event, err)
		}
		if err := s.Value.VisitJSON(v, openapi3.VisitAsResponse(), openapi3.MultiErrors()); err != nil {
			return fmt.Errorf("event %q: data does not match %s: %v", event, name, err)
		}
	}
	return nil
}

// TestMain runs the suite, then says how much of the contract its
// exchanges covered (go test -v, or COMPANIN_CONTRACT_COVERAGE=1).
func TestMain(m *testing.M) {
	code := m.Run()
	if testing.Verbose() || os.Getenv("COMPANIN_CONTRACT_COVERAGE") != "" {
		fmt.Print(contractCoverage())
	}
	os.Exit(code)
}

func contractCoverage() string {
	coverage.Lock()
	defer coverage.Unlock()
	var b strings.Builder
	var ops []string
	pairs, hit, documented := 0, 0, 0
	for op, n := range coverage.all {
		ops = append(ops, op)
		documented += n
	}
	sort.Strings(ops)
	var missing []string
	for _, op := range ops {
		seen := coverage.seen[op]
		if len(seen) == 0 {
			missing = append(missing, op)
			continue
		}
		hit++
		var statuses []string
		for st := range seen {
			statuses = append(statuses, fmt.Sprint(st))
			pairs++
		}
		sort.Strings(statuses)
		fmt.Fprintf(&b, "contract:   %-60s %s\n", op, strings.Join(statuses, " "))
	}
	fmt.Fprintf(&b, "contract: %d of %d operations answered under validation, %d of %d documented operation/status pairs\n",
		hit, len(ops), pairs, documented)
	for _, op := range missing {
		fmt.Fprintf(&b, "contract: no answer seen for %s\n", op)
	}
	return b.String()
}

// The document is a valid OpenAPI 3 document, loads with openapi3.NewLoader,
// and describes exactly the routes registered, each with typed schemas.
func TestOpenAPIDocumentDescribesEveryRoute(t *testing.T) {
	s := New(Deps{})
	doc := contractDoc(t, s)
	registered := map[string]bool{}
	for _, rt := range s.table {
		path, _ := strings.CutPrefix(rt.Path, APIPrefix)
		key := rt.Method + " " + pathParam.ReplaceAllString(path, "{$1}")
		registered[key] = true
		if _, ok := contract[key]; !ok {
			t.Errorf("route %s has no contract in openapi_schemas.go", key)
		}
	}
	for key := range contract {
		if !registered[key] {
			t.Errorf("contract %s names no registered route", key)
		}
	}
	post := doc.Paths.Find("/assistants").Post
	body := post.RequestBody.Value.Content.Get("application/json").Schema.Value
	if len(body.AllOf) != 2 || body.AllOf[0].Value.Properties["default_tasks"] == nil || body.AllOf[1].Value.Required[0] != "name" {
		t.Fatalf("POST /assistants body is not the typed assistantRequest with name required: %+v", body)
	}
	created := post.Responses.Status(201).Value.Content.Get("application/json").Schema.Value
	data := created.Properties["data"].Value.OneOf[0].Value
	if data.Properties["created_at"].Value.Format != "date-time" || data.Properties["id"].Value.Format != "uuid" {
		t.Fatalf("POST /assistants 201 data is not the typed assistant: %+v", data.Properties)
	}
	if doc.Paths.Find("/healthz") == nil || doc.Paths.Find("/healthz").Servers[0].URL != "/" {
		t.Fatal("/healthz is not described at the root")
	}
}

// A wrong answer fails the check: the validation has teeth.
func TestContractRefusesWrongAnswers(t *testing.T) {
	c := newContractChecker(t, New(Deps{}))
	get := func(path string) *http.Request { return httptest.NewRequest(http.MethodGet, path, nil) }
	jsonHeader := http.Header{"Content-Type": {"application/json; charset=utf-8"}, "X-Request-Id": {"r"},
		"X-Ratelimit-Limit": {"1000"}, "X-Ratelimit-Remaining": {"999"}, "X-Ratelimit-Reset": {"1767225600"}}
	html := jsonHeader.Clone()
	html.Set("Content-Type", "text/html")
	without := func(name string) http.Header {
		h := jsonHeader.Clone()
		h.Del(name)
		return h
	}
	auth := func(r *http.Request) *http.Request {
		r.Header.Set("X-API-Key", "k")
		r.Header.Set("X-API-Secret", "s")
		return r
	}
	good := `{"status":"success","status_code":200,"detail":null,"data":{"id":"1b4e28ba-2fa1-11d2-883f-0016d3cca427","name":"Bot",
		"description":"","tone":"","language":"en","default_tasks":[],"is_active":true,"instructions":"",
		"created_at":"2026-01-01T00:00:00Z","updated_at":"2026-01-01T00:00:00Z"}}`
	if err := c.check(auth(get("/api/v1/assistants/1b4e28ba-2fa1-11d2-883f-0016d3cca427")), nil, 200, jsonHeader, []byte(good)); err != nil {
		t.Fatalf("a right answer is refused: %v", err)
	}
	for name, tc := range map[string]struct {
		status int
		header http.Header
		body   string
	}{
		"a field of the wrong type":       {200, jsonHeader, strings.Replace(good, `"is_active":true`, `"is_active":"yes"`, 1)},
		"a required field missing":        {200, jsonHeader, strings.Replace(good, `"name":"Bot",`, ``, 1)},
		"no envelope":                     {200, jsonHeader, `{"id":"1b4e28ba-2fa1-11d2-883f-0016d3cca427"}`},
		"an undocumented status":          {201, jsonHeader, strings.Replace(good, `200`, `201`, 1)},
		"status_code not the HTTP status": {200, jsonHeader, strings.Replace(good, `"status_code":200`, `"status_code":201`, 1)},
		"an error without detail":         {404, jsonHeader, `{"status":"error","status_code":404,"data":null}`},
		"an error's data without errors":  {404, jsonHeader, `{"status":"error","status_code":404,"detail":"x","data":{"code":"not_found"}}`},
		"a time not in UTC":               {200, jsonHeader, strings.Replace(good, `"created_at":"2026-01-01T00:00:00Z"`, `"created_at":"2026-01-01T01:00:00+01:00"`, 1)},
		"an id that is no UUID":           {200, jsonHeader, strings.Replace(good, `"id":"1b4e28ba-2fa1-11d2-883f-0016d3cca427"`, `"id":"42"`, 1)},
		"no X-Request-ID":                 {200, without("X-Request-ID"), good},
		"no rate-limit headers":           {200, without("X-RateLimit-Remaining"), good},
		"HTML instead of JSON":            {200, html, `<html></html>`},
	} {
		err := c.check(auth(get("/api/v1/assistants/1b4e28ba-2fa1-11d2-883f-0016d3cca427")), nil, tc.status, tc.header, []byte(tc.body))
		if err == nil {
			t.Errorf("%s: accepted", name)
		} else if !strings.Contains(err.Error(), "GET /assistants/{id}") {
			t.Errorf("%s: the error does not name the route: %v", name, err)
		}
	}
	// A request the document refuses must not be answered 2xx.
	noAuth := get("/api/v1/assistants/1b4e28ba-2fa1-11d2-883f-0016d3cca427")
	if err := c.check(noAuth, nil, 200, jsonHeader, []byte(good)); err == nil {
		t.Error("a 200 to a request without credentials is accepted")
	}
	// A streamed reply event whose data is not the message.
	post := auth(httptest.NewRequest(http.MethodPost, "/api/v1/sessions/1b4e28ba-2fa1-11d2-883f-0016d3cca427/messages", strings.NewReader(`{"content":"hi"}`)))
	post.Header.Set("Content-Type", "application/json")
	sse := jsonHeader.Clone()
	sse.Set("Content-Type", "text/event-stream")
	if err := c.check(post, []byte(`{"content":"hi"}`), 200, sse, []byte("event: reply.delta\nid: x:1\ndata: {\"delta\":5}\n\n")); err == nil {
		t.Error("a reply.delta without its fields is accepted")
	}
	// A session is a thread with its visitor.
	start := func() *http.Request {
		r := auth(httptest.NewRequest(http.MethodPost, "/api/v1/sessions", strings.NewReader(`{"assistant_id":"1b4e28ba-2fa1-11d2-883f-0016d3cca427"}`)))
		r.Header.Set("Content-Type", "application/json")
		return r
	}
	sessionBody := `{"status":"success","status_code":201,"detail":null,"data":{"id":"1b4e28ba-2fa1-11d2-883f-0016d3cca427",
		"assistant_id":"1b4e28ba-2fa1-11d2-883f-0016d3cca427",%s"locale":"en","metadata":{},"message_count":0,
		"created_at":"2026-01-01T00:00:00Z","updated_at":"2026-01-01T00:00:00Z"}}`
	reqBody := []byte(`{"assistant_id":"1b4e28ba-2fa1-11d2-883f-0016d3cca427"}`)
	if err := c.check(start(), reqBody, 201, jsonHeader, []byte(fmt.Sprintf(sessionBody, `"visitor_id":"v1",`))); err != nil {
		t.Fatalf("a right session is refused: %v", err)
	}
	if err := c.check(start(), reqBody, 201, jsonHeader, []byte(fmt.Sprintf(sessionBody, ``))); err == nil {
		t.Error("a session without its visitor_id is accepted")
	}
	tail := auth(get("/api/v1/events/stream"))
	if err := c.check(tail, nil, 200, sse, []byte("retry: 3000\n\nid: 1\nevent: AssistantCreated\ndata: {\"id\":5}\n\n")); err == nil {
		t.Error("an event stream whose data is not an event is accepted")
	}
}
