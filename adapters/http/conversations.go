package httpapi

import (
	"errors"
	"net/http"

	"github.com/companin/companin/commands"
	"github.com/companin/companin/domain"
	"github.com/companin/companin/domain/conversation"
	"github.com/companin/companin/queries"
)

type startConversationRequest struct {
	AssistantID   *string        `json:"assistant_id"`
	CustomerID    *string        `json:"customer_id"`
	UserContextID *string        `json:"user_context_id"`
	Title         *string        `json:"title"`
	Locale        *string        `json:"locale"`
	Metadata      map[string]any `json:"metadata"`
}

func (s *Server) startConversation(w http.ResponseWriter, r *http.Request) {
	var req startConversationRequest
	if err := decodeJSON(w, r, &req); err != nil {
		writeError(w, r, err)
		return
	}
	assistantID, err := bodyUUID("assistant_id", req.AssistantID)
	if err != nil {
		writeError(w, r, err)
		return
	}
	res, err := s.app.Commands.StartConversation.Handle(r.Context(), commands.StartConversation{
		AssistantID: assistantID, CustomerID: deref(req.CustomerID), UserContext: deref(req.UserContextID),
		Title: deref(req.Title), Locale: deref(req.Locale), Metadata: req.Metadata,
	})
	if err != nil {
		writeError(w, r, err)
		return
	}
	s.waitForProjections(r, res.Position)
	c, err := s.app.Queries.GetConversation.Handle(r.Context(), orgOf(r), res.ID)
	if errors.Is(err, domain.ErrNotFound) {
		writeData(w, r, http.StatusCreated, map[string]any{"id": res.ID})
		return
	}
	if err != nil {
		writeError(w, r, err)
		return
	}
	writeData(w, r, http.StatusCreated, c)
}

func (s *Server) getConversation(w http.ResponseWriter, r *http.Request) {
	id, err := pathUUID(r, conversation.ErrNotFound)
	if err != nil {
		writeError(w, r, err)
		return
	}
	c, err := s.app.Queries.GetConversation.Handle(r.Context(), orgOf(r), id)
	if err != nil {
		writeError(w, r, err)
		return
	}
	writeData(w, r, http.StatusOK, c)
}

func (s *Server) listConversations(w http.ResponseWriter, r *http.Request) {
	limit, cursor, err := pageOf(r)
	if err != nil {
		writeError(w, r, err)
		return
	}
	items, more, next, err := s.app.Queries.ListConversations.Handle(r.Context(), orgOf(r), queries.ListConversationsQuery{
		CustomerID: r.URL.Query().Get("customer_id"), Page: queries.Page{Limit: limit, Cursor: cursor},
	})
	if err != nil {
		writeError(w, r, err)
		return
	}
	writeList(w, r, items, more, next)
}

func (s *Server) postConversationMessage(w http.ResponseWriter, r *http.Request) {
	s.postMessage(w, r, conversation.Kind, conversation.ErrNotFound)
}

func (s *Server) listConversationMessages(w http.ResponseWriter, r *http.Request) {
	s.listMessages(w, r, conversation.Kind, conversation.ErrNotFound)
}

func (s *Server) conversationEvents(w http.ResponseWriter, r *http.Request) {
	s.streamHistory(w, r, conversation.Kind, conversation.ErrNotFound)
}
