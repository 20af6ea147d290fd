package httpapi

import "net/http"

// routes registers every endpoint. Each area keeps its routes in its own
// file (routes_*.go) so that nobody edits another's.
func (s *Server) routes() {
	s.register(http.MethodGet, "/healthz", ScopePublic, s.cfg.MaxBodyBytes, s.healthz)
	s.register(http.MethodGet, "/readyz", ScopePublic, s.cfg.MaxBodyBytes, s.readyz)
	s.register(http.MethodGet, "/metrics", ScopePublic, s.cfg.MaxBodyBytes, s.metricsHandler)
	s.handle(http.MethodGet, "/openapi.json", ScopePublic, s.openAPI)
	s.handle(http.MethodPost, "/auth/widget-token", ScopePublic, s.widgetToken)
	s.handle(http.MethodGet, "/events", ScopeAPI, s.listEvents)
	s.handle(http.MethodGet, "/events/stream", ScopeAPI, s.streamEvents)

	s.resourceRoutes()
	s.knowledgeRoutes()
	s.widgetRoutes()
}
