package httpapi

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/companin/companin/adapters/messaging"
	"github.com/companin/companin/domain/es"
)

// Bodies exactly as in the seed API reference (curl examples and JavaScript).
const (
	seedAssistant = `{
    "name": "Customer Support Bot",
    "description": "Helpful assistant for customer inquiries",
    "tone": "professional",
    "language": "en",
    "default_tasks": ["answer_questions", "provide_support"],
    "is_active": true
  }`
	seedSession = `{
    "assistant_id": "550e8400-e29b-41d4-a716-446655440000",
    "visitor_id": "visitor-123",
    "locale": "en",
    "metadata": {
      "source": "website",
      "page": "/contact"
    }
  }`
	seedSessionMessage = `{
    "content": "Hello, I need help with my order",
    "metadata": {
      "user_type": "customer"
    }
  }`
	seedConversation = `{
    "assistant_id": "550e8400-e29b-41d4-a716-446655440000",
    "customer_id": "user-456",
    "title": "Order Support",
    "locale": "en"
  }`
	seedConversationMessage = `{
    "content": "Can you help me track my order?",
    "metadata": {
      "order_id": "12345"
    }
  }`
	seedContext = `{
    "user_reference": "user-456",
    "traits": {
      "name": "John Doe",
      "email": "john@example.com",
      "subscription_tier": "premium",
      "preferences": {
        "language": "en",
        "notifications": true
      }
    }
  }`
	seedPlaceholderAssistant = "550e8400-e29b-41d4-a716-446655440000"
)

// expectStatus fails unless r has status; it returns the envelope's data object.
func expectStatus(t *testing.T, r response, status int) map[string]any {
	t.Helper()
	if r.Status != status {
		t.Fatalf("status %d, want %d: %s", r.Status, status, r.Body)
	}
	m := r.json(t)
	if m["status"] != "success" || m["status_code"] != float64(status) {
		t.Fatalf("envelope: %s", r.Body)
	}
	d, _ := m["data"].(map[string]any)
	return d
}

// listOf returns the items and meta of a list answer.
func listOf(t *testing.T, r response) ([]any, map[string]any) {
	t.Helper()
	if r.Status != http.StatusOK {
		t.Fatalf("status %d: %s", r.Status, r.Body)
	}
	m := r.json(t)
	items, ok := m["data"].([]any)
	meta, _ := m["meta"].(map[string]any)
	if !ok || meta == nil {
		t.Fatalf("not a list: %s", r.Body)
	}
	return items, meta
}

// expectPosted checks the answer to POST .../messages: 201 with the reply
// (or its failure), or 202 while it is pending. It returns the user's message.
func expectPosted(t *testing.T, r response) map[string]any {
	t.Helper()
	if r.Status != http.StatusCreated && r.Status != http.StatusAccepted {
		t.Fatalf("status %d: %s", r.Status, r.Body)
	}
	d := expectStatus(t, r, r.Status)
	if r.Status == http.StatusAccepted && (d["reply_status"] != "pending" || d["reply"] != nil) {
		t.Fatalf("pending reply: %v", d)
	}
	if r.Status == http.StatusCreated && d["reply"] == nil && d["reply_status"] != "failed" {
		t.Fatalf("201 without reply: %v", d)
	}
	return d
}

func (ts *testServer) newAssistant(t *testing.T, org testOrg) string {
	t.Helper()
	d := expectStatus(t, ts.do(t, http.MethodPost, "/api/v1/assistants/", org, seedAssistant), http.StatusCreated)
	return d["id"].(string)
}

func TestSeedExamplesForResources(t *testing.T) {
	ts := newTestServer(t)
	org := ts.org

	a := expectStatus(t, ts.do(t, http.MethodPost, "/api/v1/assistants/", org, seedAssistant), http.StatusCreated)
	if a["name"] != "Customer Support Bot" || a["tone"] != "professional" || a["language"] != "en" || a["is_active"] != true ||
		len(a["default_tasks"].([]any)) != 2 || a["created_at"] == nil {
		t.Fatalf("assistant: %v", a)
	}
	id := a["id"].(string)
	items, meta := listOf(t, ts.do(t, http.MethodGet, "/api/v1/assistants/", org, ""))
	if len(items) != 1 || meta["has_more"] != false || items[0].(map[string]any)["id"] != id {
		t.Fatalf("list: %v %v", items, meta)
	}

	sess := expectStatus(t, ts.do(t, http.MethodPost, "/api/v1/sessions/", org, strings.ReplaceAll(seedSession, seedPlaceholderAssistant, id)), http.StatusCreated)
	if sess["visitor_id"] != "visitor-123" || sess["assistant_id"] != id || sess["metadata"].(map[string]any)["page"] != "/contact" {
		t.Fatalf("session: %v", sess)
	}
	sid := sess["id"].(string)
	msg := expectPosted(t, ts.do(t, http.MethodPost, "/api/v1/sessions/"+sid+"/messages", org, seedSessionMessage))
	if msg["role"] != "user" || msg["content"] != "Hello, I need help with my order" ||
		msg["metadata"].(map[string]any)["user_type"] != "customer" || msg["created_at"] == nil {
		t.Fatalf("message: %v", msg)
	}
	if _, ok := msg["reply"]; !ok {
		t.Fatalf("reply: %v", msg)
	}
	items, _ = listOf(t, ts.do(t, http.MethodGet, "/api/v1/sessions/"+sid+"/messages", org, ""))
	if len(items) < 1 || items[0].(map[string]any)["id"] != msg["id"] {
		t.Fatalf("messages: %v", items)
	}
	got := expectStatus(t, ts.do(t, http.MethodGet, "/api/v1/sessions/"+sid, org, ""), http.StatusOK)
	if got["id"] != sid || got["message_count"].(float64) < 1 {
		t.Fatalf("get session: %v", got)
	}

	conv := expectStatus(t, ts.do(t, http.MethodPost, "/api/v1/conversations/", org, strings.ReplaceAll(seedConversation, seedPlaceholderAssistant, id)), http.StatusCreated)
	if conv["customer_id"] != "user-456" || conv["title"] != "Order Support" || conv["user_context_id"] != nil {
		t.Fatalf("conversation: %v", conv)
	}
	cid := conv["id"].(string)
	cm := expectPosted(t, ts.do(t, http.MethodPost, "/api/v1/conversations/"+cid+"/messages", org, seedConversationMessage))
	if cm["content"] != "Can you help me track my order?" {
		t.Fatalf("conversation message: %v", cm)
	}

	ctx := expectStatus(t, ts.do(t, http.MethodPost, "/api/v1/contexts/", org, seedContext), http.StatusCreated)
	traits := ctx["traits"].(map[string]any)
	if ctx["user_reference"] != "user-456" || traits["name"] != "John Doe" || traits["preferences"].(map[string]any)["notifications"] != true {
		t.Fatalf("context: %v", ctx)
	}
	// POST on an existing reference merges.
	merged := expectStatus(t, ts.do(t, http.MethodPost, "/api/v1/contexts/", org, `{"user_reference":"user-456","traits":{"subscription_tier":"gold","preferences":{"notifications":false}}}`), http.StatusOK)
	mt := merged["traits"].(map[string]any)
	if merged["id"] != ctx["id"] || mt["subscription_tier"] != "gold" || mt["name"] != "John Doe" || mt["preferences"].(map[string]any)["language"] != "en" {
		t.Fatalf("merged: %v", merged)
	}
	for _, ref := range []string{"user-456", ctx["id"].(string)} {
		g := expectStatus(t, ts.do(t, http.MethodGet, "/api/v1/contexts/"+ref, org, ""), http.StatusOK)
		if g["id"] != ctx["id"] {
			t.Fatalf("get context by %s: %v", ref, g)
		}
	}
	p := expectStatus(t, ts.do(t, http.MethodPatch, "/api/v1/contexts/user-456", org, `{"traits":{"email":null}}`), http.StatusOK)
	if _, still := p["traits"].(map[string]any)["email"]; still {
		t.Fatalf("patch did not remove email: %v", p)
	}
}

func TestSeedJavaScriptFlows(t *testing.T) {
	ts := newTestServer(t)
	id := ts.newAssistant(t, ts.org)

	// Kundensupport Chatbot: widget token, session, message.
	tok := widgetToken(t, ts, ts.org.ClientID)
	bearer := []string{"Authorization", "Bearer " + tok}
	sess := expectStatus(t, ts.do(t, http.MethodPost, "/api/v1/sessions/", testOrg{}, `{"assistant_id":"`+id+`","visitor_id":"visitor-1764100000000","metadata":{"source":"support_widget"}}`, bearer...), http.StatusCreated)
	sid := sess["id"].(string)
	m := expectPosted(t, ts.do(t, http.MethodPost, "/api/v1/sessions/"+sid+"/messages", testOrg{}, `{"content":"Ich brauche Hilfe bei meiner Bestellung","metadata":{"user_type":"customer"}}`, bearer...))
	if m["content"] != "Ich brauche Hilfe bei meiner Bestellung" {
		t.Fatalf("message: %v", m)
	}
	expectStatus(t, ts.do(t, http.MethodGet, "/api/v1/sessions/"+sid, testOrg{}, "", bearer...), http.StatusOK)
	listOf(t, ts.do(t, http.MethodGet, "/api/v1/sessions/"+sid+"/messages", testOrg{}, "", bearer...))
	// "Sitzung erstellen": only assistant_id, no trailing slash; the visitor id is generated.
	s2 := expectStatus(t, ts.do(t, http.MethodPost, "/api/v1/sessions", testOrg{}, `{"assistant_id":"`+id+`"}`, bearer...), http.StatusCreated)
	if v, _ := s2["visitor_id"].(string); !strings.HasPrefix(v, "visitor-") {
		t.Fatalf("visitor id not generated: %v", s2)
	}
	// The widget token reaches nothing else.
	for _, c := range []struct{ method, path string }{
		{http.MethodGet, "/api/v1/assistants/"}, {http.MethodPost, "/api/v1/assistants/"}, {http.MethodGet, "/api/v1/conversations/"},
		{http.MethodPost, "/api/v1/contexts/"}, {http.MethodGet, "/api/v1/contexts/user-1"}, {http.MethodGet, "/api/v1/sessions/" + sid + "/events"},
	} {
		expectError(t, ts.do(t, c.method, c.path, testOrg{}, `{}`, bearer...), http.StatusForbidden)
	}

	// E-Commerce Produktassistent: context, conversation by user_reference, message.
	expectStatus(t, ts.do(t, http.MethodPost, "/api/v1/contexts/", ts.org, `{"user_reference":"user-123","traits":{"name":"Alice","purchase_history":["laptop-1","mouse-2"],"preferences":{"category":"electronics"}}}`), http.StatusCreated)
	conv := expectStatus(t, ts.do(t, http.MethodPost, "/api/v1/conversations/", ts.org, `{"assistant_id":"`+id+`","customer_id":"user-123","user_context_id":"user-123","title":"Product Recommendations","metadata":{"source":"product_page"}}`), http.StatusCreated)
	uc := expectStatus(t, ts.do(t, http.MethodGet, "/api/v1/contexts/user-123", ts.org, ""), http.StatusOK)
	if conv["user_context_id"] != uc["id"] {
		t.Fatalf("conversation not linked to the context: %v vs %v", conv, uc)
	}
	expectPosted(t, ts.do(t, http.MethodPost, "/api/v1/conversations/"+conv["id"].(string)+"/messages", ts.org, `{"content":"Welchen Laptop empfiehlst du?","metadata":{"context":"product_inquiry"}}`))
	items, _ := listOf(t, ts.do(t, http.MethodGet, "/api/v1/conversations/?customer_id=user-123", ts.org, ""))
	if len(items) != 1 {
		t.Fatalf("by customer: %v", items)
	}
	evs := eventsOfStream(t, ts.do(t, http.MethodGet, "/api/v1/conversations/"+conv["id"].(string)+"/events", ts.org, ""))
	if len(evs) < 2 || evs[0]["type"] != "ConversationStarted" || evs[1]["type"] != "MessagePosted" {
		t.Fatalf("conversation events: %v", evs)
	}
}

func eventsOfStream(t *testing.T, r response) []map[string]any {
	t.Helper()
	items, _ := listOf(t, r)
	out := make([]map[string]any, len(items))
	for i, it := range items {
		out[i] = it.(map[string]any)
	}
	return out
}

func TestResourceValidationErrors(t *testing.T) {
	ts := newTestServer(t)
	id := ts.newAssistant(t, ts.org)
	sid := expectStatus(t, ts.do(t, http.MethodPost, "/api/v1/sessions/", ts.org, `{"assistant_id":"`+id+`"}`), http.StatusCreated)["id"].(string)
	cid := expectStatus(t, ts.do(t, http.MethodPost, "/api/v1/conversations/", ts.org, `{"assistant_id":"`+id+`","customer_id":"c"}`), http.StatusCreated)["id"].(string)
	long := strings.Repeat("x", 40000)
	cases := []struct {
		name, method, path, body, field string
	}{
		{"assistant without name", http.MethodPost, "/api/v1/assistants/", `{"tone":"x"}`, "name"},
		{"assistant blank name", http.MethodPost, "/api/v1/assistants/", `{"name":"  "}`, "name"},
		{"assistant name not a string", http.MethodPost, "/api/v1/assistants/", `{"name":123}`, "name"},
		{"assistant bad language", http.MethodPost, "/api/v1/assistants/", `{"name":"a","language":"not a language"}`, "language"},
		{"assistant tasks not an array", http.MethodPost, "/api/v1/assistants/", `{"name":"a","default_tasks":"x"}`, "default_tasks"},
		{"assistant is_active not a bool", http.MethodPost, "/api/v1/assistants/", `{"name":"a","is_active":"yes"}`, "is_active"},
		{"assistant name too long", http.MethodPost, "/api/v1/assistants/", `{"name":"` + long[:300] + `"}`, "name"},
		{"patch blank name", http.MethodPatch, "/api/v1/assistants/" + id, `{"name":""}`, "name"},
		{"session without assistant", http.MethodPost, "/api/v1/sessions/", `{"visitor_id":"v"}`, "assistant_id"},
		{"session assistant not a uuid", http.MethodPost, "/api/v1/sessions/", `{"assistant_id":"assistant-uuid"}`, "assistant_id"},
		{"session metadata not an object", http.MethodPost, "/api/v1/sessions/", `{"assistant_id":"` + id + `","metadata":"x"}`, "metadata"},
		{"session bad locale", http.MethodPost, "/api/v1/sessions/", `{"assistant_id":"` + id + `","locale":"??"}`, "locale"},
		{"message without content", http.MethodPost, "/api/v1/sessions/" + sid + "/messages", `{"metadata":{}}`, "content"},
		{"message empty content", http.MethodPost, "/api/v1/sessions/" + sid + "/messages", `{"content":"   "}`, "content"},
		{"message content not a string", http.MethodPost, "/api/v1/conversations/" + cid + "/messages", `{"content":{"a":1}}`, "content"},
		{"message content too long", http.MethodPost, "/api/v1/conversations/" + cid + "/messages", `{"content":"` + long + `"}`, "content"},
		{"conversation without customer", http.MethodPost, "/api/v1/conversations/", `{"assistant_id":"` + id + `"}`, "customer_id"},
		{"conversation unknown user context", http.MethodPost, "/api/v1/conversations/", `{"assistant_id":"` + id + `","customer_id":"c","user_context_id":"nobody"}`, "user_context_id"},
		{"context without reference", http.MethodPost, "/api/v1/contexts/", `{"traits":{}}`, "user_reference"},
		{"context traits not an object", http.MethodPost, "/api/v1/contexts/", `{"user_reference":"u","traits":[1]}`, "traits"},
		{"limit out of range", http.MethodGet, "/api/v1/assistants/?limit=0", "", "limit"},
		{"limit too large", http.MethodGet, "/api/v1/sessions/" + sid + "/messages?limit=101", "", "limit"},
		{"foreign cursor", http.MethodGet, "/api/v1/conversations/?cursor=bm9wZQ", "", "cursor"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			m := expectError(t, ts.do(t, c.method, c.path, ts.org, c.body), http.StatusUnprocessableEntity)
			if _, ok := fieldErrors(t, m)[c.field]; !ok {
				t.Fatalf("no field error for %s: %v", c.field, m)
			}
		})
	}
	// An inactive assistant takes no sessions; a deleted one is gone.
	expectStatus(t, ts.do(t, http.MethodPatch, "/api/v1/assistants/"+id, ts.org, `{"is_active":false}`), http.StatusOK)
	m := expectError(t, ts.do(t, http.MethodPost, "/api/v1/sessions/", ts.org, `{"assistant_id":"`+id+`"}`), http.StatusUnprocessableEntity)
	if _, ok := fieldErrors(t, m)["assistant_id"]; !ok {
		t.Fatalf("inactive: %v", m)
	}
	expectStatus(t, ts.do(t, http.MethodDelete, "/api/v1/assistants/"+id, ts.org, ""), http.StatusOK)
	expectError(t, ts.do(t, http.MethodGet, "/api/v1/assistants/"+id, ts.org, ""), http.StatusNotFound)
	expectError(t, ts.do(t, http.MethodPatch, "/api/v1/assistants/"+id, ts.org, `{"tone":"x"}`), http.StatusNotFound)
	expectError(t, ts.do(t, http.MethodDelete, "/api/v1/assistants/"+id, ts.org, ""), http.StatusNotFound)
	expectError(t, ts.do(t, http.MethodPost, "/api/v1/conversations/", ts.org, `{"assistant_id":"`+id+`","customer_id":"c"}`), http.StatusNotFound)
	expectError(t, ts.do(t, http.MethodGet, "/api/v1/sessions/not-a-uuid", ts.org, ""), http.StatusNotFound)
}

func TestTenantIsolationOfResources(t *testing.T) {
	ts := newTestServer(t)
	a, b := ts.org, ts.newOrg(t, "Other")
	id := ts.newAssistant(t, a)
	sid := expectStatus(t, ts.do(t, http.MethodPost, "/api/v1/sessions/", a, `{"assistant_id":"`+id+`"}`), http.StatusCreated)["id"].(string)
	// No context yet: linking to it is a field error.
	expectError(t, ts.do(t, http.MethodPost, "/api/v1/conversations/", a, `{"assistant_id":"`+id+`","customer_id":"user-456","user_context_id":"user-456"}`), http.StatusUnprocessableEntity)
	ctxID := expectStatus(t, ts.do(t, http.MethodPost, "/api/v1/contexts/", a, seedContext), http.StatusCreated)["id"].(string)
	cid2 := expectStatus(t, ts.do(t, http.MethodPost, "/api/v1/conversations/", a, `{"assistant_id":"`+id+`","customer_id":"user-456","user_context_id":"user-456"}`), http.StatusCreated)["id"].(string)
	bTok := widgetToken(t, ts, b.ClientID)
	cases := []struct{ method, path, body string }{
		{http.MethodGet, "/api/v1/assistants/" + id, ""},
		{http.MethodPatch, "/api/v1/assistants/" + id, `{"tone":"x"}`},
		{http.MethodDelete, "/api/v1/assistants/" + id, ""},
		{http.MethodPost, "/api/v1/sessions/", `{"assistant_id":"` + id + `"}`},
		{http.MethodGet, "/api/v1/sessions/" + sid, ""},
		{http.MethodPost, "/api/v1/sessions/" + sid + "/messages", `{"content":"hi"}`},
		{http.MethodGet, "/api/v1/sessions/" + sid + "/messages", ""},
		{http.MethodGet, "/api/v1/sessions/" + sid + "/events", ""},
		{http.MethodPost, "/api/v1/conversations/", `{"assistant_id":"` + id + `","customer_id":"c"}`},
		{http.MethodGet, "/api/v1/conversations/" + cid2, ""},
		{http.MethodPost, "/api/v1/conversations/" + cid2 + "/messages", `{"content":"hi"}`},
		{http.MethodGet, "/api/v1/conversations/" + cid2 + "/messages", ""},
		{http.MethodGet, "/api/v1/conversations/" + cid2 + "/events", ""},
		{http.MethodGet, "/api/v1/contexts/" + ctxID, ""},
		{http.MethodGet, "/api/v1/contexts/user-456", ""},
		{http.MethodPatch, "/api/v1/contexts/" + ctxID, `{"traits":{"a":1}}`},
		{http.MethodDelete, "/api/v1/contexts/" + ctxID, ""},
		{http.MethodDelete, "/api/v1/contexts/user-456", ""},
	}
	for _, c := range cases {
		t.Run(c.method+" "+c.path, func(t *testing.T) {
			m := expectError(t, ts.do(t, c.method, c.path, b, c.body), http.StatusNotFound)
			if strings.Contains(string(ts.do(t, c.method, c.path, b, c.body).Body), "John") {
				t.Fatalf("leaked: %v", m)
			}
		})
	}
	// Widget tokens of another organization see nothing either.
	expectError(t, ts.do(t, http.MethodGet, "/api/v1/sessions/"+sid, testOrg{}, "", "Authorization", "Bearer "+bTok), http.StatusNotFound)
	expectError(t, ts.do(t, http.MethodPost, "/api/v1/sessions/"+sid+"/messages", testOrg{}, `{"content":"x"}`, "Authorization", "Bearer "+bTok), http.StatusNotFound)
	for _, path := range []string{"/api/v1/assistants/", "/api/v1/conversations/", "/api/v1/conversations/?customer_id=user-456"} {
		if items, _ := listOf(t, ts.do(t, http.MethodGet, path, b, "")); len(items) != 0 {
			t.Fatalf("%s lists another organization's: %v", path, items)
		}
	}
	// Nothing of b's attempts changed a's resources.
	if g := expectStatus(t, ts.do(t, http.MethodGet, "/api/v1/assistants/"+id, a, ""), http.StatusOK); g["tone"] != "professional" {
		t.Fatalf("assistant changed by another org: %v", g)
	}
	expectStatus(t, ts.do(t, http.MethodGet, "/api/v1/contexts/user-456", a, ""), http.StatusOK)
	// The same reference is b's own in b.
	expectStatus(t, ts.do(t, http.MethodPost, "/api/v1/contexts/", b, seedContext), http.StatusCreated)
}

func TestResourcePagination(t *testing.T) {
	ts := newTestServer(t)
	var ids []string
	for range 3 {
		ids = append(ids, ts.newAssistant(t, ts.org))
	}
	page1, meta := listOf(t, ts.do(t, http.MethodGet, "/api/v1/assistants/?limit=2", ts.org, ""))
	if len(page1) != 2 || meta["has_more"] != true || page1[0].(map[string]any)["id"] != ids[2] {
		t.Fatalf("page 1: %v %v", page1, meta)
	}
	page2, meta2 := listOf(t, ts.do(t, http.MethodGet, "/api/v1/assistants/?limit=2&cursor="+meta["next_cursor"].(string), ts.org, ""))
	if len(page2) != 1 || meta2["has_more"] != false || meta2["next_cursor"] != nil || page2[0].(map[string]any)["id"] != ids[0] {
		t.Fatalf("page 2: %v %v", page2, meta2)
	}
	sid := expectStatus(t, ts.do(t, http.MethodPost, "/api/v1/sessions/", ts.org, `{"assistant_id":"`+ids[0]+`"}`), http.StatusCreated)["id"].(string)
	for i := range 5 {
		expectPosted(t, ts.do(t, http.MethodPost, "/api/v1/sessions/"+sid+"/messages?wait=0", ts.org, `{"content":"m`+itoa(i)+`"}`))
	}
	var seen []string
	cursor := ""
	for range 10 {
		items, meta := listOf(t, ts.do(t, http.MethodGet, "/api/v1/sessions/"+sid+"/messages?limit=2&cursor="+cursor, ts.org, ""))
		for _, it := range items {
			if m := it.(map[string]any); m["role"] == "user" {
				seen = append(seen, m["content"].(string))
			}
		}
		if meta["has_more"] != true {
			break
		}
		cursor = meta["next_cursor"].(string)
	}
	if strings.Join(seen, ",") != "m0,m1,m2,m3,m4" {
		t.Fatalf("messages paged: %v", seen)
	}
	evs := eventsOfStream(t, ts.do(t, http.MethodGet, "/api/v1/sessions/"+sid+"/events", ts.org, ""))
	if len(evs) < 6 || evs[0]["type"] != "SessionStarted" {
		t.Fatalf("session events: %v", evs)
	}
	for i, e := range evs {
		if e["version"] != float64(i+1) {
			t.Fatalf("history not in stream order: %v", evs)
		}
	}
	evs = eventsOfStream(t, ts.do(t, http.MethodGet, "/api/v1/sessions/"+sid+"/events?limit=4&cursor=4", ts.org, ""))
	if len(evs) > 4 || len(evs) < 2 || evs[0]["version"] != float64(5) {
		t.Fatalf("session events page: %v", evs)
	}
}

func TestErasureThenRebuild(t *testing.T) {
	ts := newTestServer(t)
	org := ts.org
	id := ts.newAssistant(t, org)
	uc := expectStatus(t, ts.do(t, http.MethodPost, "/api/v1/contexts/", org, seedContext), http.StatusCreated)
	conv := expectStatus(t, ts.do(t, http.MethodPost, "/api/v1/conversations/", org, `{"assistant_id":"`+id+`","customer_id":"user-456","user_context_id":"user-456"}`), http.StatusCreated)
	cid := conv["id"].(string)
	expectPosted(t, ts.do(t, http.MethodPost, "/api/v1/conversations/"+cid+"/messages?wait=0", org, `{"content":"I am John Doe, premium customer"}`))
	if evs := ts.do(t, http.MethodGet, "/api/v1/conversations/"+cid+"/events", org, ""); !strings.Contains(string(evs.Body), "John Doe") {
		t.Fatalf("content not readable before erasure: %s", evs.Body)
	}

	d := expectStatus(t, ts.do(t, http.MethodDelete, "/api/v1/contexts/user-456", org, ""), http.StatusOK)
	if d["id"] != uc["id"] || d["erased"] != true {
		t.Fatalf("erase: %v", d)
	}
	expectError(t, ts.do(t, http.MethodGet, "/api/v1/contexts/user-456", org, ""), http.StatusNotFound)
	expectError(t, ts.do(t, http.MethodGet, "/api/v1/contexts/"+uc["id"].(string), org, ""), http.StatusNotFound)
	// A retry answers the same tombstone, not 404.
	if again := expectStatus(t, ts.do(t, http.MethodDelete, "/api/v1/contexts/"+uc["id"].(string), org, ""), http.StatusOK); again["id"] != d["id"] || again["erased_at"] != d["erased_at"] {
		t.Fatalf("retried erase: %v, first %v", again, d)
	}
	expectError(t, ts.do(t, http.MethodPost, "/api/v1/conversations/"+cid+"/messages", org, `{"content":"more"}`), http.StatusConflict)

	unreadable := func(t *testing.T, when string) {
		t.Helper()
		items, _ := listOf(t, ts.do(t, http.MethodGet, "/api/v1/conversations/"+cid+"/messages", org, ""))
		if len(items) == 0 {
			t.Fatalf("%s: messages gone: the log must stay complete", when)
		}
		for _, it := range items {
			if it.(map[string]any)["content"] != nil {
				t.Fatalf("%s: message content readable: %v", when, items)
			}
		}
		for _, path := range []string{"/api/v1/conversations/" + cid + "/events", "/api/v1/events?limit=100"} {
			if r := ts.do(t, http.MethodGet, path, org, ""); r.Status != 200 || strings.Contains(string(r.Body), "John") ||
				strings.Contains(string(r.Body), "premium") || strings.Contains(string(r.Body), "user-456") {
				t.Fatalf("%s: %s shows personal data: %d %s", when, path, r.Status, r.Body)
			}
		}
		if items, _ := listOf(t, ts.do(t, http.MethodGet, "/api/v1/conversations/?customer_id=user-456", org, "")); len(items) != 0 {
			t.Fatalf("%s: conversations still listed by the erased customer id: %v", when, items)
		}
		if r := ts.do(t, http.MethodGet, "/api/v1/events", org, "", "Accept", "application/x-ndjson"); strings.Contains(string(r.Body), "John") || strings.Contains(string(r.Body), "user-456") {
			t.Fatalf("%s: export shows personal data", when)
		}
		var n int
		if err := ts.Pool.QueryRow(context.Background(), `SELECT count(*) FROM user_contexts WHERE traits::text LIKE '%John%' OR user_reference = 'user-456'`).Scan(&n); err != nil || n != 0 {
			t.Fatalf("%s: read model keeps the person: %d %v", when, n, err)
		}
	}
	unreadable(t, "after erasure")
	if err := messaging.Rebuild(context.Background(), ts.Store, ts.Pool, testProjections(), ""); err != nil {
		t.Fatal(err)
	}
	// A rebuild replays what the log shows now; the live runner goes on from
	// there. Wait until the projections are past the erasure again.
	history, err := ts.Store.ReadStream(context.Background(), "usercontext-"+uc["id"].(string), 1, 0)
	if err != nil {
		t.Fatal(err)
	}
	ts.settle(t, history[len(history)-1].Position)
	unreadable(t, "after rebuild")
	// The log is complete: the erasure is recorded with who did it.
	evs, err := ts.Store.ReadAll(context.Background(), es.Start, 0, es.Filter{Types: []string{"UserContextErased"}})
	var erased struct {
		ErasedBy string `json:"erased_by"`
	}
	if err != nil || len(evs) != 1 || json.Unmarshal(evs[0].Data, &erased) != nil || !strings.HasPrefix(erased.ErasedBy, "api_key:") {
		t.Fatalf("erasure event: %v %v", evs, err)
	}
	// The reference is free again.
	again := expectStatus(t, ts.do(t, http.MethodPost, "/api/v1/contexts/", org, seedContext), http.StatusCreated)
	if again["id"] == uc["id"] {
		t.Fatal("erased context came back")
	}
}
