package httpapi

import (
	"net/http"

	"github.com/companin/companin/domain/assistant"
	"github.com/companin/companin/queries"
)

// assistantRequest is the body of POST and PATCH /assistants: nil fields were not sent.
type assistantRequest = assistant.Input

// assistants serves /assistants and /assistants/{id}.
func (s *Server) assistants() resource[assistant.Input, queries.Assistant] {
	return resource[assistant.Input, queries.Assistant]{s: s, notFound: assistant.ErrNotFound,
		create: s.app.Commands.CreateAssistant, update: s.app.Commands.UpdateAssistant,
		read: s.app.Queries.GetAssistant, page: s.app.Queries.ListAssistants}
}

func (s *Server) deleteAssistant(w http.ResponseWriter, r *http.Request) {
	s.deleteByID(w, r, s.app.Commands.DeleteAssistant, assistant.ErrNotFound)
}
