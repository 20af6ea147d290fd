package httpapi

// knowledgeRoutes registers the knowledge base endpoints.
func (s *Server) knowledgeRoutes() {}
