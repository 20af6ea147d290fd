// Package conversation is a persistent chat of a known customer with an
// assistant, optionally linked to the customer's user context. When linked,
// message contents are the person's data: erasing the context makes them
// unreadable (crypto-shredding, see message.Posted).
package conversation

import (
	"fmt"
	"time"

	"github.com/companin/companin/domain"
	"github.com/companin/companin/domain/assistant"
	"github.com/companin/companin/domain/message"
	"github.com/google/uuid"
)

// Kind is the stream prefix: conversation-<uuid>.
const Kind = "conversation"

// TypeStarted is ConversationStarted's stored name.
const TypeStarted = "ConversationStarted"

var (
	// ErrNotFound: no such conversation (or another organization's).
	ErrNotFound = fmt.Errorf("conversation not found: %w", domain.ErrNotFound)
	// ErrExists: a conversation with this id was already started.
	ErrExists = fmt.Errorf("conversation already exists: %w", domain.ErrConflict)
	// ErrPersonErased: the conversation's user context was erased; it takes
	// no more messages (they would be that person's data again).
	ErrPersonErased = fmt.Errorf("the user context of this conversation was erased: %w", domain.ErrConflict)
)

// Field limits, in characters.
const (
	MaxCustomerID = 255
	MaxTitle      = 500
)

// Start is a valid request to start a conversation.
type Start struct {
	CustomerID string
	// UserContextID links the conversation to a person (uuid.Nil: none).
	UserContextID uuid.UUID
	Title         string
	Locale        string
	Metadata      map[string]any
}

// ParseStart validates a client's input (the user context is resolved by the caller).
func ParseStart(customerID, title, locale string, metadata map[string]any) (Start, error) {
	c, err := domain.Text("customer_id", customerID, MaxCustomerID, true)
	if err != nil {
		return Start{}, err
	}
	t, err := domain.Text("title", title, MaxTitle, false)
	if err != nil {
		return Start{}, err
	}
	l, err := domain.LanguageTag("locale", locale)
	if err != nil {
		return Start{}, err
	}
	m, err := domain.Object("metadata", metadata)
	if err != nil {
		return Start{}, err
	}
	return Start{CustomerID: c, Title: t, Locale: l, Metadata: m}, nil
}

// Started (ConversationStarted) opens a conversation.
type Started struct {
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
func (Started) EventType() string { return TypeStarted }

// PersonalFields are the fields of ConversationStarted that name or describe
// the linked person: the customer id (often the same as the user_reference),
// the title ("Zelda Erasmus complaint") and the metadata ({"email": ...}).
// Events written before title and metadata were listed hold them in the
// clear; the shredding store nulls them once the person is erased
// (shred.Redact).
var PersonalFields = []string{"customer_id", "title", "metadata"}

// PersonalData: in a conversation linked to a user context, its personal
// fields are erased with that person.
func (e Started) PersonalData() (string, []string) {
	if e.UserContextID == nil {
		return "", nil
	}
	return e.UserContextID.String(), PersonalFields
}

// Decode turns a stored event into a conversation event; nil for other types.
func Decode(typ string, data []byte) (domain.Event, error) {
	switch typ {
	case TypeStarted:
		return domain.Decode[Started](data)
	case message.TypePosted:
		return domain.Decode[message.Posted](data)
	}
	return nil, nil
}

// Conversation is the aggregate.
type Conversation struct {
	domain.Recorder
	message.Thread
	id            uuid.UUID
	started       bool
	assistantID   uuid.UUID
	userContextID uuid.UUID
}

// New returns a conversation with id and no history.
func New(id uuid.UUID) *Conversation { return &Conversation{id: id} }

// ID is the conversation's id.
func (c *Conversation) ID() uuid.UUID { return c.id }

// AssistantID is the assistant the conversation talks to.
func (c *Conversation) AssistantID() uuid.UUID { return c.assistantID }

// UserContextID is the linked person's context (uuid.Nil: none).
func (c *Conversation) UserContextID() uuid.UUID { return c.userContextID }

// Start opens the conversation on a, which must exist and be active.
func (c *Conversation) Start(a *assistant.Assistant, in Start, at time.Time) error {
	if c.started {
		return ErrExists
	}
	if err := a.CanStart(); err != nil {
		return err
	}
	e := Started{
		ConversationID: c.id, AssistantID: a.ID(), CustomerID: in.CustomerID,
		Title: in.Title, Locale: in.Locale, Metadata: in.Metadata, StartedAt: at.UTC(),
	}
	if in.UserContextID != uuid.Nil {
		id := in.UserContextID
		e.UserContextID = &id
	}
	c.record(e)
	return nil
}

// PostMessage adds a message; a message id posted before records nothing.
// In a conversation linked to a user context the content is personal data
// of that context.
func (c *Conversation) PostMessage(d message.Draft, at time.Time) (uuid.UUID, error) {
	if !c.started {
		return uuid.Nil, ErrNotFound
	}
	if d.ID == uuid.Nil {
		d.ID = uuid.New()
	}
	subject := ""
	if c.userContextID != uuid.Nil {
		subject = c.userContextID.String()
	}
	if p, ok := c.NewPosted(d, subject, at); ok {
		c.record(p)
	}
	return d.ID, nil
}

func (c *Conversation) record(e domain.Event) {
	c.Apply(e)
	c.Record(e)
}

// Apply changes state by one event, new or replayed.
func (c *Conversation) Apply(e domain.Event) {
	switch e := e.(type) {
	case Started:
		c.started, c.assistantID = true, e.AssistantID
		if e.UserContextID != nil {
			c.userContextID = *e.UserContextID
		}
	case message.Posted:
		c.Seen(e)
	}
}
