package httpapi

import (
	"net/http"

	"github.com/companin/companin/domain/widgetconfig"
	"github.com/companin/companin/queries"
)

var errConfigOrigin = httpError(http.StatusForbidden, "origin_not_allowed", "Forbidden - this Origin is not in the widget configuration's allowed origins")

// widgetConfigs serves /widget-configs and /widget-configs/{id}.
func (s *Server) widgetConfigs() resource[widgetconfig.Input, queries.WidgetConfig] {
	return resource[widgetconfig.Input, queries.WidgetConfig]{s: s, notFound: widgetconfig.ErrNotFound,
		create: s.app.Commands.CreateWidgetConfig, update: s.app.Commands.UpdateWidgetConfig,
		read: s.app.Queries.GetWidgetConfig, page: s.app.Queries.ListWidgetConfigs, visible: configVisible}
}

// configVisible refuses a configuration to a widget token from a page whose
// origin the configuration does not list, so a configuration restricted to
// some sites cannot be shown elsewhere (tokens issued for a configuration
// are held to its origins on every call, see authenticate).
func configVisible(r *http.Request, c queries.WidgetConfig) error {
	if principalOf(r).Widget && !originAllowed(r, c.AllowedOrigins) {
		return errConfigOrigin
	}
	return nil
}
