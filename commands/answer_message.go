package commands

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/companin/companin/domain"
	"github.com/companin/companin/domain/answer"
	"github.com/companin/companin/domain/assistant"
	"github.com/companin/companin/domain/es"
	"github.com/companin/companin/domain/message"
	"github.com/companin/companin/domain/thread"
	"github.com/google/uuid"
)

// ReplyWorkerName is the reply worker's consumer name: never rename it.
const ReplyWorkerName = "reply-worker"

// ReplyWorkerFilter selects the events the reply worker is handed: every
// MessagePosted (it skips the assistant's own).
var ReplyWorkerFilter = es.Filter{Types: []string{message.TypePosted}}

// Retriever finds the passages of an organization's knowledge, narrowed to
// an assistant, that may answer a question, best first.
type Retriever interface {
	Retrieve(ctx context.Context, organizationID, assistantID uuid.UUID, question string, limit int) ([]answer.Passage, error)
}

// RetrieverFunc lets a function be a Retriever.
type RetrieverFunc func(ctx context.Context, organizationID, assistantID uuid.UUID, question string, limit int) ([]answer.Passage, error)

// Retrieve implements Retriever.
func (f RetrieverFunc) Retrieve(ctx context.Context, org, asst uuid.UUID, q string, limit int) ([]answer.Passage, error) {
	return f(ctx, org, asst, q, limit)
}

// ReplyNotifier tells waiting clients, in any process, how a reply grows
// (Delta) and that it was recorded (Done). Best effort: the reply's event is
// the truth, a lost notification only delays a waiter's wake-up.
type ReplyNotifier interface {
	Delta(ctx context.Context, stream string, replyID uuid.UUID, text string)
	Done(ctx context.Context, stream string, replyID uuid.UUID)
}

// AnswerMessageHandler is the reply worker: it answers a user's message with
// the assistant's reply, appended to the same stream. Delivery is
// at-least-once; the reply's event id derives from the user message's id
// (answer.ReplyID), so a redelivery, or two workers racing, record one reply.
// The engine runs outside any database transaction.
type AnswerMessageHandler struct {
	Store     es.Store
	Engine    answer.StreamingEngine
	Retriever Retriever // nil: answer without knowledge
	Notifier  ReplyNotifier
	// Passages is how many retrieved passages the engine gets (0: 8).
	Passages int
	// HistoryTurns is how many earlier messages the engine sees (0: 10).
	HistoryTurns int
	Now          func() time.Time
}

// Handle answers the user message recorded by e; other events are ignored.
// It loads the thread once, lets it say whether the message still waits for
// its reply (and with what history), answers, and appends the reply (or
// its ReplyFailed) once. It returns nil once the message has its reply or
// its ReplyFailed, and an error (to be retried) when it could not tell.
func (h AnswerMessageHandler) Handle(ctx context.Context, e es.Event) error {
	kind, threadID, ok := thread.ParseStream(e.Stream)
	if e.Type != message.TypePosted || !ok {
		return nil
	}
	// Replies are MessagePosted too: skip them without loading the thread.
	de, err := thread.Decode(e.Type, e.Data)
	if err != nil {
		return fmt.Errorf("reply to %s: %w", e.ID, err)
	}
	if p, _ := de.(message.Posted); p.Role != message.User {
		return nil
	}
	ctx = es.WithMetadata(ctx, es.Metadata{
		OrganizationID: e.Metadata.OrganizationID,
		Actor:          "system:" + ReplyWorkerName,
		RequestID:      e.Metadata.RequestID,
		CorrelationID:  firstNonEmpty(e.Metadata.CorrelationID, e.ID.String()),
		CausationID:    e.ID.String(),
	})
	l, err := threads(h.Store, kind).Load(ctx, threadID)
	if err != nil {
		return fmt.Errorf("reply to %s: %w", e.ID, err)
	}
	t := l.Aggregate
	q, ok := t.Question(de.(message.Posted).MessageID)
	if !ok {
		return nil // answered (or failed) before
	}
	fail := func(reason, detail string) error {
		t.FailReply(q, reason, detail, Clock(h.Now))
		return h.save(ctx, t, l.Version, q)
	}
	a, err := h.loadAssistant(ctx, t.AssistantID())
	if err != nil {
		return err
	}
	if a == nil {
		return fail(answer.ReasonAssistantGone, "the assistant was deleted")
	}
	var traits map[string]any
	if t.Person() != uuid.Nil {
		person, err := loadPerson(ctx, h.Store, t.Person())
		if err != nil {
			return fmt.Errorf("reply: load user context %s: %w", t.Person(), err)
		}
		if person == nil || !person.Exists() {
			return fail(answer.ReasonPersonErased, "the user context of this conversation was erased")
		}
		traits = person.Traits()
	}
	if strings.TrimSpace(q.Content) == "" {
		return fail(answer.ReasonEmptyQuestion, "the message has no readable content")
	}
	s := a.Settings()
	req := answer.Request{
		Question: q.Content,
		Persona: answer.Persona{Name: s.Name, Tone: answer.Tone(strings.ToLower(s.Tone)), Language: s.Language,
			DefaultTasks: s.DefaultTasks, Instructions: s.Instructions},
		Locale:  t.Locale(),
		History: lastTurns(q.History, orDefault(h.HistoryTurns, 10)),
		Traits:  traits,
	}
	retrievalStart := time.Now()
	if query := retrievalQuery(q.Content, q.History); h.Retriever != nil && len(answer.Terms(query)) > 0 { // "Hello!" needs no search
		org, _ := uuid.Parse(e.Metadata.OrganizationID)
		req.Passages, err = h.Retriever.Retrieve(ctx, org, t.AssistantID(), query, orDefault(h.Passages, 8))
		if err != nil {
			return fmt.Errorf("reply to %s: retrieve: %w", q.MessageID, err)
		}
	}
	retrieval := time.Since(retrievalStart)

	// No transaction is open here: the engine may take seconds.
	reply, err := h.Engine.AnswerStream(ctx, req, func(d string) error {
		if h.Notifier != nil {
			h.Notifier.Delta(ctx, e.Stream, q.ReplyID, d)
		}
		return nil
	})
	if errors.Is(err, answer.ErrEmptyQuestion) {
		return fail(answer.ReasonEmptyQuestion, "the message has no question")
	}
	if err != nil {
		return fmt.Errorf("reply to %s: %w", q.MessageID, err)
	}
	reply.Trace.RetrievalMS = float64(retrieval.Microseconds()) / 1000
	r, err := replyOf(reply)
	if err != nil {
		return fmt.Errorf("reply to %s: %w", q.MessageID, err)
	}
	t.Answer(q, r, Clock(h.Now))
	return h.save(ctx, t, l.Version, q)
}

// loadAssistant returns nil when the assistant no longer exists.
func (h AnswerMessageHandler) loadAssistant(ctx context.Context, id uuid.UUID) (*assistant.Assistant, error) {
	l, err := assistants(h.Store).Load(ctx, id)
	if errors.Is(err, domain.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reply: load assistant %s: %w", id, err)
	}
	if !l.Aggregate.Exists() {
		return nil, nil
	}
	return l.Aggregate, nil
}

// replyOf turns the engine's reply into the thread's.
func replyOf(r answer.Reply) (thread.Reply, error) {
	body, err := message.ParseContent(r.Text)
	if err != nil {
		return thread.Reply{}, err
	}
	trace, err := json.Marshal(r.Trace)
	if err != nil {
		return thread.Reply{}, fmt.Errorf("encode trace: %w", err)
	}
	sources := make([]message.Source, 0, len(r.Sources))
	for _, s := range r.Sources {
		id, err := uuid.Parse(s.KnowledgeID)
		if err != nil {
			continue
		}
		sources = append(sources, message.Source{KnowledgeID: id, Title: s.Title, Snippet: s.Snippet, Score: s.Score})
	}
	return thread.Reply{Content: body, Sources: sources, Trace: trace}, nil
}

// replyConflicts bounds how often save reads what was appended meanwhile
// and tries again before it gives up (the runtime then redelivers).
const replyConflicts = 10

// save appends the reply or failure the thread recorded, expecting the
// version the thread was loaded at. When the stream moved on while the
// engine answered (a message posted, another worker's reply), it reads only
// the events since, and stops if they settle q; else it appends after them.
// The reply's event id is q.ReplyID besides, so no store keeps two.
func (h AnswerMessageHandler) save(ctx context.Context, t *thread.Thread, version uint64, q thread.Question) error {
	stream := t.Kind().Stream(t.ID())
	for attempt := 1; ; attempt++ {
		_, err := Append(ctx, h.Store, stream, es.Exact(version), t.Changes())
		if errors.Is(err, es.ErrWrongExpectedVersion) && attempt < replyConflicts {
			var settled bool
			if settled, version, err = h.settledSince(ctx, stream, version, q); err != nil || settled {
				return err
			}
			continue
		}
		if errors.Is(err, es.ErrDuplicateEventID) {
			return nil // settled by another worker
		}
		if err != nil {
			return fmt.Errorf("reply to %s: %w", q.MessageID, err)
		}
		if h.Notifier != nil {
			h.Notifier.Done(ctx, stream, q.ReplyID)
		}
		return nil
	}
}

// settledSince reads the events of stream after version and tells whether
// one settles q, and the version of the last one.
func (h AnswerMessageHandler) settledSince(ctx context.Context, stream string, version uint64, q thread.Question) (bool, uint64, error) {
	events, err := h.Store.ReadStream(ctx, stream, version+1, 0)
	if err != nil {
		return false, version, fmt.Errorf("reply to %s: read %s: %w", q.MessageID, stream, err)
	}
	for _, e := range events {
		de, err := thread.Decode(e.Type, e.Data)
		if err != nil {
			return false, version, fmt.Errorf("reply to %s: %w", q.MessageID, err)
		}
		if q.SettledBy(de) {
			return true, version, nil
		}
		version = e.Version
	}
	return false, version, nil
}

// retrievalQuery is the question, with the previous user message added when
// the question is a short follow-up ("and on Saturdays?").
func retrievalQuery(question string, history []answer.Turn) string {
	if len(answer.Terms(question)) > 2 {
		return question
	}
	for i := len(history) - 1; i >= 0; i-- {
		if history[i].Role == string(message.User) && strings.TrimSpace(history[i].Content) != "" {
			return question + " " + history[i].Content
		}
	}
	return question
}

func lastTurns(h []answer.Turn, n int) []answer.Turn {
	var out []answer.Turn
	for _, t := range h {
		if strings.TrimSpace(t.Content) != "" {
			out = append(out, t)
		}
	}
	if len(out) > n {
		out = out[len(out)-n:]
	}
	return out
}

func orDefault(n, d int) int {
	if n <= 0 {
		return d
	}
	return n
}

func firstNonEmpty(a, b string) string {
	if a != "" {
		return a
	}
	return b
}
