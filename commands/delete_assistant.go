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

// DeleteAssistant removes an assistant for good.
type DeleteAssistant struct {
	ID uuid.UUID
}

// DeleteAssistantHandler deletes assistants.
type DeleteAssistantHandler struct {
	Store es.Store
	Now   func() time.Time
}

// Handle deletes the assistant; a deleted or unknown one is not found.
func (h DeleteAssistantHandler) Handle(ctx context.Context, cmd DeleteAssistant) (Written, error) {
	res, err := assistants(h.Store).Update(ctx, cmd.ID, func(a *assistant.Assistant) error {
		return a.Delete(Clock(h.Now))
	})
	if errors.Is(err, domain.ErrNotFound) {
		return Written{}, assistant.ErrNotFound
	}
	if err != nil {
		return Written{}, err
	}
	return Written{ID: cmd.ID, Position: res.Position}, nil
}
