package queries

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/companin/companin/domain/widgetconfig"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

// WidgetConfig is a widget configuration as clients see it (projections.WidgetConfigs).
type WidgetConfig struct {
	ID uuid.UUID `json:"id"`
	widgetconfig.Settings
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
	seq       int64
}

const widgetConfigColumns = `seq, id, settings, created_at, updated_at`

func scanWidgetConfig(row pgx.Row) (WidgetConfig, error) {
	var c WidgetConfig
	var settings []byte
	if err := row.Scan(&c.seq, &c.ID, &settings, &c.CreatedAt, &c.UpdatedAt); err != nil {
		return c, err
	}
	c.Settings = widgetconfig.Defaults()
	if err := json.Unmarshal(settings, &c.Settings); err != nil {
		return c, fmt.Errorf("widget config %s settings: %w", c.ID, err)
	}
	if c.AllowedOrigins == nil {
		c.AllowedOrigins = []string{}
	}
	c.CreatedAt, c.UpdatedAt = c.CreatedAt.UTC(), c.UpdatedAt.UTC()
	return c, nil
}

// GetWidgetConfigHandler reads one widget configuration of an organization.
type GetWidgetConfigHandler struct{ db resourcesDB }

// NewGetWidgetConfigHandler reads through db.
func NewGetWidgetConfigHandler(db resourcesDB) GetWidgetConfigHandler {
	return GetWidgetConfigHandler{db: db}
}

// Handle returns the configuration, or widgetconfig.ErrNotFound (also for
// another organization's).
func (h GetWidgetConfigHandler) Handle(ctx context.Context, org string, id uuid.UUID) (WidgetConfig, error) {
	c, err := scanWidgetConfig(h.db.QueryRow(ctx, `SELECT `+widgetConfigColumns+` FROM widget_configs WHERE id = $1 AND organization_id = $2`, id, org))
	if errors.Is(err, pgx.ErrNoRows) {
		return WidgetConfig{}, widgetconfig.ErrNotFound
	}
	if err != nil {
		return WidgetConfig{}, fmt.Errorf("get widget config: %w", err)
	}
	return c, nil
}
