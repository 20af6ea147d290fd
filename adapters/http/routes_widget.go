package httpapi

import "net/http"

// widgetRoutes registers widget configurations, /widget.js and the demo page.
// A widget token may read one configuration (the widget does, at start);
// listing and changing them takes an API key.
func (s *Server) widgetRoutes() {
	s.handle(http.MethodGet, "/widget-configs", ScopeAPI, s.listWidgetConfigs)
	s.handle(http.MethodPost, "/widget-configs", ScopeAPI, s.createWidgetConfig)
	s.handle(http.MethodGet, "/widget-configs/{id}", ScopeWidget, s.getWidgetConfig)
	s.handle(http.MethodPatch, "/widget-configs/{id}", ScopeAPI, s.updateWidgetConfig)

	s.register(http.MethodGet, "/widget.js", ScopePublic, s.cfg.MaxBodyBytes, s.widgetScript)
	s.register(http.MethodGet, "/widget/demo", ScopePublic, s.cfg.MaxBodyBytes, s.widgetDemo)
}
