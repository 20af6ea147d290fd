package projections

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/companin/companin/domain/assistant"
	"github.com/companin/companin/domain/es"
	"github.com/jackc/pgx/v5"
)

// Assistants keeps the assistants table for queries.GetAssistant and
// ListAssistants. Deleted assistants leave it.
type Assistants struct{}

// Name is the checkpoint name: never rename it.
func (Assistants) Name() string { return "assistants" }

// EventTypes lets the runtime skip other events.
func (Assistants) EventTypes() []string {
	return []string{assistant.TypeCreated, assistant.TypeUpdated, assistant.TypeDeleted}
}

// Handle applies one event; replays change nothing.
func (Assistants) Handle(ctx context.Context, tx pgx.Tx, e es.Event) error {
	de, err := assistant.Decode(e.Type, e.Data)
	if err != nil {
		return fmt.Errorf("assistants projection: %s %s: %w", e.Type, e.ID, err)
	}
	switch ev := de.(type) {
	case assistant.Created:
		s := ev.Settings
		_, err = tx.Exec(ctx, `
			INSERT INTO assistants (id, organization_id, name, description, tone, language, default_tasks, is_active, instructions, created_at, updated_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $10)
			ON CONFLICT (id) DO NOTHING`,
			ev.AssistantID, e.Metadata.OrganizationID, s.Name, s.Description, s.Tone, s.Language, tasks(s.DefaultTasks), s.IsActive, s.Instructions, at(ev.CreatedAt, e))
	case assistant.Updated:
		s := ev.Settings
		_, err = tx.Exec(ctx, `
			UPDATE assistants SET name = $2, description = $3, tone = $4, language = $5, default_tasks = $6,
				is_active = $7, instructions = $8, updated_at = $9
			WHERE id = $1`,
			ev.AssistantID, s.Name, s.Description, s.Tone, s.Language, tasks(s.DefaultTasks), s.IsActive, s.Instructions, at(ev.UpdatedAt, e))
	case assistant.Deleted:
		_, err = tx.Exec(ctx, `DELETE FROM assistants WHERE id = $1`, ev.AssistantID)
	}
	if err != nil {
		return fmt.Errorf("assistants projection: %s %s: %w", e.Type, e.ID, err)
	}
	return nil
}

// Reset empties the read model before a rebuild.
func (Assistants) Reset(ctx context.Context, tx pgx.Tx) error {
	_, err := tx.Exec(ctx, `TRUNCATE assistants RESTART IDENTITY`)
	return err
}

func tasks(t []string) []byte {
	if t == nil {
		t = []string{}
	}
	b, _ := json.Marshal(t)
	return b
}
