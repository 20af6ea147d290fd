package httpapi

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
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
