package queries

import (
	"encoding/json"
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
}

var widgetConfigs = table[WidgetConfig]{
	name:     "widget_configs",
	columns:  `seq, id, settings, created_at, updated_at`,
	notFound: widgetconfig.ErrNotFound,
	scan: func(row pgx.Row) (c WidgetConfig, seq int64, err error) {
		var settings []byte
		if err := row.Scan(&seq, &c.ID, &settings, &c.CreatedAt, &c.UpdatedAt); err != nil {
			return c, seq, err
		}
		c.Settings = widgetconfig.Defaults()
		if err := json.Unmarshal(settings, &c.Settings); err != nil {
			return c, seq, fmt.Errorf("widget config %s settings: %w", c.ID, err)
		}
		if c.AllowedOrigins == nil {
			c.AllowedOrigins = []string{}
		}
		c.CreatedAt, c.UpdatedAt = c.CreatedAt.UTC(), c.UpdatedAt.UTC()
		return c, seq, nil
	},
}
