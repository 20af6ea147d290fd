package httpapi

import (
	"errors"
	"net/http"
	"strconv"

	"github.com/companin/companin/commands"
	"github.com/companin/companin/domain"
	"github.com/companin/companin/domain/es"
	"github.com/companin/companin/domain/thread"
	"github.com/google/uuid"
	"github.com/gorilla/mux"
)

// resourceRoutes registers assistants, sessions, conversations and contexts.
// Widget tokens may start sessions, read one, and post and read its
// messages; everything else takes an API key.
func (s *Server) resourceRoutes() {
	s.handle(http.MethodGet, "/assistants", ScopeAPI, s.assistants().list)
	s.handle(http.MethodPost, "/assistants", ScopeAPI, s.assistants().post)
	s.handle(http.MethodGet, "/assistants/{id}", ScopeAPI, s.assistants().get)
	s.handle(http.MethodPatch, "/assistants/{id}", ScopeAPI, s.assistants().patch)
	s.handle(http.MethodDelete, "/assistants/{id}", ScopeAPI, s.deleteAssistant)

	s.threadRoutes(thread.Session, ScopeWidget)
	s.threadRoutes(thread.Conversation, ScopeAPI)
	s.handle(http.MethodGet, "/conversations", ScopeAPI, s.listConversations)

	s.handle(http.MethodPost, "/contexts", ScopeAPI, s.saveContext)
	s.handle(http.MethodGet, "/contexts/{ref}", ScopeAPI, s.getContext)
	s.handle(http.MethodPatch, "/contexts/{ref}", ScopeAPI, s.patchContext)
	s.handle(http.MethodDelete, "/contexts/{ref}", ScopeAPI, s.eraseContext)
}

// threadRoutes registers the routes of one kind of thread, /sessions or
// /conversations: scope is who may use them, but a stream's events take an
// API key.
func (s *Server) threadRoutes(k thread.Kind, scope Scope) {
	h, path := s.threads(k), "/"+string(k)+"s"
	s.handle(http.MethodPost, path, scope, h.start)
	s.handle(http.MethodGet, path+"/{id}", scope, h.get)
	s.handle(http.MethodPost, path+"/{id}/messages", scope, h.postMessage)
	s.handle(http.MethodGet, path+"/{id}/messages", scope, h.listMessages)
	s.handle(http.MethodPost, path+"/{id}/messages/{message_id}/feedback", scope, h.giveFeedback)
	s.handle(http.MethodGet, path+"/{id}/events", ScopeAPI, h.events)
}

// pathUUID reads the {id} of the path; anything but a UUID names nothing
// that exists: notFound.
func pathUUID(r *http.Request, notFound error) (uuid.UUID, error) {
	id, err := uuid.Parse(mux.Vars(r)["id"])
	if err != nil {
		return uuid.Nil, notFound
	}
	return id, nil
}

// bodyUUID parses a required UUID field of a request body.
func bodyUUID(field string, v *string) (uuid.UUID, error) {
	if v == nil || *v == "" {
		return uuid.Nil, invalid(FieldError{Field: field, Message: "is required"})
	}
	id, err := uuid.Parse(*v)
	if err != nil {
		return uuid.Nil, invalid(FieldError{Field: field, Message: "must be a UUID"})
	}
	return id, nil
}

func orgOf(r *http.Request) string { return principalOf(r).OrganizationID.String() }

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// streamEvents answers a stream's history (GET /sessions/{id}/events and
// /conversations/{id}/events): all of it, or with ?limit= a page, continued
// with ?cursor= (the version to read after).
func (s *Server) streamHistory(w http.ResponseWriter, r *http.Request, kind string, notFound error) {
	id, err := pathUUID(r, notFound)
	if err != nil {
		writeError(w, r, err)
		return
	}
	events, err := commands.ReadStream(r.Context(), s.deps.Store, commands.StreamName(kind, id))
	if errors.Is(err, domain.ErrNotFound) {
		writeError(w, r, notFound)
		return
	}
	if err != nil {
		writeError(w, r, err)
		return
	}
	limit, cursor, err := pageOf(r)
	if err != nil {
		writeError(w, r, err)
		return
	}
	if r.URL.Query().Get("limit") == "" {
		limit = len(events)
	}
	var after uint64
	if cursor != "" {
		if after, err = strconv.ParseUint(cursor, 10, 64); err != nil {
			writeError(w, r, invalid(FieldError{Field: "cursor", Message: "is not a cursor this API returned"}))
			return
		}
	}
	out := []eventDTO{}
	var last es.Event
	more := false
	for _, e := range events {
		if e.Version <= after {
			continue
		}
		if len(out) == limit {
			more = true
			break
		}
		out = append(out, toEventDTO(e))
		last = e
	}
	next := ""
	if more {
		next = strconv.FormatUint(last.Version, 10)
	}
	writeList(w, r, out, more, next)
}
