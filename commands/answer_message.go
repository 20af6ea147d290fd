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
	"github.com/companin/companin/domain/conversation"
	"github.com/companin/companin/domain/es"
	"github.com/companin/companin/domain/message"
	"github.com/companin/companin/domain/session"
	"github.com/companin/companin/domain/usercontext"
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
// It returns nil once the message has its reply or its ReplyFailed, and an
// error (to be retried) when it could not tell.
func (h AnswerMessageHandler) Handle(ctx context.Context, e es.Event) error {
	if e.Type != message.TypePosted {
		return nil
	}
	var posted message.Posted
	if err := json.Unmarshal(e.Data, &posted); err != nil {
		return fmt.Errorf("reply to %s: decode: %w", e.ID, err)
	}
	if posted.Role != message.User {
		return nil
	}
	kind, threadID, ok := threadOf(e.Stream)
	if !ok {
		return nil
	}
	replyID := answer.ReplyID(posted.MessageID)
	ctx = es.WithMetadata(ctx, es.Metadata{
		OrganizationID: e.Metadata.OrganizationID,
		Actor:          "system:" + ReplyWorkerName,
		RequestID:      e.Metadata.RequestID,
		CorrelationID:  firstNonEmpty(e.Metadata.CorrelationID, e.ID.String()),
		CausationID:    e.ID.String(),
	})
	th, err := h.loadThread(ctx, e, replyID)
	if err != nil {
		return err
	}
	if th.answered {
		return nil
	}
	fail := func(reason, detail string) error {
		return h.fail(ctx, e.Stream, posted.MessageID, replyID, reason, detail)
	}
	a, err := h.loadAssistant(ctx, th.assistantID)
	if err != nil {
		return err
	}
	if a == nil {
		return fail(answer.ReasonAssistantGone, "the assistant was deleted")
	}
	traits, erased, err := h.traits(ctx, th.userContextID)
	if err != nil {
		return err
	}
	if erased {
		return fail(answer.ReasonPersonErased, "the user context of this conversation was erased")
	}
	if strings.TrimSpace(posted.Content) == "" {
		return fail(answer.ReasonEmptyQuestion, "the message has no readable content")
	}
	s := a.Settings()
	req := answer.Request{
		Question: posted.Content,
		Persona: answer.Persona{Name: s.Name, Tone: answer.Tone(strings.ToLower(s.Tone)), Language: s.Language,
			DefaultTasks: s.DefaultTasks, Instructions: s.Instructions},
		Locale:  th.locale,
		History: lastTurns(th.history, orDefault(h.HistoryTurns, 10)),
		Traits:  traits,
	}
	retrievalStart := time.Now()
	if h.Retriever != nil && len(answer.Terms(retrievalQuery(posted.Content, th.history))) > 0 { // "Hello!" needs no search
		org, _ := uuid.Parse(e.Metadata.OrganizationID)
		req.Passages, err = h.Retriever.Retrieve(ctx, org, th.assistantID, retrievalQuery(posted.Content, th.history), orDefault(h.Passages, 8))
		if err != nil {
			return fmt.Errorf("reply to %s: retrieve: %w", posted.MessageID, err)
		}
	}
	retrieval := time.Since(retrievalStart)

	// No transaction is open here: the engine may take seconds.
	reply, err := h.Engine.AnswerStream(ctx, req, func(d string) error {
		if h.Notifier != nil {
			h.Notifier.Delta(ctx, e.Stream, replyID, d)
		}
		return nil
	})
	if errors.Is(err, answer.ErrEmptyQuestion) {
		return fail(answer.ReasonEmptyQuestion, "the message has no question")
	}
	if err != nil {
		return fmt.Errorf("reply to %s: %w", posted.MessageID, err)
	}
	reply.Trace.RetrievalMS = float64(retrieval.Microseconds()) / 1000
	if err := h.record(ctx, kind, threadID, posted.MessageID, replyID, reply); err != nil {
		return err
	}
	if h.Notifier != nil {
		h.Notifier.Done(ctx, e.Stream, replyID)
	}
	return nil
}

// thread is what the worker reads of a session or conversation stream.
type thread struct {
	assistantID   uuid.UUID
	userContextID uuid.UUID
	locale        string
	history       []answer.Turn // messages before the one being answered
	answered      bool
}

func (h AnswerMessageHandler) loadThread(ctx context.Context, e es.Event, replyID uuid.UUID) (thread, error) {
	var th thread
	events, err := ReadStream(ctx, h.Store, e.Stream)
	if err != nil {
		return th, fmt.Errorf("reply to %s: %w", e.ID, err)
	}
	for _, x := range events {
		switch x.Type {
		case session.TypeStarted:
			var s session.Started
			if err := json.Unmarshal(x.Data, &s); err != nil {
				return th, fmt.Errorf("reply: decode %s: %w", x.Type, err)
			}
			th.assistantID, th.locale = s.AssistantID, s.Locale
		case conversation.TypeStarted:
			var c conversation.Started
			if err := json.Unmarshal(x.Data, &c); err != nil {
				return th, fmt.Errorf("reply: decode %s: %w", x.Type, err)
			}
			th.assistantID, th.locale = c.AssistantID, c.Locale
			if c.UserContextID != nil {
				th.userContextID = *c.UserContextID
			}
		case message.TypePosted:
			if x.ID == replyID {
				th.answered = true
			}
			if x.Version >= e.Version {
				continue
			}
			var p message.Posted
			if err := json.Unmarshal(x.Data, &p); err != nil {
				return th, fmt.Errorf("reply: decode %s: %w", x.Type, err)
			}
			th.history = append(th.history, answer.Turn{Role: string(p.Role), Content: p.Content})
		case answer.TypeReplyFailed:
			if x.ID == replyID {
				th.answered = true
			}
		}
	}
	return th, nil
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

// traits reads the user context's current traits; erased tells that the
// person was forgotten.
func (h AnswerMessageHandler) traits(ctx context.Context, id uuid.UUID) (map[string]any, bool, error) {
	if id == uuid.Nil {
		return nil, false, nil
	}
	events, err := ReadStream(ctx, h.Store, StreamName(usercontext.Kind, id))
	if errors.Is(err, domain.ErrNotFound) {
		return nil, true, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("reply: load user context %s: %w", id, err)
	}
	var traits map[string]any
	for _, x := range events {
		switch x.Type {
		case usercontext.TypeCreated:
			var c usercontext.Created
			if err := json.Unmarshal(x.Data, &c); err == nil {
				traits = c.Traits
			}
		case usercontext.TypeTraitsChanged:
			var c usercontext.TraitsChanged
			if err := json.Unmarshal(x.Data, &c); err == nil {
				traits = c.Traits
			}
		case usercontext.TypeErased:
			return nil, true, nil
		}
	}
	return traits, false, nil
}

// record appends the reply through the thread's aggregate. A reply (or
// failure) already recorded under replyID makes this a no-op.
func (h AnswerMessageHandler) record(ctx context.Context, kind string, threadID, userMessageID, replyID uuid.UUID, r answer.Reply) error {
	body, err := message.ParseContent(r.Text)
	if err != nil {
		return fmt.Errorf("reply to %s: %w", userMessageID, err)
	}
	trace, err := json.Marshal(r.Trace)
	if err != nil {
		return fmt.Errorf("reply to %s: encode trace: %w", userMessageID, err)
	}
	sources := make([]message.Source, 0, len(r.Sources))
	for _, s := range r.Sources {
		id, err := uuid.Parse(s.KnowledgeID)
		if err != nil {
			continue
		}
		sources = append(sources, message.Source{KnowledgeID: id, Title: s.Title, Snippet: s.Snippet, Score: s.Score})
	}
	d := message.Draft{ID: replyID, Role: message.Assistant, Content: body, Metadata: map[string]any{},
		ReplyTo: &userMessageID, Sources: sources, Trace: trace}
	at := Clock(h.Now)
	switch kind {
	case session.Kind:
		_, err = sessions(h.Store).Update(ctx, threadID, func(s *session.Session) error {
			_, err := s.PostMessage(d, at)
			return err
		})
	default:
		_, err = conversations(h.Store).Update(ctx, threadID, func(c *conversation.Conversation) error {
			_, err := c.PostMessage(d, at)
			return err
		})
	}
	if errors.Is(err, es.ErrDuplicateEventID) {
		return nil // a ReplyFailed took the id first: the message is settled
	}
	if err != nil {
		return fmt.Errorf("reply to %s: %w", userMessageID, err)
	}
	return nil
}

func (h AnswerMessageHandler) fail(ctx context.Context, stream string, userMessageID, replyID uuid.UUID, reason, detail string) error {
	ev := answer.ReplyFailed{MessageID: userMessageID, ReplyID: replyID, Reason: reason, Detail: detail, FailedAt: Clock(h.Now)}
	_, err := Append(ctx, h.Store, stream, es.StreamExists, []domain.Event{ev})
	if errors.Is(err, es.ErrDuplicateEventID) {
		return nil // answered meanwhile
	}
	if err != nil {
		return fmt.Errorf("reply to %s: record failure: %w", userMessageID, err)
	}
	if h.Notifier != nil {
		h.Notifier.Done(ctx, stream, replyID)
	}
	return nil
}

// threadOf parses "session-<uuid>" and "conversation-<uuid>".
func threadOf(stream string) (string, uuid.UUID, bool) {
	for _, kind := range []string{session.Kind, conversation.Kind} {
		if rest, ok := strings.CutPrefix(stream, kind+"-"); ok {
			id, err := uuid.Parse(rest)
			return kind, id, err == nil
		}
	}
	return "", uuid.Nil, false
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
