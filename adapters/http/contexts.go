package httpapi

import (
	"context"
	"net/http"

	"github.com/companin/companin/commands"
	"github.com/gorilla/mux"
)

type saveContextRequest struct {
	UserReference *string        `json:"user_reference"`
	Traits        map[string]any `json:"traits"`
}

type patchContextRequest struct {
	Traits map[string]any `json:"traits"`
}

// saveContext creates the context of a user_reference (201) or merges traits
// into the existing one (200).
func (s *Server) saveContext(w http.ResponseWriter, r *http.Request) {
	var req saveContextRequest
	if err := decodeJSON(w, r, &req); err != nil {
		writeError(w, r, err)
		return
	}
	res, err := s.app.Commands.SaveUserContext.Handle(r.Context(), commands.SaveUserContext{
		UserReference: deref(req.UserReference), Traits: req.Traits,
	})
	status := http.StatusOK
	if res.Created {
		status = http.StatusCreated
	}
	s.writeContext(w, r, status, res.Written, err)
}

func (s *Server) patchContext(w http.ResponseWriter, r *http.Request) {
	var req patchContextRequest
	if err := decodeJSON(w, r, &req); err != nil {
		writeError(w, r, err)
		return
	}
	res, err := s.app.Commands.PatchUserContext.Handle(r.Context(), commands.PatchUserContext{
		Ref: mux.Vars(r)["ref"], Traits: req.Traits,
	})
	s.writeContext(w, r, http.StatusOK, res, err)
}

// writeContext answers a write of a context (err: its failure) with the
// context as the read model shows it.
func (s *Server) writeContext(w http.ResponseWriter, r *http.Request, status int, res commands.Written, err error) {
	if err != nil {
		writeError(w, r, err)
		return
	}
	s.writeWritten(w, r, status, res, func(ctx context.Context) (any, error) {
		u, err := s.app.Queries.GetUserContext.Handle(ctx, orgOf(r), res.ID.String())
		return u, err
	}, map[string]any{"id": res.ID})
}

func (s *Server) getContext(w http.ResponseWriter, r *http.Request) {
	u, err := s.app.Queries.GetUserContext.Handle(r.Context(), orgOf(r), mux.Vars(r)["ref"])
	if err != nil {
		writeError(w, r, err)
		return
	}
	writeData(w, r, http.StatusOK, u)
}

// eraseContext forgets a person: UserContextErased is recorded, the key of
// their personal data destroyed (Deps.Eraser), stored idempotent responses
// about them deleted, and the read models wiped. A retry, by id or by the
// reference it freed, answers the same 200 and body: the erasure's tombstone.
func (s *Server) eraseContext(w http.ResponseWriter, r *http.Request) {
	res, err := s.app.Commands.EraseUserContext.Handle(r.Context(), commands.EraseUserContext{Ref: mux.Vars(r)["ref"]})
	if err != nil {
		writeError(w, r, err)
		return
	}
	s.waitForProjections(r, res.Position)
	writeData(w, r, http.StatusOK, map[string]any{"id": res.ID, "erased": true, "erased_at": res.ErasedAt.UTC()})
}
