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
// The id of an erased context names that context (not found), never another
// context whose user_reference happens to be the same string: GET agrees
// with DELETE, which answers that erasure's tombstone.
func (h GetUserContextHandler) Handle(ctx context.Context, org, ref string) (UserContext, error) {
	if id, err := uuid.Parse(ref); err == nil {
		u, err := h.get(ctx, `id = $2`, org, id)
		if !errors.Is(err, errNoContextRow) {
			return u, err
		}
	}
	u, err := h.get(ctx, `user_reference = $2 AND erased_at IS NULL`, org, ref)
	if errors.Is(err, errNoContextRow) {
		return u, usercontext.ErrNotFound
	}
	return u, err
}

// errNoContextRow: no row matched (as opposed to an erased one).
var errNoContextRow = fmt.Errorf("no user context row: %w", usercontext.ErrNotFound)

func (h GetUserContextHandler) get(ctx context.Context, where, org string, arg any) (UserContext, error) {
	var u UserContext
	var ref *string
	var erased bool
	err := h.db.QueryRow(ctx, `
		SELECT id, user_reference, traits, created_at, updated_at, erased_at IS NOT NULL FROM user_contexts
		WHERE organization_id = $1 AND `+where+`
		ORDER BY seq DESC LIMIT 1`, org, arg).Scan(&u.ID, &ref, &u.Traits, &u.CreatedAt, &u.UpdatedAt, &erased)
	if errors.Is(err, pgx.ErrNoRows) {
		return UserContext{}, errNoContextRow
	}
	if err != nil {
		return UserContext{}, fmt.Errorf("get user context: %w", err)
	}
	if erased {
		return UserContext{}, usercontext.ErrNotFound
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
