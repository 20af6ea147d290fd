package httpapi

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/companin/companin/domain/es"
	"github.com/google/uuid"
)

// appendFor appends one event of typ to stream on behalf of org.
func appendFor(t *testing.T, ts *testServer, org testOrg, stream, typ string) es.AppendResult {
	t.Helper()
	res, err := ts.Store.Append(context.Background(), stream, es.Any, es.NewEvent{
		ID: uuid.New(), Type: typ, SchemaVersion: 1, Data: json.RawMessage(`{"n":1}`),
		Metadata: es.Metadata{OrganizationID: org.ID, Actor: "api_key:" + org.ClientID},
	})
	if err != nil {
		t.Fatal(err)
	}
	ts.settle(t, res.Position)
	return res
}

func eventsOf(t *testing.T, r response) []map[string]any {
	t.Helper()
	if r.Status != 200 {
		t.Fatalf("%d %s", r.Status, r.Body)
	}
	var env struct {
		Data []map[string]any `json:"data"`
		Meta struct {
			HasMore    bool    `json:"has_more"`
			NextCursor *string `json:"next_cursor"`
		} `json:"meta"`
	}
	if err := json.Unmarshal(r.Body, &env); err != nil {
		t.Fatal(err)
	}
	return env.Data
}

func TestEventsListTenantIsolationAndFilters(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	other := ts.newOrg(t, "Other")
	s1 := "session-" + uuid.NewString()
	appendFor(t, ts, ts.org, s1, "SessionStarted")
	appendFor(t, ts, other, "session-"+uuid.NewString(), "SessionStarted")
	appendFor(t, ts, ts.org, s1, "MessagePosted")
	appendFor(t, ts, ts.org, "assistant-"+uuid.NewString(), "AssistantCreated")
	appendFor(t, ts, other, "assistant-"+uuid.NewString(), "AssistantCreated")

	all := eventsOf(t, ts.do(t, http.MethodGet, "/api/v1/events", ts.org, ""))
	// The organization's own creation events are in its log too.
	var types []string
	for _, e := range all {
		md := e["metadata"].(map[string]any)
		if md["organization_id"] != ts.org.ID {
			t.Fatalf("foreign event: %v", e)
		}
		for _, k := range []string{"id", "stream", "version", "position", "type", "data", "metadata", "recorded_at"} {
			if _, ok := e[k]; !ok {
				t.Fatalf("event without %s: %v", k, e)
			}
		}
		if md["schema_version"] != float64(1) {
			t.Fatalf("schema version: %v", md)
		}
		types = append(types, e["type"].(string))
	}
	want := "OrganizationCreated,CredentialsIssued,SessionStarted,MessagePosted,AssistantCreated"
	if strings.Join(types, ",") != want {
		t.Fatalf("types %v", types)
	}
	if _, err := time.Parse(time.RFC3339, all[0]["recorded_at"].(string)); err != nil {
		t.Fatalf("recorded_at: %v", err)
	}

	// Paging: limit and cursor walk the same sequence.
	var walked []string
	cursor := ""
	for page := 0; page < 10; page++ {
		r := ts.do(t, http.MethodGet, "/api/v1/events?limit=2&after="+cursor, ts.org, "")
		m := r.json(t)
		meta := m["meta"].(map[string]any)
		for _, e := range eventsOf(t, r) {
			walked = append(walked, e["type"].(string))
		}
		if meta["has_more"] != true {
			break
		}
		cursor = meta["next_cursor"].(string)
	}
	if strings.Join(walked, ",") != want {
		t.Fatalf("paged %v", walked)
	}

	got := eventsOf(t, ts.do(t, http.MethodGet, "/api/v1/events?types=MessagePosted,AssistantCreated", ts.org, ""))
	if len(got) != 2 || got[0]["type"] != "MessagePosted" || got[1]["type"] != "AssistantCreated" {
		t.Fatalf("types filter: %v", got)
	}
	got = eventsOf(t, ts.do(t, http.MethodGet, "/api/v1/events?stream="+s1, ts.org, ""))
	if len(got) != 2 || got[0]["version"] != float64(1) || got[1]["version"] != float64(2) {
		t.Fatalf("stream filter: %v", got)
	}
	// Another organization's stream shows nothing, not an error.
	got = eventsOf(t, ts.do(t, http.MethodGet, "/api/v1/events?stream="+s1, other, ""))
	if len(got) != 0 {
		t.Fatalf("foreign stream: %v", got)
	}
	for _, q := range []string{"limit=0", "limit=101", "limit=x", "after=%00bad", "after=zzzz", "cursor=00000000nothex"} {
		expectError(t, ts.do(t, http.MethodGet, "/api/v1/events?"+q, ts.org, ""), 422)
	}
}

func TestEventsNDJSONExport(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	other := ts.newOrg(t, "Other")
	for i := 0; i < 7; i++ {
		appendFor(t, ts, ts.org, "session-"+uuid.NewString(), "SessionStarted")
		appendFor(t, ts, other, "session-"+uuid.NewString(), "SessionStarted")
	}
	r := ts.do(t, http.MethodGet, "/api/v1/events", ts.org, "", "Accept", "application/x-ndjson")
	if r.Status != 200 || r.Header.Get("Content-Type") != "application/x-ndjson" {
		t.Fatalf("%d %v", r.Status, r.Header)
	}
	lines := strings.Split(strings.TrimSpace(string(r.Body)), "\n")
	if len(lines) != 9 { // OrganizationCreated, CredentialsIssued, 7 sessions
		t.Fatalf("%d lines: %s", len(lines), r.Body)
	}
	last := ""
	for _, l := range lines {
		var e map[string]any
		if err := json.Unmarshal([]byte(l), &e); err != nil {
			t.Fatalf("line %q: %v", l, err)
		}
		if e["metadata"].(map[string]any)["organization_id"] != ts.org.ID {
			t.Fatalf("foreign event exported: %s", l)
		}
		if p := e["position"].(string); p <= last {
			t.Fatalf("out of order: %s after %s", p, last)
		} else {
			last = p
		}
	}
	r = ts.do(t, http.MethodGet, "/api/v1/events?limit=3", ts.org, "", "Accept", "application/x-ndjson")
	if n := len(strings.Split(strings.TrimSpace(string(r.Body)), "\n")); n != 3 {
		t.Fatalf("limited export: %d lines", n)
	}
}

// sseEvent is one Server-Sent Event.
type sseEvent struct{ id, event, data string }

func readSSE(t *testing.T, sc *bufio.Scanner, n int) []sseEvent {
	t.Helper()
	var out []sseEvent
	var cur sseEvent
	for len(out) < n && sc.Scan() {
		line := sc.Text()
		switch {
		case line == "":
			if cur.data != "" {
				out = append(out, cur)
			}
			cur = sseEvent{}
		case strings.HasPrefix(line, "id: "):
			cur.id = strings.TrimPrefix(line, "id: ")
		case strings.HasPrefix(line, "event: "):
			cur.event = strings.TrimPrefix(line, "event: ")
		case strings.HasPrefix(line, "data: "):
			cur.data = strings.TrimPrefix(line, "data: ")
		}
	}
	if len(out) < n {
		t.Fatalf("stream ended after %d events: %v", len(out), sc.Err())
	}
	return out
}

func openSSE(t *testing.T, ts *testServer, org testOrg, lastEventID string) (*bufio.Scanner, func()) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, ts.URL+"/api/v1/events/stream", nil)
	req.Header.Set("X-API-Key", org.ClientID)
	req.Header.Set("X-API-Secret", org.Secret)
	req.Header.Set("Accept", "text/event-stream")
	if lastEventID != "" {
		req.Header.Set("Last-Event-ID", lastEventID)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/event-stream" {
		cancel()
		t.Fatalf("stream: %d %v", resp.StatusCode, resp.Header)
	}
	return bufio.NewScanner(resp.Body), func() { cancel(); resp.Body.Close() }
}

func TestEventsSSETailAndResume(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	other := ts.newOrg(t, "Other")
	sc, stop := openSSE(t, ts, ts.org, "")
	first := readSSE(t, sc, 2)
	if first[0].event != "OrganizationCreated" || first[1].event != "CredentialsIssued" {
		t.Fatalf("history: %v", first)
	}
	// Live: another organization's events are not sent; ours arrive.
	appendFor(t, ts, other, "session-"+uuid.NewString(), "SessionStarted")
	res := appendFor(t, ts, ts.org, "session-"+uuid.NewString(), "SessionStarted")
	live := readSSE(t, sc, 1)[0]
	if live.event != "SessionStarted" || live.id != string(res.Position) {
		t.Fatalf("live: %+v want id %s", live, res.Position)
	}
	var e map[string]any
	if err := json.Unmarshal([]byte(live.data), &e); err != nil || e["metadata"].(map[string]any)["organization_id"] != ts.org.ID {
		t.Fatalf("data %s: %v", live.data, err)
	}
	stop()

	// Resume after the first event: the rest comes again, nothing before it.
	appendFor(t, ts, ts.org, "assistant-"+uuid.NewString(), "AssistantCreated")
	sc, stop = openSSE(t, ts, ts.org, first[0].id)
	defer stop()
	got := readSSE(t, sc, 3)
	var types []string
	for _, g := range got {
		types = append(types, g.event)
	}
	if fmt.Sprint(types) != "[CredentialsIssued SessionStarted AssistantCreated]" {
		t.Fatalf("resumed: %v", types)
	}
}

func TestEventsBadResumePointIs422(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	expectError(t, ts.do(t, http.MethodGet, "/api/v1/events/stream", ts.org, "", "Last-Event-ID", "garbage"), 422)
	expectError(t, ts.do(t, http.MethodGet, "/api/v1/events?after=garbage", ts.org, "", "Accept", "application/x-ndjson"), 422)
}
