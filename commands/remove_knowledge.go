package commands

import (
	"context"
	"errors"
	"time"

	"github.com/companin/companin/domain"
	"github.com/companin/companin/domain/es"
	"github.com/companin/companin/domain/knowledge"
	"github.com/google/uuid"
)

// RemoveKnowledge deletes a source and its chunks.
type RemoveKnowledge struct {
	ID uuid.UUID
}

// RemoveKnowledgeHandler removes sources.
type RemoveKnowledgeHandler struct {
	Store es.Store
	Now   func() time.Time
}

// Handle removes the source; a removed or unknown one is not found.
func (h RemoveKnowledgeHandler) Handle(ctx context.Context, cmd RemoveKnowledge) (Written, error) {
	res, err := knowledgeSources(h.Store).Update(ctx, cmd.ID, func(s *knowledge.Source) error {
		return s.Remove(Clock(h.Now))
	})
	if errors.Is(err, domain.ErrNotFound) && !errors.Is(err, knowledge.ErrNotFound) {
		return Written{}, knowledge.ErrNotFound
	}
	if err != nil {
		return Written{}, err
	}
	return Written{ID: cmd.ID, Position: res.Position}, nil
}
