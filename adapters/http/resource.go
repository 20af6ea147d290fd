package httpapi

import (
	"context"
	"errors"
	"net/http"

	"github.com/companin/companin/commands"
	"github.com/companin/companin/domain"
	"github.com/companin/companin/queries"
	"github.com/google/uuid"
)

// resource serves a kind of resource that is created whole (POST), changed
// by parts (PATCH), read by id and listed: assistants and widget
// configurations. In is the domain's input, decoded from the JSON body of
// POST and PATCH (nil fields were not sent); V is what clients see.
type resource[In, V any] struct {
	s        *Server
	notFound error
	create   commands.CreateHandler[In]
	update   commands.UpdateHandler[In]
	read     queries.GetHandler[V]
	page     queries.ListHandler[V]
	// visible, when set, may refuse the caller one resource it read (a
	// widget on a page the configuration does not allow).
	visible func(r *http.Request, v V) error
}

func (h resource[In, V]) post(w http.ResponseWriter, r *http.Request) {
	var in In
	if err := decodeJSON(w, r, &in); err != nil {
		writeError(w, r, err)
		return
	}
	res, err := h.create.Handle(r.Context(), commands.Create[In]{Input: in})
	h.answer(w, r, http.StatusCreated, res, err)
}

func (h resource[In, V]) patch(w http.ResponseWriter, r *http.Request) {
	id, err := pathUUID(r, h.notFound)
	if err != nil {
		writeError(w, r, err)
		return
	}
	var in In
	if err := decodeJSON(w, r, &in); err != nil {
		writeError(w, r, err)
		return
	}
	res, err := h.update.Handle(r.Context(), commands.Update[In]{ID: id, Input: in})
	h.answer(w, r, http.StatusOK, res, err)
}

// answer answers a write with the resource as the read model shows it once
// it reflects the write; if it is late beyond the bound, the write stands
// and the answer names its id.
func (h resource[In, V]) answer(w http.ResponseWriter, r *http.Request, status int, res commands.Written, err error) {
	if err != nil {
		writeError(w, r, err)
		return
	}
	h.s.writeWritten(w, r, status, res, func(ctx context.Context) (any, error) {
		v, err := h.read.Handle(ctx, orgOf(r), res.ID)
		return v, err
	}, map[string]any{"id": res.ID})
}

func (h resource[In, V]) get(w http.ResponseWriter, r *http.Request) {
	readByID(w, r, h.notFound, func(ctx context.Context, id uuid.UUID) (any, error) {
		v, err := h.read.Handle(ctx, orgOf(r), id)
		if err == nil && h.visible != nil {
			err = h.visible(r, v)
		}
		return v, err
	})
}

func (h resource[In, V]) list(w http.ResponseWriter, r *http.Request) {
	writePage(w, r, func(ctx context.Context, p queries.Page) ([]V, bool, string, error) {
		return h.page.Handle(ctx, orgOf(r), p)
	})
}

// writePage answers a list with the page the request asks for (?limit=,
// ?cursor=) as list finds it: the items, whether more follow, the next
// page's cursor.
func writePage[V any](w http.ResponseWriter, r *http.Request, list func(context.Context, queries.Page) ([]V, bool, string, error)) {
	limit, cursor, err := pageOf(r)
	if err != nil {
		writeError(w, r, err)
		return
	}
	items, more, next, err := list(r.Context(), queries.Page{Limit: limit, Cursor: cursor})
	if err != nil {
		writeError(w, r, err)
		return
	}
	writeList(w, r, items, more, next)
}

// writeWritten answers a write with what read finds once the read models
// reflect it. A read model still behind after the wait (not found) does not
// undo the write: the answer is late then, or, when late is nil, the error.
func (s *Server) writeWritten(w http.ResponseWriter, r *http.Request, status int, res commands.Written, read func(context.Context) (any, error), late any) {
	s.waitForProjections(r, res.Position)
	v, err := read(r.Context())
	if errors.Is(err, domain.ErrNotFound) && late != nil {
		writeData(w, r, status, late)
		return
	}
	if err != nil {
		writeError(w, r, err)
		return
	}
	writeData(w, r, status, v)
}

// readByID answers GET .../{id} with what read finds; an {id} that is not a
// UUID names nothing: notFound.
func readByID(w http.ResponseWriter, r *http.Request, notFound error, read func(context.Context, uuid.UUID) (any, error)) {
	id, err := pathUUID(r, notFound)
	if err != nil {
		writeError(w, r, err)
		return
	}
	v, err := read(r.Context(), id)
	if err != nil {
		writeError(w, r, err)
		return
	}
	writeData(w, r, http.StatusOK, v)
}

// decideByID handles a by-id decision on .../{id} (DELETE, POST
// .../refresh): answer writes the response once the decision is recorded.
func (s *Server) decideByID(w http.ResponseWriter, r *http.Request, h commands.ByIDHandler, notFound error, answer func(commands.Written)) {
	id, err := pathUUID(r, notFound)
	if err != nil {
		writeError(w, r, err)
		return
	}
	res, err := h.Handle(r.Context(), commands.ByID{ID: id})
	if err != nil {
		writeError(w, r, err)
		return
	}
	answer(res)
}

// deleteByID handles DELETE .../{id} with the decision h: it answers
// {"id", "deleted": true} once the read models reflect it.
func (s *Server) deleteByID(w http.ResponseWriter, r *http.Request, h commands.ByIDHandler, notFound error) {
	s.decideByID(w, r, h, notFound, func(res commands.Written) {
		s.waitForProjections(r, res.Position)
		writeData(w, r, http.StatusOK, map[string]any{"id": res.ID, "deleted": true})
	})
}
