package commands

import (
	"context"
	"errors"
	"fmt"

	"github.com/companin/companin/domain"
	"github.com/companin/companin/domain/es"
	"github.com/companin/companin/domain/knowledge"
)

// GiveUp records that the ingestion the event e started was given up (its
// job parked after its attempts, or a crash each time it ran), so that the
// source ends `failed` with the reason instead of staying "processing".
// Register it with the runtime as the ingestion worker's messaging.OnParked.
// Idempotent: a revision that is no longer pending records nothing.
func (h IngestKnowledgeHandler) GiveUp(ctx context.Context, e es.Event, reason string) error {
	id, revision, ok, err := startedRevision(e)
	if err != nil || !ok {
		return err
	}
	_, err = knowledgeSources(h.Store).Update(ctx, id, func(s *knowledge.Source) error {
		return s.FailIngestion(revision, "ingestion gave up: "+reason+"; replace or refresh the source to try again", Clock(h.Now))
	})
	if errors.Is(err, domain.ErrNotFound) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("give up ingestion of %s revision %d: %w", id, revision, err)
	}
	return nil
}
