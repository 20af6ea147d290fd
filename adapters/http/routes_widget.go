package httpapi

import "net/http"

// widgetRoutes registers widget configurations, /widget.js and the demo page.
// A widget token may read one configuration (the widget does, at start);
// listing and changing them takes an API key.
func (s *Server) widgetRoutes() {
	s.handle(http.MethodGet, "/widget-configs", ScopeAPI, s.widgetConfigs().list)
	s.handle(http.MethodPost, "/widget-configs", ScopeAPI, s.widgetConfigs().post)
	s.handle(http.MethodGet, "/widget-configs/{id}", ScopeWidget, s.widgetConfigs().get)
	s.handle(http.MethodPatch, "/widget-configs/{id}", ScopeAPI, s.widgetConfigs().patch)

	s.register(http.MethodGet, "/widget.js", ScopePublic, s.cfg.MaxBodyBytes, s.widgetScript)
	s.register(http.MethodGet, "/widget/demo", ScopePublic, s.cfg.MaxBodyBytes, s.widgetDemo)
}
