package httpapi

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"net/textproto"
	"strings"
	"testing"
	"time"

	"github.com/companin/companin/domain/es"
	"github.com/google/uuid"
)

// Bodies whose text no reader of the log can store, each with the field a
// 422 must name: a NUL escape and raw invalid UTF-8 bytes, nested.
var poisonBodies = []struct{ body, field string }{
	{`{"name":"Bot","content":"hi","question":"q","answer":"a","query":"q","user_reference":"u-nul","customer_id":"c","url":"https://example.com","client_id":"x","metadata":{"deep":["ok","pwn\u0000"]}}`, "metadata.deep[1]"},
	{"{\"name\":\"Bot\",\"content\":\"hi\",\"question\":\"q\",\"answer\":\"a\",\"query\":\"q\",\"user_reference\":\"u-utf\",\"customer_id\":\"c\",\"client_id\":\"x\",\"traits\":{\"x\":\"caf\xc3\"}}", "traits.x"},
	{`{"name":"a\u0000b","content":"a\u0000b","question":"a\u0000b","query":"a\u0000b","user_reference":"a\u0000b","client_id":"a\u0000b","title":"a\u0000b"}`, ""},
	{"{\"tags\":[\"ok\",\"\xff\xfe\"],\"default_tasks\":[\"\xe2\x82\"]}", ""},
	{`{"traits":{"bad\u0000key":1}}`, `traits.bad\u0000key`},
}

// TestEveryWriteRouteRefusesTextTheLogCannotStore: every POST and PATCH that
// takes JSON answers 422 naming the field, never 500, and appends nothing.
func TestEveryWriteRouteRefusesTextTheLogCannotStore(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	assistant := ts.newAssistant(t, ts.org)
	session := ts.create(t, "/api/v1/sessions/", `{"assistant_id":"`+assistant+`"}`)["id"].(string)
	conversation := ts.create(t, "/api/v1/conversations/", `{"assistant_id":"`+assistant+`","customer_id":"c-1"}`)["id"].(string)
	ctxID := ts.create(t, "/api/v1/contexts/", `{"user_reference":"u-1","traits":{"a":1}}`)["id"].(string)
	config := ts.create(t, "/api/v1/widget-configs/", `{"title":"Help"}`)["id"].(string)
	qa := ts.create(t, "/api/v1/knowledge/qa/", `{"question":"q?","answer":"a."}`)["id"].(string)
	ids := map[string]string{"/assistants/": assistant, "/sessions/": session, "/conversations/": conversation,
		"/contexts/": ctxID, "/widget-configs/": config, "/knowledge/": qa}

	before := ts.orgEvents(t)
	tried := 0
	for _, rt := range ts.Server.sortedRoutes() {
		if rt.Method != http.MethodPost && rt.Method != http.MethodPatch || strings.Contains(rt.Path, "/knowledge/files") ||
			strings.HasSuffix(rt.Path, "/refresh") || !strings.HasPrefix(rt.Path, APIPrefix) {
			continue
		}
		path := rt.Path
		for prefix, id := range ids {
			path = strings.Replace(path, prefix+"{id}", prefix+id, 1)
			path = strings.Replace(path, prefix+"{ref}", prefix+id, 1)
		}
		path = pathParam.ReplaceAllString(path, uuid.NewString())
		for _, p := range poisonBodies {
			tried++
			r := ts.do(t, rt.Method, path+"?wait=0", ts.org, p.body)
			if r.Status != http.StatusUnprocessableEntity {
				t.Errorf("%s %s %q: %d %s, want 422", rt.Method, path, p.body, r.Status, r.Body)
				continue
			}
			field := firstFieldError(t, r)
			if p.field != "" && field != p.field {
				t.Errorf("%s %s %q: the 422 names %q, want %q", rt.Method, path, p.body, field, p.field)
			}
		}
	}
	if tried < 5*14 {
		t.Fatalf("only %d requests tried: routes missing?", tried)
	}
	// The reproduction: nothing reached the log.
	if after := ts.orgEvents(t); after != before {
		t.Errorf("the organization's log grew from %d to %d events", before, after)
	}
	if r := ts.do(t, http.MethodGet, "/api/v1/contexts/u-nul", ts.org, ""); r.Status != http.StatusNotFound {
		t.Errorf("GET the refused context: %d", r.Status)
	}
}

func firstFieldError(t *testing.T, r response) string {
	t.Helper()
	d, _ := r.json(t)["data"].(map[string]any)
	errs, _ := d["errors"].([]any)
	if len(errs) == 0 {
		t.Fatalf("422 without field errors: %s", r.Body)
	}
	f, _ := errs[0].(map[string]any)["field"].(string)
	return f
}

// orgEvents counts the test organization's events in the log, settled.
func (ts *testServer) orgEvents(t *testing.T) int {
	t.Helper()
	ctx := context.Background()
	if h, ok := ts.Store.(interface {
		Head(context.Context) (es.Position, error)
	}); ok {
		if head, err := h.Head(ctx); err == nil {
			ts.settle(t, head)
		}
	}
	evs, err := ts.Store.ReadAll(ctx, es.Start, 0, es.Filter{OrganizationID: ts.org.ID})
	if err != nil {
		t.Fatal(err)
	}
	return len(evs)
}

// TestParamsAndHeadersRefuseTextTheLogCannotStore: query parameters, path
// variables and credential headers with NUL or invalid UTF-8 are a 422
// naming them, not a 500 from the database.
func TestParamsAndHeadersRefuseTextTheLogCannotStore(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	for path, field := range map[string]string{
		"/api/v1/conversations?customer_id=a%00b":  "customer_id",
		"/api/v1/conversations?customer_id=caf%C3": "customer_id",
		"/api/v1/contexts/a%00b":                   "ref",
		"/api/v1/contexts/%FF%FE":                  "ref",
		"/api/v1/events?types=A%00,B":              "types",
		"/api/v1/events?stream=%FF":                "stream",
		"/api/v1/knowledge?cursor=%00":             "cursor",
		"/api/v1/assistants?x%00=1":                "query",
	} {
		r := ts.do(t, http.MethodGet, path, ts.org, "")
		if r.Status != http.StatusUnprocessableEntity || firstFieldError(t, r) != field {
			t.Errorf("GET %s: %d %s, want 422 naming %s", path, r.Status, r.Body, field)
		}
		if r.Header.Get("X-RateLimit-Limit") == "" {
			t.Errorf("GET %s: no rate-limit headers on the 422", path)
		}
	}
	r := ts.do(t, http.MethodPost, "/api/v1/assistants/", ts.org, `{"name":"x"}`, "Idempotency-Key", "k\xff")
	if r.Status != http.StatusUnprocessableEntity || firstFieldError(t, r) != "Idempotency-Key" {
		t.Errorf("invalid UTF-8 Idempotency-Key: %d %s", r.Status, r.Body)
	}
	r = ts.do(t, http.MethodGet, "/api/v1/assistants/", testOrg{ClientID: "ci_\xff", Secret: "x"}, "")
	if r.Status != http.StatusUnprocessableEntity || firstFieldError(t, r) != "X-API-Key" {
		t.Errorf("invalid UTF-8 X-API-Key: %d %s", r.Status, r.Body)
	}
}

// TestUploadRefusesTextTheLogCannotStore: multipart text fields and the file
// name are checked as JSON fields are.
func TestUploadRefusesTextTheLogCannotStore(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	before := ts.orgEvents(t)
	file := []byte("Opening hours: 9 to 17.")
	for _, tc := range []struct {
		fields   map[string]string
		fileName string
		field    string
	}{
		{map[string]string{"title": "a\x00b"}, "hours.txt", "title"},
		{map[string]string{"title": "caf\xc3", "file_type": "txt"}, "hours.txt", "title"},
		{map[string]string{"tags": `["ok","x\u0000"]`}, "hours.txt", "tags[1]"},
		{map[string]string{"file_type": "txt"}, "h\xffurs.txt", "file"},
	} {
		r := ts.upload(t, ts.org, tc.fields, tc.fileName, file)
		if r.Status != http.StatusUnprocessableEntity || firstFieldError(t, r) != tc.field {
			t.Errorf("%q %q: %d %s, want 422 naming %s", tc.fields, tc.fileName, r.Status, r.Body, tc.field)
		}
	}
	// A file name percent-encoded as RFC 2231 allows, with a NUL in it.
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	h := textproto.MIMEHeader{}
	h.Set("Content-Disposition", `form-data; name="file"; filename*=UTF-8''a%00b.txt`)
	fw, _ := mw.CreatePart(h)
	_, _ = fw.Write(file)
	_ = mw.Close()
	r := ts.do(t, http.MethodPost, "/api/v1/knowledge/files/", ts.org, body.String(), "Content-Type", mw.FormDataContentType())
	if r.Status != http.StatusUnprocessableEntity || firstFieldError(t, r) != "file" {
		t.Errorf("NUL in an encoded file name: %d %s", r.Status, r.Body)
	}
	if after := ts.orgEvents(t); after != before {
		t.Errorf("the organization's log grew from %d to %d events", before, after)
	}
}

// TestEventStreamsAreCappedPerOrganization: past COMPANIN_MAX_STREAMS_PER_ORG
// open streams an organization gets a 429 in the envelope, with the
// rate-limit headers; another organization is not affected, and a closed
// stream frees its slot.
func TestEventStreamsAreCappedPerOrganization(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t, withConfig(Config{MaxStreamsPerOrg: 2}))
	other := ts.newOrg(t, "Other")
	open := func(org testOrg) (*http.Response, context.CancelFunc) {
		ctx, cancel := context.WithCancel(context.Background())
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, ts.URL+"/api/v1/events/stream", nil)
		req.Header.Set("X-API-Key", org.ClientID)
		req.Header.Set("X-API-Secret", org.Secret)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			cancel()
			t.Fatal(err)
		}
		if resp.StatusCode == http.StatusOK {
			// The stream is open once its first line arrived.
			if _, err := bufio.NewReader(resp.Body).ReadString('\n'); err != nil {
				t.Fatal(err)
			}
		}
		return resp, func() { cancel(); resp.Body.Close() }
	}
	var closers []context.CancelFunc
	defer func() {
		for _, c := range closers {
			c()
		}
	}()
	for range 2 {
		resp, closeIt := open(ts.org)
		closers = append(closers, closeIt)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("stream within the cap: %d", resp.StatusCode)
		}
	}
	resp, closeIt := open(ts.org)
	b, _ := io.ReadAll(resp.Body)
	closeIt()
	if resp.StatusCode != http.StatusTooManyRequests || !bytes.Contains(b, []byte(`"status":"error"`)) ||
		!bytes.Contains(b, []byte("too_many_streams")) || resp.Header.Get("X-RateLimit-Limit") == "" {
		t.Fatalf("third stream: %d %s %v, want 429 too_many_streams with rate-limit headers", resp.StatusCode, b, resp.Header)
	}
	r := ts.do(t, http.MethodGet, "/api/v1/events", ts.org, "", "Accept", "application/x-ndjson")
	if r.Status != http.StatusTooManyRequests {
		t.Errorf("an export past the cap: %d", r.Status)
	}
	if r := ts.do(t, http.MethodGet, "/api/v1/events", ts.org, ""); r.Status != http.StatusOK {
		t.Errorf("a page of events is not a stream: %d", r.Status)
	}
	resp, closeOther := open(other)
	closers = append(closers, closeOther)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("another organization's stream: %d", resp.StatusCode)
	}
	closers[0]()
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, closeIt := open(ts.org)
		closers = append(closers, closeIt)
		if resp.StatusCode == http.StatusOK {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("a closed stream's slot was not freed: %d", resp.StatusCode)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestEventStreamShowsOnlyItsOrganization: a stream follows its organization
// live while another writes, and never shows the other's events.
func TestEventStreamShowsOnlyItsOrganization(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	other := ts.newOrg(t, "Other")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, ts.URL+"/api/v1/events/stream?types=AssistantCreated", nil)
	req.Header.Set("X-API-Key", ts.org.ClientID)
	req.Header.Set("X-API-Secret", ts.org.Secret)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	for range 5 {
		ts.newAssistant(t, other)
	}
	mine := ts.newAssistant(t, ts.org)
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, "data: ") {
			continue
		}
		if strings.Contains(line, other.ID) || !strings.Contains(line, ts.org.ID) {
			t.Fatalf("another organization's event in the stream: %s", line)
		}
		if strings.Contains(line, mine) {
			return
		}
	}
	t.Fatalf("the organization's own event never came: %v", sc.Err())
}

// TestReplyWaitStaysInItsRange: ?wait= beyond 2 minutes is clamped to 2
// minutes (it overflowed to "no wait"), COMPANIN_REPLY_WAIT too; negative
// and unreadable values are a 422.
func TestReplyWaitStaysInItsRange(t *testing.T) {
	s := New(Deps{Config: Config{ReplyWait: 10 * time.Minute}})
	for q, want := range map[string]time.Duration{
		"": maxReplyWait, "wait=0": 0, "wait=10": 10 * time.Second, "wait=1.5": 1500 * time.Millisecond,
		"wait=1500ms": 1500 * time.Millisecond, "wait=99999999999": maxReplyWait, "wait=1e308": maxReplyWait,
		"wait=1e400": maxReplyWait, "wait=inf": maxReplyWait, "wait=9223372036.854775807": maxReplyWait, "wait=3h": maxReplyWait,
	} {
		got, err := s.replyWait(httptest.NewRequest(http.MethodPost, "/x?"+q, nil))
		if err != nil || got != want {
			t.Errorf("%q: %v %v, want %v", q, got, err, want)
		}
	}
	for _, q := range []string{"wait=-1", "wait=NaN", "wait=soon", "wait=-5s", "wait=99999999999h"} {
		if _, err := s.replyWait(httptest.NewRequest(http.MethodPost, "/x?"+q, nil)); err == nil {
			t.Errorf("%q accepted", q)
		}
	}
}

// TestStreamedReplyKeepsTheConfiguredWait: with nobody answering, a streamed
// reply ends with reply_timeout after COMPANIN_REPLY_WAIT (here 300 ms), not
// after at least 2 minutes; a bad ?wait= is refused before the message is recorded.
func TestStreamedReplyKeepsTheConfiguredWait(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t, withConfig(Config{ReplyWait: 300 * time.Millisecond}), withReplies())
	assistant := ts.newAssistant(t, ts.org)
	session := ts.create(t, "/api/v1/sessions/", `{"assistant_id":"`+assistant+`"}`)["id"].(string)
	done := make(chan []replyEvent, 1)
	go func() { done <- ts.stream(t, "/api/v1/sessions/"+session+"/messages", `{"content":"anyone?"}`) }()
	select {
	case evs := <-done:
		if len(evs) == 0 || evs[len(evs)-1].Event != "error" || evs[len(evs)-1].Data["code"] != "reply_timeout" {
			t.Fatalf("stream ended with %+v, want an error event reply_timeout", evs)
		}
	case <-time.After(90 * time.Second):
		t.Fatal("the streamed reply was still waiting after 90 s")
	}
	before := ts.orgEvents(t)
	r := ts.do(t, http.MethodPost, "/api/v1/sessions/"+session+"/messages?wait=-1", ts.org, `{"content":"x"}`)
	if r.Status != http.StatusUnprocessableEntity || firstFieldError(t, r) != "wait" {
		t.Errorf("?wait=-1: %d %s", r.Status, r.Body)
	}
	if after := ts.orgEvents(t); after != before {
		t.Errorf("a refused message was recorded: %d -> %d events", before, after)
	}
}

// TestCORSDoesNotTrustTheNullOrigin: "null" (sandboxed frames, file: pages)
// is never echoed with credentials; a real origin still is.
func TestCORSDoesNotTrustTheNullOrigin(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	for _, method := range []string{http.MethodGet, http.MethodOptions} {
		r := ts.do(t, method, "/api/v1/assistants/", ts.org, "", "Origin", "null", "Access-Control-Request-Method", "GET")
		if r.Header.Get("Access-Control-Allow-Origin") != "" || r.Header.Get("Access-Control-Allow-Credentials") != "" {
			t.Errorf("%s with Origin null: %v", method, r.Header)
		}
	}
	r := ts.do(t, http.MethodGet, "/api/v1/assistants/", ts.org, "", "Origin", "https://shop.example")
	if r.Header.Get("Access-Control-Allow-Origin") != "https://shop.example" {
		t.Errorf("a real origin: %v", r.Header)
	}
}

// TestRateLimitHeadersOnEveryAuthenticatedAnswer: 413, 405, 404 and a widget
// token's 403 carry X-RateLimit-* too.
func TestRateLimitHeadersOnEveryAuthenticatedAnswer(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t, withConfig(Config{MaxBodyBytes: 1000}))
	big := `{"name":"` + strings.Repeat("x", 2000) + `"}`
	token := widgetToken(t, ts, ts.org.ClientID)
	for name, r := range map[string]response{
		"413": ts.do(t, http.MethodPost, "/api/v1/assistants/", ts.org, big),
		"405": ts.do(t, http.MethodPut, "/api/v1/assistants/", ts.org, `{}`),
		"404": ts.do(t, http.MethodGet, "/api/v1/no-such-thing", ts.org, ""),
		"403": ts.do(t, http.MethodGet, "/api/v1/assistants/", testOrg{}, "", "Authorization", "Bearer "+token),
	} {
		if r.Status < 400 || r.Header.Get("X-RateLimit-Limit") == "" || r.Header.Get("X-RateLimit-Remaining") == "" ||
			r.Header.Get("X-RateLimit-Reset") == "" {
			t.Errorf("%s: %d without rate-limit headers: %v", name, r.Status, r.Header)
		}
		if name != "404" && !strings.HasPrefix(name, strconvItoa(r.Status)) {
			t.Errorf("%s: answered %d", name, r.Status)
		}
	}
	// Without valid credentials nothing is counted, and nothing is said.
	if r := ts.do(t, http.MethodPut, "/api/v1/assistants/", testOrg{}, `{}`); r.Status != 405 || r.Header.Get("X-RateLimit-Limit") != "" {
		t.Errorf("anonymous 405: %d %v", r.Status, r.Header)
	}
}

// TestContextIDWinsOverAUserReferenceSpellingIt: a context whose
// user_reference is another context's id is reached by its own id; the id
// names the other context for GET, PATCH and DELETE alike, also once that
// one is erased.
func TestContextIDWinsOverAUserReferenceSpellingIt(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	a := ts.create(t, "/api/v1/contexts/", `{"user_reference":"alice","traits":{"n":"A"}}`)["id"].(string)
	b := ts.create(t, "/api/v1/contexts/", `{"user_reference":"`+a+`","traits":{"n":"B"}}`)["id"].(string)
	idOf := func(r response) string {
		if r.Status != http.StatusOK {
			return strconvItoa(r.Status)
		}
		id, _ := r.data(t)["id"].(string)
		return id
	}
	if got := idOf(ts.do(t, http.MethodGet, "/api/v1/contexts/"+a, ts.org, "")); got != a {
		t.Errorf("GET by A's id: %s, want A", got)
	}
	if got := idOf(ts.do(t, http.MethodPatch, "/api/v1/contexts/"+a, ts.org, `{"traits":{"p":1}}`)); got != a {
		t.Errorf("PATCH by A's id: %s, want A", got)
	}
	if got := idOf(ts.do(t, http.MethodDelete, "/api/v1/contexts/"+a, ts.org, "")); got != a {
		t.Fatalf("DELETE by A's id: %s, want A", got)
	}
	// A is erased: its id still names A for every method, never B: GET
	// finds nothing, DELETE answers A's erasure again (its tombstone).
	if got := idOf(ts.do(t, http.MethodGet, "/api/v1/contexts/"+a, ts.org, "")); got != "404" {
		t.Errorf("GET by the erased A's id: %s, want 404", got)
	}
	if got := idOf(ts.do(t, http.MethodPatch, "/api/v1/contexts/"+a, ts.org, `{"traits":{"p":2}}`)); got != "404" {
		t.Errorf("PATCH by the erased A's id: %s, want 404", got)
	}
	if got := idOf(ts.do(t, http.MethodDelete, "/api/v1/contexts/"+a, ts.org, "")); got != a {
		t.Errorf("DELETE by the erased A's id: %s, want A's erasure again", got)
	}
	if got := idOf(ts.do(t, http.MethodGet, "/api/v1/contexts/"+b, ts.org, "")); got != b {
		t.Errorf("GET B by its id: %s", got)
	}
}
