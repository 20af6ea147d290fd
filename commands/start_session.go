package commands

import (
	"context"
	"time"

	"github.com/companin/companin/domain/es"
	"github.com/companin/companin/domain/session"
	"github.com/google/uuid"
)

// StartSession opens an anonymous visitor's session on an assistant.
type StartSession struct {
	AssistantID uuid.UUID
	// VisitorID is the widget's visitor id; "" gets a generated one.
	VisitorID string
	Locale    string
	Metadata  map[string]any
}

// StartSessionHandler starts sessions.
type StartSessionHandler struct {
	Store es.Store
	Now   func() time.Time
}

// Handle starts the session. The assistant must be the caller's organization's,
// exist and be active.
func (h StartSessionHandler) Handle(ctx context.Context, cmd StartSession) (Written, error) {
	in, err := session.ParseStart(cmd.VisitorID, cmd.Locale, cmd.Metadata)
	if err != nil {
		return Written{}, err
	}
	a, err := loadAssistant(ctx, h.Store, cmd.AssistantID)
	if err != nil {
		return Written{}, err
	}
	id := uuid.New()
	res, err := sessions(h.Store).Create(ctx, id, func(s *session.Session) error {
		return s.Start(a, in, Clock(h.Now))
	})
	if err != nil {
		return Written{}, err
	}
	return Written{ID: id, Position: res.Position}, nil
}
