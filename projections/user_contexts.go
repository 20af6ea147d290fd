package projections

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/companin/companin/domain/es"
	"github.com/companin/companin/domain/usercontext"
	"github.com/jackc/pgx/v5"
)

// UserContexts keeps the user_contexts table for queries.GetUserContext.
// Erased contexts keep a row without reference and traits (so an id stays
// "erased", not "never existed"). Shredded events carry null traits and
// reference; the row stores NULL.
type UserContexts struct{}

// Name is the checkpoint name: never rename it.
func (UserContexts) Name() string { return "user_contexts" }

// EventTypes lets the runtime skip other events.
func (UserContexts) EventTypes() []string {
	return []string{usercontext.TypeCreated, usercontext.TypeTraitsChanged, usercontext.TypeErased}
}

// personal is how the personal fields of user context events arrive: null
// once the subject's key is destroyed.
type personal struct {
	UserReference *string         `json:"user_reference"`
	Traits        json.RawMessage `json:"traits"`
}

func (p personal) traits() []byte {
	if len(p.Traits) == 0 || string(p.Traits) == "null" {
		return nil
	}
	return p.Traits
}

// Handle applies one event; replays change nothing.
func (UserContexts) Handle(ctx context.Context, tx pgx.Tx, e es.Event) error {
	de, err := usercontext.Decode(e.Type, e.Data)
	if err != nil {
		return fmt.Errorf("user contexts projection: %s %s: %w", e.Type, e.ID, err)
	}
	var pd personal
	if err := json.Unmarshal(e.Data, &pd); err != nil {
		return fmt.Errorf("user contexts projection: %s %s: %w", e.Type, e.ID, err)
	}
	switch ev := de.(type) {
	case usercontext.Created:
		_, err = tx.Exec(ctx, `
			INSERT INTO user_contexts (id, organization_id, user_reference, traits, created_at, updated_at)
			VALUES ($1, $2, $3, $4, $5, $5)
			ON CONFLICT (id) DO NOTHING`,
			ev.UserContextID, e.Metadata.OrganizationID, pd.UserReference, pd.traits(), at(ev.CreatedAt, e))
	case usercontext.TraitsChanged:
		_, err = tx.Exec(ctx, `
			UPDATE user_contexts SET traits = $2, updated_at = $3 WHERE id = $1 AND erased_at IS NULL`,
			ev.UserContextID, pd.traits(), at(ev.ChangedAt, e))
	case usercontext.Erased:
		_, err = tx.Exec(ctx, `
			UPDATE user_contexts SET user_reference = NULL, traits = NULL, erased_at = $2, erased_by = $3, updated_at = $2
			WHERE id = $1`,
			ev.UserContextID, at(ev.ErasedAt, e), ev.ErasedBy)
	}
	if err != nil {
		return fmt.Errorf("user contexts projection: %s %s: %w", e.Type, e.ID, err)
	}
	return nil
}

// Reset empties the read model before a rebuild.
func (UserContexts) Reset(ctx context.Context, tx pgx.Tx) error {
	_, err := tx.Exec(ctx, `TRUNCATE user_contexts RESTART IDENTITY`)
	return err
}
