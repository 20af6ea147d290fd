package httpapi

import (
	"fmt"
	"sync"
	"testing"
)

// Messages posted at once into one session are all recorded: posting appends
// with "stream exists", so concurrent writers to one thread never conflict.
func TestConcurrentMessagesIntoOneSessionAreAllAccepted(t *testing.T) {
	ts := newTestServer(t)
	a := ts.do(t, "POST", "/api/v1/assistants/", ts.org, `{"name":"Support","language":"en"}`)
	if a.Status != 201 {
		t.Fatalf("create assistant: %d %s", a.Status, a.Body)
	}
	s := ts.do(t, "POST", "/api/v1/sessions/", ts.org, fmt.Sprintf(`{"assistant_id":%q}`, a.data(t)["id"]))
	if s.Status != 201 {
		t.Fatalf("start session: %d %s", s.Status, s.Body)
	}
	path := fmt.Sprintf("/api/v1/sessions/%s/messages?wait=0", s.data(t)["id"])
	const n = 8
	statuses := make([]response, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			statuses[i] = ts.do(t, "POST", path, ts.org, fmt.Sprintf(`{"content":"question %d"}`, i))
		}()
	}
	wg.Wait()
	for i, r := range statuses {
		if r.Status != 201 && r.Status != 202 {
			t.Errorf("message %d: %d %s", i, r.Status, r.Body)
		}
	}
	list := ts.do(t, "GET", path[:len(path)-len("?wait=0")]+"?limit=100", ts.org, "")
	users := 0
	for _, m := range list.json(t)["data"].([]any) {
		if m.(map[string]any)["role"] == "user" {
			users++
		}
	}
	if users != n {
		t.Fatalf("%d user messages listed, want %d: %s", users, n, list.Body)
	}
}
