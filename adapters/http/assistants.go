package httpapi

import (
	"net/http"

	"github.com/companin/companin/domain/assistant"
	"github.com/companin/companin/queries"
)

// assistantRequest is the body of POST and PATCH /assistants: nil fields were not sent.
type assistantRequest struct {
	Name         *string   `json:"name"`
	Description  *string   `json:"description"`
	Tone         *string   `json:"tone"`
	Language     *string   `json:"language"`
	DefaultTasks *[]string `json:"default_tasks"`
	IsActive     *bool     `json:"is_active"`
	Instructions *string   `json:"instructions"`
}

func (a assistantRequest) input() assistant.Input {
	return assistant.Input{Name: a.Name, Description: a.Description, Tone: a.Tone, Language: a.Language,
		DefaultTasks: a.DefaultTasks, IsActive: a.IsActive, Instructions: a.Instructions}
}

// assistants serves /assistants and /assistants/{id}.
func (s *Server) assistants() resource[assistantRequest, assistant.Input, queries.Assistant] {
	return resource[assistantRequest, assistant.Input, queries.Assistant]{s: s, notFound: assistant.ErrNotFound,
		create: s.app.Commands.CreateAssistant, update: s.app.Commands.UpdateAssistant,
		read: s.app.Queries.GetAssistant, page: s.app.Queries.ListAssistants}
}

func (s *Server) deleteAssistant(w http.ResponseWriter, r *http.Request) {
	s.deleteByID(w, r, s.app.Commands.DeleteAssistant, assistant.ErrNotFound)
}
