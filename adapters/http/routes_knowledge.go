package httpapi

import "net/http"

// knowledgeRoutes registers the knowledge base endpoints (handlers in knowledge.go).
func (s *Server) knowledgeRoutes() {
	s.handleUpload(http.MethodPost, "/knowledge/files", ScopeAPI, s.addKnowledgeFile)
	s.handle(http.MethodPost, "/knowledge/qa", ScopeAPI, s.addKnowledgeQA)
	s.handle(http.MethodPost, "/knowledge/urls", ScopeAPI, s.addKnowledgeURL)
	s.handle(http.MethodPost, "/knowledge/search", ScopeAPI, s.searchKnowledge)
	s.handle(http.MethodGet, "/knowledge", ScopeAPI, s.listKnowledge)
	s.handle(http.MethodGet, "/knowledge/{id}", ScopeAPI, s.getKnowledge)
	s.handle(http.MethodGet, "/knowledge/{id}/chunks", ScopeAPI, s.listKnowledgeChunks)
	s.handle(http.MethodDelete, "/knowledge/{id}", ScopeAPI, s.removeKnowledge)
	s.handle(http.MethodPost, "/knowledge/{id}/refresh", ScopeAPI, s.refreshKnowledge)
}
