package httpapi

import (
	"context"
	"net/http"
	"testing"

	"github.com/companin/companin/domain/es"
)

// The platform's guarantees on the real resource routes: widget scope,
// idempotency without a second event, rate-limit headers.

func TestWidgetTokenOnResourceRoutes(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	aid := ts.newAssistant(t, ts.org)
	token := widgetToken(t, ts, ts.org.ClientID)
	bearer := []string{"Authorization", "Bearer " + token}

	r := ts.do(t, http.MethodPost, "/api/v1/sessions", testOrg{}, `{"assistant_id":"`+aid+`"}`, bearer...)
	if r.Status != 201 || r.Header.Get("X-RateLimit-Remaining") == "" {
		t.Fatalf("widget starts a session: %d %s", r.Status, r.Body)
	}
	sid := r.data(t)["id"].(string)
	if r := ts.do(t, http.MethodGet, "/api/v1/sessions/"+sid+"/", testOrg{}, "", bearer...); r.Status != 200 {
		t.Fatalf("widget reads its session: %d %s", r.Status, r.Body)
	}
	if r := ts.do(t, http.MethodPost, "/api/v1/sessions/"+sid+"/messages?wait=0", testOrg{}, `{"content":"Hallo"}`, bearer...); r.Status/100 != 2 {
		t.Fatalf("widget posts a message: %d %s", r.Status, r.Body)
	}
	for _, c := range []struct{ method, path, body string }{
		{http.MethodGet, "/api/v1/assistants/", ""},
		{http.MethodPost, "/api/v1/assistants/", `{"name":"x"}`},
		{http.MethodGet, "/api/v1/assistants/" + aid, ""},
		{http.MethodDelete, "/api/v1/assistants/" + aid, ""},
		{http.MethodGet, "/api/v1/conversations/", ""},
		{http.MethodPost, "/api/v1/contexts/", `{"user_reference":"u"}`},
		{http.MethodGet, "/api/v1/sessions/" + sid + "/events", ""},
		{http.MethodGet, "/api/v1/events", ""},
		{http.MethodGet, "/api/v1/events/stream", ""},
		{http.MethodGet, "/api/v1/knowledge/", ""},
	} {
		expectError(t, ts.do(t, c.method, c.path, testOrg{}, c.body, bearer...), 403)
	}
}

func TestIdempotentCreateAppendsOneEvent(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	body := `{"name":"Support","language":"de"}`
	first := ts.do(t, http.MethodPost, "/api/v1/assistants/", ts.org, body, "Idempotency-Key", "create-1")
	if first.Status != 201 {
		t.Fatalf("create: %d %s", first.Status, first.Body)
	}
	again := ts.do(t, http.MethodPost, "/api/v1/assistants", ts.org, body, "Idempotency-Key", "create-1")
	if again.Status != 201 || again.Header.Get("Idempotent-Replayed") != "true" || string(again.Body) != string(first.Body) {
		t.Fatalf("replay: %d %v %s", again.Status, again.Header, again.Body)
	}
	expectError(t, ts.do(t, http.MethodPost, "/api/v1/assistants", ts.org, `{"name":"Other"}`, "Idempotency-Key", "create-1"), 422)
	events, err := ts.Store.ReadAll(context.Background(), es.Start, 100, es.Filter{OrganizationID: ts.org.ID, Types: []string{"AssistantCreated"}})
	if err != nil {
		t.Fatal(err)
	}
	if len(events) != 1 {
		t.Fatalf("%d AssistantCreated events", len(events))
	}
	list := ts.do(t, http.MethodGet, "/api/v1/assistants/", ts.org, "")
	if n := len(eventsOf(t, list)); n != 1 {
		t.Fatalf("%d assistants listed", n)
	}
}
