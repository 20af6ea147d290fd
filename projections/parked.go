package projections

import (
	"context"
	"encoding/json"

	"github.com/companin/companin/domain/es"
	"github.com/companin/companin/domain/knowledge"
	"github.com/companin/companin/domain/thread"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

// This file is how the read models show an event that the consumer runtime
// parked because it could not be applied (messaging.Marker): the entity it
// concerns says so, instead of silently missing what the event said. The ids
// are read loosely from the event, since the event may be the very thing
// that does not decode. A retry (companin projections retry) clears the
// mark before it applies the event again.

// ids are the entity ids an event may carry.
type ids struct {
	UserContextID uuid.UUID `json:"user_context_id"`
	KnowledgeID   uuid.UUID `json:"knowledge_id"`
	Revision      int       `json:"revision"`
}

func idsOf(e es.Event) ids {
	var v ids
	_ = json.Unmarshal(e.Data, &v)
	return v
}

// markDegraded records that entity id of consumer's read model misses what
// a parked event said (degraded_entities).
func markDegraded(ctx context.Context, tx pgx.Tx, consumer, kind string, id uuid.UUID, e es.Event, reason string) error {
	_, err := tx.Exec(ctx, `
		INSERT INTO degraded_entities (consumer, entity_id, kind, organization_id, event_id, reason)
		VALUES ($1, $2, $3, $4, $5, $6)
		ON CONFLICT (consumer, entity_id) DO UPDATE SET kind = $3, event_id = $5, reason = $6, marked_at = now()`,
		consumer, id, kind, e.Metadata.OrganizationID, e.ID, reason)
	return err
}

func clearDegraded(ctx context.Context, tx pgx.Tx, consumer string, id uuid.UUID) error {
	_, err := tx.Exec(ctx, `DELETE FROM degraded_entities WHERE consumer = $1 AND entity_id = $2`, consumer, id)
	return err
}

// MarkParked marks the user context degraded.
func (p UserContexts) MarkParked(ctx context.Context, tx pgx.Tx, e es.Event, reason string) error {
	id := idsOf(e).UserContextID
	if id == uuid.Nil {
		return nil
	}
	return markDegraded(ctx, tx, p.Name(), "user_context", id, e, reason)
}

// ClearParked removes the mark before a retry.
func (p UserContexts) ClearParked(ctx context.Context, tx pgx.Tx, e es.Event) error {
	return clearDegraded(ctx, tx, p.Name(), idsOf(e).UserContextID)
}

// MarkParked marks the session or conversation of a parked event degraded
// (a message that is missing from it, or its start).
func (p Conversations) MarkParked(ctx context.Context, tx pgx.Tx, e es.Event, reason string) error {
	kind, id, ok := thread.ParseStream(e.Stream)
	if !ok {
		return nil
	}
	return markDegraded(ctx, tx, p.Name(), string(kind), id, e, reason)
}

// ClearParked removes the mark before a retry.
func (p Conversations) ClearParked(ctx context.Context, tx pgx.Tx, e es.Event) error {
	if _, id, ok := thread.ParseStream(e.Stream); ok {
		return clearDegraded(ctx, tx, p.Name(), id)
	}
	return nil
}

// MarkParked fails the knowledge source with the reason, so that it never
// stays "processing": a source whose text could not be indexed says why.
func (Knowledge) MarkParked(ctx context.Context, tx pgx.Tx, e es.Event, reason string) error {
	v := idsOf(e)
	if v.KnowledgeID == uuid.Nil {
		return nil
	}
	reason = "this source could not be indexed (" + reason + "); an operator can retry it with `companin projections retry` once fixed"
	if e.Type == knowledge.TypeAdded {
		_, err := tx.Exec(ctx, `
			INSERT INTO knowledge_sources (id, organization_id, kind, title, status, error, revision, created_at, updated_at)
			VALUES ($1, $2, '', '', 'failed', $3, $4, $5, $5)
			ON CONFLICT (id) DO UPDATE SET status = 'failed', error = $3, updated_at = $5`,
			v.KnowledgeID, e.Metadata.OrganizationID, reason, v.Revision, e.RecordedAt)
		return err
	}
	_, err := tx.Exec(ctx, `UPDATE knowledge_sources SET status = 'failed', error = $2, updated_at = GREATEST(updated_at, $3)
		WHERE id = $1`, v.KnowledgeID, reason, e.RecordedAt)
	return err
}

// ClearParked removes the stand-in row of a parked addition before a retry;
// other events set the status themselves when they apply.
func (Knowledge) ClearParked(ctx context.Context, tx pgx.Tx, e es.Event) error {
	if e.Type != knowledge.TypeAdded {
		return nil
	}
	_, err := tx.Exec(ctx, `DELETE FROM knowledge_sources WHERE id = $1`, idsOf(e).KnowledgeID)
	return err
}
