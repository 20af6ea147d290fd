package queries

import (
	"context"
	"fmt"
	"math"
)

// ListWidgetConfigsHandler lists an organization's widget configurations, newest first.
type ListWidgetConfigsHandler struct{ db resourcesDB }

// NewListWidgetConfigsHandler reads through db.
func NewListWidgetConfigsHandler(db resourcesDB) ListWidgetConfigsHandler {
	return ListWidgetConfigsHandler{db: db}
}

// Handle returns one page, whether more follow, and the cursor of the next page.
func (h ListWidgetConfigsHandler) Handle(ctx context.Context, org string, p Page) ([]WidgetConfig, bool, string, error) {
	before, ok, err := parseSeqCursor("widget_configs", p.Cursor)
	if err != nil {
		return nil, false, "", err
	}
	if !ok {
		before = math.MaxInt64
	}
	rows, err := h.db.Query(ctx, `SELECT `+widgetConfigColumns+` FROM widget_configs
		WHERE organization_id = $1 AND seq < $2 ORDER BY seq DESC LIMIT $3`, org, before, p.limit()+1)
	if err != nil {
		return nil, false, "", fmt.Errorf("list widget configs: %w", err)
	}
	defer rows.Close()
	out := []WidgetConfig{}
	for rows.Next() {
		c, err := scanWidgetConfig(rows)
		if err != nil {
			return nil, false, "", fmt.Errorf("list widget configs: %w", err)
		}
		out = append(out, c)
	}
	if err := rows.Err(); err != nil {
		return nil, false, "", fmt.Errorf("list widget configs: %w", err)
	}
	if len(out) <= p.limit() {
		return out, false, "", nil
	}
	out = out[:p.limit()]
	return out, true, seqCursor("widget_configs", out[len(out)-1].seq), nil
}
