package httpapi

import (
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/companin/companin/adapters/postgres/pgtest"
	"github.com/companin/companin/queries"
)

// A write whose read models do not catch up within COMPANIN_RYW_WAIT answers
// anyway, from the command's result, saying Companin-Read-Models: behind;
// with read models that keep up the header is absent.
func TestWriteAnswersWithinTheBoundWhenReadModelsAreBehind(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	stuck := New(Deps{Store: ts.Store, Pool: ts.Pool, Runtime: stuckProjections{},
		Config: Config{RateLimitPerHour: 1_000_000, ReadYourWritesWait: 200 * time.Millisecond}})
	hs := httptest.NewServer(checkContract(t, stuck, stuck.Handler()))
	t.Cleanup(hs.Close)
	behind := &testServer{URL: hs.URL, Server: stuck, Store: ts.Store, Pool: ts.Pool, org: ts.org}

	r := behind.do(t, http.MethodPost, "/api/v1/assistants/", ts.org, `{"name":"Late Bot"}`)
	if r.Status != http.StatusCreated || r.Header.Get(HeaderReadModels) != "behind" {
		t.Fatalf("behind: %d %q %s", r.Status, r.Header.Get(HeaderReadModels), r.Body)
	}
	if id, _ := r.data(t)["id"].(string); id == "" {
		t.Fatalf("no id in %s", r.Body)
	}
	r = ts.do(t, http.MethodPost, "/api/v1/assistants/", ts.org, `{"name":"Bot"}`)
	if r.Status != http.StatusCreated || r.Header.Get(HeaderReadModels) != "" || r.data(t)["name"] != "Bot" {
		t.Fatalf("caught up: %d %q %s", r.Status, r.Header.Get(HeaderReadModels), r.Body)
	}
}

// The reproduction of issue 10: a context whose traits hold a NUL character.
// Where the API still accepts it (the append encrypts traits), the user
// contexts projection parks the event instead of stopping: /readyz stays 200
// and names the parked event, and another organization's context is readable
// right after its 201. (Where input validation refuses it with a 422, the
// other organization is unaffected all the more.)
func TestPoisonContextOfOneOrganizationCostsAnotherNothing(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	other := ts.newOrg(t, "Other")
	r := ts.do(t, http.MethodPost, "/api/v1/contexts/", ts.org, `{"user_reference":"nul-user","traits":{"x":"a\u0000b"}}`)
	accepted := r.Status == http.StatusCreated
	t.Logf("the poison context answered %d", r.Status)
	if !accepted && r.Status != http.StatusUnprocessableEntity {
		t.Fatalf("poison context: %d %s", r.Status, r.Body)
	}
	for i := range 3 {
		ref := "user-" + strconvItoa(i)
		r = ts.do(t, http.MethodPost, "/api/v1/contexts/", other, `{"user_reference":"`+ref+`","traits":{"plan":"pro"}}`)
		if r.Status != http.StatusCreated || r.Header.Get(HeaderReadModels) != "" {
			t.Fatalf("other organization's context: %d %q %s", r.Status, r.Header.Get(HeaderReadModels), r.Body)
		}
		r = ts.do(t, http.MethodGet, "/api/v1/contexts/"+ref, other, "")
		if r.Status != http.StatusOK {
			t.Fatalf("other organization's context right after its 201: %d %s", r.Status, r.Body)
		}
	}
	r = ts.do(t, http.MethodGet, "/readyz", testOrg{}, "")
	if r.Status != http.StatusOK {
		t.Fatalf("readyz: %d %s", r.Status, r.Body)
	}
	parked, _ := r.data(t)["parked_events"].(string)
	if accepted && !strings.Contains(parked, "user_contexts: 1") {
		t.Fatalf("readyz does not report the parked event: %s", r.Body)
	}
	if !accepted && parked != "none" {
		t.Fatalf("readyz: %s", r.Body)
	}
}

// A new knowledge source whose read model is late beyond the bound answers
// 201 from the parsed source, the same way for every kind: what the request
// said (normalised as the domain keeps it), status processing, revision 1.
func TestNewKnowledgeAnswersFromItsSpecWhenTheReadModelIsLate(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	app := NewApp(ts.Store, ts.Pool, nil, nil)
	// The sources' read model lives elsewhere and never sees the write.
	app.Queries.GetKnowledge = queries.New(pgtest.NewPool(t)).GetKnowledge
	late := New(Deps{Store: ts.Store, Pool: ts.Pool, Runtime: stuckProjections{}, App: &app,
		Config: Config{RateLimitPerHour: 1_000_000, ReadYourWritesWait: 50 * time.Millisecond}})
	hs := httptest.NewServer(late.Handler())
	t.Cleanup(hs.Close)
	behind := &testServer{URL: hs.URL, Server: late, Store: ts.Store, Pool: ts.Pool, org: ts.org}

	cases := []struct {
		name string
		send func() response
		want map[string]any
	}{
		{"qa", func() response {
			return behind.do(t, http.MethodPost, "/api/v1/knowledge/qa/", ts.org,
				`{"question":"  How long is the warranty? ","answer":"Two years.","tags":["warranty","warranty"],"external_id":"faq-1"}`)
		}, map[string]any{"kind": "qa", "title": "How long is the warranty?", "question": "How long is the warranty?",
			"answer": "Two years.", "tags": []any{"warranty"}, "external_id": "faq-1"}},
		{"url", func() response {
			return behind.do(t, http.MethodPost, "/api/v1/knowledge/urls/", ts.org, `{"url":" https://example.com/help#top "}`)
		}, map[string]any{"kind": "url", "title": "https://example.com/help", "url": "https://example.com/help",
			"tags": []any{}, "external_id": nil}},
		{"file", func() response {
			return behind.upload(t, ts.org, map[string]string{"file_type": "md"}, "returns.md", []byte("# Returns\n\nWithin 30 days."))
		}, map[string]any{"kind": "file", "title": "returns.md", "file_type": "md", "file_name": "returns.md",
			"size_bytes": float64(26), "tags": []any{}, "external_id": nil}},
	}
	for _, c := range cases {
		r := c.send()
		if r.Status != http.StatusCreated || r.Header.Get(HeaderReadModels) != "behind" {
			t.Fatalf("%s: %d %q %s", c.name, r.Status, r.Header.Get(HeaderReadModels), r.Body)
		}
		got := r.data(t)
		if id, _ := got["id"].(string); id == "" || got["status"] != "processing" || got["revision"] != float64(1) {
			t.Fatalf("%s: %s", c.name, r.Body)
		}
		if ids, ok := got["assistant_ids"].([]any); !ok || len(ids) != 0 {
			t.Fatalf("%s: assistant_ids %v", c.name, got["assistant_ids"])
		}
		for k, v := range c.want {
			if !reflect.DeepEqual(got[k], v) {
				t.Errorf("%s: %s = %#v, want %#v", c.name, k, got[k], v)
			}
		}
	}
}
