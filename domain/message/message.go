// Package message holds the messages posted in a thread (domain/thread):
// the MessagePosted event (one type name for both kinds of stream), roles
// and content.
package message

import (
	"encoding/json"
	"time"

	"github.com/companin/companin/domain"
	"github.com/google/uuid"
)

// TypePosted is MessagePosted's stored name, the same in session and
// conversation streams, so that the reply worker subscribes to one type.
const TypePosted = "MessagePosted"

// Role says who wrote a message.
type Role string

const (
	// User is the visitor or customer talking to the assistant.
	User Role = "user"
	// Assistant is the reply of the assistant (written by the reply worker).
	Assistant Role = "assistant"
)

// ParseRole accepts "user" and "assistant".
func ParseRole(s string) (Role, error) {
	switch r := Role(s); r {
	case User, Assistant:
		return r, nil
	}
	return "", domain.Invalid("role", "must be user or assistant")
}

// MaxContent is the longest message content accepted, in characters.
const MaxContent = 32000

// Content is a message's text: trimmed, not empty, at most MaxContent characters.
type Content struct{ s string }

// ParseContent parses a client's message text.
func ParseContent(s string) (Content, error) {
	s, err := domain.Text("content", s, MaxContent, true)
	if err != nil {
		return Content{}, err
	}
	return Content{s: s}, nil
}

func (c Content) String() string { return c.s }

// Source is a piece of knowledge an assistant's reply is grounded in.
type Source struct {
	KnowledgeID uuid.UUID `json:"knowledge_id"`
	Title       string    `json:"title"`
	Snippet     string    `json:"snippet"`
	Score       float64   `json:"score"`
}

// Draft is a message about to be posted.
type Draft struct {
	// ID is the message id, also the event id of its MessagePosted: posting
	// the same id twice records nothing the second time (a retry, a
	// redelivered job). uuid.Nil: a new id is chosen.
	ID       uuid.UUID
	Role     Role
	Content  Content
	Metadata map[string]any
	// ReplyTo and Sources are set on assistant replies.
	ReplyTo *uuid.UUID
	Sources []Source
	// Trace records how the reply was made (engine, model, retrieval
	// candidates with scores, timings): answer.Trace as JSON.
	Trace json.RawMessage
}

// Posted (MessagePosted) records a message in a session or conversation
// stream; the stream says which. Its JSON is a contract: add fields with
// omitempty (older events must keep decoding), never rename one. Fields for
// replies (reply_to, sources) are set by the reply worker on role=assistant
// messages; more reply fields belong here too, with omitempty.
//
// Content is personal data in conversations linked to a user context: the
// event's metadata names the context as subject and the crypto-shredding
// store encrypts content and metadata (PersonalFields); once the key is
// destroyed, they read as null (content decodes as "", metadata as nil), and
// readers must cope with that.
type Posted struct {
	MessageID uuid.UUID      `json:"message_id"`
	Role      Role           `json:"role"`
	Content   string         `json:"content"`
	Metadata  map[string]any `json:"metadata,omitempty"`
	PostedAt  time.Time      `json:"posted_at"`
	ReplyTo   *uuid.UUID     `json:"reply_to,omitempty"`
	Sources   []Source       `json:"sources,omitempty"`
	// Trace is why the assistant said what it said, for auditors (replies only).
	Trace json.RawMessage `json:"trace,omitempty"`

	// subject is the user context whose key encrypts Content; not stored in
	// the data, it travels in the event metadata.
	subject string
}

// EventType implements domain.Event.
func (Posted) EventType() string { return TypePosted }

// EventID makes the message id the event id: posting is idempotent.
func (p Posted) EventID() uuid.UUID { return p.MessageID }

// PersonalFields are the fields of MessagePosted that are the person's data
// in a conversation linked to a user context: the text, and the metadata a
// client attaches (an e-mail address, an order number). Older events hold
// metadata in the clear; the shredding store nulls it once the person is
// erased (shred.Redact).
var PersonalFields = []string{"content", "metadata"}

// PersonalData implements domain.Personal for messages of a person.
func (p Posted) PersonalData() (string, []string) {
	if p.subject == "" {
		return "", nil
	}
	return p.subject, PersonalFields
}

// NewPosted builds the event that posts d; subject is the data subject of
// its content ("" if none). The thread aggregate decides whether to record it.
func NewPosted(d Draft, subject string, at time.Time) Posted {
	meta := d.Metadata
	if meta == nil {
		meta = map[string]any{}
	}
	return Posted{
		MessageID: d.ID, Role: d.Role, Content: d.Content.s, Metadata: meta, PostedAt: at.UTC(),
		ReplyTo: d.ReplyTo, Sources: d.Sources, Trace: d.Trace, subject: subject,
	}
}
