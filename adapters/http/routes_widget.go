package httpapi

// widgetRoutes registers widget configuration and /widget.js.
func (s *Server) widgetRoutes() {}
