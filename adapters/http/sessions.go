package httpapi

import (
	"errors"
	"net/http"

	"github.com/companin/companin/commands"
	"github.com/companin/companin/domain"
	"github.com/companin/companin/domain/message"
	"github.com/companin/companin/domain/session"
	"github.com/companin/companin/queries"
)

type startSessionRequest struct {
	AssistantID *string        `json:"assistant_id"`
	VisitorID   *string        `json:"visitor_id"`
	Locale      *string        `json:"locale"`
	Metadata    map[string]any `json:"metadata"`
}

func (s *Server) startSession(w http.ResponseWriter, r *http.Request) {
	var req startSessionRequest
	if err := decodeJSON(w, r, &req); err != nil {
		writeError(w, r, err)
		return
	}
	assistantID, err := bodyUUID("assistant_id", req.AssistantID)
	if err != nil {
		writeError(w, r, err)
		return
	}
	res, err := s.app.Commands.StartSession.Handle(r.Context(), commands.StartSession{
		AssistantID: assistantID, VisitorID: deref(req.VisitorID), Locale: deref(req.Locale), Metadata: req.Metadata,
	})
	if err != nil {
		writeError(w, r, err)
		return
	}
	s.waitForProjections(r, res.Position)
	sess, err := s.app.Queries.GetSession.Handle(r.Context(), orgOf(r), res.ID)
	if errors.Is(err, domain.ErrNotFound) {
		writeData(w, r, http.StatusCreated, map[string]any{"id": res.ID})
		return
	}
	if err != nil {
		writeError(w, r, err)
		return
	}
	writeData(w, r, http.StatusCreated, sess)
}

func (s *Server) getSession(w http.ResponseWriter, r *http.Request) {
	id, err := pathUUID(r, session.ErrNotFound)
	if err != nil {
		writeError(w, r, err)
		return
	}
	sess, err := s.app.Queries.GetSession.Handle(r.Context(), orgOf(r), id)
	if err != nil {
		writeError(w, r, err)
		return
	}
	writeData(w, r, http.StatusOK, sess)
}

func (s *Server) postSessionMessage(w http.ResponseWriter, r *http.Request) {
	s.postMessage(w, r, session.Kind, session.ErrNotFound)
}

func (s *Server) listSessionMessages(w http.ResponseWriter, r *http.Request) {
	s.listMessages(w, r, session.Kind, session.ErrNotFound)
}

func (s *Server) sessionEvents(w http.ResponseWriter, r *http.Request) {
	s.streamHistory(w, r, session.Kind, session.ErrNotFound)
}

type postMessageRequest struct {
	Content  *string        `json:"content"`
	Metadata map[string]any `json:"metadata"`
}

// postMessage records a user message in a session or conversation and
// answers with the message as recorded and the reply (replies.go: 201 completed, or 202 pending when it
// takes longer than the wait; SSE with Accept: text/event-stream).
func (s *Server) postMessage(w http.ResponseWriter, r *http.Request, kind string, notFound error) {
	id, err := pathUUID(r, notFound)
	if err != nil {
		writeError(w, r, err)
		return
	}
	if _, err := s.replyWait(r); err != nil {
		writeError(w, r, err) // before anything is recorded
		return
	}
	if s.resumeReply(w, r, commands.StreamName(kind, id), notFound) {
		return
	}
	var req postMessageRequest
	if err := decodeJSON(w, r, &req); err != nil {
		writeError(w, r, err)
		return
	}
	if req.Content == nil {
		writeError(w, r, invalid(FieldError{Field: "content", Message: "is required"}))
		return
	}
	res, err := s.app.Commands.PostMessage.Handle(r.Context(), commands.PostMessage{
		Kind: kind, ThreadID: id, Role: message.User, Content: *req.Content, Metadata: req.Metadata,
	})
	if err != nil {
		writeError(w, r, err)
		return
	}
	// The answer comes from what the command recorded: no read back. The
	// read models are waited for once, in respondWithReply, before the 2xx.
	s.respondWithReply(w, r, awaitedMessage{Stream: commands.StreamName(kind, id), ID: res.ID, Content: res.Message.Content,
		Metadata: res.Message.Metadata, CreatedAt: res.Message.PostedAt, Version: res.Version, Position: res.Position})
}

func (s *Server) listMessages(w http.ResponseWriter, r *http.Request, kind string, notFound error) {
	id, err := pathUUID(r, notFound)
	if err != nil {
		writeError(w, r, err)
		return
	}
	limit, cursor, err := pageOf(r)
	if err != nil {
		writeError(w, r, err)
		return
	}
	items, more, next, err := s.app.Queries.ListMessages.Handle(r.Context(), orgOf(r), queries.ListMessagesQuery{
		Kind: kind, ThreadID: id, Page: queries.Page{Limit: limit, Cursor: cursor},
	})
	if err != nil {
		writeError(w, r, err)
		return
	}
	writeList(w, r, items, more, next)
}
