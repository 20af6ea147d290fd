package httpapi

import (
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"

	"github.com/gorilla/mux"
)

func errorsNew(s string) error                { return errors.New(s) }
func strconvItoa(i int) string                { return strconv.Itoa(i) }
func muxVar(r *http.Request, k string) string { return mux.Vars(r)[k] }

// serve runs one request through s in process, as org.
func serve(s *Server, method, path string, org testOrg) response {
	req := httptest.NewRequest(method, path, nil)
	if org.ClientID != "" {
		req.Header.Set("X-API-Key", org.ClientID)
		req.Header.Set("X-API-Secret", org.Secret)
	}
	rec := httptest.NewRecorder()
	s.Handler().ServeHTTP(rec, req)
	b, _ := io.ReadAll(rec.Result().Body)
	return response{Status: rec.Code, Header: rec.Header(), Body: b}
}
