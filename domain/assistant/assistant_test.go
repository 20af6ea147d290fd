package assistant_test

import (
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/companin/companin/domain"
	"github.com/companin/companin/domain/assistant"
	"github.com/google/uuid"
)

func ptr[T any](v T) *T { return &v }

func TestAssistant(t *testing.T) {
	id := uuid.New()
	at := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	base := assistant.Settings{Name: "Bot", Language: "en", DefaultTasks: []string{}, IsActive: true}
	created := assistant.Created{AssistantID: id, Settings: base, CreatedAt: at}
	deleted := assistant.Deleted{AssistantID: id, DeletedAt: at}
	tests := []struct {
		name    string
		given   []domain.Event
		when    func(a *assistant.Assistant) error
		then    []domain.Event
		wantErr error
	}{
		{"create", nil, func(a *assistant.Assistant) error { return a.Create(base, at) }, []domain.Event{created}, nil},
		{"create twice", []domain.Event{created}, func(a *assistant.Assistant) error { return a.Create(base, at) }, nil, assistant.ErrExists},
		{"update changes name", []domain.Event{created}, func(a *assistant.Assistant) error {
			return a.Update(assistant.Input{Name: ptr("Helper")}, at)
		}, []domain.Event{assistant.Updated{AssistantID: id, Settings: func() assistant.Settings { s := base; s.Name = "Helper"; return s }(), Changed: []string{"name"}, UpdatedAt: at}}, nil},
		{"update without change records nothing", []domain.Event{created}, func(a *assistant.Assistant) error {
			return a.Update(assistant.Input{Name: ptr("Bot")}, at)
		}, nil, nil},
		{"update rejects empty name", []domain.Event{created}, func(a *assistant.Assistant) error {
			return a.Update(assistant.Input{Name: ptr("  ")}, at)
		}, nil, domain.ErrInvalid},
		{"update unknown", nil, func(a *assistant.Assistant) error { return a.Update(assistant.Input{Tone: ptr("x")}, at) }, nil, assistant.ErrNotFound},
		{"delete", []domain.Event{created}, func(a *assistant.Assistant) error { return a.Delete(at) }, []domain.Event{deleted}, nil},
		{"deleted accepts no update", []domain.Event{created, deleted}, func(a *assistant.Assistant) error {
			return a.Update(assistant.Input{Tone: ptr("x")}, at)
		}, nil, domain.ErrNotFound},
		{"deleted accepts no delete", []domain.Event{created, deleted}, func(a *assistant.Assistant) error { return a.Delete(at) }, nil, domain.ErrNotFound},
		{"deleted cannot start sessions", []domain.Event{created, deleted}, func(a *assistant.Assistant) error { return a.CanStart() }, nil, domain.ErrNotFound},
		{"inactive cannot start sessions", []domain.Event{created}, func(a *assistant.Assistant) error {
			if err := a.Update(assistant.Input{IsActive: ptr(false)}, at); err != nil {
				return err
			}
			return a.CanStart()
		}, nil, assistant.ErrInactive},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := assistant.New(id)
			for _, e := range tt.given {
				a.Apply(e)
			}
			err := tt.when(a)
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("err = %v, want %v", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := a.Changes(); !reflect.DeepEqual(got, tt.then) {
				t.Fatalf("events = %#v\nwant %#v", got, tt.then)
			}
		})
	}
}

func TestParseSettings(t *testing.T) {
	long := make([]byte, assistant.MaxName+1)
	for i := range long {
		long[i] = 'a'
	}
	tests := []struct {
		name  string
		in    assistant.Input
		field string
	}{
		{"name missing", assistant.Input{}, "name"},
		{"name blank", assistant.Input{Name: ptr(" ")}, "name"},
		{"name too long", assistant.Input{Name: ptr(string(long))}, "name"},
		{"bad language", assistant.Input{Name: ptr("x"), Language: ptr("english!")}, "language"},
		{"empty task", assistant.Input{Name: ptr("x"), DefaultTasks: &[]string{"a", ""}}, "default_tasks[1]"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := assistant.ParseSettings(tt.in)
			var ie *domain.InvalidError
			if !errors.As(err, &ie) || ie.Field != tt.field {
				t.Fatalf("err = %v, want invalid %s", err, tt.field)
			}
		})
	}
	s, err := assistant.ParseSettings(assistant.Input{Name: ptr(" Bot "), Language: ptr("pt_br")})
	if err != nil || s.Name != "Bot" || s.Language != "pt-BR" || !s.IsActive || s.DefaultTasks == nil {
		t.Fatalf("ParseSettings = %+v, %v", s, err)
	}
}
