package httpapi

import (
	"errors"
	"net/http"

	"github.com/companin/companin/commands"
	"github.com/companin/companin/domain"
	"github.com/companin/companin/domain/message"
	"github.com/companin/companin/domain/thread"
	"github.com/companin/companin/queries"
)

// threadHandlers serve one kind of thread, sessions or conversations, under
// /sessions or /conversations (routes_resources.go). Posting a message
// continues in replies.go, which waits for the reply.
type threadHandlers struct {
	s    *Server
	kind thread.Kind
}

func (s *Server) threads(k thread.Kind) threadHandlers { return threadHandlers{s: s, kind: k} }

// startThreadRequest is the body of POST /sessions and POST /conversations;
// the fields of the other kind are ignored.
type startThreadRequest struct {
	AssistantID *string        `json:"assistant_id"`
	Locale      *string        `json:"locale"`
	Metadata    map[string]any `json:"metadata"`
	// Sessions.
	VisitorID *string `json:"visitor_id"`
	// Conversations.
	CustomerID    *string `json:"customer_id"`
	UserContextID *string `json:"user_context_id"`
	Title         *string `json:"title"`
}

func (h threadHandlers) start(w http.ResponseWriter, r *http.Request) {
	var req startThreadRequest
	if err := decodeJSON(w, r, &req); err != nil {
		writeError(w, r, err)
		return
	}
	assistantID, err := bodyUUID("assistant_id", req.AssistantID)
	if err != nil {
		writeError(w, r, err)
		return
	}
	res, err := h.s.app.Commands.StartThread.Handle(r.Context(), commands.StartThread{
		Kind: h.kind, AssistantID: assistantID, Locale: deref(req.Locale), Metadata: req.Metadata, VisitorID: deref(req.VisitorID),
		CustomerID: deref(req.CustomerID), UserContext: deref(req.UserContextID), Title: deref(req.Title),
	})
	if err != nil {
		writeError(w, r, err)
		return
	}
	h.s.waitForProjections(r, res.Position)
	t, err := h.s.app.Queries.GetThread.Handle(r.Context(), orgOf(r), h.kind, res.ID)
	if errors.Is(err, domain.ErrNotFound) {
		writeData(w, r, http.StatusCreated, map[string]any{"id": res.ID})
		return
	}
	if err != nil {
		writeError(w, r, err)
		return
	}
	writeData(w, r, http.StatusCreated, t)
}

func (h threadHandlers) get(w http.ResponseWriter, r *http.Request) {
	id, err := pathUUID(r, h.kind.NotFound())
	if err != nil {
		writeError(w, r, err)
		return
	}
	t, err := h.s.app.Queries.GetThread.Handle(r.Context(), orgOf(r), h.kind, id)
	if err != nil {
		writeError(w, r, err)
		return
	}
	writeData(w, r, http.StatusOK, t)
}

// listConversations is GET /conversations (sessions are not listed).
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

type postMessageRequest struct {
	Content  *string        `json:"content"`
	Metadata map[string]any `json:"metadata"`
}

// postMessage records a user message and answers with the message as
// recorded and the reply (replies.go: 201 completed, or 202 pending when it
// takes longer than the wait; SSE with Accept: text/event-stream).
//
// The message's way: commands/post_message.go appends it (the thread
// aggregate, domain/thread, decides); the reply worker
// (commands/answer_message.go, wired in adapters/replies/worker.go) is
// handed its event, asks the thread for the question and appends the reply
// to the same stream; respondWithReply reads the stream from the message's
// version on until the reply is there.
func (h threadHandlers) postMessage(w http.ResponseWriter, r *http.Request) {
	id, err := pathUUID(r, h.kind.NotFound())
	if err != nil {
		writeError(w, r, err)
		return
	}
	if _, err := h.s.replyWait(r); err != nil {
		writeError(w, r, err) // before anything is recorded
		return
	}
	if h.s.resumeReply(w, r, h.kind.Stream(id), h.kind.NotFound()) {
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
	res, err := h.s.app.Commands.PostMessage.Handle(r.Context(), commands.PostMessage{
		Kind: h.kind, ThreadID: id, Role: message.User, Content: *req.Content, Metadata: req.Metadata,
	})
	if err != nil {
		writeError(w, r, err)
		return
	}
	// The answer comes from what the command recorded: no read back. The
	// read models are waited for once, in respondWithReply, before the 2xx.
	h.s.respondWithReply(w, r, awaitedMessage{Stream: h.kind.Stream(id), Message: res.Message, Version: res.Version, Position: res.Position})
}

func (h threadHandlers) listMessages(w http.ResponseWriter, r *http.Request) {
	id, err := pathUUID(r, h.kind.NotFound())
	if err != nil {
		writeError(w, r, err)
		return
	}
	limit, cursor, err := pageOf(r)
	if err != nil {
		writeError(w, r, err)
		return
	}
	items, more, next, err := h.s.app.Queries.ListMessages.Handle(r.Context(), orgOf(r), queries.ListMessagesQuery{
		Kind: h.kind, ThreadID: id, Page: queries.Page{Limit: limit, Cursor: cursor},
	})
	if err != nil {
		writeError(w, r, err)
		return
	}
	writeList(w, r, items, more, next)
}

// events is GET /sessions/{id}/events and /conversations/{id}/events.
func (h threadHandlers) events(w http.ResponseWriter, r *http.Request) {
	h.s.streamHistory(w, r, string(h.kind), h.kind.NotFound())
}
