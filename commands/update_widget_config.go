package commands

import (
	"context"
	"errors"
	"time"

	"github.com/companin/companin/domain"
	"github.com/companin/companin/domain/es"
	"github.com/companin/companin/domain/widgetconfig"
	"github.com/google/uuid"
)

// UpdateWidgetConfig changes the given (non-nil) fields of a widget configuration.
type UpdateWidgetConfig struct {
	ID uuid.UUID
	widgetconfig.Input
}

// UpdateWidgetConfigHandler updates widget configurations.
type UpdateWidgetConfigHandler struct {
	Store es.Store
	Now   func() time.Time
}

// Handle applies the change; one that changes nothing appends nothing.
func (h UpdateWidgetConfigHandler) Handle(ctx context.Context, cmd UpdateWidgetConfig) (Written, error) {
	res, err := widgetConfigs(h.Store).Update(ctx, cmd.ID, func(c *widgetconfig.Config) error {
		return c.Update(cmd.Input, Clock(h.Now))
	})
	if errors.Is(err, domain.ErrNotFound) {
		return Written{}, widgetconfig.ErrNotFound
	}
	if err != nil {
		return Written{}, err
	}
	return Written{ID: cmd.ID, Position: res.Position}, nil
}
