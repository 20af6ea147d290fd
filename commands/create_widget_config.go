package commands

import (
	"context"
	"time"

	"github.com/companin/companin/domain/es"
	"github.com/companin/companin/domain/widgetconfig"
	"github.com/google/uuid"
)

// CreateWidgetConfig is a new widget configuration. Nil fields take defaults.
type CreateWidgetConfig struct {
	widgetconfig.Input
}

// CreateWidgetConfigHandler creates widget configurations.
type CreateWidgetConfigHandler struct {
	Store es.Store
	Now   func() time.Time
}

// Handle creates the configuration with a new id.
func (h CreateWidgetConfigHandler) Handle(ctx context.Context, cmd CreateWidgetConfig) (Written, error) {
	s, err := widgetconfig.ParseSettings(cmd.Input)
	if err != nil {
		return Written{}, err
	}
	id := uuid.New()
	res, err := widgetConfigs(h.Store).Create(ctx, id, func(c *widgetconfig.Config) error {
		return c.Create(s, Clock(h.Now))
	})
	if err != nil {
		return Written{}, err
	}
	return Written{ID: id, Position: res.Position}, nil
}

func widgetConfigs(store es.Store) Repository[*widgetconfig.Config] {
	return Repository[*widgetconfig.Config]{Store: store, Kind: widgetconfig.Kind, New: widgetconfig.New, Decode: widgetconfig.Decode}
}
