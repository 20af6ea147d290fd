// Package thread is a chat of someone with an assistant, in one of two
// kinds: a session (an anonymous visitor, as the website widget starts it)
// or a conversation (a known customer, optionally linked to the customer's
// user context). Both keep their messages the same way (message.Posted
// events in the thread's stream) and answer the reply worker the same
// questions. What differs is small and kept here explicitly: how a thread
// starts (SessionStarted with a visitor id, ConversationStarted with a
// customer id, title and person) and that a conversation's messages are its
// person's data, so that once the person is erased it takes no more.
package thread

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/companin/companin/domain"
	"github.com/companin/companin/domain/answer"
	"github.com/companin/companin/domain/assistant"
	"github.com/companin/companin/domain/message"
	"github.com/companin/companin/domain/usercontext"
	"github.com/google/uuid"
)

// Kind is a thread's kind and its stream prefix: session-<uuid>,
// conversation-<uuid>. Never rename one: the stored streams carry it.
type Kind string

// The kinds of thread.
const (
	Session      Kind = "session"
	Conversation Kind = "conversation"
)

// Stored event names: never renamed.
const (
	TypeSessionStarted      = "SessionStarted"
	TypeConversationStarted = "ConversationStarted"
)

var (
	// ErrSessionNotFound: no such session (or another organization's).
	ErrSessionNotFound = fmt.Errorf("session not found: %w", domain.ErrNotFound)
	// ErrConversationNotFound: no such conversation (or another organization's).
	ErrConversationNotFound = fmt.Errorf("conversation not found: %w", domain.ErrNotFound)
	// ErrSessionExists: a session with this id was already started.
	ErrSessionExists = fmt.Errorf("session already exists: %w", domain.ErrConflict)
	// ErrConversationExists: a conversation with this id was already started.
	ErrConversationExists = fmt.Errorf("conversation already exists: %w", domain.ErrConflict)
	// ErrPersonErased: the conversation's user context was erased; it takes
	// no more messages (they would be that person's data again).
	ErrPersonErased = fmt.Errorf("the user context of this conversation was erased: %w", domain.ErrConflict)
)

// NotFound is the error for a thread of kind k that does not exist.
func (k Kind) NotFound() error {
	if k == Conversation {
		return ErrConversationNotFound
	}
	return ErrSessionNotFound
}

func (k Kind) exists() error {
	if k == Conversation {
		return ErrConversationExists
	}
	return ErrSessionExists
}

// Stream is the name of the thread's stream.
func (k Kind) Stream(id uuid.UUID) string { return string(k) + "-" + id.String() }

// ParseStream reads "session-<uuid>" and "conversation-<uuid>"; ok=false for
// any other stream.
func ParseStream(stream string) (Kind, uuid.UUID, bool) {
	for _, k := range []Kind{Session, Conversation} {
		if rest, ok := strings.CutPrefix(stream, string(k)+"-"); ok {
			id, err := uuid.Parse(rest)
			return k, id, err == nil
		}
	}
	return "", uuid.Nil, false
}

// Field limits, in characters.
const (
	MaxVisitorID  = 255
	MaxCustomerID = 255
	MaxTitle      = 500
)

// Input is a client's request to start a thread; the fields of the other
// kind are ignored.
type Input struct {
	VisitorID  string // sessions: "" gets a generated one
	CustomerID string // conversations: required
	Title      string // conversations
	Locale     string
	Metadata   map[string]any
}

// Start is a valid request to start a thread of Kind.
type Start struct {
	Kind       Kind
	VisitorID  string
	CustomerID string
	// Person links a conversation to a user context (uuid.Nil: none); the
	// caller resolves it.
	Person   uuid.UUID
	Title    string
	Locale   string
	Metadata map[string]any
}

// ParseStart validates a client's input for a thread of kind k. A session
// without a visitor id gets a new one ("visitor-<uuid>"), so anonymous
// visitors can be told apart.
func ParseStart(k Kind, in Input) (Start, error) {
	out := Start{Kind: k}
	var err error
	switch k {
	case Session:
		if out.VisitorID, err = domain.Text("visitor_id", in.VisitorID, MaxVisitorID, false); err != nil {
			return Start{}, err
		}
		if out.VisitorID == "" {
			out.VisitorID = "visitor-" + uuid.NewString()
		}
	case Conversation:
		if out.CustomerID, err = domain.Text("customer_id", in.CustomerID, MaxCustomerID, true); err != nil {
			return Start{}, err
		}
		if out.Title, err = domain.Text("title", in.Title, MaxTitle, false); err != nil {
			return Start{}, err
		}
	default:
		return Start{}, fmt.Errorf("thread kind %q: %w", k, domain.ErrInvalid)
	}
	if out.Locale, err = domain.LanguageTag("locale", in.Locale); err != nil {
		return Start{}, err
	}
	if out.Metadata, err = domain.Object("metadata", in.Metadata); err != nil {
		return Start{}, err
	}
	return out, nil
}

// SessionStarted opens a session on an assistant.
type SessionStarted struct {
	SessionID   uuid.UUID      `json:"session_id"`
	AssistantID uuid.UUID      `json:"assistant_id"`
	VisitorID   string         `json:"visitor_id"`
	Locale      string         `json:"locale,omitempty"`
	Metadata    map[string]any `json:"metadata"`
	StartedAt   time.Time      `json:"started_at"`
}

// EventType implements domain.Event.
func (SessionStarted) EventType() string { return TypeSessionStarted }

// ConversationStarted opens a conversation.
type ConversationStarted struct {
	ConversationID uuid.UUID      `json:"conversation_id"`
	AssistantID    uuid.UUID      `json:"assistant_id"`
	CustomerID     string         `json:"customer_id"`
	UserContextID  *uuid.UUID     `json:"user_context_id,omitempty"`
	Title          string         `json:"title"`
	Locale         string         `json:"locale,omitempty"`
	Metadata       map[string]any `json:"metadata"`
	StartedAt      time.Time      `json:"started_at"`
}

// EventType implements domain.Event.
func (ConversationStarted) EventType() string { return TypeConversationStarted }

// ConversationPersonalFields are the fields of ConversationStarted that name
// or describe the linked person: the customer id (often the same as the
// user_reference), the title ("Zelda Erasmus complaint") and the metadata
// ({"email": ...}). Events written before title and metadata were listed
// hold them in the clear; the shredding store nulls them once the person is
// erased (shred.Redact).
var ConversationPersonalFields = []string{"customer_id", "title", "metadata"}

// PersonalData: in a conversation linked to a user context, its personal
// fields are erased with that person.
func (e ConversationStarted) PersonalData() (string, []string) {
	if e.UserContextID == nil {
		return "", nil
	}
	return e.UserContextID.String(), ConversationPersonalFields
}

// Decode turns a stored event of a thread's stream into a domain event; nil
// for types the thread does not replay (feedback).
func Decode(typ string, data []byte) (domain.Event, error) {
	switch typ {
	case TypeSessionStarted:
		return domain.Decode[SessionStarted](data)
	case TypeConversationStarted:
		return domain.Decode[ConversationStarted](data)
	case message.TypePosted:
		return domain.Decode[message.Posted](data)
	case answer.TypeReplyFailed:
		return domain.Decode[answer.ReplyFailed](data)
	}
	return nil, nil
}

// Thread is the aggregate.
type Thread struct {
	domain.Recorder
	kind        Kind
	id          uuid.UUID
	started     bool
	assistantID uuid.UUID
	locale      string
	person      uuid.UUID
	// messages in the order posted; erased contents read as "".
	messages []posted
	// index finds a message in messages by id.
	index map[uuid.UUID]int
	// failed holds the reply ids recorded by a ReplyFailed.
	failed map[uuid.UUID]bool
}

type posted struct {
	id      uuid.UUID
	role    message.Role
	content string
}

// New returns a thread of kind k with id and no history.
func New(k Kind, id uuid.UUID) *Thread { return &Thread{kind: k, id: id} }

// Kind is the thread's kind.
func (t *Thread) Kind() Kind { return t.kind }

// ID is the thread's id.
func (t *Thread) ID() uuid.UUID { return t.id }

// AssistantID is the assistant the thread talks to.
func (t *Thread) AssistantID() uuid.UUID { return t.assistantID }

// Locale is the locale the thread was started with ("" none).
func (t *Thread) Locale() string { return t.locale }

// Person is the user context of a linked conversation (uuid.Nil: none).
func (t *Thread) Person() uuid.UUID { return t.person }

// Start opens the thread on a, which must exist and be active (the caller
// loaded it within the thread's organization: another's is not found).
func (t *Thread) Start(a *assistant.Assistant, in Start, at time.Time) error {
	if t.started {
		return t.kind.exists()
	}
	if err := a.CanStart(); err != nil {
		return err
	}
	switch t.kind {
	case Session:
		t.record(SessionStarted{SessionID: t.id, AssistantID: a.ID(), VisitorID: in.VisitorID, Locale: in.Locale,
			Metadata: in.Metadata, StartedAt: at.UTC()})
	case Conversation:
		e := ConversationStarted{ConversationID: t.id, AssistantID: a.ID(), CustomerID: in.CustomerID,
			Title: in.Title, Locale: in.Locale, Metadata: in.Metadata, StartedAt: at.UTC()}
		if in.Person != uuid.Nil {
			p := in.Person
			e.UserContextID = &p
		}
		t.record(e)
	default:
		return fmt.Errorf("thread kind %q: %w", t.kind, domain.ErrInvalid)
	}
	return nil
}

// PostMessage adds a message and returns its event; a message id posted
// before records nothing (the zero Posted); uuid.Nil gets a new id. person is the
// thread's user context as it is now (nil: none or not found): a
// conversation whose person was erased takes no more messages, and in a
// linked conversation the content is that person's data.
func (t *Thread) PostMessage(d message.Draft, person *usercontext.UserContext, at time.Time) (message.Posted, error) {
	if !t.started {
		return message.Posted{}, t.kind.NotFound()
	}
	if t.person != uuid.Nil && (person == nil || person.ID() != t.person || !person.Exists()) {
		return message.Posted{}, ErrPersonErased
	}
	return t.post(d, at), nil
}

func (t *Thread) post(d message.Draft, at time.Time) message.Posted {
	if d.ID == uuid.Nil {
		d.ID = uuid.New()
	}
	if _, ok := t.index[d.ID]; ok || t.failed[d.ID] {
		return message.Posted{}
	}
	subject := ""
	if t.person != uuid.Nil {
		subject = t.person.String()
	}
	p := message.NewPosted(d, subject, at)
	t.record(p)
	return p
}

// Question is a user message waiting for its reply, with what the reply
// worker needs to answer it.
type Question struct {
	MessageID uuid.UUID
	// ReplyID is the id of the reply (or its failure): answer.ReplyID.
	ReplyID uuid.UUID
	Content string
	// History is every message posted before this one, oldest first.
	History []answer.Turn
}

// Question returns the user message id as a question still to answer;
// ok=false when it has its reply or its failure already, is not a user
// message, or is not in this thread.
func (t *Thread) Question(id uuid.UUID) (q Question, ok bool) {
	i, found := t.index[id]
	if !found || t.messages[i].role != message.User {
		return Question{}, false
	}
	reply := answer.ReplyID(id)
	if _, answered := t.index[reply]; answered || t.failed[reply] {
		return Question{}, false
	}
	q = Question{MessageID: id, ReplyID: reply, Content: t.messages[i].content, History: make([]answer.Turn, 0, i)}
	for _, m := range t.messages[:i] {
		q.History = append(q.History, answer.Turn{Role: string(m.role), Content: m.content})
	}
	return q, true
}

// SettledBy tells whether e, read after the thread was loaded, records q's
// reply or failure (another worker's): then q needs nothing more.
func (q Question) SettledBy(e domain.Event) bool {
	switch e := e.(type) {
	case message.Posted:
		return e.MessageID == q.ReplyID
	case answer.ReplyFailed:
		return e.ReplyID == q.ReplyID
	}
	return false
}

// Reply is the assistant's answer to a question.
type Reply struct {
	Content message.Content
	Sources []message.Source
	// Trace is how the reply was made (answer.Trace as JSON).
	Trace json.RawMessage
}

// Answer records the assistant's reply to q, under q.ReplyID: a reply or
// failure recorded before records nothing. In a linked conversation the
// reply is the person's data too.
func (t *Thread) Answer(q Question, r Reply, at time.Time) {
	to := q.MessageID
	t.post(message.Draft{ID: q.ReplyID, Role: message.Assistant, Content: r.Content, Metadata: map[string]any{},
		ReplyTo: &to, Sources: r.Sources, Trace: r.Trace}, at)
}

// FailReply records that q gets no reply, and why (an answer.Reason...).
func (t *Thread) FailReply(q Question, reason, detail string, at time.Time) {
	if _, ok := t.index[q.ReplyID]; ok || t.failed[q.ReplyID] {
		return
	}
	t.record(answer.ReplyFailed{MessageID: q.MessageID, ReplyID: q.ReplyID, Reason: reason, Detail: detail, FailedAt: at.UTC()})
}

// GiveFeedback rates an assistant reply of the thread.
func (t *Thread) GiveFeedback(messageID uuid.UUID, rating *answer.Rating, comment string, at time.Time) (answer.FeedbackGiven, error) {
	i, ok := t.index[messageID]
	if !t.started || !ok {
		return answer.FeedbackGiven{}, answer.ErrMessageNotFound
	}
	if t.messages[i].role != message.Assistant {
		return answer.FeedbackGiven{}, answer.ErrNotAReply
	}
	e := answer.FeedbackGiven{MessageID: messageID, Rating: rating, Comment: comment, GivenAt: at.UTC()}
	t.record(e)
	return e, nil
}

func (t *Thread) record(e domain.Event) {
	t.Apply(e)
	t.Record(e)
}

// Apply changes state by one event, new or replayed.
func (t *Thread) Apply(e domain.Event) {
	switch e := e.(type) {
	case SessionStarted:
		t.started, t.assistantID, t.locale = true, e.AssistantID, e.Locale
	case ConversationStarted:
		t.started, t.assistantID, t.locale = true, e.AssistantID, e.Locale
		if e.UserContextID != nil {
			t.person = *e.UserContextID
		}
	case message.Posted:
		if t.index == nil {
			t.index = map[uuid.UUID]int{}
		}
		t.index[e.MessageID] = len(t.messages)
		t.messages = append(t.messages, posted{id: e.MessageID, role: e.Role, content: e.Content})
	case answer.ReplyFailed:
		if t.failed == nil {
			t.failed = map[uuid.UUID]bool{}
		}
		t.failed[e.ReplyID] = true
	}
}
