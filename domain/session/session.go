// Package session is an anonymous visitor's chat with an assistant, as the
// website widget starts it. Messages are message.Posted events in its stream.
package session

import (
	"fmt"
	"time"

	"github.com/companin/companin/domain"
	"github.com/companin/companin/domain/assistant"
	"github.com/companin/companin/domain/message"
	"github.com/google/uuid"
)

// Kind is the stream prefix: session-<uuid>.
const Kind = "session"

// TypeStarted is SessionStarted's stored name.
const TypeStarted = "SessionStarted"

var (
	// ErrNotFound: no such session (or another organization's).
	ErrNotFound = fmt.Errorf("session not found: %w", domain.ErrNotFound)
	// ErrExists: a session with this id was already started.
	ErrExists = fmt.Errorf("session already exists: %w", domain.ErrConflict)
)

// MaxVisitorID bounds the visitor id, in characters.
const MaxVisitorID = 255

// Start is a valid request to start a session.
type Start struct {
	VisitorID string
	Locale    string
	Metadata  map[string]any
}

// ParseStart validates a client's input. An absent visitor id gets a new one
// ("visitor-<uuid>"), so anonymous visitors can be told apart.
func ParseStart(visitorID, locale string, metadata map[string]any) (Start, error) {
	v, err := domain.Text("visitor_id", visitorID, MaxVisitorID, false)
	if err != nil {
		return Start{}, err
	}
	if v == "" {
		v = "visitor-" + uuid.NewString()
	}
	l, err := domain.LanguageTag("locale", locale)
	if err != nil {
		return Start{}, err
	}
	m, err := domain.Object("metadata", metadata)
	if err != nil {
		return Start{}, err
	}
	return Start{VisitorID: v, Locale: l, Metadata: m}, nil
}

// Started (SessionStarted) opens a session on an assistant.
type Started struct {
	SessionID   uuid.UUID      `json:"session_id"`
	AssistantID uuid.UUID      `json:"assistant_id"`
	VisitorID   string         `json:"visitor_id"`
	Locale      string         `json:"locale,omitempty"`
	Metadata    map[string]any `json:"metadata"`
	StartedAt   time.Time      `json:"started_at"`
}

// EventType implements domain.Event.
func (Started) EventType() string { return TypeStarted }

// Decode turns a stored event into a session event; nil for other types.
func Decode(typ string, data []byte) (domain.Event, error) {
	switch typ {
	case TypeStarted:
		return domain.Decode[Started](data)
	case message.TypePosted:
		return domain.Decode[message.Posted](data)
	}
	return nil, nil
}

// Session is the aggregate.
type Session struct {
	domain.Recorder
	message.Thread
	id          uuid.UUID
	started     bool
	assistantID uuid.UUID
}

// New returns a session with id and no history.
func New(id uuid.UUID) *Session { return &Session{id: id} }

// ID is the session's id.
func (s *Session) ID() uuid.UUID { return s.id }

// AssistantID is the assistant the session talks to.
func (s *Session) AssistantID() uuid.UUID { return s.assistantID }

// Start opens the session on a, which must exist and be active (the caller
// loaded it within the session's organization: another's is not found).
func (s *Session) Start(a *assistant.Assistant, in Start, at time.Time) error {
	if s.started {
		return ErrExists
	}
	if err := a.CanStart(); err != nil {
		return err
	}
	s.record(Started{SessionID: s.id, AssistantID: a.ID(), VisitorID: in.VisitorID, Locale: in.Locale, Metadata: in.Metadata, StartedAt: at.UTC()})
	return nil
}

// PostMessage adds a message; a message id posted before records nothing.
func (s *Session) PostMessage(d message.Draft, at time.Time) (uuid.UUID, error) {
	if !s.started {
		return uuid.Nil, ErrNotFound
	}
	if d.ID == uuid.Nil {
		d.ID = uuid.New()
	}
	if p, ok := s.NewPosted(d, "", at); ok {
		s.record(p)
	}
	return d.ID, nil
}

func (s *Session) record(e domain.Event) {
	s.Apply(e)
	s.Record(e)
}

// Apply changes state by one event, new or replayed.
func (s *Session) Apply(e domain.Event) {
	switch e := e.(type) {
	case Started:
		s.started, s.assistantID = true, e.AssistantID
	case message.Posted:
		s.Seen(e)
	}
}
