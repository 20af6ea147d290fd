package commands

import (
	"context"
	"errors"
	"time"

	"github.com/companin/companin/domain"
	"github.com/companin/companin/domain/assistant"
	"github.com/companin/companin/domain/es"
	"github.com/google/uuid"
)

// UpdateAssistant changes the given (non-nil) fields of an assistant.
type UpdateAssistant struct {
	ID uuid.UUID
	assistant.Input
}

// UpdateAssistantHandler updates assistants.
type UpdateAssistantHandler struct {
	Store es.Store
	Now   func() time.Time
}

// Handle applies the change; one that changes nothing appends nothing.
func (h UpdateAssistantHandler) Handle(ctx context.Context, cmd UpdateAssistant) (Written, error) {
	res, err := assistants(h.Store).Update(ctx, cmd.ID, func(a *assistant.Assistant) error {
		return a.Update(cmd.Input, Clock(h.Now))
	})
	if errors.Is(err, domain.ErrNotFound) {
		return Written{}, assistant.ErrNotFound
	}
	if err != nil {
		return Written{}, err
	}
	return Written{ID: cmd.ID, Position: res.Position}, nil
}
