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

// Input is what a client sends; nil pointers were not given.
type Input struct {
	Name         *string
	Description  *string
	Tone         *string
	Language     *string
	DefaultTasks *[]string
	IsActive     *bool
	Instructions *string
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
	var err error
	if in.Name != nil {
		if s.Name, err = domain.Text("name", *in.Name, MaxName, true); err != nil {
			return Settings{}, err
		}
	}
	if in.Description != nil {
		if s.Description, err = domain.Text("description", *in.Description, MaxDescription, false); err != nil {
			return Settings{}, err
		}
	}
	if in.Tone != nil {
		if s.Tone, err = domain.Text("tone", *in.Tone, MaxTone, false); err != nil {
			return Settings{}, err
		}
	}
	if in.Language != nil {
		if s.Language, err = domain.LanguageTag("language", *in.Language); err != nil {
			return Settings{}, err
		}
	}
	if in.DefaultTasks != nil {
		if len(*in.DefaultTasks) > MaxTasks {
			return Settings{}, domain.Invalid("default_tasks", "must have at most %d items", MaxTasks)
		}
		tasks := make([]string, 0, len(*in.DefaultTasks))
		for i, t := range *in.DefaultTasks {
			t, err := domain.Text(fmt.Sprintf("default_tasks[%d]", i), t, MaxTask, true)
			if err != nil {
				return Settings{}, err
			}
			tasks = append(tasks, t)
		}
		s.DefaultTasks = tasks
	}
	if in.IsActive != nil {
		s.IsActive = *in.IsActive
	}
	if in.Instructions != nil {
		if s.Instructions, err = domain.Text("instructions", *in.Instructions, MaxInstructions, false); err != nil {
			return Settings{}, err
		}
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

// Decode turns a stored event into an assistant event; nil for other types.
func Decode(typ string, data []byte) (domain.Event, error) {
	switch typ {
	case TypeCreated:
		return domain.Decode[Created](data)
	case TypeUpdated:
		return domain.Decode[Updated](data)
	case TypeDeleted:
		return domain.Decode[Deleted](data)
	}
	return nil, nil
}

// Assistant is the aggregate.
type Assistant struct {
	domain.Recorder
	id       uuid.UUID
	created  bool
	deleted  bool
	settings Settings
}

// New returns an assistant with id and no history.
func New(id uuid.UUID) *Assistant { return &Assistant{id: id} }

// ID is the assistant's id.
func (a *Assistant) ID() uuid.UUID { return a.id }

// Settings is the current persona.
func (a *Assistant) Settings() Settings { return a.settings }

// Exists tells whether the assistant was created and not deleted.
func (a *Assistant) Exists() bool { return a.created && !a.deleted }

// CanStart tells whether a session or conversation may start on the
// assistant: ErrNotFound if it does not exist, ErrInactive if switched off.
func (a *Assistant) CanStart() error {
	if !a.Exists() {
		return ErrNotFound
	}
	if !a.settings.IsActive {
		return ErrInactive
	}
	return nil
}

// Create records a new assistant.
func (a *Assistant) Create(s Settings, at time.Time) error {
	if a.created {
		return ErrExists
	}
	a.record(Created{AssistantID: a.id, Settings: s, CreatedAt: at.UTC()})
	return nil
}

// Update changes the fields given in in. Nothing changes: nothing is recorded.
func (a *Assistant) Update(in Input, at time.Time) error {
	if !a.Exists() {
		return ErrNotFound
	}
	next, err := a.settings.apply(in)
	if err != nil {
		return err
	}
	changed := diff(a.settings, next)
	if len(changed) == 0 {
		return nil
	}
	a.record(Updated{AssistantID: a.id, Settings: next, Changed: changed, UpdatedAt: at.UTC()})
	return nil
}

// Delete removes the assistant; a deleted assistant accepts nothing more.
func (a *Assistant) Delete(at time.Time) error {
	if !a.Exists() {
		return ErrNotFound
	}
	a.record(Deleted{AssistantID: a.id, DeletedAt: at.UTC()})
	return nil
}

func (a *Assistant) record(e domain.Event) {
	a.Apply(e)
	a.Record(e)
}

// Apply changes state by one event, new or replayed.
func (a *Assistant) Apply(e domain.Event) {
	switch e := e.(type) {
	case Created:
		a.created, a.settings = true, e.Settings
	case Updated:
		a.settings = e.Settings
	case Deleted:
		a.deleted = true
	}
}

func diff(a, b Settings) []string {
	var out []string
	add := func(name string, changed bool) {
		if changed {
			out = append(out, name)
		}
	}
	add("name", a.Name != b.Name)
	add("description", a.Description != b.Description)
	add("tone", a.Tone != b.Tone)
	add("language", a.Language != b.Language)
	add("default_tasks", !equal(a.DefaultTasks, b.DefaultTasks))
	add("is_active", a.IsActive != b.IsActive)
	add("instructions", a.Instructions != b.Instructions)
	return out
}

func equal(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
