package httpapi

import (
	"errors"
	"net/http"

	"github.com/companin/companin/commands"
	"github.com/companin/companin/domain"
	"github.com/companin/companin/domain/widgetconfig"
	"github.com/companin/companin/queries"
)

// widgetConfigRequest is the body of POST and PATCH /widget-configs: nil
// fields were not sent.
type widgetConfigRequest struct {
	Title          *string   `json:"title"`
	Greeting       *string   `json:"greeting"`
	PrimaryColor   *string   `json:"primary_color"`
	Position       *string   `json:"position"`
	LauncherLabel  *string   `json:"launcher_label"`
	Placeholder    *string   `json:"placeholder"`
	Locale         *string   `json:"locale"`
	AllowedOrigins *[]string `json:"allowed_origins"`
}

func (c widgetConfigRequest) input() widgetconfig.Input {
	return widgetconfig.Input{Title: c.Title, Greeting: c.Greeting, PrimaryColor: c.PrimaryColor, Position: c.Position,
		LauncherLabel: c.LauncherLabel, Placeholder: c.Placeholder, Locale: c.Locale, AllowedOrigins: c.AllowedOrigins}
}

var errConfigOrigin = httpError(http.StatusForbidden, "origin_not_allowed", "Forbidden - this Origin is not in the widget configuration's allowed origins")

func (s *Server) createWidgetConfig(w http.ResponseWriter, r *http.Request) {
	var req widgetConfigRequest
	if err := decodeJSON(w, r, &req); err != nil {
		writeError(w, r, err)
		return
	}
	res, err := s.app.Commands.CreateWidgetConfig.Handle(r.Context(), commands.CreateWidgetConfig{Input: req.input()})
	if err != nil {
		writeError(w, r, err)
		return
	}
	s.writeWidgetConfig(w, r, res, http.StatusCreated)
}

func (s *Server) updateWidgetConfig(w http.ResponseWriter, r *http.Request) {
	id, err := pathUUID(r, widgetconfig.ErrNotFound)
	if err != nil {
		writeError(w, r, err)
		return
	}
	var req widgetConfigRequest
	if err := decodeJSON(w, r, &req); err != nil {
		writeError(w, r, err)
		return
	}
	res, err := s.app.Commands.UpdateWidgetConfig.Handle(r.Context(), commands.UpdateWidgetConfig{ID: id, Input: req.input()})
	if err != nil {
		writeError(w, r, err)
		return
	}
	s.writeWidgetConfig(w, r, res, http.StatusOK)
}

// writeWidgetConfig answers with the configuration as the read model shows it
// once it reflects the write.
func (s *Server) writeWidgetConfig(w http.ResponseWriter, r *http.Request, res commands.Written, status int) {
	s.waitForProjections(r, res.Position)
	c, err := s.app.Queries.GetWidgetConfig.Handle(r.Context(), orgOf(r), res.ID)
	if errors.Is(err, domain.ErrNotFound) {
		writeData(w, r, status, map[string]any{"id": res.ID})
		return
	}
	if err != nil {
		writeError(w, r, err)
		return
	}
	writeData(w, r, status, c)
}

// getWidgetConfig answers one configuration. A widget token from a page
// whose origin the configuration does not list gets 403, so a configuration
// restricted to some sites cannot be shown elsewhere (tokens issued for a
// configuration are held to its origins on every call, see authenticate).
func (s *Server) getWidgetConfig(w http.ResponseWriter, r *http.Request) {
	id, err := pathUUID(r, widgetconfig.ErrNotFound)
	if err != nil {
		writeError(w, r, err)
		return
	}
	c, err := s.app.Queries.GetWidgetConfig.Handle(r.Context(), orgOf(r), id)
	if err != nil {
		writeError(w, r, err)
		return
	}
	if principalOf(r).Widget && !originAllowed(r, c.AllowedOrigins) {
		writeError(w, r, errConfigOrigin)
		return
	}
	writeData(w, r, http.StatusOK, c)
}

func (s *Server) listWidgetConfigs(w http.ResponseWriter, r *http.Request) {
	limit, cursor, err := pageOf(r)
	if err != nil {
		writeError(w, r, err)
		return
	}
	items, more, next, err := s.app.Queries.ListWidgetConfigs.Handle(r.Context(), orgOf(r), queries.Page{Limit: limit, Cursor: cursor})
	if err != nil {
		writeError(w, r, err)
		return
	}
	writeList(w, r, items, more, next)
}
