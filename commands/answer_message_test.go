package commands_test

import (
	"context"
	"encoding/json"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/companin/companin/adapters/eventstore/memory"
	"github.com/companin/companin/adapters/messaging"
	"github.com/companin/companin/adapters/postgres/pgtest"
	"github.com/companin/companin/commands"
	"github.com/companin/companin/domain/answer"
	"github.com/companin/companin/domain/assistant"
	"github.com/companin/companin/domain/es"
	"github.com/companin/companin/domain/message"
	"github.com/companin/companin/domain/thread"
	"github.com/google/uuid"
)

var hoursID = uuid.MustParse("11111111-2222-3333-4444-555555555555")

// knowledgeBase retrieves one Q&A pair for every question.
var knowledgeBase = commands.RetrieverFunc(func(ctx context.Context, org, asst uuid.UUID, q string, limit int) ([]answer.Passage, error) {
	return []answer.Passage{{KnowledgeID: hoursID.String(), Title: "Business hours", Kind: answer.QA, Score: 0.9,
		Question: "What are your business hours?", Text: "We are open Monday to Friday, 9 AM to 6 PM EST."}}, nil
})

// engine counts its calls, remembers the last request, and can hold answers back.
type engine struct {
	calls   atomic.Int32
	mu      sync.Mutex
	last    answer.Request
	entered chan struct{}   // receives on each call, if set
	release <-chan struct{} // each call waits for it, if set
	frozen  bool            // wait for release even when ctx ends, like a process that froze
	done    chan struct{}   // receives when a held-back call returns, if set
}

var embedded = answer.NewEmbedded()

func (e *engine) Answer(ctx context.Context, r answer.Request) (answer.Reply, error) {
	return e.AnswerStream(ctx, r, func(string) error { return nil })
}

func (e *engine) AnswerStream(ctx context.Context, r answer.Request, d func(string) error) (answer.Reply, error) {
	e.calls.Add(1)
	e.mu.Lock()
	e.last = r
	e.mu.Unlock()
	if e.entered != nil {
		e.entered <- struct{}{}
	}
	if e.release != nil && e.frozen {
		<-e.release
		defer func() { e.done <- struct{}{} }()
	} else if e.release != nil {
		select {
		case <-e.release:
		case <-ctx.Done():
			return answer.Reply{}, ctx.Err()
		}
	}
	return embedded.AnswerStream(ctx, r, d)
}

type chat struct {
	store     es.Store
	ctx       context.Context
	assistant uuid.UUID
	kind      thread.Kind
	id        uuid.UUID
}

func newSession(t *testing.T, store es.Store) chat {
	t.Helper()
	ctx := orgCtx(uuid.NewString())
	tone, lang := "friendly", "en"
	a, err := commands.New(commands.Deps{Store: store}).CreateAssistant.Handle(ctx, commands.CreateAssistant{Input: assistant.Input{Name: str("Ava"), Tone: &tone, Language: &lang}})
	if err != nil {
		t.Fatal(err)
	}
	s, err := commands.StartThreadHandler{Store: store}.Handle(ctx, commands.StartThread{Kind: thread.Session, AssistantID: a.ID})
	if err != nil {
		t.Fatal(err)
	}
	return chat{store: store, ctx: ctx, assistant: a.ID, kind: thread.Session, id: s.ID}
}

func (th chat) stream() string { return th.kind.Stream(th.id) }

// post posts a user message and returns its event, as the worker gets it.
func (th chat) post(t *testing.T, content string) es.Event {
	t.Helper()
	w, err := commands.PostMessageHandler{Store: th.store}.Handle(th.ctx, commands.PostMessage{Kind: th.kind, ThreadID: th.id, Content: content})
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range th.events(t) {
		if e.ID == w.ID {
			return e
		}
	}
	t.Fatal("posted message not in the stream")
	return es.Event{}
}

func (th chat) events(t *testing.T) []es.Event {
	t.Helper()
	evs, err := th.store.ReadStream(context.Background(), th.stream(), 1, 0)
	if err != nil {
		t.Fatal(err)
	}
	return evs
}

// replies returns the assistant messages and reply failures of the thread.
func (th chat) replies(t *testing.T) (posted []message.Posted, failed []answer.ReplyFailed) {
	t.Helper()
	for _, e := range th.events(t) {
		switch e.Type {
		case message.TypePosted:
			var p message.Posted
			if err := json.Unmarshal(e.Data, &p); err != nil {
				t.Fatal(err)
			}
			if p.Role == message.Assistant {
				if e.ID != p.MessageID {
					t.Fatalf("reply event id %s, message id %s", e.ID, p.MessageID)
				}
				posted = append(posted, p)
			}
		case answer.TypeReplyFailed:
			var f answer.ReplyFailed
			if err := json.Unmarshal(e.Data, &f); err != nil {
				t.Fatal(err)
			}
			failed = append(failed, f)
		}
	}
	return posted, failed
}

func TestReplyRedeliveredThreeTimesIsRecordedOnce(t *testing.T) {
	store := memory.New()
	th := newSession(t, store)
	user := th.post(t, "What are your business hours?")
	eng := &engine{}
	h := commands.AnswerMessageHandler{Store: store, Engine: eng, Retriever: knowledgeBase}
	for i := 0; i < 3; i++ {
		if err := h.Handle(context.Background(), user); err != nil {
			t.Fatal(err)
		}
	}
	replies, failed := th.replies(t)
	if len(replies) != 1 || len(failed) != 0 {
		t.Fatalf("%d replies, %d failures", len(replies), len(failed))
	}
	r := replies[0]
	var um message.Posted
	_ = json.Unmarshal(user.Data, &um)
	if r.MessageID != answer.ReplyID(um.MessageID) || r.ReplyTo == nil || *r.ReplyTo != um.MessageID {
		t.Fatalf("reply %s to %v, user message %s", r.MessageID, r.ReplyTo, um.MessageID)
	}
	if r.Content != "We are open Monday to Friday, 9 AM to 6 PM EST." {
		t.Fatalf("content %q", r.Content)
	}
	if len(r.Sources) != 1 || r.Sources[0].KnowledgeID != hoursID || r.Sources[0].Title != "Business hours" {
		t.Fatalf("sources %+v", r.Sources)
	}
	var tr answer.Trace
	if err := json.Unmarshal(r.Trace, &tr); err != nil {
		t.Fatal(err)
	}
	if tr.Engine != answer.EngineName || tr.Strategy != answer.StrategyQA || len(tr.Candidates) != 1 || !tr.Candidates[0].Used {
		t.Fatalf("trace %s", r.Trace)
	}
	if n := eng.calls.Load(); n != 1 {
		t.Fatalf("engine called %d times: redeliveries of an answered message must not ask again", n)
	}
	// The reply event carries who caused it.
	for _, e := range th.events(t) {
		if e.ID == r.MessageID && (e.Metadata.CausationID != user.ID.String() || e.Metadata.Actor != "system:reply-worker" ||
			e.Metadata.OrganizationID != user.Metadata.OrganizationID) {
			t.Fatalf("reply metadata %+v", e.Metadata)
		}
	}
	// The session takes the reply as a message of its own (its aggregate replays it).
	if _, err := (commands.PostMessageHandler{Store: store}).Handle(th.ctx, commands.PostMessage{Kind: th.kind, ThreadID: th.id, Content: "Thanks"}); err != nil {
		t.Fatal(err)
	}
}

func TestTwoWorkersRacingRecordOneReply(t *testing.T) {
	store := memory.New()
	th := newSession(t, store)
	user := th.post(t, "What are your business hours?")
	release := make(chan struct{})
	eng := &engine{entered: make(chan struct{}, 2), release: release}
	h := commands.AnswerMessageHandler{Store: store, Engine: eng, Retriever: knowledgeBase}
	errs := make(chan error, 2)
	for i := 0; i < 2; i++ {
		go func() { errs <- h.Handle(context.Background(), user) }()
	}
	<-eng.entered
	<-eng.entered // both are answering now
	close(release)
	for i := 0; i < 2; i++ {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	if replies, _ := th.replies(t); len(replies) != 1 {
		t.Fatalf("%d replies", len(replies))
	}
}

func TestReplyUsesPersonaHistoryAndTraits(t *testing.T) {
	store := memory.New()
	ctx := orgCtx(uuid.NewString())
	tone, lang, instr := "casual", "de", "Duze die Kunden."
	a, err := commands.New(commands.Deps{Store: store}).CreateAssistant.Handle(ctx, commands.CreateAssistant{Input: assistant.Input{
		Name: str("Shopbot"), Tone: &tone, Language: &lang, Instructions: &instr, DefaultTasks: &[]string{"recommend_products"}}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := (commands.SaveUserContextHandler{Store: store}).Handle(ctx, commands.SaveUserContext{UserReference: "user-123",
		Traits: map[string]any{"name": "Alice", "purchase_history": []any{"laptop-1"}}}); err != nil {
		t.Fatal(err)
	}
	c, err := commands.StartThreadHandler{Store: store}.Handle(ctx, commands.StartThread{Kind: thread.Conversation, AssistantID: a.ID, CustomerID: "user-123", UserContext: "user-123", Locale: "de"})
	if err != nil {
		t.Fatal(err)
	}
	th := chat{store: store, ctx: ctx, assistant: a.ID, kind: thread.Conversation, id: c.ID}
	eng := &engine{}
	h := commands.AnswerMessageHandler{Store: store, Engine: eng}
	if err := h.Handle(context.Background(), th.post(t, "Hallo")); err != nil {
		t.Fatal(err)
	}
	if err := h.Handle(context.Background(), th.post(t, "Welchen Laptop empfiehlst du?")); err != nil {
		t.Fatal(err)
	}
	eng.mu.Lock()
	req := eng.last
	eng.mu.Unlock()
	if req.Persona.Name != "Shopbot" || req.Persona.Tone != answer.Casual || req.Persona.Language != "de" ||
		req.Persona.Instructions != instr || len(req.Persona.DefaultTasks) != 1 || req.Locale != "de" {
		t.Fatalf("persona %+v locale %q", req.Persona, req.Locale)
	}
	if req.Traits["name"] != "Alice" {
		t.Fatalf("traits %v", req.Traits)
	}
	if len(req.History) != 2 || req.History[0].Content != "Hallo" || req.History[1].Role != "assistant" {
		t.Fatalf("history %+v", req.History)
	}
	replies, _ := th.replies(t)
	if len(replies) != 2 || replies[0].Content == "" {
		t.Fatalf("replies %+v", replies)
	}
}

func TestReplyFailsOnceWhenTheAssistantIsGone(t *testing.T) {
	store := memory.New()
	th := newSession(t, store)
	user := th.post(t, "Hello?")
	if _, err := commands.New(commands.Deps{Store: store}).DeleteAssistant.Handle(th.ctx, commands.DeleteAssistant{ID: th.assistant}); err != nil {
		t.Fatal(err)
	}
	h := commands.AnswerMessageHandler{Store: store, Engine: &engine{}}
	for i := 0; i < 2; i++ {
		if err := h.Handle(context.Background(), user); err != nil {
			t.Fatal(err)
		}
	}
	replies, failed := th.replies(t)
	if len(replies) != 0 || len(failed) != 1 || failed[0].Reason != answer.ReasonAssistantGone {
		t.Fatalf("replies %v failed %+v", replies, failed)
	}
}

// The worker under the real consumer runtime: two processes share it, and a
// process that dies while answering loses the job to the other one when its
// lease runs out.
func TestReplyWorkerSharedAndRecoveredAfterACrash(t *testing.T) {
	pool, store := pgtest.NewPool(t), memory.New()
	const lease = 800 * time.Millisecond
	opts := func(o ...messaging.Option) []messaging.Option {
		return append([]messaging.Option{messaging.WithLeadershipInterval(50 * time.Millisecond), messaging.WithLease(lease),
			messaging.WithJobBackoff(50*time.Millisecond, 200*time.Millisecond)}, o...)
	}
	// Process A hangs in its first answer, like a process that froze or died.
	hung := make(chan struct{})
	engA := &engine{entered: make(chan struct{}, 100), release: hung, frozen: true, done: make(chan struct{}, 1)}
	rtA := messaging.NewRuntime(store, pool, opts(messaging.WithWorkerConcurrency(1))...)
	rtA.AddWorker(commands.ReplyWorkerName, commands.ReplyWorkerFilter, commands.AnswerMessageHandler{Store: store, Engine: engA, Retriever: knowledgeBase}.Handle)
	run(t, rtA)

	th := newSession(t, store)
	first := th.post(t, "What are your business hours?")
	select {
	case <-engA.entered:
	case <-time.After(30 * time.Second):
		t.Fatal("A never took the message")
	}
	// A is frozen with the job leased: B and C must wait for the lease to run out.

	engB := &engine{}
	rtB := messaging.NewRuntime(store, pool, opts(messaging.WithWorkerConcurrency(2))...)
	rtB.AddWorker(commands.ReplyWorkerName, commands.ReplyWorkerFilter, commands.AnswerMessageHandler{Store: store, Engine: engB, Retriever: knowledgeBase}.Handle)
	rtC := messaging.NewRuntime(store, pool, opts(messaging.WithWorkerConcurrency(2))...)
	rtC.AddWorker(commands.ReplyWorkerName, commands.ReplyWorkerFilter, commands.AnswerMessageHandler{Store: store, Engine: engB, Retriever: knowledgeBase}.Handle)
	run(t, rtB)
	run(t, rtC)

	// More sessions, answered by B and C together.
	threads := []chat{th}
	for i := 0; i < 4; i++ {
		s := newSession(t, store)
		s.post(t, "What are your business hours?")
		s.post(t, "When are you open on Monday?")
		threads = append(threads, s)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		total := 0
		for _, s := range threads {
			r, _ := s.replies(t)
			total += len(r)
		}
		if total == 9 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of 9 replies", total)
		}
		time.Sleep(20 * time.Millisecond)
	}
	// A wakes up and finishes its stale answer: it must not be recorded twice.
	close(hung)
	select {
	case <-engA.done:
	case <-time.After(10 * time.Second):
		t.Fatal("A never finished")
	}
	time.Sleep(2 * lease) // a duplicate, if any, would show now
	for _, s := range threads {
		r, _ := s.replies(t)
		want := 2
		if s.id == th.id {
			want = 1
		}
		if len(r) != want {
			t.Fatalf("thread %s: %d replies, want %d", s.id, len(r), want)
		}
	}
	if r, _ := th.replies(t); *r[0].ReplyTo != messageID(t, first) {
		t.Fatal("the crashed message's reply answers another message")
	}
}

func messageID(t *testing.T, e es.Event) uuid.UUID {
	var p message.Posted
	if err := json.Unmarshal(e.Data, &p); err != nil {
		t.Fatal(err)
	}
	return p.MessageID
}

func run(t *testing.T, rt *messaging.Runtime) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = rt.Run(ctx)
	}()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			select {
			case <-done:
			case <-time.After(30 * time.Second):
				t.Error("runtime did not stop")
			}
		})
	}
	t.Cleanup(stop)
	return stop
}

// readCounter counts what is read from and appended to each stream.
type readCounter struct {
	es.Store
	mu      sync.Mutex
	read    map[string]int // events read
	appends map[string]int
}

func (c *readCounter) ReadStream(ctx context.Context, stream string, from uint64, limit int) ([]es.Event, error) {
	evs, err := c.Store.ReadStream(ctx, stream, from, limit)
	c.mu.Lock()
	c.read[stream] += len(evs)
	c.mu.Unlock()
	return evs, err
}

func (c *readCounter) Append(ctx context.Context, stream string, expected es.ExpectedVersion, events ...es.NewEvent) (es.AppendResult, error) {
	c.mu.Lock()
	c.appends[stream]++
	c.mu.Unlock()
	return c.Store.Append(ctx, stream, expected, events...)
}

func (c *readCounter) reset() {
	c.mu.Lock()
	c.read, c.appends = map[string]int{}, map[string]int{}
	c.mu.Unlock()
}

// The worker loads the thread once (each of its events read once), decides,
// and appends once, however long the thread; a redelivery reads it once
// more and appends nothing.
func TestReplyLoadsTheThreadOnceAndAppendsOnce(t *testing.T) {
	store := &readCounter{Store: memory.New()}
	store.reset()
	th := newSession(t, store)
	h := commands.AnswerMessageHandler{Store: store, Engine: &engine{}, Retriever: knowledgeBase}
	for i := 0; i < 5; i++ {
		user := th.post(t, "What are your business hours?")
		length := len(th.events(t))
		store.reset()
		if err := h.Handle(context.Background(), user); err != nil {
			t.Fatal(err)
		}
		if got := store.read[th.stream()]; got != length {
			t.Fatalf("message %d: read %d events of a stream of %d", i, got, length)
		}
		if got := store.appends[th.stream()]; got != 1 {
			t.Fatalf("message %d: %d appends", i, got)
		}
		store.reset()
		if err := h.Handle(context.Background(), user); err != nil {
			t.Fatal(err)
		}
		if got := store.appends[th.stream()]; got != 0 || store.read[th.stream()] != length+1 {
			t.Fatalf("redelivery of message %d: %d appends, %d events read", i, got, store.read[th.stream()])
		}
	}
	if replies, _ := th.replies(t); len(replies) != 5 {
		t.Fatalf("%d replies", len(replies))
	}
}

// A message posted while the engine answers: the worker reads only what
// came since it loaded the thread, and appends the reply after it.
func TestReplyAppendsAfterWhatWasPostedMeanwhile(t *testing.T) {
	store := &readCounter{Store: memory.New()}
	store.reset()
	th := newSession(t, store)
	th.store = store.Store // the test's own reads are not counted
	first := th.post(t, "What are your business hours?")
	length := len(th.events(t))
	release := make(chan struct{})
	eng := &engine{entered: make(chan struct{}, 1), release: release}
	h := commands.AnswerMessageHandler{Store: store, Engine: eng, Retriever: knowledgeBase}
	done := make(chan error, 1)
	store.reset()
	go func() { done <- h.Handle(context.Background(), first) }()
	<-eng.entered
	th.post(t, "Hello?")
	close(release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	evs := th.events(t)
	var last message.Posted
	if err := json.Unmarshal(evs[len(evs)-1].Data, &last); err != nil {
		t.Fatal(err)
	}
	if replies, _ := th.replies(t); len(replies) != 1 || last.ReplyTo == nil || *last.ReplyTo != messageID(t, first) {
		t.Fatalf("%d replies, the last event %+v", len(replies), last)
	}
	if got := store.read[th.stream()]; got != length+1 {
		t.Fatalf("read %d events: the stream of %d, then %d", got, length, got-length)
	}
	if got := store.appends[th.stream()]; got != 2 {
		t.Fatalf("%d appends, want the one refused and the one after the new message", got)
	}
}
