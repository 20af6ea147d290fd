package queries

import (
	"time"

	"github.com/companin/companin/domain/assistant"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

// Assistant is an assistant as clients see it (projections.Assistants).
type Assistant struct {
	ID uuid.UUID `json:"id"`
	assistant.Settings
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
}

var assistants = table[Assistant]{
	name:     "assistants",
	columns:  `seq, id, name, description, tone, language, default_tasks, is_active, instructions, created_at, updated_at`,
	notFound: assistant.ErrNotFound,
	scan: func(row pgx.Row) (a Assistant, seq int64, err error) {
		err = row.Scan(&seq, &a.ID, &a.Name, &a.Description, &a.Tone, &a.Language, &a.DefaultTasks, &a.IsActive, &a.Instructions, &a.CreatedAt, &a.UpdatedAt)
		if a.DefaultTasks == nil {
			a.DefaultTasks = []string{}
		}
		a.CreatedAt, a.UpdatedAt = a.CreatedAt.UTC(), a.UpdatedAt.UTC()
		return a, seq, err
	},
}
