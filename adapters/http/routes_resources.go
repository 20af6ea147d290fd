package httpapi

// resourceRoutes registers assistants, sessions, conversations and contexts.
func (s *Server) resourceRoutes() {}
