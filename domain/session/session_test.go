package session_test

import (
	"errors"
	"testing"
	"time"

	"github.com/companin/companin/domain"
	"github.com/companin/companin/domain/assistant"
	"github.com/companin/companin/domain/message"
	"github.com/companin/companin/domain/session"
	"github.com/google/uuid"
)

var at = time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)

func activeAssistant(active bool, deleted bool) *assistant.Assistant {
	a := assistant.New(uuid.New())
	a.Apply(assistant.Created{AssistantID: a.ID(), Settings: assistant.Settings{Name: "Bot", IsActive: active}})
	if deleted {
		a.Apply(assistant.Deleted{AssistantID: a.ID()})
	}
	return a
}

func TestStart(t *testing.T) {
	in, err := session.ParseStart("", "de", map[string]any{"source": "website"})
	if err != nil {
		t.Fatal(err)
	}
	if len(in.VisitorID) < len("visitor-")+36 {
		t.Fatalf("visitor id not generated: %q", in.VisitorID)
	}
	tests := []struct {
		name    string
		a       *assistant.Assistant
		wantErr error
	}{
		{"active assistant", activeAssistant(true, false), nil},
		{"inactive assistant", activeAssistant(false, false), assistant.ErrInactive},
		{"deleted assistant", activeAssistant(true, true), domain.ErrNotFound},
		{"unknown (or foreign: the loader finds none) assistant", assistant.New(uuid.New()), domain.ErrNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := session.New(uuid.New())
			err := s.Start(tt.a, in, at)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
			if tt.wantErr != nil {
				if len(s.Changes()) != 0 {
					t.Fatalf("recorded %v on error", s.Changes())
				}
				return
			}
			got, ok := s.Changes()[0].(session.Started)
			if !ok || got.AssistantID != tt.a.ID() || got.VisitorID != in.VisitorID || got.Locale != "de" || got.Metadata["source"] != "website" {
				t.Fatalf("events = %#v", s.Changes())
			}
			if err := s.Start(tt.a, in, at); !errors.Is(err, session.ErrExists) {
				t.Fatalf("second start: %v", err)
			}
		})
	}
}

func TestPostMessage(t *testing.T) {
	body, _ := message.ParseContent(" Hello ")
	id := uuid.New()
	started := session.Started{SessionID: id, AssistantID: uuid.New(), VisitorID: "v"}
	msgID := uuid.New()
	posted := message.Posted{MessageID: msgID, Role: message.User, Content: "Hello", Metadata: map[string]any{}, PostedAt: at}
	tests := []struct {
		name    string
		given   []domain.Event
		wantN   int
		wantErr error
	}{
		{"into a started session", []domain.Event{started}, 1, nil},
		{"same message id again records nothing", []domain.Event{started, posted}, 0, nil},
		{"into an unknown session", nil, 0, session.ErrNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := session.New(id)
			for _, e := range tt.given {
				s.Apply(e)
			}
			_, err := s.PostMessage(message.Draft{ID: msgID, Role: message.User, Content: body}, at)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
			if len(s.Changes()) != tt.wantN {
				t.Fatalf("events = %#v", s.Changes())
			}
			if tt.wantN == 1 {
				p := s.Changes()[0].(message.Posted)
				if p.Content != "Hello" || p.EventID() != msgID {
					t.Fatalf("posted = %#v", p)
				}
				if subj, _ := p.PersonalData(); subj != "" {
					t.Fatalf("session message marked personal: %q", subj)
				}
			}
		})
	}
	if _, err := message.ParseContent("   "); !errors.Is(err, domain.ErrInvalid) {
		t.Fatalf("empty content: %v", err)
	}
}
