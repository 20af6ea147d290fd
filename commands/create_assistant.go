package commands

import (
	"context"
	"time"

	"github.com/companin/companin/domain/assistant"
	"github.com/companin/companin/domain/es"
	"github.com/google/uuid"
)

// CreateAssistant is a new assistant persona. Nil fields were not given.
type CreateAssistant struct {
	assistant.Input
}

// CreateAssistantHandler creates assistants.
type CreateAssistantHandler struct {
	Store es.Store
	Now   func() time.Time
}

// Handle creates the assistant with a new id.
func (h CreateAssistantHandler) Handle(ctx context.Context, cmd CreateAssistant) (Written, error) {
	s, err := assistant.ParseSettings(cmd.Input)
	if err != nil {
		return Written{}, err
	}
	id := uuid.New()
	res, err := assistants(h.Store).Create(ctx, id, func(a *assistant.Assistant) error {
		return a.Create(s, Clock(h.Now))
	})
	if err != nil {
		return Written{}, err
	}
	return Written{ID: id, Position: res.Position}, nil
}
