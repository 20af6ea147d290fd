package projections

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/companin/companin/domain/es"
	"github.com/companin/companin/domain/widgetconfig"
	"github.com/jackc/pgx/v5"
)

// WidgetConfigs keeps the widget_configs table for queries.GetWidgetConfig and
// ListWidgetConfigs. Each row holds the whole settings as the last event had them.
type WidgetConfigs struct{}

// Name is the checkpoint name: never rename it.
func (WidgetConfigs) Name() string { return "widget_configs" }

// EventTypes lets the runtime skip other events.
func (WidgetConfigs) EventTypes() []string {
	return []string{widgetconfig.TypeCreated, widgetconfig.TypeUpdated}
}

// Handle applies one event; replays change nothing.
func (WidgetConfigs) Handle(ctx context.Context, tx pgx.Tx, e es.Event) error {
	de, err := widgetconfig.Decode(e.Type, e.Data)
	if err != nil {
		return fmt.Errorf("widget configs projection: %s %s: %w", e.Type, e.ID, err)
	}
	switch ev := de.(type) {
	case widgetconfig.Created:
		b, _ := json.Marshal(ev.Settings)
		_, err = tx.Exec(ctx, `
			INSERT INTO widget_configs (id, organization_id, settings, created_at, updated_at)
			VALUES ($1, $2, $3, $4, $4) ON CONFLICT (id) DO NOTHING`,
			ev.ConfigID, e.Metadata.OrganizationID, b, at(ev.CreatedAt, e))
	case widgetconfig.Updated:
		b, _ := json.Marshal(ev.Settings)
		_, err = tx.Exec(ctx, `UPDATE widget_configs SET settings = $2, updated_at = $3 WHERE id = $1`,
			ev.ConfigID, b, at(ev.UpdatedAt, e))
	}
	if err != nil {
		return fmt.Errorf("widget configs projection: %s %s: %w", e.Type, e.ID, err)
	}
	return nil
}

// Reset empties the read model before a rebuild.
func (WidgetConfigs) Reset(ctx context.Context, tx pgx.Tx) error {
	_, err := tx.Exec(ctx, `TRUNCATE widget_configs RESTART IDENTITY`)
	return err
}
