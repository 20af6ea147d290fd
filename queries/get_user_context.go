package queries

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/companin/companin/domain/usercontext"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

// UserContext is a user context as clients see it (projections.UserContexts).
type UserContext struct {
	ID            uuid.UUID      `json:"id"`
	UserReference string         `json:"user_reference"`
	Traits        map[string]any `json:"traits"`
	CreatedAt     time.Time      `json:"created_at"`
	UpdatedAt     time.Time      `json:"updated_at"`
}

// GetUserContextHandler reads a user context by id or user_reference.
type GetUserContextHandler struct{ db resourcesDB }

// NewGetUserContextHandler reads through db.
func NewGetUserContextHandler(db resourcesDB) GetUserContextHandler {
	return GetUserContextHandler{db: db}
}

// Handle returns the context ref names (its id, else its user_reference), or
// usercontext.ErrNotFound (also for erased and other organizations' contexts).
// An id wins over a user_reference that spells it, as in
// commands.UserContextID, so that GET, PATCH and DELETE name the same
// context: the id of an erased context stays taken, never falling through to
// another context whose user_reference is that string.
func (h GetUserContextHandler) Handle(ctx context.Context, org, ref string) (UserContext, error) {
	if id, err := uuid.Parse(ref); err == nil {
		var erased bool
		err := h.db.QueryRow(ctx, `SELECT erased_at IS NOT NULL FROM user_contexts WHERE organization_id = $1 AND id = $2`,
			org, id).Scan(&erased)
		switch {
		case err == nil && erased:
			return UserContext{}, usercontext.ErrNotFound
		case err == nil:
			return h.get(ctx, `id = $2`, org, id)
		case !errors.Is(err, pgx.ErrNoRows):
			return UserContext{}, fmt.Errorf("get user context: %w", err)
		}
	}
	return h.get(ctx, `user_reference = $2`, org, ref)
}

func (h GetUserContextHandler) get(ctx context.Context, where, org string, arg any) (UserContext, error) {
	var u UserContext
	var ref *string
	err := h.db.QueryRow(ctx, `
		SELECT id, user_reference, traits, created_at, updated_at FROM user_contexts
		WHERE organization_id = $1 AND erased_at IS NULL AND `+where+`
		ORDER BY seq DESC LIMIT 1`, org, arg).Scan(&u.ID, &ref, &u.Traits, &u.CreatedAt, &u.UpdatedAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return UserContext{}, usercontext.ErrNotFound
	}
	if err != nil {
		return UserContext{}, fmt.Errorf("get user context: %w", err)
	}
	if ref != nil {
		u.UserReference = *ref
	}
	if u.Traits == nil {
		u.Traits = map[string]any{}
	}
	u.CreatedAt, u.UpdatedAt = u.CreatedAt.UTC(), u.UpdatedAt.UTC()
	return u, nil
}
