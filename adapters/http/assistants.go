package httpapi

import (
	"errors"
	"net/http"

	"github.com/companin/companin/commands"
	"github.com/companin/companin/domain"
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

func (s *Server) createAssistant(w http.ResponseWriter, r *http.Request) {
	var req assistantRequest
	if err := decodeJSON(w, r, &req); err != nil {
		writeError(w, r, err)
		return
	}
	res, err := s.app.Commands.CreateAssistant.Handle(r.Context(), commands.CreateAssistant{Input: req.input()})
	if err != nil {
		writeError(w, r, err)
		return
	}
	s.writeAssistant(w, r, res, http.StatusCreated)
}

func (s *Server) updateAssistant(w http.ResponseWriter, r *http.Request) {
	id, err := pathUUID(r, assistant.ErrNotFound)
	if err != nil {
		writeError(w, r, err)
		return
	}
	var req assistantRequest
	if err := decodeJSON(w, r, &req); err != nil {
		writeError(w, r, err)
		return
	}
	res, err := s.app.Commands.UpdateAssistant.Handle(r.Context(), commands.UpdateAssistant{ID: id, Input: req.input()})
	if err != nil {
		writeError(w, r, err)
		return
	}
	s.writeAssistant(w, r, res, http.StatusOK)
}

// writeAssistant answers with the assistant as the read model shows it once
// it reflects the write.
func (s *Server) writeAssistant(w http.ResponseWriter, r *http.Request, res commands.Written, status int) {
	s.waitForProjections(r, res.Position)
	a, err := s.app.Queries.GetAssistant.Handle(r.Context(), orgOf(r), res.ID)
	if errors.Is(err, domain.ErrNotFound) {
		// The read model is late beyond the bound: the write stands.
		writeData(w, r, status, map[string]any{"id": res.ID})
		return
	}
	if err != nil {
		writeError(w, r, err)
		return
	}
	writeData(w, r, status, a)
}

func (s *Server) getAssistant(w http.ResponseWriter, r *http.Request) {
	id, err := pathUUID(r, assistant.ErrNotFound)
	if err != nil {
		writeError(w, r, err)
		return
	}
	a, err := s.app.Queries.GetAssistant.Handle(r.Context(), orgOf(r), id)
	if err != nil {
		writeError(w, r, err)
		return
	}
	writeData(w, r, http.StatusOK, a)
}

func (s *Server) listAssistants(w http.ResponseWriter, r *http.Request) {
	limit, cursor, err := pageOf(r)
	if err != nil {
		writeError(w, r, err)
		return
	}
	items, more, next, err := s.app.Queries.ListAssistants.Handle(r.Context(), orgOf(r), queries.Page{Limit: limit, Cursor: cursor})
	if err != nil {
		writeError(w, r, err)
		return
	}
	writeList(w, r, items, more, next)
}

func (s *Server) deleteAssistant(w http.ResponseWriter, r *http.Request) {
	id, err := pathUUID(r, assistant.ErrNotFound)
	if err != nil {
		writeError(w, r, err)
		return
	}
	res, err := s.app.Commands.DeleteAssistant.Handle(r.Context(), commands.DeleteAssistant{ID: id})
	if err != nil {
		writeError(w, r, err)
		return
	}
	s.waitForProjections(r, res.Position)
	writeData(w, r, http.StatusOK, map[string]any{"id": id, "deleted": true})
}
