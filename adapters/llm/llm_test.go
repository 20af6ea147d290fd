package llm

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/companin/companin/domain/answer"
)

// fakeModel is an OpenAI-compatible chat completions server. reply decides,
// per call (1, 2, ...), what to do with the request.
type fakeModel struct {
	calls  atomic.Int32
	bodies chan map[string]any
	reply  func(n int, w http.ResponseWriter, r *http.Request)
}

func newFakeModel(t *testing.T, reply func(n int, w http.ResponseWriter, r *http.Request)) (*fakeModel, *httptest.Server) {
	f := &fakeModel{bodies: make(chan map[string]any, 10), reply: reply}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/v1/chat/completions" || r.Method != http.MethodPost {
			http.NotFound(w, r)
			return
		}
		if r.Header.Get("Authorization") != "Bearer sk-test" {
			http.Error(w, `{"error":{"message":"bad key"}}`, http.StatusUnauthorized)
			return
		}
		var body map[string]any
		b, _ := io.ReadAll(r.Body)
		_ = json.Unmarshal(b, &body)
		select {
		case f.bodies <- body:
		default:
		}
		f.reply(int(f.calls.Add(1)), w, r)
	}))
	t.Cleanup(srv.Close)
	return f, srv
}

// streamChunks answers like the real API with stream=true: SSE chunks, then [DONE].
func streamChunks(w http.ResponseWriter, parts ...string) {
	w.Header().Set("Content-Type", "text/event-stream")
	fl := w.(http.Flusher)
	for i, p := range parts {
		c, _ := json.Marshal(map[string]any{
			"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1, "model": "test-model",
			"choices": []any{map[string]any{"index": 0, "delta": map[string]any{"role": "assistant", "content": p}, "finish_reason": nil}},
		})
		fmt.Fprintf(w, "data: %s\n\n", c)
		fl.Flush()
		if i == 0 {
			time.Sleep(5 * time.Millisecond)
		}
	}
	last, _ := json.Marshal(map[string]any{
		"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1, "model": "test-model",
		"choices": []any{map[string]any{"index": 0, "delta": map[string]any{}, "finish_reason": "stop"}},
	})
	fmt.Fprintf(w, "data: %s\n\ndata: [DONE]\n\n", last)
	fl.Flush()
}

func serverError(status int) func(int, http.ResponseWriter, *http.Request) {
	return func(_ int, w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_, _ = w.Write([]byte(`{"error":{"message":"boom","type":"server_error"}}`))
	}
}

var request = answer.Request{
	Question: "Welchen Laptop empfiehlst du?",
	Persona: answer.Persona{Name: "Shopbot", Tone: answer.Friendly, Language: "de",
		DefaultTasks: []string{"answer_questions", "recommend_products"}, Instructions: "Always mention free shipping."},
	History: []answer.Turn{{Role: "user", Content: "Hallo"}, {Role: "assistant", Content: "Hallo! Wie kann ich helfen?"}},
	Traits:  map[string]any{"name": "Alice", "purchase_history": []any{"laptop-1", "mouse-2"}, "preferences": map[string]any{"category": "electronics"}},
	Passages: []answer.Passage{
		{KnowledgeID: "k-ultra", Title: "Laptop-Katalog", Kind: answer.Chunk, Score: 0.8, Text: "Das UltraBook 14 ist unser leichtester Laptop mit 18 Stunden Akkulaufzeit."},
		{KnowledgeID: "k-ship", Title: "Versand", Kind: answer.QA, Score: 0.4, Question: "Ist der Versand kostenlos?", Text: "Ja, ab 50 Euro."},
	},
}

func testConfig(url string) Config {
	return Config{BaseURL: url + "/v1", APIKey: "sk-test", Model: "test-model", Backoff: time.Millisecond,
		Timeout: 2 * time.Second, IdleTimeout: 300 * time.Millisecond}
}

func TestStreamsAGroundedAnswer(t *testing.T) {
	f, srv := newFakeModel(t, func(_ int, w http.ResponseWriter, _ *http.Request) {
		streamChunks(w, "Hallo Alice! ", "Ich empfehle das UltraBook 14 ", "[1].")
	})
	var deltas []string
	r, err := New(testConfig(srv.URL), nil).AnswerStream(context.Background(), request, func(d string) error {
		deltas = append(deltas, d)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if r.Text != "Hallo Alice! Ich empfehle das UltraBook 14 [1]." || strings.Join(deltas, "") != r.Text || len(deltas) != 3 {
		t.Fatalf("text %q deltas %q", r.Text, deltas)
	}
	if len(r.Sources) != 1 || r.Sources[0].KnowledgeID != "k-ultra" || !strings.Contains(r.Sources[0].Snippet, "UltraBook") {
		t.Fatalf("sources %+v", r.Sources)
	}
	if r.Trace.Engine != EngineName || r.Trace.Model != "test-model" || r.Trace.Strategy != answer.StrategyGenerated ||
		len(r.Trace.Candidates) != 2 || !r.Trace.Candidates[0].Used || r.Trace.Candidates[1].Used || r.Trace.Fallback != "" {
		t.Fatalf("trace %+v", r.Trace)
	}
	body := <-f.bodies
	if body["model"] != "test-model" || body["stream"] != true {
		t.Fatalf("body %v", body)
	}
	msgs := body["messages"].([]any)
	if len(msgs) != 4 {
		t.Fatalf("%d messages: %v", len(msgs), msgs)
	}
	system := msgs[0].(map[string]any)["content"].(string)
	for _, want := range []string{
		"You are Shopbot", "Tone: friendly", "Always answer in German", "recommend_products", "Always mention free shipping.",
		"- name: Alice", `- purchase_history: ["laptop-1","mouse-2"]`, `- preferences: {"category":"electronics"}`,
		"[1] Laptop-Katalog", "18 Stunden Akkulaufzeit", "[2] Versand (FAQ)", "Q: Ist der Versand kostenlos?",
		"Answer only from the knowledge passages", "say honestly that you do not know",
	} {
		if !strings.Contains(system, want) {
			t.Errorf("system prompt lacks %q:\n%s", want, system)
		}
	}
	roles := []string{}
	for _, m := range msgs {
		roles = append(roles, m.(map[string]any)["role"].(string))
	}
	last := msgs[3].(map[string]any)["content"]
	if strings.Join(roles, ",") != "system,user,assistant,user" || last != request.Question {
		t.Fatalf("roles %v, last %v", roles, last)
	}
}

func TestRetriesThenAnswers(t *testing.T) {
	f, srv := newFakeModel(t, func(n int, w http.ResponseWriter, r *http.Request) {
		if n < 3 {
			serverError(http.StatusServiceUnavailable)(n, w, r)
			return
		}
		streamChunks(w, "Das UltraBook 14.")
	})
	r, err := New(testConfig(srv.URL), nil).Answer(context.Background(), request)
	if err != nil {
		t.Fatal(err)
	}
	if r.Trace.Engine != EngineName || r.Trace.Attempts != 3 || f.calls.Load() != 3 {
		t.Fatalf("trace %+v after %d calls", r.Trace, f.calls.Load())
	}
	if len(r.Sources) != 1 || r.Sources[0].KnowledgeID != "k-ultra" {
		t.Fatalf("sources without citation markers: %+v", r.Sources)
	}
}

func TestFallsBackToTheEmbeddedEngine(t *testing.T) {
	hang := func(_ int, w http.ResponseWriter, r *http.Request) { <-r.Context().Done() }
	stall := func(_ int, w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		fmt.Fprint(w, `data: {"id":"c","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"content":"Das"}}]}`+"\n\n")
		w.(http.Flusher).Flush()
		<-r.Context().Done()
	}
	tests := []struct {
		name      string
		handler   func(int, http.ResponseWriter, *http.Request)
		key       string
		wantCalls int32
		reason    string
	}{
		{"5xx every time", serverError(http.StatusInternalServerError), "sk-test", 3, "HTTP 500"},
		{"no first token in time", hang, "sk-test", 3, "timeout"},
		{"stream stalls midway: no repeat", stall, "sk-test", 1, "timeout"},
		{"wrong key: no retry", serverError(http.StatusInternalServerError), "sk-wrong", 0, "HTTP 401"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, srv := newFakeModel(t, tt.handler)
			cfg := testConfig(srv.URL)
			cfg.APIKey = tt.key
			start := time.Now()
			var streamed strings.Builder
			r, err := New(cfg, nil).AnswerStream(context.Background(), request, func(d string) error {
				streamed.WriteString(d)
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			if r.Trace.Engine != answer.EngineName || !strings.Contains(r.Trace.Fallback, tt.reason) {
				t.Fatalf("trace %+v", r.Trace)
			}
			if !strings.Contains(r.Text, "UltraBook 14") || len(r.Sources) != 1 || !strings.HasSuffix(streamed.String(), r.Text) {
				t.Fatalf("fallback reply %q %+v, streamed %q", r.Text, r.Sources, streamed.String())
			}
			if f.calls.Load() != tt.wantCalls {
				t.Fatalf("%d calls, want %d", f.calls.Load(), tt.wantCalls)
			}
			if d := time.Since(start); d > 3*time.Second {
				t.Fatalf("took %s", d)
			}
		})
	}
}

func TestFallsBackWhenNothingListens(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	url := srv.URL
	srv.Close()
	r, err := New(testConfig(url), nil).Answer(context.Background(), request)
	if err != nil {
		t.Fatal(err)
	}
	if r.Trace.Engine != answer.EngineName || r.Trace.Attempts != 3 || r.Trace.Fallback == "" {
		t.Fatalf("trace %+v", r.Trace)
	}
}

func TestCallerErrorsAreNotHidden(t *testing.T) {
	_, srv := newFakeModel(t, func(_ int, w http.ResponseWriter, _ *http.Request) { streamChunks(w, "a", "b") })
	gone := errors.New("client gone")
	if _, err := New(testConfig(srv.URL), nil).AnswerStream(context.Background(), request, func(string) error { return gone }); !errors.Is(err, gone) {
		t.Fatalf("err %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := New(testConfig(srv.URL), nil).Answer(ctx, request); !errors.Is(err, context.Canceled) {
		t.Fatalf("err %v", err)
	}
}

// The passage holding the answer may be ranked low by retrieval; the
// prompt still carries it, because the embedded engine would quote it.
func TestPromptCarriesThePassagesTheEmbeddedEngineWouldQuote(t *testing.T) {
	f, srv := newFakeModel(t, func(_ int, w http.ResponseWriter, _ *http.Request) {
		streamChunks(w, "Run `git push heroku master` [3].")
	})
	req := answer.Request{Question: "What command pushes the application to Heroku?", Persona: answer.Persona{Language: "en"}}
	// Six passages that share the question's words but do not answer it
	// (text from the same manual), then the one that does.
	for i, text := range []string{
		"Heroku makes deploying applications easy. It is a perfect platform for small to medium size web applications.",
		"I am choosing to deploy our web application to Heroku for the sake of this tutorial.",
		"Application management and configuration is done through the Heroku toolbelt, a free command line tool.",
		"To make sure the application from our last chapter will work on Heroku, we will need to make a few changes.",
		"Heroku gives us a PORT environment variable and expects our web application to bind to it.",
		"We need a couple small configuration files to tell Heroku how it should run our application.",
		"Once all these things in place, Heroku makes it easy to deploy.\n\nPush it to Heroku and watch your application be deployed!\n\ngit push heroku master\n\nView your application in your browser:\n\nheroku open",
	} {
		req.Passages = append(req.Passages, answer.Passage{KnowledgeID: fmt.Sprintf("k-%d", i+1), Title: "Building Web Apps with Go",
			Kind: answer.Chunk, Page: 11, Text: text, Score: 0.9 - float64(i)/20})
	}
	cfg := testConfig(srv.URL)
	cfg.MaxPassages = 3
	r, err := New(cfg, nil).Answer(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	body := <-f.bodies
	system := body["messages"].([]any)[0].(map[string]any)["content"].(string)
	if !strings.Contains(system, "git push heroku master") || !strings.Contains(system, "Building Web Apps with Go, page 11") {
		t.Fatalf("the prompt lacks the answering passage:\n%s", system)
	}
	if strings.Count(system, "\n[") != 3 {
		t.Fatalf("the prompt should carry 3 passages:\n%s", system)
	}
	// In the prompt it is passage [3]: retrieval's order is kept.
	if len(r.Sources) != 1 || r.Sources[0].KnowledgeID != "k-7" {
		t.Fatalf("sources %+v", r.Sources)
	}
}
