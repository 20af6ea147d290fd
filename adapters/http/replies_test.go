package httpapi

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/companin/companin/adapters/fetch"
	"github.com/companin/companin/adapters/llm"
	"github.com/companin/companin/adapters/messaging"
	"github.com/companin/companin/adapters/replies"
	"github.com/companin/companin/domain/answer"
	"github.com/companin/companin/domain/es"
	"github.com/companin/companin/domain/message"
)

// withReplies tells the API that a reply worker runs: POST .../messages
// waits. The hub hears the test server's listener (newTestServerOn).
func withReplies() testOption { return func(d *Deps) { d.Replies = replies.NewHub(d.Pool, d.Logger) } }

// startReplyWorker runs the reply worker in a runtime of its own, as another
// server process would.
func (ts *testServer) startReplyWorker(t testing.TB, engine answer.StreamingEngine) {
	t.Helper()
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	rt := messaging.NewRuntime(ts.Store, ts.Pool, messaging.WithLeadershipInterval(20*time.Millisecond), messaging.WithLogger(logger),
		messaging.WithWorkerConcurrency(8))
	// Its hub only publishes: the API's hears it, as in another process.
	replies.Register(rt, replies.NewWorker(ts.Store, ts.Pool, engine, replies.NewHub(ts.Pool, logger)))
	ctx, cancel := context.WithCancel(context.Background())
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		_ = rt.Run(ctx)
	}()
	t.Cleanup(func() { cancel(); <-stopped })
}

func (ts *testServer) create(t testing.TB, path, body string) map[string]any {
	t.Helper()
	r := ts.do(t, http.MethodPost, path, ts.org, body)
	if r.Status != http.StatusCreated && r.Status != http.StatusAccepted {
		t.Fatalf("POST %s: %d %s", path, r.Status, r.Body)
	}
	return r.data(t)
}

func (ts *testServer) ask(t testing.TB, thread, question string) (int, map[string]any) {
	t.Helper()
	return ts.askQuery(t, thread, question, "")
}

func (ts *testServer) askQuery(t testing.TB, thread, question, query string) (int, map[string]any) {
	t.Helper()
	body, _ := json.Marshal(map[string]any{"content": question, "metadata": map[string]any{"user_type": "customer"}})
	r := ts.do(t, http.MethodPost, "/api/v1/"+thread+"/messages"+query, ts.org, string(body))
	if r.Status != http.StatusCreated && r.Status != http.StatusAccepted {
		t.Fatalf("ask %q: %d %s", question, r.Status, r.Body)
	}
	return r.Status, r.data(t)
}

func reply(t testing.TB, d map[string]any) (string, []any) {
	t.Helper()
	if d["reply_status"] != replyCompleted {
		t.Fatalf("reply_status %v: %v", d["reply_status"], d)
	}
	r := d["reply"].(map[string]any)
	if r["role"] != "assistant" || r["id"] == "" || r["created_at"] == "" {
		t.Fatalf("reply %v", r)
	}
	return r["content"].(string), r["sources"].([]any)
}

func TestRepliesThroughTheAPI(t *testing.T) {
	ts := newTestServer(t, withReplies())
	ts.startReplyWorker(t, answer.NewEmbedded())
	asst := ts.create(t, "/api/v1/assistants/", `{"name":"Customer Support Bot","tone":"professional","language":"en","default_tasks":["answer_questions"],"is_active":true}`)
	qa := ts.create(t, "/api/v1/knowledge/qa/", `{"question":"What are your business hours?","answer":"We are open Monday to Friday, 9 AM to 6 PM EST.","tags":["hours","support"]}`)
	up := ts.upload(t, ts.org, map[string]string{"title": "Product Manual", "file_type": "pdf"}, "manual.pdf", fixture(t, "manual.pdf"))
	if up.Status != http.StatusAccepted && up.Status != http.StatusCreated {
		t.Fatalf("upload: %d %s", up.Status, up.Body)
	}
	manual := up.data(t)
	ts.ingest(t, fetch.New(fetch.Config{}))
	for _, id := range []string{qa["id"].(string), manual["id"].(string)} {
		if d := ts.settled(t, ts.org, id); d["status"] != "ready" {
			t.Fatalf("knowledge %s: %v", id, d)
		}
	}
	sess := ts.create(t, "/api/v1/sessions/", `{"assistant_id":"`+asst["id"].(string)+`","visitor_id":"visitor-123","locale":"en"}`)
	thread := "sessions/" + sess["id"].(string)

	t.Run("a Q&A answer", func(t *testing.T) {
		status, d := ts.ask(t, thread, "What are your business hours?")
		text, sources := reply(t, d)
		if status != http.StatusCreated || text != "We are open Monday to Friday, 9 AM to 6 PM EST." {
			t.Fatalf("%d %q", status, text)
		}
		if len(sources) != 1 || sources[0].(map[string]any)["knowledge_id"] != qa["id"] {
			t.Fatalf("sources %v", sources)
		}
		if d["role"] != "user" || d["content"] != "What are your business hours?" || d["metadata"].(map[string]any)["user_type"] != "customer" {
			t.Fatalf("user message %v", d)
		}
	})
	t.Run("a passage of the uploaded PDF, cited", func(t *testing.T) {
		_, d := ts.ask(t, thread, "How do I reset the admin password?")
		text, sources := reply(t, d)
		if !strings.Contains(text, "press and hold the reset button") || !strings.HasPrefix(text, "According to our documentation") {
			t.Fatalf("reply %q", text)
		}
		if strings.Contains(text, "microwave") || len(text) > 600 {
			t.Fatalf("not a short answer: %q", text)
		}
		src := sources[0].(map[string]any)
		if src["knowledge_id"] != manual["id"] || src["title"] != "Product Manual" || !strings.Contains(src["snippet"].(string), "reset button") {
			t.Fatalf("sources %v", sources)
		}
	})
	t.Run("an honest don't know", func(t *testing.T) {
		_, d := ts.ask(t, thread, "Can I pay with bitcoin on Mars?")
		text, sources := reply(t, d)
		if !strings.Contains(text, "could not find") || !strings.Contains(text, "team") || len(sources) != 0 {
			t.Fatalf("reply %q %v", text, sources)
		}
	})
	t.Run("no wait: pending, then the reply shows in the messages with its sources", func(t *testing.T) {
		status, d := ts.askQuery(t, thread, "When are you open?", "?wait=0")
		if status != http.StatusAccepted || d["reply_status"] != replyPending || d["reply"] != nil {
			t.Fatalf("%d %v", status, d)
		}
		var items []any
		deadline := time.Now().Add(30 * time.Second)
		for len(items) < 8 && time.Now().Before(deadline) {
			items = ts.do(t, http.MethodGet, "/api/v1/"+thread+"/messages?limit=100", ts.org, "").json(t)["data"].([]any)
			time.Sleep(20 * time.Millisecond)
		}
		if len(items) != 8 {
			t.Fatalf("%d messages: %v", len(items), items)
		}
		cited := 0
		for _, it := range items {
			m := it.(map[string]any)
			if m["role"] == "assistant" {
				if src, _ := m["sources"].([]any); len(src) > 0 {
					cited++
				}
			}
		}
		if cited != 3 { // hours twice and the manual; the unknown cites nothing
			t.Fatalf("%d replies with sources in the history: %v", cited, items)
		}
	})
	t.Run("feedback on a reply", func(t *testing.T) {
		_, d := ts.ask(t, thread, "What are your business hours?")
		rid := d["reply"].(map[string]any)["id"].(string)
		base := "/api/v1/" + thread + "/messages/"
		r := ts.do(t, http.MethodPost, base+rid+"/feedback", ts.org, `{"rating":"like","comment":"quick and right"}`)
		if r.Status != http.StatusCreated || r.data(t)["rating"] != "like" || r.data(t)["message_id"] != rid {
			t.Fatalf("%d %s", r.Status, r.Body)
		}
		if r := ts.do(t, http.MethodPost, base+rid+"/feedback/", ts.org, `{"rating":null}`); r.Status != http.StatusCreated || r.data(t)["rating"] != nil {
			t.Fatalf("withdraw: %d %s", r.Status, r.Body)
		}
		for _, c := range []struct {
			path, body string
			status     int
		}{
			{base + rid + "/feedback", `{"rating":"meh"}`, http.StatusUnprocessableEntity},
			{base + rid + "/feedback", `{"rating":5}`, http.StatusUnprocessableEntity},
			{base + d["id"].(string) + "/feedback", `{"rating":"like"}`, http.StatusUnprocessableEntity},
			{base + "6f1c2b1e-0000-4000-8000-000000000000/feedback", `{"rating":"like"}`, http.StatusNotFound},
			{"/api/v1/sessions/6f1c2b1e-0000-4000-8000-000000000000/messages/" + rid + "/feedback", `{"rating":"like"}`, http.StatusNotFound},
		} {
			if r := ts.do(t, http.MethodPost, c.path, ts.org, c.body); r.Status != c.status {
				t.Errorf("%s %s: %d %s", c.path, c.body, r.Status, r.Body)
			}
		}
		other := ts.newOrg(t, "Other")
		if r := ts.do(t, http.MethodPost, base+rid+"/feedback", other, `{"rating":"like"}`); r.Status != http.StatusNotFound {
			t.Fatalf("another organization: %d", r.Status)
		}
		evs, err := ts.Store.ReadStream(context.Background(), "session-"+strings.TrimPrefix(thread, "sessions/"), 1, 0)
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for _, e := range evs {
			if e.Type == answer.TypeFeedbackGiven {
				n++
			}
		}
		if n != 2 {
			t.Fatalf("%d feedback events", n)
		}
	})
	t.Run("feedback on a conversation's reply", func(t *testing.T) {
		conv := ts.create(t, "/api/v1/conversations/", `{"assistant_id":"`+asst["id"].(string)+`","customer_id":"cust-7","title":"Hours"}`)
		base := "/api/v1/conversations/" + conv["id"].(string) + "/messages/"
		_, d := ts.ask(t, "conversations/"+conv["id"].(string), "What are your business hours?")
		rid := d["reply"].(map[string]any)["id"].(string)
		r := ts.do(t, http.MethodPost, base+rid+"/feedback", ts.org, `{"rating":"dislike","comment":"too short"}`)
		if r.Status != http.StatusCreated || r.data(t)["rating"] != "dislike" || r.data(t)["message_id"] != rid {
			t.Fatalf("%d %s", r.Status, r.Body)
		}
		// A session's path does not reach a conversation's message.
		if r := ts.do(t, http.MethodPost, "/api/v1/"+thread+"/messages/"+rid+"/feedback", ts.org, `{"rating":"like"}`); r.Status != http.StatusNotFound {
			t.Fatalf("the conversation's reply through the session: %d %s", r.Status, r.Body)
		}
	})
}

func TestGermanAssistantAnswersInGerman(t *testing.T) {
	ts := newTestServer(t, withReplies())
	ts.startReplyWorker(t, answer.NewEmbedded())
	asst := ts.create(t, "/api/v1/assistants/", `{"name":"Hilfe-Bot","tone":"friendly","language":"de"}`)
	qa := ts.create(t, "/api/v1/knowledge/qa/", `{"question":"Wie setze ich mein Passwort zurück?","answer":"Gehe zu Einstellungen und klicke auf \"Passwort zurücksetzen\".","tags":["password","security"],"source":"manual"}`)
	ts.ingest(t, fetch.New(fetch.Config{}))
	ts.settled(t, ts.org, qa["id"].(string))
	sess := ts.create(t, "/api/v1/sessions/", `{"assistant_id":"`+asst["id"].(string)+`"}`)
	thread := "sessions/" + sess["id"].(string)
	_, d := ts.ask(t, thread, "Wie kann ich mein Passwort zurücksetzen?")
	if text, src := reply(t, d); !strings.Contains(text, "Einstellungen") || len(src) != 1 {
		t.Fatalf("%q %v", text, src)
	}
	_, d = ts.ask(t, thread, "Ich brauche Hilfe bei meiner Bestellung")
	if text, src := reply(t, d); !strings.Contains(text, "weiß ich leider noch nicht") || !strings.Contains(text, "Team") || len(src) != 0 {
		t.Fatalf("%q %v", text, src)
	}
}

// replyEvent is one Server-Sent Event.
type replyEvent struct {
	Event, ID string
	Data      map[string]any
}

func (ts *testServer) stream(t *testing.T, path, body string, headers ...string) []replyEvent {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, ts.URL+path, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "text/event-stream")
	req.Header.Set("X-API-Key", ts.org.ClientID)
	req.Header.Set("X-API-Secret", ts.org.Secret)
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("stream: %d %s", resp.StatusCode, b)
	}
	var out []replyEvent
	var cur replyEvent
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		switch {
		case line == "":
			if cur.Event != "" {
				out = append(out, cur)
			}
			cur = replyEvent{}
		case strings.HasPrefix(line, "event: "):
			cur.Event = strings.TrimPrefix(line, "event: ")
		case strings.HasPrefix(line, "id: "):
			cur.ID = strings.TrimPrefix(line, "id: ")
		case strings.HasPrefix(line, "data: "):
			if err := json.Unmarshal([]byte(strings.TrimPrefix(line, "data: ")), &cur.Data); err != nil {
				t.Fatalf("data %q: %v", line, err)
			}
		}
	}
	return out
}

func TestRepliesStreamAsServerSentEvents(t *testing.T) {
	ts := newTestServer(t, withReplies())
	ts.startReplyWorker(t, answer.NewEmbedded())
	asst := ts.create(t, "/api/v1/assistants/", `{"name":"Bot","language":"en"}`)
	qa := ts.create(t, "/api/v1/knowledge/qa/", `{"question":"What are your business hours?","answer":"We are open Monday to Friday, 9 AM to 6 PM EST."}`)
	ts.ingest(t, fetch.New(fetch.Config{}))
	ts.settled(t, ts.org, qa["id"].(string))
	conv := ts.create(t, "/api/v1/conversations/", `{"assistant_id":"`+asst["id"].(string)+`","customer_id":"user-456","title":"Order Support","locale":"en"}`)
	path := "/api/v1/conversations/" + conv["id"].(string) + "/messages"

	evs := ts.stream(t, path, `{"content":"What are your business hours?"}`)
	if len(evs) < 3 || evs[0].Event != "message.created" || evs[len(evs)-1].Event != "reply.completed" {
		t.Fatalf("events %+v", evs)
	}
	mid := evs[0].Data["id"].(string)
	var text strings.Builder
	for _, e := range evs[1 : len(evs)-1] {
		if e.Event != "reply.delta" || !strings.HasPrefix(e.ID, mid+":") {
			t.Fatalf("event %+v", e)
		}
		text.WriteString(e.Data["delta"].(string))
	}
	done := evs[len(evs)-1].Data
	content, sources := reply(t, done)
	if text.String() != content || content != "We are open Monday to Friday, 9 AM to 6 PM EST." || len(sources) != 1 {
		t.Fatalf("deltas %q, completed %q %v", text.String(), content, sources)
	}
	if evs[len(evs)-1].ID != fmt.Sprintf("%s:%d", mid, len([]rune(content))) {
		t.Fatalf("completed id %s", evs[len(evs)-1].ID)
	}

	// A client that lost the stream after 10 characters resumes: the rest, then completed; nothing new is posted.
	again := ts.stream(t, path, `{"content":"ignored"}`, "Last-Event-ID", mid+":10")
	if len(again) != 2 || again[0].Event != "reply.delta" || again[0].Data["delta"] != content[10:] || again[1].Event != "reply.completed" {
		t.Fatalf("resumed %+v", again)
	}
	items := ts.do(t, http.MethodGet, path, ts.org, "").json(t)["data"].([]any)
	if len(items) != 2 {
		t.Fatalf("%d messages after resuming", len(items))
	}
	if r := ts.do(t, http.MethodPost, path, ts.org, `{}`, "Accept", "text/event-stream", "Last-Event-ID", "nonsense"); r.Status != http.StatusUnprocessableEntity {
		t.Fatalf("bad Last-Event-ID: %d", r.Status)
	}
}

// fakeModel is an OpenAI-compatible server that streams a fixed answer and
// remembers the system prompts it got, or fails with status when set.
type fakeModel struct {
	mu      sync.Mutex
	prompts []string
	status  int
}

func (f *fakeModel) start(t *testing.T) string {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var body struct {
			Messages []struct{ Role, Content string } `json:"messages"`
		}
		_ = json.NewDecoder(r.Body).Decode(&body)
		f.mu.Lock()
		if len(body.Messages) > 0 {
			f.prompts = append(f.prompts, body.Messages[0].Content)
		}
		status := f.status
		f.mu.Unlock()
		if status != 0 {
			w.WriteHeader(status)
			_, _ = w.Write([]byte(`{"error":{"message":"overloaded"}}`))
			return
		}
		w.Header().Set("Content-Type", "text/event-stream")
		for _, p := range []string{"Hallo Alice! ", "Ich empfehle das UltraBook 14 [1]."} {
			c, _ := json.Marshal(map[string]any{"id": "c1", "object": "chat.completion.chunk", "created": 1, "model": "m",
				"choices": []any{map[string]any{"index": 0, "delta": map[string]any{"content": p}}}})
			fmt.Fprintf(w, "data: %s\n\n", c)
			w.(http.Flusher).Flush()
		}
		fmt.Fprint(w, "data: [DONE]\n\n")
	}))
	t.Cleanup(srv.Close)
	return srv.URL + "/v1"
}

func TestTraitsReachTheModelAndItsFailureFallsBack(t *testing.T) {
	ts := newTestServer(t, withReplies())
	model := &fakeModel{}
	url := model.start(t)
	ts.startReplyWorker(t, llm.New(llm.Config{BaseURL: url, APIKey: "k", Model: "m", Backoff: time.Millisecond, IdleTimeout: time.Second}, nil))
	asst := ts.create(t, "/api/v1/assistants/", `{"name":"Shopbot","tone":"friendly","language":"de"}`)
	qa := ts.create(t, "/api/v1/knowledge/qa/", `{"question":"Welchen Laptop empfehlt ihr?","answer":"Das UltraBook 14: leicht, 18 Stunden Akku."}`)
	ts.ingest(t, fetch.New(fetch.Config{}))
	ts.settled(t, ts.org, qa["id"].(string))
	ts.create(t, "/api/v1/contexts/", `{"user_reference":"user-123","traits":{"name":"Alice","purchase_history":["laptop-1","mouse-2"],"preferences":{"category":"electronics"}}}`)
	conv := ts.create(t, "/api/v1/conversations/", `{"assistant_id":"`+asst["id"].(string)+`","customer_id":"user-123","user_context_id":"user-123","title":"Product Recommendations"}`)
	thread := "conversations/" + conv["id"].(string)

	_, d := ts.ask(t, thread, "Welchen Laptop empfiehlst du?")
	text, sources := reply(t, d)
	if text != "Hallo Alice! Ich empfehle das UltraBook 14 [1]." || len(sources) != 1 {
		t.Fatalf("%q %v", text, sources)
	}
	model.mu.Lock()
	prompt := model.prompts[len(model.prompts)-1]
	model.mu.Unlock()
	for _, want := range []string{"- name: Alice", `["laptop-1","mouse-2"]`, "electronics", "UltraBook 14", "Always answer in German", "You are Shopbot"} {
		if !strings.Contains(prompt, want) {
			t.Errorf("prompt lacks %q:\n%s", want, prompt)
		}
	}

	model.mu.Lock()
	model.status = http.StatusServiceUnavailable
	model.mu.Unlock()
	_, d = ts.ask(t, thread, "Welchen Laptop empfiehlst du?")
	text, _ = reply(t, d)
	if !strings.Contains(text, "UltraBook 14") || strings.Contains(text, "Hallo Alice") {
		t.Fatalf("fallback %q", text)
	}
	// The trace in the reply's event says what happened.
	rid := d["reply"].(map[string]any)["id"].(string)
	evs, err := ts.Store.ReadStream(context.Background(), "conversation-"+conv["id"].(string), 1, 0)
	if err != nil {
		t.Fatal(err)
	}
	var tr answer.Trace
	for _, e := range evs {
		if e.ID.String() == rid && e.Type == message.TypePosted {
			var p message.Posted
			_ = json.Unmarshal(e.Data, &p)
			_ = json.Unmarshal(p.Trace, &tr)
		}
	}
	if tr.Engine != answer.EngineName || !strings.Contains(tr.Fallback, "HTTP 503") || tr.Attempts != 3 || len(tr.Candidates) == 0 {
		t.Fatalf("trace %+v", tr)
	}
}

// eventsRead counts the events read from each stream.
type eventsRead struct {
	es.Store
	mu sync.Mutex
	n  map[string]int
}

func (c *eventsRead) ReadStream(ctx context.Context, stream string, from uint64, limit int) ([]es.Event, error) {
	evs, err := c.Store.ReadStream(ctx, stream, from, limit)
	c.mu.Lock()
	c.n[stream] += len(evs)
	c.mu.Unlock()
	return evs, err
}

func (c *eventsRead) of(stream string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n[stream]
}

// Posting, waiting for the reply and resuming it read the thread's stream
// from the posted message on: the events read stay the same however long
// the thread grows (the thread's start, the message, its reply).
func TestReplyWaitReadsFromThePostedMessage(t *testing.T) {
	ts := newTestServer(t, withReplies())
	ts.startReplyWorker(t, answer.NewEmbedded())
	counted := &eventsRead{Store: ts.Store, n: map[string]int{}}
	srv := New(Deps{Store: counted, Pool: ts.Pool, Runtime: ts.Server.deps.Runtime, Replies: ts.Server.deps.Replies,
		Config: Config{RateLimitPerHour: 1_000_000, ReplyWait: 30 * time.Second}})
	hs := httptest.NewServer(srv.Handler())
	t.Cleanup(hs.Close)
	counting := &testServer{URL: hs.URL, Server: srv, Store: ts.Store, Pool: ts.Pool, org: ts.org}

	asst := ts.create(t, "/api/v1/assistants/", `{"name":"Bot","language":"en"}`)
	sess := ts.create(t, "/api/v1/sessions/", `{"assistant_id":"`+asst["id"].(string)+`"}`)
	path, stream := "/api/v1/sessions/"+sess["id"].(string)+"/messages", "session-"+sess["id"].(string)
	var first int
	for i := 0; i < 8; i++ {
		before := counted.of(stream)
		r := counting.do(t, http.MethodPost, path, ts.org, `{"content":"What are your opening hours?"}`)
		if r.Status != http.StatusCreated || r.data(t)["reply_status"] == "pending" {
			t.Fatalf("post %d: %d %s", i, r.Status, r.Body)
		}
		read := counted.of(stream) - before
		if i == 0 {
			first = read
		}
		if read > first || read > 3 {
			t.Fatalf("post %d read %d events of its stream, the first %d", i, read, first)
		}
	}
	evs := counting.stream(t, path, `{"content":"And on Saturdays?"}`)
	if len(evs) < 2 || evs[0].Event != "message.created" {
		t.Fatalf("events %+v", evs)
	}
	before := counted.of(stream)
	again := counting.stream(t, path, `{}`, "Last-Event-ID", evs[0].Data["id"].(string)+":10")
	if len(again) != 2 || again[1].Event != evs[len(evs)-1].Event {
		t.Fatalf("resumed %+v after %+v", again, evs)
	}
	if read := counted.of(stream) - before; read > 2 {
		t.Fatalf("resuming after 18 messages read %d events of the stream", read)
	}
}
