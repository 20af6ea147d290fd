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

// AddKnowledge is a new source of any kind (an uploaded file, a Q&A pair, a
// web page), parsed at the boundary by knowledge.ParseFile, ParseQA or
// ParseURL. A file's bytes go into the log; the ingestion worker extracts,
// fetches and indexes in the background.
type AddKnowledge struct {
	Spec knowledge.Spec
}

// AddKnowledgeHandler registers sources.
type AddKnowledgeHandler struct {
	Store es.Store
	Now   func() time.Time
}

// Handle adds the source, or, when it names an external_id, upserts the
// source with that id: a changed document replaces the old one, an
// unchanged one records nothing. Assistants it is narrowed to must exist.
func (h AddKnowledgeHandler) Handle(ctx context.Context, cmd AddKnowledge) (Written, error) {
	spec := cmd.Spec
	switch spec.Kind {
	case knowledge.File, knowledge.QA, knowledge.URL:
	default:
		return Written{}, fmt.Errorf("add knowledge: a spec of kind %q was not parsed", spec.Kind)
	}
	for _, a := range spec.AssistantIDs {
		if _, err := loadAssistant(ctx, h.Store, a); err != nil {
			if errors.Is(err, domain.ErrNotFound) {
				return Written{}, domain.Invalid("assistant_ids", "assistant %s does not exist", a)
			}
			return Written{}, err
		}
	}
	repo := knowledgeSources(h.Store)
	put := func(s *knowledge.Source) error { return s.Put(spec, Clock(h.Now)) }
	if spec.ExternalID == "" {
		id := uuid.New()
		res, err := repo.Create(ctx, id, put)
		return Written{ID: id, Position: res.Position}, err
	}
	org := es.MetadataFrom(ctx).OrganizationID
	if org == "" {
		return Written{}, fmt.Errorf("add knowledge: no organization in context")
	}
	id := knowledge.StreamID(org, spec.ExternalID)
	res, err := repo.Upsert(ctx, id, put)
	return Written{ID: id, Position: res.Position}, err
}

func knowledgeSources(store es.Store) Repository[*knowledge.Source] {
	return Repository[*knowledge.Source]{Store: store, Kind: knowledge.Kind, New: knowledge.New, Decode: knowledge.Decode}
}
