package queries

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/companin/companin/domain/assistant"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

// Assistant is an assistant as clients see it (projections.Assistants).
type Assistant struct {
	ID           uuid.UUID `json:"id"`
	Name         string    `json:"name"`
	Description  string    `json:"description"`
	Tone         string    `json:"tone"`
	Language     string    `json:"language"`
	DefaultTasks []string  `json:"default_tasks"`
	IsActive     bool      `json:"is_active"`
	Instructions string    `json:"instructions"`
	CreatedAt    time.Time `json:"created_at"`
	UpdatedAt    time.Time `json:"updated_at"`
	seq          int64
}

const assistantColumns = `seq, id, name, description, tone, language, default_tasks, is_active, instructions, created_at, updated_at`

func scanAssistant(row pgx.Row) (Assistant, error) {
	var a Assistant
	err := row.Scan(&a.seq, &a.ID, &a.Name, &a.Description, &a.Tone, &a.Language, &a.DefaultTasks, &a.IsActive, &a.Instructions, &a.CreatedAt, &a.UpdatedAt)
	if a.DefaultTasks == nil {
		a.DefaultTasks = []string{}
	}
	a.CreatedAt, a.UpdatedAt = a.CreatedAt.UTC(), a.UpdatedAt.UTC()
	return a, err
}

// GetAssistantHandler reads one assistant of an organization.
type GetAssistantHandler struct{ db resourcesDB }

// NewGetAssistantHandler reads through db.
func NewGetAssistantHandler(db resourcesDB) GetAssistantHandler { return GetAssistantHandler{db: db} }

// Handle returns the assistant, or assistant.ErrNotFound (also for another
// organization's or a deleted one).
func (h GetAssistantHandler) Handle(ctx context.Context, org string, id uuid.UUID) (Assistant, error) {
	a, err := scanAssistant(h.db.QueryRow(ctx, `SELECT `+assistantColumns+` FROM assistants WHERE id = $1 AND organization_id = $2`, id, org))
	if errors.Is(err, pgx.ErrNoRows) {
		return Assistant{}, assistant.ErrNotFound
	}
	if err != nil {
		return Assistant{}, fmt.Errorf("get assistant: %w", err)
	}
	return a, nil
}
