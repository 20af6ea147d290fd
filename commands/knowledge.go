package commands

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/companin/companin/domain"
	"github.com/companin/companin/domain/es"
	"github.com/companin/companin/domain/knowledge"
	"github.com/google/uuid"
)

func knowledgeSources(store es.Store) Repository[*knowledge.Source] {
	return Repository[*knowledge.Source]{Store: store, Kind: knowledge.Kind, New: knowledge.New, Decode: knowledge.Decode}
}

// putKnowledge adds spec as a new source, or, when it names an external_id,
// upserts the source with that id: a changed document replaces the old one,
// an unchanged one records nothing. Assistants it is narrowed to must exist.
func putKnowledge(ctx context.Context, store es.Store, spec knowledge.Spec, now func() time.Time) (Written, error) {
	for _, a := range spec.AssistantIDs {
		if _, err := loadAssistant(ctx, store, a); err != nil {
			if errors.Is(err, domain.ErrNotFound) {
				return Written{}, domain.Invalid("assistant_ids", "assistant %s does not exist", a)
			}
			return Written{}, err
		}
	}
	repo := knowledgeSources(store)
	if spec.ExternalID == "" {
		id := uuid.New()
		res, err := repo.Create(ctx, id, func(s *knowledge.Source) error { return s.Put(spec, Clock(now)) })
		return Written{ID: id, Position: res.Position}, err
	}
	org := es.MetadataFrom(ctx).OrganizationID
	if org == "" {
		return Written{}, fmt.Errorf("put knowledge: no organization in context")
	}
	id := knowledge.StreamID(org, spec.ExternalID)
	res, err := repo.Upsert(ctx, id, func(s *knowledge.Source) error { return s.Put(spec, Clock(now)) })
	return Written{ID: id, Position: res.Position}, err
}
