// Package assistant is an AI assistant persona of an organization: name, tone,
// language, default tasks and instructions that shape its answers. Sessions
// and conversations start only on an active assistant.
package assistant

import (
	"fmt"
	"time"

	"github.com/companin/companin/domain"
	"github.com/google/uuid"
)

// Kind is the stream prefix: assistant-<uuid>.
const Kind = "assistant"

// Event type names: stored, never renamed.
const (
	TypeCreated = "AssistantCreated"
	TypeUpdated = "AssistantUpdated"
	TypeDeleted = "AssistantDeleted"
)

var (
	// ErrNotFound: no such assistant (or deleted, or another organization's).
	ErrNotFound = fmt.Errorf("assistant not found: %w", domain.ErrNotFound)
	// ErrExists: an assistant with this id was already created.
	ErrExists = fmt.Errorf("assistant already exists: %w", domain.ErrConflict)
	// ErrInactive: the assistant is switched off; nothing new starts on it.
	ErrInactive = domain.Invalid("assistant_id", "assistant is not active")
)

// Limits of the persona's fields, in characters or items.
const (
	MaxName         = 200
	MaxDescription  = 2000
	MaxTone         = 100
	MaxInstructions = 20000
	MaxTasks        = 50
	MaxTask         = 200
)

// Settings is a valid persona. Build it with ParseSettings.
type Settings struct {
	Name         string   `json:"name"`
	Description  string   `json:"description"`
	Tone         string   `json:"tone"`
	Language     string   `json:"language"`
	DefaultTasks []string `json:"default_tasks"`
	IsActive     bool     `json:"is_active"`
	Instructions string   `json:"instructions"`
}

// Input is what a client sends (the JSON body of POST and PATCH
// /assistants); nil pointers were not given.
type Input struct {
	Name         *string   `json:"name"`
	Description  *string   `json:"description"`
	Tone         *string   `json:"tone"`
	Language     *string   `json:"language"`
	DefaultTasks *[]string `json:"default_tasks"`
	IsActive     *bool     `json:"is_active"`
	Instructions *string   `json:"instructions"`
}

// ParseSettings validates a new assistant's input. Absent is_active means active.
func ParseSettings(in Input) (Settings, error) {
	s := Settings{IsActive: true, DefaultTasks: []string{}}
	if in.Name == nil {
		return Settings{}, domain.Invalid("name", "is required")
	}
	return s.apply(in)
}

// apply validates the given fields of in on top of s.
func (s Settings) apply(in Input) (Settings, error) {
	var p domain.Patch
	p.Text("name", in.Name, &s.Name, MaxName, true)
	p.Text("description", in.Description, &s.Description, MaxDescription, false)
	p.Text("tone", in.Tone, &s.Tone, MaxTone, false)
	p.Language("language", in.Language, &s.Language, false)
	p.Texts("default_tasks", in.DefaultTasks, &s.DefaultTasks, MaxTasks, MaxTask)
	if in.IsActive != nil {
		s.IsActive = *in.IsActive
	}
	p.Text("instructions", in.Instructions, &s.Instructions, MaxInstructions, false)
	if err := p.Err(); err != nil {
		return Settings{}, err
	}
	return s, nil
}

// Created (AssistantCreated) is a new assistant with its whole persona.
type Created struct {
	AssistantID uuid.UUID `json:"assistant_id"`
	Settings
	CreatedAt time.Time `json:"created_at"`
}

// Updated (AssistantUpdated) carries the whole persona after the change, so
// that readers never merge partial updates.
type Updated struct {
	AssistantID uuid.UUID `json:"assistant_id"`
	Settings
	// Changed lists the fields that changed (JSON names), for auditors.
	Changed   []string  `json:"changed"`
	UpdatedAt time.Time `json:"updated_at"`
}

// Deleted (AssistantDeleted): the assistant is gone for good.
type Deleted struct {
	AssistantID uuid.UUID `json:"assistant_id"`
	DeletedAt   time.Time `json:"deleted_at"`
}

func (Created) EventType() string { return TypeCreated }
func (Updated) EventType() string { return TypeUpdated }
func (Deleted) EventType() string { return TypeDeleted }

// After is the persona once the event applies (domain.SettingsEvent).
func (e Created) After() (Settings, bool) { return e.Settings, false }
func (e Updated) After() (Settings, bool) { return e.Settings, false }
func (Deleted) After() (Settings, bool)   { return Settings{}, true }

var events = domain.Events(Created{}, Updated{}, Deleted{})

// Decode turns a stored event into an assistant event; nil for other types.
func Decode(typ string, data []byte) (domain.Event, error) { return events.Decode(typ, data) }

// Assistant is the aggregate: a persona created, changed and deleted by
// domain.Configured's rules.
type Assistant struct {
	domain.Configured[Settings]
	id uuid.UUID
}

// New returns an assistant with id and no history.
func New(id uuid.UUID) *Assistant { return &Assistant{id: id} }

// ID is the assistant's id.
func (a *Assistant) ID() uuid.UUID { return a.id }

// CanStart tells whether a session or conversation may start on the
// assistant: ErrNotFound if it does not exist, ErrInactive if switched off.
func (a *Assistant) CanStart() error {
	if !a.Exists() {
		return ErrNotFound
	}
	if !a.Settings().IsActive {
		return ErrInactive
	}
	return nil
}

// Create records a new assistant.
func (a *Assistant) Create(s Settings, at time.Time) error {
	return a.Configured.Create(Created{AssistantID: a.id, Settings: s, CreatedAt: at.UTC()}, ErrExists)
}

// Update changes the fields given in in. Nothing changes: nothing is recorded.
func (a *Assistant) Update(in Input, at time.Time) error {
	return a.Configured.Update(func(s Settings) (Settings, error) { return s.apply(in) }, ErrNotFound,
		func(next Settings, changed []string) domain.SettingsEvent[Settings] {
			return Updated{AssistantID: a.id, Settings: next, Changed: changed, UpdatedAt: at.UTC()}
		})
}

// Delete removes the assistant; a deleted assistant accepts nothing more.
func (a *Assistant) Delete(at time.Time) error {
	return a.Configured.Delete(Deleted{AssistantID: a.id, DeletedAt: at.UTC()}, ErrNotFound)
}
