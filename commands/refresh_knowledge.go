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

// RefreshKnowledge fetches a web page again (or extracts a file again).
type RefreshKnowledge struct {
	ID uuid.UUID
}

// RefreshKnowledgeHandler starts refreshes.
type RefreshKnowledgeHandler struct {
	Store es.Store
	Now   func() time.Time
}

// Handle starts a new revision; the source is processing until it is done,
// and its current chunks stay searchable meanwhile.
func (h RefreshKnowledgeHandler) Handle(ctx context.Context, cmd RefreshKnowledge) (Written, error) {
	res, err := knowledgeSources(h.Store).Update(ctx, cmd.ID, func(s *knowledge.Source) error {
		return s.RequestRefresh(Clock(h.Now))
	})
	if errors.Is(err, domain.ErrNotFound) && !errors.Is(err, knowledge.ErrNotFound) {
		return Written{}, knowledge.ErrNotFound
	}
	if err != nil {
		return Written{}, err
	}
	return Written{ID: cmd.ID, Position: res.Position}, nil
}
